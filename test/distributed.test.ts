// Process groups on loopback: two worker processes (this file, started again with
// LMF_DIST_ROLE set) join through a TCPStore on a free port and check every collective's
// values, worked out by hand below; rendezvous failures are clear errors within the timeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import * as torch from "../src/torch/index.js";
import { initProcessGroup, rendezvousFromEnv } from "../src/torch/distributed.js";

const self = fileURLToPath(import.meta.url);

/** A port nothing listens on now (the OS's pick, released again). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs this file as a worker with the given role and environment. */
function worker(role: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [self], {
      env: { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE", LMF_DIST_ROLE: role, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const values = (t: torch.Tensor): number[] => Array.from(t.data() as ArrayLike<number>);

/** A worker's collectives; prints their results as JSON. */
async function collectives(): Promise<void> {
  const pg = await initProcessGroup({ ...rendezvousFromEnv()!, timeoutMs: 20_000, threads: 1 });
  const r = pg.rank;
  const f32 = { dtype: "float32" } as const;
  const out: Record<string, unknown> = {};
  const a = torch.tensor([r + 1, 10 * (r + 1)], f32);
  await pg.allReduce(a, "sum");
  out.sum = values(a);
  const b = torch.tensor([r + 1, 10 * (r + 1)], f32);
  pg.allReduce(b, "avg").wait(); // the synchronous wait
  out.avg = values(b);
  const c = torch.tensor([5 * r - 2], f32);
  await pg.allReduce(c, "max");
  out.max = values(c);
  // two tensors of different shapes travel as one flat buffer and come back in place
  const d1 = torch.tensor([r + 1], f32);
  const d2 = torch.tensor([[r, 2 * r], [3 * r, 4 * r]], f32);
  await pg.allReduce([d1, d2], "sum");
  out.flat = [values(d1), values(d2), d2.shape];
  const e = torch.tensor([100 * r + 7], f32);
  await pg.broadcast(e, 1);
  out.broadcast = values(e);
  const gathered = await pg.allGather(torch.tensor([r, r * r + 5], f32));
  out.gather = gathered.map(values);
  await pg.barrier();
  pg.checkSame("model config", JSON.stringify({ hidden: 32 }));
  try {
    pg.checkSame("model config", JSON.stringify({ hidden: 32 + r }));
    out.differ = "no error";
  } catch (err) {
    out.differ = (err as Error).message;
  }
  pg.destroy();
  process.stdout.write(JSON.stringify(out) + "\n");
}

/** Joins a group of two alone: the rendezvous must fail within the timeout. */
async function alone(): Promise<void> {
  try {
    await initProcessGroup({ ...rendezvousFromEnv()!, timeoutMs: Number(process.env.LMF_TIMEOUT_MS) });
    process.stdout.write(JSON.stringify({ joined: true }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: (err as Error).message }) + "\n");
  }
}

const role = process.env.LMF_DIST_ROLE;
if (role === "collectives") await collectives();
else if (role === "alone") await alone();
else {
  const groupEnv = (rank: number, port: number, worldSize = 2) => ({ RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) });

  test("two ranks on loopback: allreduce sum/avg/max, a flattened bucket, broadcast, allgather, a config check", async () => {
    const port = await freePort();
    const runs = await Promise.all([worker("collectives", groupEnv(0, port)), worker("collectives", groupEnv(1, port))]);
    for (const [r, run] of runs.entries()) {
      assert.equal(run.code, 0, `rank ${r} failed: ${run.stderr}`);
      const got = JSON.parse(run.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
      assert.deepEqual(got.sum, [3, 30]); // [1, 10] + [2, 20]
      assert.deepEqual(got.avg, [1.5, 15]);
      assert.deepEqual(got.max, [3]); // max(-2, 3)
      assert.deepEqual(got.flat, [[3], [1, 2, 3, 4], [2, 2]]); // [1]+[2]; 0 + [[1,2],[3,4]]
      assert.deepEqual(got.broadcast, [107]); // rank 1's 100·1 + 7
      assert.deepEqual(got.gather, [[0, 5], [1, 6]]);
      // rank 1's config differs from rank 0's: both ranks are told, naming rank 1
      assert.match(got.differ as string, new RegExp(`^rank ${r}/2: model config differs across ranks: rank 1 has another than rank 0's`));
    }
  });

  test("a rank whose peer never comes: rank 0 (the store's host) fails within the timeout, naming itself", async () => {
    const run = await worker("alone", { ...groupEnv(0, await freePort()), LMF_TIMEOUT_MS: "1500" });
    const got = JSON.parse(run.stdout.trim()) as { error?: string };
    assert.match(got.error ?? "", /^rank 0\/2: waiting for rank 1 to join: it did not join within 1500 ms/);
    assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
  });

  test("a rank that cannot reach the store fails within the timeout, naming itself and the address", async () => {
    const port = await freePort();
    const run = await worker("alone", { ...groupEnv(1, port), LMF_TIMEOUT_MS: "1500" });
    const got = JSON.parse(run.stdout.trim()) as { error?: string };
    assert.match(got.error ?? "", new RegExp(`^rank 1/2: reaching the TCPStore at 127\\.0\\.0\\.1:${port}: `));
    assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
  });

  test("a port already taken: the master says so", async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, "0.0.0.0", done));
    const { port } = server.address() as AddressInfo;
    try {
      await assert.rejects(
        initProcessGroup({ rank: 0, worldSize: 2, masterAddr: "127.0.0.1", masterPort: port, timeoutMs: 1500 }),
        new RegExp(`^Error: rank 0/2: starting the TCPStore at 127\\.0\\.0\\.1:${port} \\(this rank is the master\\): .*(in use|listen)`, "s"),
      );
    } finally {
      server.close();
    }
  });

  test("mismatched world sizes: both ranks are told", async () => {
    const port = await freePort();
    const runs = await Promise.all([
      worker("alone", { ...groupEnv(0, port, 2), LMF_TIMEOUT_MS: "4000" }),
      worker("alone", { ...groupEnv(1, port, 3), LMF_TIMEOUT_MS: "4000" }),
    ]);
    const errors = runs.map((r) => (JSON.parse(r.stdout.trim()) as { error?: string }).error ?? "");
    assert.match(errors[0]!, /^rank 0\/2: comparing world sizes: rank 1 has world size 3, this rank 2/);
    assert.match(errors[1]!, /^rank 1\/3: comparing world sizes: rank 0 has world size 2, this rank 3/);
  });

  test("torchrun's and Slurm's variables", () => {
    assert.equal(rendezvousFromEnv({}), null);
    assert.deepEqual(rendezvousFromEnv({ RANK: "3", WORLD_SIZE: "4", LOCAL_RANK: "1", LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "1234" }), {
      rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: "10.0.0.1", masterPort: 1234,
    });
    assert.deepEqual(rendezvousFromEnv({ SLURM_PROCID: "1", SLURM_NTASKS: "2", SLURM_LOCALID: "1", SLURM_NTASKS_PER_NODE: "2", SLURM_LAUNCH_NODE_IPADDR: "10.0.0.9" }), {
      rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2, masterAddr: "10.0.0.9", masterPort: 29500,
    });
    assert.throws(() => rendezvousFromEnv({ RANK: "2", WORLD_SIZE: "2", MASTER_ADDR: "a" }), /rank 2 is not below the world size 2/);
    assert.throws(() => rendezvousFromEnv({ RANK: "0", WORLD_SIZE: "2" }), /rank 0: MASTER_ADDR is not set/);
  });
}

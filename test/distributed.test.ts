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
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AutoModelForMaskedLM, presetConfig } from "../src/models/index.js";
import { MaskedLM } from "../src/objectives/index.js";
import type { Example } from "../src/data/index.js";
import { Trainer, lastCheckpoint } from "../src/train/index.js";
import { joinFromEnv, shardOf, bucketsOf } from "../src/train/data-parallel.js";
import { schedules } from "../src/optim/index.js";
import { Module } from "../src/nn/index.js";
import { tempDir } from "./helpers.js";
import { workerCommand, workerEnv } from "../src/cli/launch.js";
import { mkdirSync } from "node:fs";

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
  return run([self], { LMF_DIST_ROLE: role, ...env }, timeoutMs);
}

function run(args: string[], env: Record<string, string>, timeoutMs: number): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE", ...env },
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

/** 97 synthetic sequences of 10-25 tokens ([CLS]=1 ... [SEP]=2, words 5-99), the same in every process. */
function syntheticExamples(): Example[] {
  let state = 12345;
  const next = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  return Array.from({ length: 97 }, () => {
    const len = 10 + next(16);
    const ids = Int32Array.from({ length: len }, (_, i) => (i === 0 ? 1 : i === len - 1 ? 2 : 5 + next(95)));
    const special = Uint8Array.from(ids, (_, i) => (i === 0 || i === len - 1 ? 1 : 0));
    return { ids, special, wordStart: new Uint8Array(len).fill(1), typeIds: new Int32Array(len) };
  });
}

class UnusedHead extends Module {
  readonly w: torch.Tensor;
  constructor() {
    super();
    this.w = this.registerParameter("w", torch.ones([64]));
  }
}

/**
 * A masked-LM run of a tiny BERT (no dropout): per-rank batch LMF_BATCH; with a launcher's
 * variables, data parallel. Prints the step losses and the final parameters.
 */
async function train(): Promise<void> {
  const distributed = await joinFromEnv();
  torch.manualSeed(7);
  // each rank starts from other weights: the broadcast from rank 0 must make them equal
  if (distributed) torch.manualSeed(7 + distributed.group.rank);
  const model = AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 32, intermediate_size: 64, vocab_size: 100, max_position_embeddings: 64, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 });
  const objective = new MaskedLM({ strategy: "token", dynamic: true, probability: 0.15, maskId: 3, vocabSize: 100, specialIds: new Set([0, 1, 2, 3, 4]), seed: 3 }, 0);
  // a parameter no forward uses, registered last: the first bucket to send (reverse order) waits for it
  if (process.env.LMF_UNUSED === "1") Object.assign(model, { unusedHead: new UnusedHead() });
  const losses: number[] = [];
  const trainer = new Trainer({
    model, objective, train: syntheticExamples(), batchSize: Number(process.env.LMF_BATCH), maxSteps: Number(process.env.LMF_STEPS),
    gradientAccumulation: Number(process.env.LMF_ACCUM ?? 1),
    learningRate: 3e-3, schedule: schedules.linearWarmupDecay(5, Number(process.env.LMF_STEPS)), clipNorm: 1, seed: 9,
    out: process.env.LMF_OUT!, saveEvery: 10,
    ...(distributed ? { distributed: { ...distributed, overlap: process.env.LMF_OVERLAP !== "0", bucketMb: Number(process.env.LMF_BUCKET_MB ?? 25) } } : {}),
    // a restarted worker resumes itself (torchrun's contract), from rank 0's last checkpoint
    resume: process.env.LMF_RESUME_IF_ANY === "1" && lastCheckpoint(process.env.LMF_OUT!) !== null,
    onStep: (s) => {
      losses.push(s.loss);
      // the fault: rank 1 dies at a step, on the first attempt only
      if (s.step === Number(process.env.LMF_DIE_AT_STEP) && process.env.RANK === "1" && process.env.LMFORGE_RESTART_COUNT === "0") process.kill(process.pid, "SIGKILL");
    },
  });
  trainer.train();
  const params = Object.fromEntries([...model.namedParameters()].map(([n, p]) => [n, Array.from(p.data() as Float32Array)]));
  distributed?.group.destroy();
  const result = JSON.stringify({ rank: distributed?.group.rank ?? 0, losses, params, overlap: trainer.parallel?.lastOverlap });
  // also in a file: under a launcher the ranks share one stdout, where lines this long can interleave
  writeFileSync(`${process.env.LMF_OUT!}.rank${distributed?.group.rank ?? 0}.json`, result);
  process.stdout.write(result + "\n");
}

/** Rank 1 joins and then never reduces: rank 0's allreduce must fail within the timeout. */
async function stall(): Promise<void> {
  const pg = await initProcessGroup({ ...rendezvousFromEnv()!, timeoutMs: 2000 });
  if (pg.rank === 1) {
    await new Promise((done) => setTimeout(done, 6000));
    process.stdout.write(JSON.stringify({ slept: true }) + "\n");
    return;
  }
  const t0 = Date.now();
  try {
    await pg.allReduce(torch.ones([4]), "sum");
    process.stdout.write(JSON.stringify({ reduced: true }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: (err as Error).message, ms: Date.now() - t0 }) + "\n");
  }
  process.exit(0);
}

const role = process.env.LMF_DIST_ROLE;
if (role === "stall") await stall();
else if (role === "collectives") await collectives();
else if (role === "alone") await alone();
else if (role === "train") await train();
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

  test("a collective whose peer never comes fails within the group's timeout, naming the rank and the operation", async () => {
    const port = await freePort();
    const [r0] = await Promise.all([worker("stall", groupEnv(0, port)), worker("stall", groupEnv(1, port))]);
    const got = JSON.parse(r0.stdout.trim()) as { error?: string; ms?: number };
    assert.match(got.error ?? "", /^rank 0\/2: allreduce failed: .*[Tt]imed out/);
    assert.ok(got.ms! < 5000, `failed after ${got.ms} ms`);
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

  let uninterrupted: Record<string, number[]> | undefined;

  test("data parallel = one process: 2 ranks x batch 4 equal 1 x batch 8 over 50 steps (losses, parameters); rank 0 alone writes", async (t) => {
    const dir = await tempDir();
    const port = await freePort();
    const steps = "50";
    const common = { LMF_STEPS: steps, LMF_BATCH: "4", LMF_OUT: join(dir, "ddp") };
    const [r0, r1, single] = await Promise.all([
      worker("train", { ...groupEnv(0, port), ...common }, 120_000),
      worker("train", { ...groupEnv(1, port), ...common }, 120_000),
      worker("train", { LMF_STEPS: steps, LMF_BATCH: "8", LMF_OUT: join(dir, "single") }, 120_000),
    ]);
    const parse = (r: Ran, who: string) => {
      assert.equal(r.code, 0, `${who} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split("\n").pop()!) as { losses: number[]; params: Record<string, number[]> };
    };
    const [a, b, one] = [parse(r0, "rank 0"), parse(r1, "rank 1"), parse(single, "the single process")];
    uninterrupted = a.params;
    assert.equal(one.losses.length, 50);
    // both ranks report the global batch's loss, and hold the same parameters, bit for bit
    assert.deepEqual(a.losses, b.losses);
    assert.deepEqual(a.params, b.params);
    // the global batch's loss equals the single process's (the data of 97 examples ends an
    // epoch on a tail of 1 example, which rank 1 sits out, at steps 13, 26 and 39)
    let worstLoss = 0;
    for (const [i, l] of one.losses.entries()) worstLoss = Math.max(worstLoss, Math.abs(l - a.losses[i]!) / Math.abs(l));
    assert.ok(worstLoss < 1e-4, `largest relative loss difference ${worstLoss}`);
    let worstParam = 0;
    for (const [name, values] of Object.entries(one.params)) {
      const other = a.params[name]!;
      for (const [i, v] of values.entries()) worstParam = Math.max(worstParam, Math.abs(v - other[i]!));
    }
    assert.ok(worstParam < 1e-4, `largest parameter difference ${worstParam}`);
    t.diagnostic(`largest relative loss difference ${worstLoss.toExponential(2)}, parameter difference ${worstParam.toExponential(2)}`);
    // one log, written by rank 0: 50 steps, not 100; its checkpoints
    const log = readFileSync(join(dir, "ddp", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { event: string });
    assert.equal(log.filter((r) => r.event === "step").length, 50);
    assert.ok(existsSync(join(dir, "ddp", "checkpoint-50", "model.safetensors")));
  });

  test("lmforge launch: rank 1 is SIGKILLed at step 23; the launcher stops rank 0, restarts both from checkpoint-20, and the end equals the uninterrupted run", async () => {
    assert.ok(uninterrupted, "needs the uninterrupted run of the previous test");
    const dir = await tempDir();
    const cli = fileURLToPath(new URL("../../bin/lmforge.js", import.meta.url));
    const launched = await run(
      [cli, "launch", "--nproc-per-node", "2", "--master-port", String(await freePort()), "--max-restarts", "1", "--stop-timeout", "5", "--", process.execPath, self],
      { LMF_DIST_ROLE: "train", LMF_STEPS: "50", LMF_BATCH: "4", LMF_OUT: join(dir, "fault"), LMF_DIE_AT_STEP: "23", LMF_RESUME_IF_ANY: "1" },
      150_000,
    );
    assert.equal(launched.code, 0, launched.stderr);
    assert.match(launched.stderr, /lmforge launch: rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other workers/);
    assert.match(launched.stderr, /lmforge launch: restart 1 of 1/);
    const results = [0, 1].map((rank) => JSON.parse(readFileSync(`${join(dir, "fault")}.rank${rank}.json`, "utf8")) as { rank: number; losses: number[]; params: Record<string, number[]> });
    // only the second attempt finished: both ranks, 30 steps each (21 to 50)
    assert.deepEqual(results.map((r) => r.rank).sort(), [0, 1]);
    for (const r of results) {
      assert.equal(r.losses.length, 30);
      assert.deepEqual(r.params, uninterrupted, `rank ${r.rank}'s final parameters differ from the uninterrupted run's`);
    }
    const log = readFileSync(join(dir, "fault", "metrics.jsonl"), "utf8");
    assert.match(log, /"event":"resume","step":20/);
  });

  test("two launchers on 127.0.0.1 with node ranks 0 and 1 rendezvous through --master-addr", async () => {
    const cli = fileURLToPath(new URL("../../bin/lmforge.js", import.meta.url));
    const port = String(await freePort());
    const node = (rank: number) =>
      run([cli, "launch", "--nnodes", "2", "--node-rank", String(rank), "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", port, "--", process.execPath, self], { LMF_DIST_ROLE: "collectives" }, 60_000);
    const runs = await Promise.all([node(0), node(1)]);
    for (const [r, ran] of runs.entries()) {
      assert.equal(ran.code, 0, `node ${r}: ${ran.stderr}`);
      assert.deepEqual((JSON.parse(ran.stdout.trim()) as { sum: number[] }).sum, [3, 30]);
    }
  });

  test("the launcher's worker environment and the --resume of a restarted lmforge command", async () => {
    const o = { nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: "10.1.2.3", masterPort: 4242, maxRestarts: 0, stopTimeout: 1 };
    const env = workerEnv(o, 1, 3, { PATH: "/bin" }, 8);
    assert.deepEqual(env, {
      PATH: "/bin", RANK: "3", LOCAL_RANK: "1", WORLD_SIZE: "4", LOCAL_WORLD_SIZE: "2", GROUP_RANK: "1", MASTER_ADDR: "10.1.2.3", MASTER_PORT: "4242",
      OMP_NUM_THREADS: "4", TORCHELASTIC_RESTART_COUNT: "3", LMFORGE_RESTART_COUNT: "3",
    });
    assert.equal(workerEnv(o, 0, 0, { OMP_NUM_THREADS: "1" }, 8).OMP_NUM_THREADS, "1"); // the user's setting wins
    const dir = await tempDir();
    const cmd = ["pretrain", "--model", "bert-tiny", "--out", dir];
    assert.deepEqual(workerCommand(cmd, 1, "cli.js").args, ["cli.js", ...cmd]); // no checkpoint yet: starts afresh
    mkdirSync(join(dir, "checkpoint-20"));
    assert.deepEqual(workerCommand(cmd, 0, "cli.js").args, ["cli.js", ...cmd]); // the first attempt as given
    assert.deepEqual(workerCommand(cmd, 1, "cli.js").args, ["cli.js", ...cmd, "--resume"]);
    assert.deepEqual(workerCommand(["python3", "train.py"], 1, "cli.js"), { file: "python3", args: ["train.py"] });
  });

  test("gradient accumulation (no_sync but the last micro-batch), small buckets sent during the backward, without overlap, a parameter no rank uses: = one process", async (t) => {
    const dir = await tempDir();
    const [port1, port2] = [await freePort(), await freePort()];
    const common = { LMF_STEPS: "20", LMF_BATCH: "2", LMF_ACCUM: "2", LMF_BUCKET_MB: "0.01", LMF_UNUSED: "1" };
    const runs = await Promise.all([
      worker("train", { ...groupEnv(0, port1), ...common, LMF_OUT: join(dir, "overlap") }, 120_000),
      worker("train", { ...groupEnv(1, port1), ...common, LMF_OUT: join(dir, "overlap") }, 120_000),
      worker("train", { ...groupEnv(0, port2), ...common, LMF_OUT: join(dir, "after"), LMF_OVERLAP: "0" }, 120_000),
      worker("train", { ...groupEnv(1, port2), ...common, LMF_OUT: join(dir, "after"), LMF_OVERLAP: "0" }, 120_000),
      worker("train", { LMF_STEPS: "20", LMF_BATCH: "4", LMF_ACCUM: "2", LMF_UNUSED: "1", LMF_OUT: join(dir, "single") }, 120_000),
    ]);
    const results = runs.map((r, i) => {
      assert.equal(r.code, 0, `run ${i} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split("\n").pop()!) as { losses: number[]; params: Record<string, number[]>; overlap?: { during: number; of: number } };
    });
    const one = results[4]!;
    let worst = 0;
    for (const r of results.slice(0, 4)) {
      for (const [name, values] of Object.entries(one.params)) for (const [i, v] of values.entries()) worst = Math.max(worst, Math.abs(v - r.params[name]![i]!));
      for (const [i, l] of one.losses.entries()) assert.ok(Math.abs(l - r.losses[i]!) < 1e-5 * Math.abs(l), `step ${i + 1}: loss ${r.losses[i]} vs ${l}`);
    }
    assert.ok(worst < 1e-4, `largest parameter difference ${worst}`);
    // the parameter no rank used keeps no gradient, so AdamW leaves it alone (its weight decay would move it)
    for (const r of results) assert.deepEqual(r.params["unusedHead.w"], new Array(64).fill(1));
    // 10 KB buckets of a 30k-parameter model: most are sent before the backward ends
    const { during, of } = results[0]!.overlap!;
    assert.ok(of >= 8 && during >= of / 2, `${during} of ${of} buckets sent during the backward`);
    assert.deepEqual(results[2]!.overlap, { during: 0, of: 0 });
    t.diagnostic(`largest parameter difference ${worst.toExponential(2)}; ${during} of ${of} buckets sent during the last backward`);
  });

  test("sharding and buckets", () => {
    assert.deepEqual(shardOf([10, 11, 12, 13, 14, 15, 16, 17], 1, 2), [14, 15, 16, 17]);
    assert.deepEqual(shardOf([10, 11, 12], 0, 2), [10, 11]);
    assert.deepEqual(shardOf([10, 11, 12], 1, 2), [12]);
    assert.deepEqual(shardOf([10], 1, 2), []);
    // 3 float32 parameters of 100, 200, 300 elements (400, 800, 1200 bytes), a cap of 1500
    // bytes: reverse order, [2] alone (1200 + 800 > 1500), then [1, 0] (800 + 400)
    const p = (numel: number, dtype = "float32") => ({ numel, dtype });
    assert.deepEqual(bucketsOf([p(100), p(200), p(300)], 1500), [[2], [1, 0]]);
    // a parameter larger than the cap is a bucket of its own; dtypes never mix
    assert.deepEqual(bucketsOf([p(100), p(1000), p(10, "bfloat16")], 1500), [[2], [1], [0]]);
  });
}

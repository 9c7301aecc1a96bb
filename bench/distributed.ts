// Data-parallel figures, lmforge beside PyTorch (Debian's python3-torch) on this machine:
//   1. tokens/s of bert-mini masked-LM pretraining (vocabulary 8192, sequences of 128, a
//      global batch of 16) and of GPT-2 small causal-LM pretraining (124M parameters, the
//      real vocabulary of 50,257, global batch 4 x 256): 1 process x 2 threads against 2
//      processes x 1 thread (gloo and DistributedDataParallel on the PyTorch side, its workers
//      started as torchrun would);
//   2. allreduce bandwidth (float32 sum, 2 ranks on loopback) for 1, 10 and 100 MB buffers,
//      against torch.distributed's gloo allreduce;
//   3. of the 2-process run, the share of the gradient communication hidden behind the
//      backward (comm_hidden: the time an allreduce was in flight before the backward ended
//      over the time any was in flight; the median over the steps), and the gradients' size.
// Run: node dist/bench/distributed.js [--steps N] [--models bert-mini,gpt2]   (prints a Markdown table)
// The workers are this file again, started with LMF_BENCH_ROLE.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import * as torch from "../src/torch/index.js";
import { AutoModelForCausalLM, AutoModelForMaskedLM, presetConfig } from "../src/models/index.js";
import { CausalLM, MaskedLM } from "../src/objectives/index.js";
import type { Example } from "../src/data/index.js";
import { Trainer } from "../src/train/index.js";
import { joinFromEnv } from "../src/train/data-parallel.js";
import { initProcessGroup, rendezvousFromEnv } from "../src/torch/distributed.js";
import { schedules } from "../src/optim/index.js";
import { PEERS_DIR, findPython, median } from "./peer.js";

const self = fileURLToPath(import.meta.url);
const SIZES_MB = [1, 10, 100];
/** The pretraining cases: a model, its vocabulary, sequence length and global batch. */
const CASES = {
  "bert-mini": { vocab: 8192, seq: 128, batch: 16, label: "bert-mini MLM, global batch 16 x 128" },
  gpt2: { vocab: 50257, seq: 256, batch: 4, label: "GPT-2 small (124M) causal LM, global batch 4 x 256" },
} as const;
type CaseName = keyof typeof CASES;
const model = (process.env.LMF_MODEL ?? "bert-mini") as CaseName;
const { vocab: VOCAB, seq: SEQ, batch: GLOBAL_BATCH } = CASES[model] ?? CASES["bert-mini"];

/** Sequences of SEQ tokens, the same on every rank: [CLS]=1 words... [SEP]=2. */
function examples(n: number): Example[] {
  let s = 1;
  const next = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % (VOCAB - 5);
  return Array.from({ length: n }, () => {
    const ids = Int32Array.from({ length: SEQ }, (_, i) => (i === 0 ? 1 : i === SEQ - 1 ? 2 : 5 + next()));
    const special = Uint8Array.from(ids, (_, i) => (i === 0 || i === SEQ - 1 ? 1 : 0));
    return { ids, special, wordStart: new Uint8Array(SEQ).fill(1), typeIds: new Int32Array(SEQ) };
  });
}

/** A worker: bert-mini MLM or GPT-2 causal-LM steps; rank 0 prints the median step time and the global tokens/s. */
async function trainWorker(): Promise<void> {
  const distributed = await joinFromEnv();
  const world = distributed?.group.worldSize ?? 1;
  const steps = Number(process.env.LMF_STEPS);
  torch.manualSeed(0);
  const gpt = model === "gpt2";
  const net = gpt ? AutoModelForCausalLM.fromConfig({ ...presetConfig("gpt2"), vocab_size: VOCAB }) : AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-mini"), vocab_size: VOCAB, max_position_embeddings: 512 });
  const objective = gpt ? new CausalLM(0) : new MaskedLM({ strategy: "token", dynamic: true, probability: 0.15, maskId: 3, vocabSize: VOCAB, specialIds: new Set([0, 1, 2, 3, 4]), seed: 1 }, 0);
  const times: number[] = [];
  const hidden: number[] = [];
  let t = process.hrtime.bigint();
  const trainer = new Trainer({
    model: net, objective, train: examples(GLOBAL_BATCH * (steps + 2)), batchSize: GLOBAL_BATCH / world, maxSteps: steps + 2,
    learningRate: 1e-4, clipNorm: 1, schedule: schedules.constant(), seed: 1, out: mkdtempSync(join(tmpdir(), "lmf-bench-")), precision: "fp32",
    ...(distributed ? { distributed: { ...distributed, bucketMb: Number(process.env.LMF_BUCKET_MB ?? 25) } } : {}),
    onStep: (s) => {
      const now = process.hrtime.bigint();
      if (s.step > 2) times.push(Number(now - t) / 1e9); // 2 warmup steps
      if (s.step > 2 && s.commHidden !== undefined) hidden.push(s.commHidden);
      t = now;
    },
  });
  trainer.train();
  const step = median(times);
  const gradientMb = net.parameters().reduce((n, p) => n + p.numel * 4, 0) / 1e6;
  const commHidden = hidden.length ? median(hidden) : null;
  if ((distributed?.group.rank ?? 0) === 0) process.stdout.write(JSON.stringify({ step, tokensPerSec: (GLOBAL_BATCH * SEQ) / step, threads: torch.getNumThreads(), commHidden, gradientMb }) + "\n");
  distributed?.group.destroy();
}

/** A worker: allreduce of each size; rank 0 prints the median seconds per allreduce. */
async function allreduceWorker(): Promise<void> {
  const env = rendezvousFromEnv()!;
  const pg = await initProcessGroup({ rank: env.rank, worldSize: env.worldSize, masterAddr: env.masterAddr, masterPort: env.masterPort });
  const out: Record<string, number> = {};
  for (const mb of SIZES_MB) {
    const t = torch.zeros([(mb * 1e6) / 4]);
    const reps = mb >= 100 ? 5 : mb >= 10 ? 10 : 30;
    const times: number[] = [];
    for (let i = 0; i < reps + 2; i++) {
      pg.barrier().wait();
      const t0 = process.hrtime.bigint();
      pg.allReduce(t, "sum").wait();
      if (i >= 2) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    out[mb] = median(times);
    t.dispose();
  }
  if (env.rank === 0) process.stdout.write(JSON.stringify(out) + "\n");
  pg.destroy();
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** Runs a command; its last stdout line as JSON. */
function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => (code === 0 ? done(out) : fail(new Error(`${file} ${args.join(" ")} failed (${code}): ${err.slice(-2000)}`))));
  });
}
const lastJson = <T>(out: string): T => JSON.parse(out.trim().split("\n").filter((l) => l.startsWith("{")).pop()!) as T;

/** lmforge: 1 process (threads) or `world` processes of 1 thread each. */
async function lmforge(role: string, world: number, threads: number, extra: Record<string, string>): Promise<string> {
  const base = { ...process.env, LMF_BENCH_ROLE: role, OMP_NUM_THREADS: String(threads), ...extra };
  if (world === 1) return run(process.execPath, [self], base);
  const port = String(await freePort());
  const outs = await Promise.all(
    Array.from({ length: world }, (_, r) =>
      run(process.execPath, [self], { ...base, RANK: String(r), WORLD_SIZE: String(world), LOCAL_RANK: String(r), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: "127.0.0.1", MASTER_PORT: port }),
    ),
  );
  return outs.join("\n");
}

/**
 * PyTorch: python3 alone, or `world` workers with torchrun's variables (gloo, env://). Not
 * torchrun itself: Debian's torch 1.13 torchrun fails on Python 3.12 before starting a worker
 * (its --redirects default parses to None: "'NoneType' object has no attribute 'get'").
 */
async function pytorch(config: object, world: number, threads: number): Promise<string> {
  const python = findPython();
  const script = join(PEERS_DIR, "distributed_torch.py");
  const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
  if (world === 1) return run(python, [script, JSON.stringify(config)], env);
  const port = String(await freePort());
  const outs = await Promise.all(
    Array.from({ length: world }, (_, r) =>
      run(python, [script, JSON.stringify(config)], { ...env, RANK: String(r), LOCAL_RANK: String(r), WORLD_SIZE: String(world), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: "127.0.0.1", MASTER_PORT: port }),
    ),
  );
  return outs.join("\n");
}

async function main(): Promise<void> {
  const stepsAt = process.argv.indexOf("--steps");
  const steps = stepsAt > 0 ? Number(process.argv[stepsAt + 1]) : 8;
  const modelsAt = process.argv.indexOf("--models");
  const names = (modelsAt > 0 ? process.argv[modelsAt + 1]! : "bert-mini,gpt2").split(",") as CaseName[];
  for (const n of names) if (!(n in CASES)) throw new Error(`--models: unknown case "${n}"; cases: ${Object.keys(CASES).join(", ")}`);
  const rows: string[] = [];
  const notes: string[] = [];
  for (const name of names) await scaling(name, steps, rows, notes);
  rows.push("", "| allreduce (float32 sum, 2 ranks, loopback) | lmforge GB/s | torch.distributed GB/s |", "|---|---:|---:|");
  const ours = lastJson<Record<string, number>>(await lmforge("allreduce", 2, 1, {}));
  const theirs = lastJson<Record<string, number>>(await pytorch({ mode: "allreduce", sizes: SIZES_MB }, 2, 1));
  for (const mb of SIZES_MB) rows.push(`| ${mb} MB | ${(mb / 1e3 / ours[mb]!).toFixed(2)} | ${(mb / 1e3 / theirs[mb]!).toFixed(2)} |`);
  console.log([...rows, "", ...notes].join("\n"));
}

/** One model's rows: 1 process x 2 threads and 2 processes x 1 thread, both sides; the hidden share of its communication. */
async function scaling(name: CaseName, steps: number, rows: string[], notes: string[]): Promise<void> {
  const c = CASES[name];
  const env = { LMF_STEPS: String(steps), LMF_MODEL: name };
  if (rows.length) rows.push("");
  rows.push(`| ${c.label} | lmforge tokens/s | PyTorch tokens/s |`, "|---|---:|---:|");
  for (const [world, threads] of [[1, 2], [2, 1]] as const) {
    const ours = lastJson<{ tokensPerSec: number; commHidden: number | null; gradientMb: number }>(await lmforge("train", world, threads, env));
    if (world > 1) {
      // the hidden share depends on the buckets: DDP's 25 MB default, and smaller ones sent earlier in the backward
      for (const bucketMb of [25, 4]) {
        const run = bucketMb === 25 ? ours : lastJson<typeof ours>(await lmforge("train", world, threads, { ...env, LMF_BUCKET_MB: String(bucketMb) }));
        notes.push(`lmforge ${name}, ${world} processes x ${threads} thread, ${bucketMb} MB buckets: ${(run.commHidden! * 100).toFixed(1)}% of the gradient communication hidden behind the backward (comm_hidden, median of ${steps} steps; ${run.gradientMb.toFixed(1)} MB of float32 gradients a step), ${Math.round(run.tokensPerSec)} tokens/s`);
      }
    }
    const theirs = lastJson<{ tokensPerSec: number }>(await pytorch({ mode: "train", model: name, steps, vocab: c.vocab, seq: c.seq, batch: c.batch / world, threads }, world, threads));
    rows.push(`| ${world} process${world > 1 ? "es" : ""} x ${threads} thread${threads > 1 ? "s" : ""} | ${Math.round(ours.tokensPerSec)} | ${Math.round(theirs.tokensPerSec)} |`);
    console.error(rows[rows.length - 1]);
  }
}

const role = process.env.LMF_BENCH_ROLE;
if (role === "train") await trainWorker();
else if (role === "allreduce") await allreduceWorker();
else await main();

// Gradient checkpointing benchmark: peak RSS and step time of one BERT masked-LM training
// step (forward and backward, no optimizer: the activations are what checkpointing changes),
// with and without checkpointing, lmforge beside PyTorch's torch.utils.checkpoint
// (bench/peers/checkpointing_torch.py). Each case runs in a fresh process, since peak RSS is a
// process's high-water mark.
//
//   node dist/bench/checkpointing.js                  # bert-base, batch 8 x 128 tokens, 1 thread
//   node dist/bench/checkpointing.js '{"layers":4,"hidden":512,"heads":8,"intermediate":2048}'
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as torch from "../src/torch/index.js";
import { setGradientCheckpointing } from "../src/nn/index.js";
import { AutoModelForMaskedLM } from "../src/models/index.js";
import { restartPlan } from "../src/torch/malloc.js";
import { median, runPeer } from "./peer.js";

export interface CheckpointingBenchOptions {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  batch: number;
  seq: number;
  warmup: number;
  steps: number;
  threads: number;
}

/** bert-base (110M parameters), a batch of 8 sequences of 128 tokens, one thread. */
export const BERT_BASE: CheckpointingBenchOptions = { vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072, batch: 8, seq: 128, warmup: 1, steps: 3, threads: 1 };

export interface CheckpointingCase {
  /** Median step time (forward and backward). */
  stepMs: number;
  /** Resident memory once the model and batch are built, before the first step. */
  setupRssMb: number;
  /** The process's peak resident memory. */
  peakRssMb: number;
}

export interface CheckpointingRow extends CheckpointingCase {
  engine: "lmforge" | "pytorch";
  checkpointing: boolean;
}

function rssMb(): number {
  const pages = Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]);
  return (pages * 4096) / 2 ** 20;
}

/** One case, in this process: build the model and a batch, time the steps. */
export function lmforgeCase(o: CheckpointingBenchOptions, checkpointing: boolean): CheckpointingCase {
  torch.setNumThreads(o.threads);
  torch.manualSeed(0);
  const model = AutoModelForMaskedLM.fromConfig({
    model_type: "bert",
    vocab_size: o.vocab,
    hidden_size: o.hidden,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    intermediate_size: o.intermediate,
  }).train(); // dropout 0.1, as the peer's
  if (checkpointing) setGradientCheckpointing(model);
  const ids = torch.keep(torch.randint(5, o.vocab, [o.batch, o.seq]));
  const mask = torch.keep(torch.onesLike(ids));
  const labels = torch.keep(torch.where(torch.rand([o.batch, o.seq]).lt(0.15), ids, torch.fullLike(ids, -100)));
  const setupRssMb = rssMb();
  const step = (): void => {
    // as the Trainer does: only the loss outlives the forward's scope, the logits are freed before the backward
    torch.scope(() => torch.scope(() => model.forward({ inputIds: ids, attentionMask: mask, labels }).loss!).backward());
    for (const p of model.parameters()) p.zeroGrad();
  };
  for (let i = 0; i < o.warmup; i++) step();
  const times: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const t = process.hrtime.bigint();
    step();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { stepMs: median(times), setupRssMb, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

/** The four cases, each in a fresh process: lmforge and PyTorch, without and with checkpointing, each under tcmalloc where installed. */
export function runCheckpointingBench(o: CheckpointingBenchOptions = BERT_BASE): CheckpointingRow[] {
  const rows: CheckpointingRow[] = [];
  for (const checkpointing of [false, true]) {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(o.threads), OMP_WAIT_POLICY: "PASSIVE" };
    // lmforge's case under the malloc the `lmforge` command restarts itself with (the peer's: bench/peer.ts)
    const plan = restartPlan(process.env);
    if ("library" in plan) env.LD_PRELOAD = plan.library;
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--case", JSON.stringify({ ...o, checkpointing })], { encoding: "utf8", env, maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench checkpointing: the lmforge case failed (${r.status}):\n${r.stderr}`);
    const lines = r.stdout.trim().split("\n");
    rows.push({ engine: "lmforge", checkpointing, ...(JSON.parse(lines[lines.length - 1]!) as CheckpointingCase) });
    rows.push({ engine: "pytorch", checkpointing, ...runPeer<CheckpointingCase>("checkpointing_torch.py", { ...o, checkpointing }, undefined) });
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === "--case") {
    const c = JSON.parse(process.argv[3]!) as CheckpointingBenchOptions & { checkpointing: boolean };
    console.log(JSON.stringify(lmforgeCase(c, c.checkpointing)));
  } else {
    const o = { ...BERT_BASE, ...(process.argv[2] ? (JSON.parse(process.argv[2]) as Partial<CheckpointingBenchOptions>) : {}) };
    console.log(`bert masked LM, forward + backward: ${o.layers} layers, hidden ${o.hidden}, batch ${o.batch} x ${o.seq} tokens, ${o.threads} thread(s), median of ${o.steps} steps after ${o.warmup}`);
    console.log("engine   checkpointing  step ms  setup RSS MB  peak RSS MB  peak - setup");
    for (const r of runCheckpointingBench(o)) {
      console.log(`${r.engine.padEnd(8)} ${String(r.checkpointing).padEnd(14)} ${r.stepMs.toFixed(0).padStart(7)}  ${r.setupRssMb.toFixed(0).padStart(12)}  ${r.peakRssMb.toFixed(0).padStart(11)}  ${(r.peakRssMb - r.setupRssMb).toFixed(0).padStart(11)}`);
    }
  }
}

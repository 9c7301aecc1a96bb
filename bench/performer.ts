// Performer (FAVOR+) against softmax attention: forward + backward time and peak memory over
// sequence lengths 256 to 8192 (batch 1, 4 heads, head size 64, float32), and the length
// from which the Performer is faster. Each (method, length) runs in a child process of its own
// so that the peak resident memory it reports belongs to that case alone.
//
//   node dist/bench/performer.js [--lengths 256,512,1024] [--steps 3] [--causal] [--threads 1] [--methods performer,softmax-explicit]
//
// On a machine shared with other work, --threads 1 gives steadier numbers: libtorch's threads
// otherwise spin waiting for each other and small ops take ten times longer.
//
// Methods:
//   softmax           attentionMerged, as the models call it (lmforge's fused kernel on the CPU in float32)
//   softmax-sdpa      attention(), libtorch's scaled_dot_product_attention (left out where this build lacks it:
//                     attention() then takes the explicit path)
//   softmax-explicit  attention() with the T×T scores materialised (baddbmm, softmax, bmm)
//   performer         PerformerAttention, default m = round(64 ln 64) = 266 features
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { attention, attentionMerged } from "../src/nn/attention.js";
import { PerformerAttention } from "../src/nn/performer.js";
import { median } from "./peer.js";

export const METHODS = ["softmax", "softmax-sdpa", "softmax-explicit", "performer"] as const;
export type Method = (typeof METHODS)[number];

export interface PerformerBenchOptions {
  lengths?: number[];
  methods?: Method[];
  causal?: boolean;
  /** Timed steps per case (after one warm-up); the median is reported. */
  steps?: number;
  /** libtorch's intra-op threads in each case (default: libtorch's, every core). */
  threads?: number;
  batch?: number;
  heads?: number;
  headDim?: number;
}

export interface PerformerBenchRow {
  method: Method;
  length: number;
  /** Median seconds of one forward + backward. */
  seconds: number;
  /** Peak resident memory of the case above the process's resident memory once its inputs exist, bytes. */
  peakBytes: number;
}

interface CaseConfig {
  method: Method;
  length: number;
  causal: boolean;
  steps: number;
  threads: number | null;
  batch: number;
  heads: number;
  headDim: number;
}

/** One case, in this process: the numbers for one row. */
function runCase(c: CaseConfig): PerformerBenchRow {
  if (c.threads !== null) torch.setNumThreads(c.threads);
  torch.manualSeed(0);
  const shape = [c.batch, c.heads, c.length, c.headDim];
  const [q, k, v] = [0, 1, 2].map(() => torch.keep(torch.randn(shape).requiresGrad_(true))) as [Tensor, Tensor, Tensor];
  const gradOut = torch.keep(torch.randn(shape));
  const performer = c.method === "performer" ? new PerformerAttention({ headDim: c.headDim, causal: c.causal, seed: 1 }) : null;
  const forward = (): Tensor => {
    switch (c.method) {
      case "performer":
        return performer!.forward(q, k, v, null);
      case "softmax":
        return attentionMerged(q, k, v, { causal: c.causal }).context; // (B, T, H·D)
      case "softmax-sdpa":
        return attention(q, k, v, { causal: c.causal }).context;
      case "softmax-explicit":
        // an explicit scale is what keeps attention() off the fused kernel
        return attention(q, k, v, { causal: c.causal, scale: 1 / Math.sqrt(c.headDim) }).context;
    }
  };
  const step = (): void => {
    torch.scope(() => {
      const out = forward();
      out.backward(out.shape.length === 3 ? gradOut.permute([0, 2, 1, 3]).reshape(out.shape) : gradOut);
    });
    for (const t of [q, k, v]) t.zeroGrad();
  };
  const baseline = process.memoryUsage().rss;
  step(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t = process.hrtime.bigint();
    step();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  const peakBytes = process.resourceUsage().maxRSS * 1024 - baseline;
  performer?.dispose();
  torch.dispose([q, k, v, gradOut]);
  return { method: c.method, length: c.length, seconds: median(times), peakBytes: Math.max(0, peakBytes) };
}

/** Runs every (method, length) case, each in a fresh child process. */
export function runPerformerBench(options: PerformerBenchOptions = {}): PerformerBenchRow[] {
  const lengths = options.lengths ?? [256, 512, 1024, 2048, 4096, 8192];
  const methods = options.methods ?? METHODS.filter((m) => m !== "softmax-sdpa" || torch.hasFusedAttention());
  const rows: PerformerBenchRow[] = [];
  for (const length of lengths) {
    for (const method of methods) {
      const config: CaseConfig = {
        method,
        length,
        causal: options.causal ?? false,
        steps: options.steps ?? 3,
        threads: options.threads ?? null,
        batch: options.batch ?? 1,
        heads: options.heads ?? 4,
        headDim: options.headDim ?? 64,
      };
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--case", JSON.stringify(config)], { encoding: "utf8" });
      const row = JSON.parse(out.trim().split("\n").pop()!) as PerformerBenchRow;
      rows.push(row);
      console.error(`  ${method.padEnd(17)} T=${String(length).padStart(5)}  ${(row.seconds * 1e3).toFixed(1).padStart(9)} ms  ${(row.peakBytes / 2 ** 20).toFixed(0).padStart(6)} MiB`);
    }
  }
  return rows;
}

/** The shortest length from which the Performer is faster than `against` at every longer length measured, or null. */
export function crossover(rows: PerformerBenchRow[], against: Method): number | null {
  const lengths = [...new Set(rows.map((r) => r.length))].sort((a, b) => a - b);
  const time = (m: Method, n: number): number | undefined => rows.find((r) => r.method === m && r.length === n)?.seconds;
  let from: number | null = null;
  for (const n of lengths) {
    const [p, s] = [time("performer", n), time(against, n)];
    if (p === undefined || s === undefined) continue;
    if (p < s) from ??= n;
    else from = null;
  }
  return from;
}

/** A Markdown table of the rows, one line per length, and the crossover per softmax method. */
export function formatPerformerBench(rows: PerformerBenchRow[], options: PerformerBenchOptions = {}): string {
  const methods = METHODS.filter((m) => rows.some((r) => r.method === m));
  const lengths = [...new Set(rows.map((r) => r.length))].sort((a, b) => a - b);
  const cell = (m: Method, n: number): string => {
    const r = rows.find((x) => x.method === m && x.length === n);
    return r ? `${(r.seconds * 1e3).toFixed(1)} ms / ${(r.peakBytes / 2 ** 20).toFixed(0)} MiB` : "-";
  };
  const lines = [
    `forward + backward, batch ${options.batch ?? 1}, heads ${options.heads ?? 4}, head dim ${options.headDim ?? 64}, float32, ${options.causal ? "causal" : "bidirectional"}, ` +
      `${options.threads ?? torch.getNumThreads()} threads (median time / peak resident memory above the inputs)`,
    "",
    `| T | ${methods.join(" | ")} |`,
    `|---|${methods.map(() => "---").join("|")}|`,
    ...lengths.map((n) => `| ${n} | ${methods.map((m) => cell(m, n)).join(" | ")} |`),
    "",
  ];
  for (const m of methods.filter((x) => x !== "performer")) {
    const from = crossover(rows, m);
    lines.push(`performer faster than ${m}: ${from === null ? "at no length measured" : `from T = ${from}`}`);
  }
  return lines.join("\n");
}

function parseArgs(argv: string[]): PerformerBenchOptions {
  const options: PerformerBenchOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench/performer: ${arg} needs a value`);
      return v;
    };
    if (arg === "--lengths") options.lengths = value().split(",").map(Number);
    else if (arg === "--steps") options.steps = Number(value());
    else if (arg === "--causal") options.causal = true;
    else if (arg === "--threads") options.threads = Number(value());
    else if (arg === "--methods") {
      const ms = value().split(",");
      for (const m of ms) if (!(METHODS as readonly string[]).includes(m)) throw new Error(`bench/performer: unknown method "${m}"; known: ${METHODS.join(", ")}`);
      options.methods = ms as Method[];
    } else throw new Error(`bench/performer: unknown argument "${arg}"; usage: [--lengths 256,512] [--steps 3] [--causal] [--threads N] [--methods ${METHODS.join(",")}]`);
  }
  return options;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === "--case") {
    console.log(JSON.stringify(runCase(JSON.parse(process.argv[3]!) as CaseConfig)));
  } else {
    const options = parseArgs(process.argv.slice(2));
    const rows = runPerformerBench(options);
    console.log(formatPerformerBench(rows, options));
  }
}

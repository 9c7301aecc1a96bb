// `lmforge info` and `lmforge bench`.
import { UsageError } from "./errors.js";
import type { OptionSpec } from "../io/options.js";

export async function infoCommand(v: Record<string, unknown>): Promise<void> {
  const { runtimeInfo } = await import("../torch/index.js");
  const info = runtimeInfo();
  if (v.json) {
    console.log(JSON.stringify(info));
    return;
  }
  console.log(`libtorch ${info.torchVersion}, ${info.threads} intra-op threads, oneDNN ${info.mkldnn ? "yes" : "no"}`);
  console.log(`OpenBLAS core type: ${info.openblasCoreType ?? "auto"} (${info.openblasReason})`);
  console.log(`CUDA: ${info.cuda ? `${info.cudaDevices} device(s)` : "not available"}`);
  const limit = info.cpuCacheLimit ? `keeps up to ${Math.round(info.cpuCacheLimit / 2 ** 20)} MiB` : "off";
  console.log(`CPU cache: ${limit} (LMFORGE_CPU_CACHE_MB); own attention kernels: ${info.attentionKernels[0] ? "yes" : "no (composed from ATen ops)"}`);
}

export const BENCH_OPTIONS: readonly OptionSpec[] = [
  { flag: "repeats", key: "repeats", type: "int", min: 1, default: 3, help: "timed repeats per case (the median is reported)" },
  { flag: "quick", key: "quick", type: "boolean", help: "smaller cases, for a smoke run" },
  { flag: "filter", key: "filter", type: "string", arg: "REGEX", help: "only the model and generate cases whose name matches" },
  { flag: "json", key: "json", type: "boolean", help: "one JSON object" },
];

const BENCHES = ["engine", "optim", "tokenizers", "models", "generate"];

export async function benchCommand(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  const which = positionals[0] ?? "all";
  if (positionals.length > 1) throw new UsageError(`bench: one benchmark at a time, got ${positionals.join(" ")}`);
  if (which === "serve") return serveBench(v);
  if (which !== "all" && !BENCHES.includes(which)) throw new UsageError(`bench: unknown benchmark "${which}"; available: ${BENCHES.join(", ")}, serve, all`);
  const repeats = (v.repeats as number | undefined) ?? 3;
  let filter: RegExp | undefined;
  if (typeof v.filter === "string") {
    try {
      filter = new RegExp(v.filter);
    } catch (e) {
      throw new UsageError(`--filter: not a regular expression (${(e as Error).message})`);
    }
  }
  const { runEngineBench } = await import("../../bench/engine.js");
  const { runOptimBench } = await import("../../bench/optim.js");
  const { runTokenizerBench } = await import("../../bench/tokenizers.js");
  const { runModelBench } = await import("../../bench/models.js");
  const { runGenerateBench } = await import("../../bench/generate.js");
  const { runtimeInfo } = await import("../torch/index.js");
  const notes: string[] = [];
  const result = { torch: "", rows: [] as Awaited<ReturnType<typeof runEngineBench>>["rows"] };
  for (const b of which === "all" ? BENCHES : [which]) {
    if (b === "models") {
      const r = runModelBench({ quick: Boolean(v.quick), repeats, ...(filter ? { filter } : {}) });
      result.torch = r.torch;
      result.rows.push(...r.rows);
    } else if (b === "generate") {
      const r = runGenerateBench({ quick: Boolean(v.quick), repeats, ...(filter ? { filter } : {}) });
      result.torch = r.torch;
      result.rows.push(...r.rows);
      notes.push(...r.notes);
    } else if (b === "tokenizers") {
      const r = runTokenizerBench(repeats);
      result.rows.push(...r.rows);
      notes.push(...r.notes);
    } else {
      const r = b === "engine" ? runEngineBench({ repeats }) : runOptimBench(repeats);
      result.torch = r.torch;
      result.rows.push(...r.rows);
    }
  }
  if (v.json) {
    console.log(JSON.stringify({ ...result, notes, runtime: runtimeInfo() }));
    return;
  }
  const info = runtimeInfo();
  console.log(`benchmarks: lmforge (libtorch ${info.torchVersion}) vs PyTorch ${result.torch}, ${info.threads} threads, median of ${repeats}`);
  console.log(`${"case".padEnd(74)} ${"lmforge".padStart(10)} ${"peer".padStart(10)}  speedup`);
  for (const r of result.rows) console.log(`${r.name.padEnd(74)} ${r.lmforge.toFixed(3).padStart(10)} ${r.pytorch.toFixed(3).padStart(10)}  ${r.speedup.toFixed(2)}x  (${r.unit})`);
  for (const n of notes) console.log(n);
}

/**
 * `lmforge bench serve`: HTTP serving under load (autocannon at 1, 4 and 16 clients) against a
 * minimal PyTorch server of the same model; a table of its own (requests/s and latencies), so
 * not part of `all`. --quick: 3 s per row instead of 10.
 */
async function serveBench(v: Record<string, unknown>): Promise<void> {
  const { runServeBench, formatServeBench } = await import("../../bench/serve.js");
  const { rows, notes } = await runServeBench({ duration: v.quick ? 3 : 10, hidden: 128, layers: 2, steps: 40, waitMs: 5, threads: 1 });
  if (v.json) console.log(JSON.stringify({ rows, notes }));
  else console.log(`${formatServeBench(rows)}\n${notes.join("\n")}`);
}

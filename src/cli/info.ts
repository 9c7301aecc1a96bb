// `lmforge info` and `lmforge bench`.
import { UsageError } from "./errors.js";
import type { OptionSpec } from "../io/options.js";

export async function infoCommand(v: Record<string, unknown>): Promise<void> {
  const { runtimeInfo } = await import("../torch/index.js");
  const info = runtimeInfo();
  if (v.json) {
    // the process id too: the command restarts itself in place (src/torch/malloc.ts), and a
    // parent that signals the process it started must reach the one that runs
    console.log(JSON.stringify({ ...info, pid: process.pid }));
    return;
  }
  console.log(`libtorch ${info.torchVersion}, ${info.threads} intra-op threads, oneDNN ${info.mkldnn ? "yes" : "no"}`);
  console.log(`OpenBLAS core type: ${info.openblasCoreType ?? "auto"} (${info.openblasReason})`);
  console.log(`CUDA: ${info.cuda ? `${info.cudaDevices} device(s)` : "not available"}`);
  const limit = info.cpuCacheLimit ? `keeps up to ${Math.round(info.cpuCacheLimit / 2 ** 20)} MiB` : "off";
  console.log(`CPU cache: ${limit} (LMFORGE_CPU_CACHE_MB); own attention kernels: ${info.attentionKernels[0] ? "yes" : "no (composed from ATen ops)"}`);
  console.log(`malloc: ${info.malloc} (LMFORGE_MALLOC=tcmalloc|jemalloc|system; the command restarts itself under tcmalloc where installed)`);
}

export const BENCH_OPTIONS: readonly OptionSpec[] = [
  { flag: "repeats", key: "repeats", type: "int", min: 1, help: "timed repeats per case, the first side alternating (the median is reported; default 3, --quick 1)" },
  { flag: "quick", key: "quick", type: "boolean", help: "tiny cases, every bench but serve in about 2 minutes on 2 cores (CI)" },
  { flag: "filter", key: "filter", type: "string", arg: "REGEX", help: "only the model and generate cases whose name matches" },
  { flag: "json", key: "json", type: "boolean", help: "one JSON object" },
];

export async function benchCommand(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  const which = positionals.length ? positionals : ["all"];
  if (which.includes("serve") || which.includes("all")) {
    if (which.length > 1) throw new UsageError(`${which.includes("serve") ? "serve" : "all"} runs alone, got ${which.join(" ")}`);
    if (which[0] === "serve") return serveBench(v);
  }
  const { SUITE, runBenchSuite } = await import("../../bench/suite.js");
  const known: readonly string[] = SUITE;
  for (const b of which) if (b !== "all" && !known.includes(b)) throw new UsageError(`unknown benchmark "${b}"; available: ${SUITE.join(", ")}, serve, all`);
  let filter: RegExp | undefined;
  if (typeof v.filter === "string") {
    try {
      filter = new RegExp(v.filter);
    } catch (e) {
      throw new UsageError(`--filter: not a regular expression (${(e as Error).message})`);
    }
  }
  const quick = Boolean(v.quick);
  const repeats = (v.repeats as number | undefined) ?? (quick ? 1 : 3);
  // several benches run in one process, in SUITE order (gemm first, so the models get their MFU)
  const result = await runBenchSuite(which[0] === "all" ? SUITE : SUITE.filter((b) => which.includes(b)), { quick, repeats, ...(filter ? { filter } : {}) });
  if (v.json) console.log(JSON.stringify(result));
  else console.log((await import("../../bench/table.js")).textTable(result));
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

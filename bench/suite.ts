// `lmforge bench`: runs the benches asked for and gathers their rows, with the conditions a
// reader needs to judge them (date, CPU, versions, threads, the machine's load).
import { cpus, loadavg } from "node:os";
import * as torch from "../src/torch/index.js";
import type { BenchRow } from "./row.js";
import { PEAK_RSS_NOTE } from "./row.js";
import type { GemmCeiling } from "./gemm.js";
import { peerAllocatorUsed } from "./peer.js";
import type { PeerAllocator } from "./peer.js";

/** The benches of `lmforge bench all`, in the order run (gemm first: its ceiling gives the training rows' MFU). */
export const SUITE = ["gemm", "engine", "optim", "tokenizers", "models", "generate"] as const;
export type BenchName = (typeof SUITE)[number];

export interface BenchResult {
  date: string;
  cpu: string;
  cores: number;
  /** 1-minute load average before and after the run: above the core count, the machine was shared. */
  load: { before: number; after: number };
  libtorch: string;
  pytorch: string;
  threads: number;
  /** The allocator the PyTorch peer ran with (bench/peer.ts: peerAllocator). */
  peerAllocator: PeerAllocator;
  quick: boolean;
  repeats: number;
  /** GFLOP/s per precision, the best engine's (MFU's denominator); absent when no gemm ran. */
  ceiling?: GemmCeiling;
  rows: BenchRow[];
  notes: string[];
  runtime: ReturnType<typeof torch.runtimeInfo>;
}

/** Runs the benches in `which` (SUITE order) and returns their rows and the run's conditions. */
export async function runBenchSuite(which: readonly BenchName[], options: { quick: boolean; repeats: number; filter?: RegExp }): Promise<BenchResult> {
  const { quick, repeats, filter } = options;
  const runtime = torch.runtimeInfo();
  const result: BenchResult = {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    load: { before: loadavg()[0]!, after: 0 },
    libtorch: runtime.torchVersion,
    pytorch: "",
    threads: runtime.threads,
    peerAllocator: peerAllocatorUsed(),
    quick,
    repeats,
    rows: [],
    notes: [],
    runtime,
  };
  const f = filter ? { filter } : {};
  for (const b of SUITE.filter((x) => which.includes(x))) {
    let r: { rows: BenchRow[]; torch?: string; notes?: string[]; ceiling?: GemmCeiling };
    if (b === "gemm") r = (await import("./gemm.js")).runGemmBench({ quick, repeats });
    else if (b === "engine") r = (await import("./engine.js")).runEngineBench({ quick, repeats });
    else if (b === "optim") r = (await import("./optim.js")).runOptimBench({ quick, repeats });
    else if (b === "tokenizers") r = (await import("./tokenizers.js")).runTokenizerBench({ quick, repeats });
    else if (b === "models") r = (await import("./models.js")).runModelBench({ quick, repeats, ...f, ...(result.ceiling ? { ceiling: result.ceiling } : {}) });
    else r = (await import("./generate.js")).runGenerateBench({ quick, repeats, ...f });
    result.rows.push(...r.rows);
    result.notes.push(...(r.notes ?? []));
    if (r.torch) result.pytorch = r.torch;
    if (r.ceiling) result.ceiling ??= r.ceiling;
  }
  result.notes.push(
    "work: equal = both sides compute the same outputs; as-run = lmforge with its shortcuts on (firstTokenOnly, maskedOnly + lastLayerAtLabels), the peer as Hugging Face runs it.",
    "order: every repeat runs all of one side's cases then the other's, the first side alternating repeat by repeat; the median of the repeats is shown.",
    "MFU (training rows) = tokens/s x (6 x parameters + 12 x layers x hidden x seq) / the GEMM ceiling at the row's precision (the faster engine's best GEMM).",
    PEAK_RSS_NOTE,
  );
  result.load.after = loadavg()[0]!;
  return result;
}

// GEMM ceiling: large square matmuls (2n^3 FLOPs each) in float32 and bfloat16, through
// lmforge's engine and through torch. The best of the two engines at each precision is this
// machine's ceiling, the denominator of the training rows' model FLOPs utilisation (MFU).
import { raceEngine } from "./engine.js";
import type { EngineCase } from "./engine.js";
import { makeRow } from "./row.js";
import type { BenchRow } from "./row.js";

export type Precision = "fp32" | "bf16";
export type GemmCeiling = Record<Precision, number>;

/** The cases: n = 2048 and 4096 (quick: 256), fp32 and bf16, enough steps for about a second each. */
function gemmCases(quick: boolean): (EngineCase & { kind: "gemm" })[] {
  const sizes = quick ? [256] : [2048, 4096];
  return (["fp32", "bf16"] as const).flatMap((precision) => sizes.map((n) => ({ kind: "gemm" as const, n, precision, warmup: 1, steps: n >= 4096 ? 3 : n >= 2048 ? 5 : 20 })));
}

/** Races the matmuls; rows in GFLOP/s and the ceiling per precision (the fastest engine and size). */
export function runGemmBench(options: { quick?: boolean; repeats?: number } = {}): { rows: BenchRow[]; torch: string; ceiling: GemmCeiling } {
  const cases = gemmCases(options.quick ?? false);
  const { torch, sides } = raceEngine(cases, options.repeats ?? 3);
  const ceiling: GemmCeiling = { fp32: 0, bf16: 0 };
  const rows = cases.map((c, i) => {
    const s = sides[i]!;
    ceiling[c.precision] = Math.max(ceiling[c.precision], s.ours.value, s.theirs.value);
    return makeRow({ bench: "gemm", name: `GEMM ${c.n}x${c.n} @ ${c.n}x${c.n}, ${c.precision}`, work: "equal", unit: "GFLOP/s", higherIsBetter: true }, s.ours, s.theirs);
  });
  return { rows, torch, ceiling };
}

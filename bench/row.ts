// The one row format every bench (but serve) reports, and the race that fills it: both sides
// run every case once per repeat, alternating which side goes first, each side's peak RSS
// taken per case, the median of the repeats kept.
import { readFileSync, writeFileSync } from "node:fs";
import * as torch from "../src/torch/index.js";
import { median } from "./peer.js";

/**
 * What the two sides compute. "equal": the same work and outputs of the same shapes.
 * "as-run": lmforge as users run it (its shortcuts on: work no output shows is skipped),
 * the peer as Hugging Face's code runs it.
 */
export type Work = "equal" | "as-run";

export interface BenchRow {
  /** The bench that made the row: engine, optim, tokenizers, models, generate, gemm. */
  bench: string;
  name: string;
  work: Work;
  unit: string;
  /** Whether a larger figure is better (tokens/s, GFLOP/s) or a smaller one (ms/step). */
  higherIsBetter: boolean;
  lmforge: number;
  pytorch: number;
  /** How many times faster lmforge is: above 1, lmforge is faster. */
  speedup: number;
  /** The peer's variant shown (the fastest of those it ran), e.g. "bf16 weights, inference_mode". */
  peer: string;
  /** Peak resident memory of each side's process during the case, MiB (see peakRssNote). */
  rssMB: { lmforge: number; pytorch: number };
  /** Training rows: model FLOPs utilisation of each side, 0..1, against this machine's GEMM ceiling. */
  mfu?: { lmforge: number; pytorch: number };
}

/** How peak RSS is measured, for the notes. */
export const PEAK_RSS_NOTE =
  "peak RSS: each side's own process, VmHWM of /proc/self/status reset (/proc/self/clear_refs) before each case, so the peak " +
  "during that case, its runtime's baseline (node + libtorch, python + torch) included; lmforge empties its cache of freed blocks " +
  "before each case, so that memory kept from an earlier case does not count (its warm-up maps its own again), as PyTorch's " +
  "allocator (tcmalloc) returns large freed blocks (maxRSS deltas would not be honest: maxRSS is a lifetime peak).";

/** Resets this process's peak RSS (Linux); false where the kernel does not allow it. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** This process's peak RSS in MiB: VmHWM (Linux), else process.resourceUsage().maxRSS (the lifetime peak). */
export function peakRssMB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** One side's measurement of one case. */
export interface Measured {
  value: number;
  rssMB: number;
  /** The peer's variant that gave `value` (its fastest). */
  variant?: string;
}

/** The peers' common answer: one result per case, in the order given (bench/peers/common.py). */
export interface PeerResults {
  torch: string;
  results: Measured[];
}

/** Runs one case on lmforge's side with its peak RSS, from an empty cache of freed blocks. */
export function measureOurs(fn: () => number): Measured {
  torch.cpuCache.empty();
  resetPeakRss();
  const value = fn();
  return { value, rssMB: peakRssMB() };
}

/**
 * Races the cases: each repeat runs all of lmforge's cases and then the peer's (one Python
 * process for all, its start paid once), the order flipped every repeat so that neither side
 * always runs on the warmer or the busier machine. Returns, per case, the median value of each
 * side, the larger peak RSS of the repeats and the peer's variant of the median run.
 */
export function race<C>(cases: C[], repeats: number, ours: (c: C) => Measured, peer: (cases: C[]) => PeerResults): { torch: string; sides: { ours: Measured; theirs: Measured }[] } {
  const a: Measured[][] = cases.map(() => []);
  const b: Measured[][] = cases.map(() => []);
  let torch = "";
  const runOurs = (): void => cases.forEach((c, i) => a[i]!.push(ours(c)));
  const runPeer = (): void => {
    const p = peer(cases);
    torch = p.torch;
    p.results.forEach((m, i) => b[i]!.push(m));
  };
  for (let r = 0; r < repeats; r++) {
    if (r % 2 === 0) {
      runOurs();
      runPeer();
    } else {
      runPeer();
      runOurs();
    }
  }
  const pick = (ms: Measured[]): Measured => {
    const mid = median(ms.map((m) => m.value));
    const at = ms.find((m) => m.value === mid)!;
    return { value: mid, rssMB: Math.max(...ms.map((m) => m.rssMB)), ...(at.variant ? { variant: at.variant } : {}) };
  };
  return { torch, sides: cases.map((_, i) => ({ ours: pick(a[i]!), theirs: pick(b[i]!) })) };
}

/** A row from the two sides' measurements. */
export function makeRow(fields: { bench: string; name: string; work: Work; unit: string; higherIsBetter: boolean; peer?: string; mfu?: BenchRow["mfu"] }, ours: Measured, theirs: Measured): BenchRow {
  const speedup = fields.higherIsBetter ? ours.value / theirs.value : theirs.value / ours.value;
  return {
    bench: fields.bench,
    name: fields.name,
    work: fields.work,
    unit: fields.unit,
    higherIsBetter: fields.higherIsBetter,
    lmforge: ours.value,
    pytorch: theirs.value,
    speedup,
    peer: theirs.variant ?? fields.peer ?? "default",
    rssMB: { lmforge: ours.rssMB, pytorch: theirs.rssMB },
    ...(fields.mfu ? { mfu: fields.mfu } : {}),
  };
}

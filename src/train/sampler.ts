// Which examples each rank of a data-parallel run trains on. Every rank draws the same epoch
// order (epochOrder: the run's seed and the epoch, as torch's DistributedSampler seeds its
// shuffle with seed + epoch), takes the same global batches from it, and keeps its share of
// each. What happens at the epoch's tail, when the examples do not divide by the ranks:
//
//   uneven (the default): the last global batch is split as it comes, so the last ranks get
//     fewer examples, possibly none (such a rank sits the micro-batch out and adds a zero
//     gradient). Every step is exactly the one-process step of worldSize x batchSize.
//   pad: the order is extended with its own first examples until its length is a multiple of
//     worldSize (DistributedSampler(drop_last=False)): every rank gets as many, a few
//     examples are seen twice per epoch.
//   drop: the order is cut to a multiple of worldSize (DistributedSampler(drop_last=True)):
//     every rank gets as many, a few examples are not seen this epoch (another few the next).
//
// With pad and drop a rank takes every worldSize-th example of a global batch, from its rank
// on; global batches are multiples of worldSize long, so over an epoch rank r trains on
// exactly DistributedSampler's indices[r::worldSize] of the same order. With uneven it takes
// a contiguous slice (shardOf). Multi-task mixtures stay in step: the task of each micro-batch
// is drawn from (seed, step, micro-batch) alone (mixing.ts), the same on every rank, and each
// task has its own order.
import { shardOf } from "./data-parallel.js";

export type DdpTail = "uneven" | "pad" | "drop";
export const DDP_TAILS: readonly DdpTail[] = ["uneven", "pad", "drop"];

/** The length of an epoch of n examples over worldSize ranks with this tail. */
export function epochLength(n: number, worldSize: number, tail: DdpTail): number {
  if (tail === "pad") return Math.ceil(n / worldSize) * worldSize;
  if (tail === "drop") return Math.floor(n / worldSize) * worldSize;
  return n;
}

/**
 * An epoch's order fitted to worldSize ranks: padded by repeating its first examples (from the
 * start again when the padding is longer than the order, as DistributedSampler does), cut, or
 * kept as it is (see the file comment).
 */
export function fitToRanks(order: ArrayLike<number>, worldSize: number, tail: DdpTail): Int32Array {
  const n = order.length;
  const length = epochLength(n, worldSize, tail);
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = order[i % n]!;
  return out;
}

/** This rank's examples of a global batch: every worldSize-th from `rank` (pad, drop), or a contiguous slice (uneven). */
export function rankShare<T>(global: readonly T[], rank: number, worldSize: number, tail: DdpTail): T[] {
  if (tail === "uneven") return shardOf(global, rank, worldSize);
  if (global.length % worldSize !== 0) throw new Error(`a global batch of ${global.length} examples does not divide among ${worldSize} ranks (ddp tail ${tail})`);
  return global.filter((_, i) => i % worldSize === rank);
}

/**
 * An epoch's order regrouped so that each batch holds examples of like length (Hugging Face's
 * LengthGroupedSampler, the Trainer's group_by_length): the shuffled order is cut into
 * megabatches of `batch` x min(50, n / (4 x batch)) examples, each sorted longest first, and the
 * megabatch holding the longest example is put first (so a batch that does not fit in memory
 * fails at the first step, not hours in). Batches stay random in which examples they draw; what
 * they lose is the padding: a batch is padded to its longest row. Megabatches are whole batches,
 * so `batch` (the global batch, with ranks) still starts at every multiple of itself.
 */
export function lengthGroupedOrder(order: ArrayLike<number>, lengths: ArrayLike<number>, batch: number): Int32Array {
  const n = order.length;
  const mega = batch * Math.max(1, Math.min(50, Math.floor(n / (batch * 4))));
  const groups: number[][] = [];
  for (let s = 0; s < n; s += mega) {
    const g = Array.from({ length: Math.min(mega, n - s) }, (_, i) => order[s + i]!);
    // a stable sort: examples of one length keep their shuffled order
    groups.push(g.sort((a, b) => lengths[b]! - lengths[a]!));
  }
  let longest = 0;
  for (let i = 1; i < groups.length; i++) if (lengths[groups[i]![0]!]! > lengths[groups[longest]![0]!]!) longest = i;
  if (longest > 0) [groups[0], groups[longest]] = [groups[longest]!, groups[0]!];
  return Int32Array.from(groups.flat());
}

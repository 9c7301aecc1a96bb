// Data parallelism for the Trainer (PyTorch DDP's semantics over a c10d process group): the
// parameters broadcast from rank 0 at the start, each rank's share of the global batch, and
// after the backward the gradients summed over the ranks in buckets.
//
// Equivalence with one process: rank r takes its slice of the global batch (worldSize x
// batchSize examples, in the same order one process would take them) and weights its loss by
// its targets' share of the *global* targets, which one small allreduce gives before the
// backward. Summing the gradients then gives exactly the one-process gradient (up to float
// summation order). PyTorch DDP averages instead, which equals it only when every rank has as
// many targets (masked tokens) as the others.
//
// Overlap (the default): hooks on the parameters' gradient accumulators (native/reducer.cc)
// send each bucket's allreduce as soon as its gradients are final, while the backward goes on;
// only the step's last micro-batch is reduced (DDP's no_sync for the others). Without overlap
// (adversarial training, which runs several backwards per micro-batch), the buckets are sent
// after the whole backward.
//
// Unused parameters are always detected, at the cost of one small allreduce per step that
// also carries the step's metrics: a parameter with a gradient on some rank but not this one
// contributes zeros; one with a gradient on no rank keeps none, as in one process. After the
// first step, the buckets leave out the parameters no rank used (DDP's rebuilt buckets, with
// find_unused_parameters' effect): a bucket waiting for a gradient that never comes would hold
// back every bucket after it until the end of the backward.
import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import { availableParallelism } from "node:os";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { initProcessGroup, rendezvousFromEnv } from "../torch/distributed.js";
import { native } from "../torch/native.js";
import type { ReducerHandle } from "../torch/native.js";
import type { ProcessGroup, Work } from "../torch/distributed.js";
import type { DdpTail } from "./sampler.js";

/** How a run is spread over processes. */
export interface DistributedOptions {
  group: ProcessGroup;
  /** Gradient bucket size in MiB (default 25, as DDP's bucket_cap_mb). */
  bucketMb?: number;
  /** Reduce each bucket during the backward, as soon as its gradients are final (default true). */
  overlap?: boolean;
  /** What the ranks do at an epoch's tail (sampler.ts): uneven (the default), pad or drop. */
  tail?: DdpTail;
}

export const DEFAULT_BUCKET_MB = 25;

/**
 * The example indices of rank `rank` in a global batch of `worldSize` equal contiguous slices
 * (ceil(n / worldSize) each; at an epoch's tail the last ranks get fewer, possibly none: such
 * a rank sits the micro-batch out and adds a zero gradient, so the step stays the one-process step).
 */
export function shardOf<T>(global: readonly T[], rank: number, worldSize: number): T[] {
  const per = Math.ceil(global.length / worldSize);
  return global.slice(rank * per, Math.min(global.length, (rank + 1) * per));
}

/**
 * Groups of parameters of at most `capBytes` (one parameter larger than that is a bucket of
 * its own), in reverse registration order (the order the backward makes their gradients),
 * never mixing dtypes. Gives indices into params.
 */
export function bucketsOf(params: readonly { numel: number; dtype: string }[], capBytes: number): number[][] {
  const buckets: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  let dtype = "";
  for (let i = params.length - 1; i >= 0; i--) {
    const p = params[i]!;
    const size = p.numel * (p.dtype === "float64" || p.dtype === "int64" ? 8 : p.dtype === "float32" || p.dtype === "int32" ? 4 : 2);
    if (current.length && (bytes + size > capBytes || p.dtype !== dtype)) {
      buckets.push(current);
      current = [];
      bytes = 0;
    }
    current.push(i);
    bytes += size;
    dtype = p.dtype;
  }
  if (current.length) buckets.push(current);
  return buckets;
}

export class DataParallel {
  readonly rank: number;
  readonly worldSize: number;
  private readonly capBytes: number;
  private buckets: number[][];
  private readonly reducer: ReducerHandle | null;
  private armed = false;
  private steps = 0;
  /** Buckets sent during the last step's backward (overlapped), of how many. */
  lastOverlap = { during: 0, of: 0 };
  /**
   * The last step's gradient communication (overlapped path): its time in ms (the union of the
   * buckets' launch-to-completion spans) and the part of it the backward hid (before its end).
   */
  lastComm = { ms: 0, hiddenMs: 0 };

  constructor(
    readonly group: ProcessGroup,
    /** The trainable parameters, in registration order (the same on every rank). */
    private readonly params: readonly Tensor[],
    bucketMb = DEFAULT_BUCKET_MB,
    overlap = true,
  ) {
    if (!(bucketMb > 0)) throw new RangeError(`bucketMb must be > 0, got ${bucketMb}`);
    this.rank = group.rank;
    this.worldSize = group.worldSize;
    this.capBytes = bucketMb * 1024 * 1024;
    this.buckets = bucketsOf(params, this.capBytes);
    this.reducer = overlap ? native.distReducer(group.h, params.map((p) => p._h)) : null;
  }

  /** Before each micro-batch's backward: only the step's last one is reduced (no_sync for the others). */
  beforeBackward(last: boolean): void {
    if (!this.reducer) return;
    native.distReducerArm(this.reducer, last ? this.buckets : null);
    this.armed = last;
  }

  /** Every rank starts from rank 0's parameters and buffers. */
  broadcastFromRank0(buffers: readonly Tensor[]): void {
    const works: Work<void>[] = [];
    for (const bucket of this.buckets) works.push(this.group.broadcast(bucket.map((i) => this.params[i]!), 0));
    const byDtype = new Map<string, Tensor[]>();
    for (const b of buffers) byDtype.set(b.dtype, [...(byDtype.get(b.dtype) ?? []), b]);
    for (const bs of byDtype.values()) works.push(this.group.broadcast(bs, 0));
    for (const w of works) w.wait();
  }

  /** The sums over the ranks of a few numbers (float64). */
  sum(values: readonly number[]): number[] {
    return torch.scope(() => {
      const host = torch.tensor([...values], { dtype: "float64" });
      const t = this.group.device === "cpu" ? host : host.to(this.group.device);
      this.group.allReduce(t, "sum").wait();
      return Array.from((t === host ? t : t.to("cpu")).data() as Float64Array);
    });
  }

  /**
   * After the backward: sums the gradients over the ranks, in place, and with them a few
   * numbers (the step's metrics), which it returns summed. A parameter without a gradient on
   * this rank but with one on another (unused here) gets a zero gradient first; one without a
   * gradient on every rank keeps none, as in a one-process run.
   */
  reduceGradients(metrics: readonly number[]): number[] {
    if (this.reducer) return this.finishOverlapped(metrics);
    return torch.scope(() => {
      const has = this.params.map((p) => (p.grad === undefined ? 0 : 1));
      const summed = this.sum([...metrics, ...has]);
      const anyHas = summed.slice(metrics.length);
      const works: Work<void>[] = [];
      for (const bucket of this.buckets) {
        const grads: Tensor[] = [];
        for (const i of bucket) {
          if (!anyHas[i]) continue;
          const p = this.params[i]!;
          let g = p.grad;
          if (g === undefined) {
            g = torch.zeros(p.shape, { dtype: p.dtype });
            p.grad = g;
          }
          grads.push(g);
        }
        if (grads.length) works.push(this.group.allReduce(grads, "sum"));
      }
      for (const w of works) w.wait();
      return summed.slice(0, metrics.length);
    });
  }

  /** The overlapped path's end: what the hooks left, then the metrics and the parameters used anywhere. */
  private finishOverlapped(metrics: readonly number[]): number[] {
    const reducer = this.reducer!;
    // a rank that ran no backward this step (its share was empty) still sends every bucket, in order
    if (!this.armed) native.distReducerArm(reducer, this.buckets);
    this.armed = false;
    const [had, during, commMs, hiddenMs] = native.distReducerFinish(reducer);
    this.lastOverlap = { during, of: this.buckets.length };
    this.lastComm = { ms: commMs, hiddenMs };
    const summed = this.sum([...metrics, ...had.map(Number)]);
    const anyHas = summed.slice(metrics.length);
    torch.scope(() => {
      // parameters left out of the buckets (unused everywhere at the first step) that some rank used now
      const inBuckets = new Set(this.buckets.flat());
      const late: Tensor[] = [];
      for (const [i, p] of this.params.entries()) {
        if (inBuckets.has(i) || !anyHas[i]) continue;
        if (p.grad === undefined) p.grad = torch.zeros(p.shape, { dtype: p.dtype });
        late.push(p.grad!);
      }
      if (late.length) this.group.allReduce(late, "sum").wait();
      // used by no rank: no gradient, as in one process (the buckets sent zeros for them)
      for (const [i, p] of this.params.entries()) if (!anyHas[i] && p.grad !== undefined) p.grad = undefined;
    });
    if (++this.steps === 1) this.buckets = bucketsOf(this.params, this.capBytes).map((b) => b.filter((i) => anyHas[i])).filter((b) => b.length);
    return summed.slice(0, metrics.length);
  }
}

/**
 * The share of the last step's gradient communication that the backward hid: the time an
 * allreduce was in flight before the backward ended over the time any was in flight (0 to 1);
 * undefined without overlap or communication.
 */
export function commHidden(parallel: DataParallel): number | undefined {
  const { ms, hiddenMs } = parallel.lastComm;
  return ms > 0 ? hiddenMs / ms : undefined;
}

/**
 * A SHA-256 of a value made of typed arrays, arrays, plain objects and primitives (training
 * features, examples): what ranks compare (checkSame) to learn that they were given the same
 * data. Typed arrays enter as their bytes, so a corpus of token ids is hashed quickly.
 */
export function fingerprint(value: unknown): string {
  const hash = createHash("sha256");
  feed(hash, value);
  return hash.digest("hex");
}

function feed(hash: Hash, v: unknown): void {
  if (ArrayBuffer.isView(v)) {
    hash.update(`${v.constructor.name}:${v.byteLength}:`);
    hash.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  } else if (Array.isArray(v)) {
    hash.update(`[${v.length}:`);
    for (const x of v) feed(hash, x);
    hash.update("]");
  } else if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort();
    hash.update(`{${keys.length}:`);
    for (const k of keys) {
      hash.update(JSON.stringify(k));
      feed(hash, (v as Record<string, unknown>)[k]);
    }
    hash.update("}");
  } else {
    hash.update(`${typeof v}:${String(v)};`);
  }
}

/**
 * Joins the group a launcher (lmforge launch, torchrun, Slurm) started this process in, from
 * RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (or SLURM_*); undefined when there is none or the
 * world is one process. Intra-op threads default to the cores over the local workers, unless
 * OMP_NUM_THREADS says otherwise.
 */
export async function joinFromEnv(log?: (line: string) => void, options: Omit<DistributedOptions, "group"> = {}): Promise<DistributedOptions | undefined> {
  const env = rendezvousFromEnv();
  if (!env || env.worldSize === 1) return undefined;
  if (!process.env.OMP_NUM_THREADS) torch.setNumThreads(Math.max(1, Math.floor(availableParallelism() / env.localWorldSize)));
  const group = await initProcessGroup({ rank: env.rank, worldSize: env.worldSize, masterAddr: env.masterAddr, masterPort: env.masterPort });
  log?.(`rank ${env.rank} of ${env.worldSize} (local ${env.localRank}), ${torch.getNumThreads()} threads: joined the group at ${env.masterAddr}:${env.masterPort}`);
  return { group, ...options };
}

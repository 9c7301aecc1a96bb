// The one door to the native addon. It chooses the fast BLAS path before libtorch loads,
// finds the .node file (listing every path it tried when it fails) and sets the thread count.
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DType } from "./dtype.js";
import type { Handle, NativeOps } from "./generated/native-ops.js";

export type { Handle } from "./generated/native-ops.js";

/** The hand-written entry points of the addon (native/addon.cc). */
export interface NativeCore {
  readonly torchVersion: string;
  dispose(h: Handle): boolean;
  disposeMany(ids: Float64Array): number;
  watchMemory(h: Handle): void;
  /** Bytes of the tensors V8 has been told of (those left to the garbage collector). */
  reportedBytes(): number;
  isDisposed(h: Handle): boolean;
  liveCount(): number;
  meta(h: Handle): [number[], DType, string];
  strides(h: Handle): number[];
  isContiguous(h: Handle): boolean;
  fromBuffer(data: ArrayBufferView | ArrayBuffer, dtype: DType, shape: readonly number[]): Handle;
  toBuffer(h: Handle, copy: boolean): ArrayBuffer;
  readFileInto(h: Handle, path: string, offset: number): void;
  requiresGrad(h: Handle): boolean;
  setRequiresGrad(h: Handle, on: boolean): void;
  isLeaf(h: Handle): boolean;
  share(h: Handle): Handle;
  useCount(h: Handle): number;
  gradFn(h: Handle): string | undefined;
  grad(h: Handle): Handle | undefined;
  setGrad(h: Handle, g: Handle | null): void;
  retainGrad(h: Handle): void;
  backward(h: Handle, gradient: Handle | null, retainGraph: boolean, createGraph: boolean): void;
  autogradGrad(
    outputs: Handle[],
    inputs: Handle[],
    gradOutputs: Handle[] | null,
    retainGraph: boolean,
    createGraph: boolean,
    allowUnused: boolean,
  ): (Handle | undefined)[];
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  manualSeed(seed: number | bigint): void;
  getRngState(): Buffer;
  setRngState(state: Uint8Array): void;
  getNumThreads(): number;
  setNumThreads(n: number): void;
  autocastSet(deviceType: "cpu" | "cuda", enabled: boolean, dtype: DType): [boolean, DType];
  autocastNesting(enter: boolean): number;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  parallelInfo(): string;
  adamwStep(
    params: Handle[],
    grads: Handle[],
    expAvgs: Handle[],
    expAvgSqs: Handle[],
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
  setData(h: Handle, src: Handle): void;
  hasMkldnn(): boolean;
  parallelThreadsUsed(): number;
  attentionKernels(): [boolean, boolean];
  cpuCacheStats(): CpuCacheStats;
  cpuCacheEmpty(): void;
  cpuCacheResetPeak(): void;
  profileStart(path: string): void;
  profileStop(): void;
  setCpuCacheLimit(bytes: number): void;
}

/** The caching CPU allocator's state (blocks of 1 MiB and more), in bytes and counts. */
export interface CpuCacheStats {
  /** Mapped by the cache: held by tensors plus kept for reuse. */
  mapped: number;
  /** Held by live tensors. */
  inUse: number;
  /** The most inUse since the process started or cpuCache.resetPeak() (torch.cuda.max_memory_allocated's CPU twin). */
  peakInUse: number;
  /** Kept for reuse. */
  cached: number;
  /** The most kept for reuse (LMFORGE_CPU_CACHE_MB; 0: no caching). */
  limit: number;
  /** Allocations served from the cache. */
  hits: number;
  /** Allocations that mapped new memory. */
  misses: number;
}

/** A rank's process group, as the addon holds it (native/distributed.cc). */
export type GroupHandle = { readonly __brand: "lmforge.ProcessGroup" };
/** A launched collective, waited for once or more (native/distributed.cc). */
export type WorkHandle = { readonly __brand: "lmforge.Work" };

/** What distInit takes, validated in src/torch/distributed.ts first. */
export interface NativeInitOptions {
  store: "tcp" | "file";
  backend: "gloo" | "nccl";
  host: string;
  port: number;
  isMaster: boolean;
  path: string;
  interface: string;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  threads: number;
}

/** The c10d bindings (native/distributed.cc): gloo collectives, waited for synchronously or through a Promise. */
export interface NativeDistributed {
  /** The process groups this build can make: gloo, and nccl where a CUDA libtorch was found at build time. */
  readonly distBackends: readonly string[];
  distInit(options: NativeInitOptions): Promise<GroupHandle>;
  distDestroy(group: GroupHandle): void;
  distAllReduce(group: GroupHandle, tensors: Handle[], op: "sum" | "avg" | "max" | "min"): WorkHandle;
  distBroadcast(group: GroupHandle, tensors: Handle[], root: number): WorkHandle;
  distAllGather(group: GroupHandle, tensor: Handle): WorkHandle;
  distBarrier(group: GroupHandle): WorkHandle;
  distWait(work: WorkHandle): Handle[] | undefined;
  distWaitAsync(work: WorkHandle): Promise<Handle[] | undefined>;
  /** Hooks the parameters' gradient accumulators (native/reducer.cc). */
  distReducer(group: GroupHandle, params: Handle[]): ReducerHandle;
  /** Arms the next backward with buckets of parameter indices (sent in this order), or disarms it (null). */
  distReducerArm(reducer: ReducerHandle, buckets: number[][] | null): void;
  /**
   * Sends what is left, waits, writes the sums: [which parameters had a gradient of their own,
   * buckets sent during the backward, communication ms (the union of the buckets' launch-to-completion
   * spans), the part of it before the backward ended].
   */
  distReducerFinish(reducer: ReducerHandle): [boolean[], number, number, number];
}

/** The gradient reducer of one model's parameters (native/reducer.cc). */
export type ReducerHandle = { readonly __brand: "lmforge.Reducer" };

export type NativeAddon = NativeCore & NativeOps & NativeDistributed;

/** What the loader decided about the BLAS core type, for runtimeInfo(). */
export const blasChoice: { coreType: string | undefined; reason: string } = { coreType: undefined, reason: "" };

/** Environment variables the loader set itself (a benchmark's peer runs without them). */
export const variablesSet: string[] = [];

/** The CPU's feature flags (from /proc/cpuinfo; empty elsewhere). */
export const CPU_FLAGS: ReadonlySet<string> = cpuFlags();

function cpuFlags(): Set<string> {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    return new Set((line ?? "").split(":")[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

// Debian's OpenBLAS can take a recent x86 CPU for an old generic core and run fp32 GEMM
// 5-8x slower. Where the CPU has AVX-512, its SkylakeX kernels are correct and fastest
// (measured: bench/README.md). OpenBLAS reads the variable when it loads, so it must be set
// before the addon (and with it libtorch and OpenBLAS) is loaded.
const SLOW_CORE_TYPES = new Set(["", "prescott", "core2", "nehalem", "sandybridge", "haswell", "zen", "atom", "generic"]);
function chooseBlasCoreType(): void {
  const forced = process.env.LMFORGE_OPENBLAS_CORETYPE;
  if (forced === "keep") {
    blasChoice.coreType = process.env.OPENBLAS_CORETYPE;
    blasChoice.reason = "LMFORGE_OPENBLAS_CORETYPE=keep";
    return;
  }
  if (forced) {
    process.env.OPENBLAS_CORETYPE = forced;
    blasChoice.coreType = forced;
    blasChoice.reason = "LMFORGE_OPENBLAS_CORETYPE";
    return;
  }
  const flags = CPU_FLAGS;
  const avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"].every((f) => flags.has(f));
  const current = process.env.OPENBLAS_CORETYPE;
  if (avx512 && SLOW_CORE_TYPES.has((current ?? "").toLowerCase())) {
    process.env.OPENBLAS_CORETYPE = "SkylakeX";
    variablesSet.push("OPENBLAS_CORETYPE");
    blasChoice.coreType = "SkylakeX";
    blasChoice.reason = current ? `CPU has AVX-512; replaced OPENBLAS_CORETYPE=${current}` : "CPU has AVX-512";
  } else {
    blasChoice.coreType = current;
    blasChoice.reason = avx512 ? "kept the OPENBLAS_CORETYPE already set" : "no AVX-512: OpenBLAS's own detection";
  }
}

// libgomp's idle worker threads spin for a long time after each parallel region by default.
// In Node they then take the core that V8's own threads and the main thread need between
// ops (measured: a bert-base layer's GELU 2.8 ms instead of 0.7 ms on 2 cores). A shorter
// spin keeps the wake-up fast and gives the core back. A user's own setting wins.
function chooseOpenMPWait(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.GOMP_SPINCOUNT = "100000";
    variablesSet.push("GOMP_SPINCOUNT");
  }
}

/** LMFORGE_CPU_CACHE_MB is read by the addon as it loads: a bad value is an error here, not ignored there. */
export function checkCacheVariable(value: string | undefined): void {
  if (value !== undefined && !/^\d+$/.test(value.trim())) {
    throw new Error(`LMFORGE_CPU_CACHE_MB must be a whole number of MiB (0 turns the CPU cache off), got "${value}"`);
  }
}

function load(): NativeAddon {
  checkCacheVariable(process.env.LMFORGE_CPU_CACHE_MB);
  chooseBlasCoreType();
  chooseOpenMPWait();
  const here = dirname(fileURLToPath(import.meta.url));
  // src/torch (when run from source) or dist/src/torch (compiled): find the package root.
  const roots = [join(here, "../.."), join(here, "../../..")];
  const candidates = [
    ...(process.env.LMFORGE_ADDON ? [process.env.LMFORGE_ADDON] : []),
    ...roots.flatMap((r) => [join(r, "build/Release/lmforge.node"), join(r, "build/Debug/lmforge.node")]),
  ];
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      tried.push(`${path} (not found)`);
      continue;
    }
    try {
      return require(path) as NativeAddon;
    } catch (e) {
      tried.push(`${path} (${(e as Error).message.split("\n")[0]})`);
    }
  }
  throw new Error(
    "lmforge: the native addon could not be loaded. Tried:\n  " +
      tried.join("\n  ") +
      "\nBuild it with `npm run build:native` (it needs libtorch: see the README, 'How libtorch is found').",
  );
}

export const native: NativeAddon = load();

/**
 * Intra-op threads at start: OMP_NUM_THREADS when the user (or a launcher running several
 * workers on one machine) sets it, as PyTorch honours it; otherwise every core we may use
 * (libtorch starts with one thread in some environments).
 */
export function defaultThreads(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): number {
  const given = env.OMP_NUM_THREADS?.trim();
  if (given !== undefined && given !== "") {
    const n = Number(given);
    if (Number.isInteger(n) && n >= 1) return n;
    process.emitWarning(`OMP_NUM_THREADS="${given}" is not a positive integer; using ${cores} threads`);
  }
  return Math.max(1, cores);
}
native.setNumThreads(defaultThreads());

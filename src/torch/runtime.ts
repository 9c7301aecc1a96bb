// Threads, devices, autocast and what the engine was built with.
import type { DType } from "./dtype.js";
import { CPU_FLAGS, blasChoice, native, variablesSet } from "./native.js";
import type { CpuCacheStats } from "./native.js";
import { currentMalloc } from "./malloc.js";

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Sets libtorch's intra-op threads (the default is every core available to the process). */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

/**
 * lmforge's CPU allocator keeps freed blocks of 1 MiB and more for reuse (from 8 MiB on 2 MiB pages):
 * without it every large activation is mapped afresh and faulted in page by page (~10 ms for
 * a 50 MB tensor, more than most ops that fill one). It keeps at most LMFORGE_CPU_CACHE_MB
 * (default: a quarter of physical memory, at most 16 GiB; 0 turns caching off).
 */
export const cpuCache = {
  stats: (): CpuCacheStats => native.cpuCacheStats(),
  /** Starts peakInUse again from what is in use now (as torch.cuda.reset_peak_memory_stats). */
  resetPeak: (): void => native.cpuCacheResetPeak(),
  /** Returns every cached block to the system (tensors in use are untouched). */
  empty: (): void => native.cpuCacheEmpty(),
  /** Caps the bytes kept for reuse, releasing what is over at once. */
  setLimit: (bytes: number): void => native.setCpuCacheLimit(bytes),
};

export const cuda = {
  isAvailable: (): boolean => native.cudaAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  /** Waits for all queued CUDA work (for timing). */
  synchronize: (): void => native.cudaSynchronize(),
};

export interface RuntimeInfo {
  torchVersion: string;
  threads: number;
  cuda: boolean;
  cudaDevices: number;
  mkldnn: boolean;
  openblasCoreType: string | undefined;
  openblasReason: string;
  parallelInfo: string;
  /** The most bytes the CPU cache keeps for reuse (LMFORGE_CPU_CACHE_MB; 0: off). */
  cpuCacheLimit: number;
  /** Whether lmforge's attention kernels serve [float32, bfloat16] (they need oneDNN's GEMM exported). */
  attentionKernels: [boolean, boolean];
  /** The malloc the process runs with (the `lmforge` command restarts itself under tcmalloc where installed: LMFORGE_MALLOC). */
  malloc: ReturnType<typeof currentMalloc>;
  /** Environment variables lmforge set before libtorch loaded (OPENBLAS_CORETYPE, GOMP_SPINCOUNT). */
  variablesSet: Record<string, string>;
}

/** What the engine runs with: versions, threads, the BLAS choice, devices. */
export function runtimeInfo(): RuntimeInfo {
  return {
    torchVersion: native.torchVersion,
    threads: native.getNumThreads(),
    cuda: native.cudaAvailable(),
    cudaDevices: native.cudaDeviceCount(),
    mkldnn: native.hasMkldnn(),
    openblasCoreType: blasChoice.coreType,
    openblasReason: blasChoice.reason,
    parallelInfo: native.parallelInfo(),
    cpuCacheLimit: native.cpuCacheStats().limit,
    attentionKernels: native.attentionKernels(),
    malloc: currentMalloc(),
    variablesSet: Object.fromEntries(variablesSet.map((v) => [v, process.env[v] ?? ""])),
  };
}

/**
 * The precision lmforge trains in by default: bfloat16 autocast where the CPU multiplies
 * bfloat16 in hardware (AMX tiles, Sapphire Rapids and later; AVX512-BF16 dot products, Zen 4
 * and later, Cooper Lake) or a CUDA device is in use; float32 elsewhere, where bfloat16 is
 * emulated and slower. Decided by measurement on AVX512-BF16 (README, "bf16 by default"):
 * bert-mini pretraining reached fp32's validation perplexity within seed-to-seed noise, 1.4-1.6x
 * faster. `LMFORGE_PRECISION=fp32|bf16` overrides it.
 */
export function defaultPrecision(device: string = "cpu", env: NodeJS.ProcessEnv = process.env): "fp32" | "bf16" {
  const forced = env.LMFORGE_PRECISION;
  if (forced !== undefined && forced !== "") {
    if (forced !== "fp32" && forced !== "bf16") throw new Error(`LMFORGE_PRECISION must be fp32 or bf16, got "${forced}"`);
    return forced;
  }
  if (device.startsWith("cuda")) return "bf16";
  return CPU_FLAGS.has("amx_bf16") || CPU_FLAGS.has("avx512_bf16") ? "bf16" : "fp32";
}

export interface AutocastOptions {
  deviceType?: "cpu" | "cuda";
  dtype?: DType;
  enabled?: boolean;
}

/**
 * Runs fn under automatic mixed precision (torch.autocast): matmuls and convolutions run in
 * the lower precision (bfloat16 by default), numerically sensitive ops in float32.
 *
 * @example
 * const loss = autocast(() => model.forward(batch).loss);
 */
export function autocast<T>(fn: () => T, options: AutocastOptions = {}): T {
  const device = options.deviceType ?? "cpu";
  const dtype = options.dtype ?? (device === "cpu" ? "bfloat16" : "float16");
  const prev = native.autocastSet(device, options.enabled ?? true, dtype);
  native.autocastNesting(true);
  try {
    return fn();
  } finally {
    native.autocastNesting(false);
    native.autocastSet(device, prev[0], prev[1]);
  }
}

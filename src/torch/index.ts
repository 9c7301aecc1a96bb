// The tensor layer's public face: `import { torch } from "lmforge"` or the named exports.
import "./generated/ops.js";
export * from "./generated/ops.js";
export { Tensor, tensor, fromBuffer, liveTensors } from "./tensor.js";
export type { NestedArray } from "./tensor.js";
export type { DType, DeviceLike, TensorOptions, TypedArray } from "./dtype.js";
export { DTYPES } from "./dtype.js";
export { scope, keep, dispose, scopeDepth } from "./scope.js";
export { noGrad, enableGrad, isGradEnabled, grad } from "./autograd.js";
export type { GradOptions } from "./autograd.js";
export { onAfterBackward } from "./after-backward.js";
export { manualSeed, getRngState, setRngState, dropout } from "./random.js";
export { getNumThreads, setNumThreads, runtimeInfo, cuda, cpuCache, autocast, defaultPrecision } from "./runtime.js";
export type { CpuCacheStats } from "./native.js";
export type { RuntimeInfo, AutocastOptions } from "./runtime.js";
export { scaledDotProductAttention, hasFusedAttention, attentionKernels } from "./attention.js";
export type { AttentionOptions } from "./attention.js";
export * as distributed from "./distributed.js";

// Scaled dot-product attention: libtorch's fused kernel where the libtorch has it (2.0+),
// composed from ops where it does not (Debian's 1.13).
import { native } from "./native.js";
import { scope } from "./scope.js";
import { dropout } from "./random.js";
import { Tensor } from "./tensor.js";
import * as ops from "./generated/ops.js";

export interface AttentionOptions {
  /** Boolean (true = attend) or additive float mask, broadcastable to (B, H, T, S). */
  attnMask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1/sqrt(head size). */
  scale?: number;
}

let kernels: [boolean, boolean] | undefined;

/** Whether this libtorch serves attentionInference: [float32, bfloat16] (it needs oneDNN's GEMM exported). */
export function attentionKernels(): [boolean, boolean] {
  kernels ??= native.attentionKernels();
  return kernels;
}

export function hasFusedAttention(): boolean {
  return native.scaledDotProductAttentionNative !== undefined;
}

/**
 * softmax(q kᵀ · scale + mask) v over the last two dimensions: q (..., T, D), k and v (..., S, D).
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const dropoutP = options.dropoutP ?? 0;
  const isCausal = options.isCausal ?? false;
  const headSize = q.shape[q.ndim - 1]!;
  if (hasFusedAttention() && options.scale === undefined) {
    return ops.scaledDotProductAttentionNative(q, k, v, options.attnMask ?? null, dropoutP, isCausal);
  }
  const scale = options.scale ?? 1 / Math.sqrt(headSize);
  return scope(() => {
    let scores = q.matmul(k.transpose(-2, -1)).mul(scale); // (..., T, S)
    const T = q.shape[q.ndim - 2]!;
    const S = k.shape[k.ndim - 2]!;
    if (isCausal) {
      const causal = ops.ones([T, S], { dtype: "bool", device: q.device as "cpu" }).tril();
      scores = scores.maskedFill(causal.logicalNot(), -Infinity);
    }
    const mask = options.attnMask;
    if (mask) scores = mask.dtype === "bool" ? scores.maskedFill(mask.logicalNot(), -Infinity) : scores.add(mask);
    let probs = scores.softmax(-1);
    if (dropoutP > 0) probs = dropout(probs, dropoutP, true);
    return probs.matmul(v);
  });
}

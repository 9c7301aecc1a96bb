// Multi-head attention as functions over (B, T, C) tensors, shared by every architecture.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/** float32's most negative value: Hugging Face's additive mask value (torch.finfo(dtype).min). */
export const MASK_MIN = -3.4028234663852886e38;

/** The most negative finite value of a floating dtype (torch.finfo(dtype).min). */
export function minValue(dtype: torch.DType): number {
  return dtype === "bfloat16" ? -3.3895313892515355e38 : dtype === "float16" ? -65504 : dtype === "float64" ? -Number.MAX_VALUE : MASK_MIN;
}

/**
 * A (B, T) mask of 1 (attend) and 0 (padding) as an additive (B, 1, 1, T) mask:
 * 0 where attended, the most negative float where not, as Hugging Face's get_extended_attention_mask.
 */
export function additiveMask(mask: Tensor, dtype: torch.DType = "float32"): Tensor {
  return torch.scope(() => mask.unsqueeze(1).unsqueeze(2).to(dtype).rsub(1).mul(minValue(dtype)));
}

/**
 * Causal attention within a sliding window (Mistral), as an additive (1, 1, T, S) mask: query i,
 * at position S - T + i of the keys (a cache holds the first S - T), sees keys j with
 * S - T + i - window < j <= S - T + i, the `window` most recent positions including its own.
 */
export function slidingWindowMask(T: number, S: number, window: number, dtype: torch.DType = "float32", device = "cpu"): Tensor {
  return torch.scope(() => {
    const past = S - T;
    const ones = torch.ones([T, S], { dtype: "bool", device: device as "cpu" });
    const allowed = ones.tril(past).logicalAnd(ones.triu(past - window + 1));
    return torch.zeros([T, S], { dtype, device: device as "cpu" }).maskedFill(allowed.logicalNot(), minValue(dtype)).view([1, 1, T, S]);
  });
}

/** (B, T, C) -> (B, H, T, C/H) */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, T, C] = x.shape as [number, number, number];
  return x.view([B, T, heads, C / heads]).permute([0, 2, 1, 3]);
}

/** (B, H, T, D) -> (B, T, H*D) */
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, T, D] = x.shape as [number, number, number, number];
  return x.permute([0, 2, 1, 3]).reshape([B, T, H * D]);
}

export interface AttentionResult {
  /** (B, H, T, D) */
  context: Tensor;
  /** (B, H, T, S), when asked for */
  probs?: Tensor;
}

/**
 * softmax(q kᵀ / sqrt(D) + mask) v for q (B, H, T, D), k and v (B, H, S, D). mask is additive,
 * broadcastable to (B, H, T, S); causal masks future positions. Probabilities are returned
 * when asked (interpretability), which rules out the fused kernel.
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: { mask?: Tensor | null; causal?: boolean; dropout?: number; training?: boolean; returnProbs?: boolean; scale?: number } = {},
): AttentionResult {
  const D = q.shape[q.ndim - 1]!;
  const p = options.training ? options.dropout ?? 0 : 0;
  const scale = options.scale ?? 1 / Math.sqrt(D);
  if (!options.returnProbs && torch.hasFusedAttention() && options.scale === undefined) {
    return { context: torch.scaledDotProductAttention(q, k, v, { attnMask: options.mask ?? null, dropoutP: p, isCausal: options.causal ?? false }) };
  }
  return torch.scope(() => {
    // (B, H, T, D) -> (B*H, T, D): one batched GEMM with the additive mask and the scale folded
    // in (baddbmm), instead of matmul, mul and add as three passes over the scores.
    const [B, H, T, Dq] = q.shape as [number, number, number, number];
    const S = k.shape[2]!;
    const q3 = q.reshape([B * H, T, Dq]);
    const kT = k.transpose(-1, -2).reshape([B * H, Dq, S]);
    let bias: Tensor | null = null;
    if (options.causal) {
      // query i sees keys up to S - T + i (with a key/value cache, T < S)
      const allowed = torch.ones([T, S], { dtype: "bool", device: q.device as "cpu" }).tril(S - T);
      bias = torch.zeros([T, S], { dtype: q.dtype, device: q.device as "cpu" }).maskedFill(allowed.logicalNot(), minValue(q.dtype));
    }
    if (options.mask) {
      const m = options.mask.dtype === q.dtype ? options.mask : options.mask.to(q.dtype);
      // (B, 1, 1, S) or (B, 1, T, S) -> (B*H, 1|T, S)
      const mb = m.expand([B, H, m.shape[2]!, S]).reshape([B * H, m.shape[2]!, S]);
      bias = bias ? mb.add(bias).clamp(minValue(q.dtype), null) : mb;
    }
    const scores = bias ? torch.baddbmm(bias.expand([B * H, T, S]), q3, kT, 1, scale) : q3.bmm(kT).mul(scale); // (B*H, T, S)
    const probs = scores.softmax(-1, scores.dtype === "bfloat16" ? "float32" : null).to(v.dtype);
    const dropped = p > 0 ? torch.dropout(probs, p, true) : probs;
    const context = dropped.bmm(v.reshape([B * H, S, v.shape[3]!])).view([B, H, T, v.shape[3]!]);
    return options.returnProbs ? { context, probs: probs.view([B, H, T, S]) } : { context };
  });
}

/**
 * attention() with the heads merged: context (B, T, H·D), the layout the output projection
 * reads. In inference (no gradient, no dropout, no probabilities asked for), float32 or
 * bfloat16 on the CPU, it runs as one native pass per (batch, head) that reads q, k and v
 * through their strides and writes the merged context once (torch.attentionInference); in
 * float32 training, as the same pass with dropout and a backward of its own
 * (torch.attentionTrain); otherwise it is attention() followed by mergeHeads.
 */
export function attentionMerged(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: { mask?: Tensor | null; causal?: boolean; dropout?: number; training?: boolean; returnProbs?: boolean; scale?: number } = {},
): { context: Tensor; probs?: Tensor } {
  const p = options.training ? options.dropout ?? 0 : 0;
  const dtype = q.dtype;
  const fused =
    torch.attentionKernels()[dtype === "bfloat16" ? 1 : 0] &&
    !options.returnProbs &&
    p === 0 &&
    q.device === "cpu" &&
    (dtype === "float32" || dtype === "bfloat16") &&
    k.dtype === dtype &&
    v.dtype === dtype &&
    !(torch.isGradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad));
  const scale = options.scale ?? 1 / Math.sqrt(q.shape[q.ndim - 1]!);
  if (fused) return { context: torch.attentionInference(q, k, v, options.mask ?? null, options.causal ?? false, scale) };
  // training, float32: the same pass with dropout drawn from a seed, and its own backward
  const trainable = torch.attentionKernels()[0] && !options.returnProbs && q.device === "cpu" && dtype === "float32" && k.dtype === dtype && v.dtype === dtype && !options.mask?.requiresGrad;
  if (trainable) return { context: torch.attentionTrain(q, k, v, options.mask ?? null, options.causal ?? false, scale, p) };
  const r = attention(q, k, v, options);
  return { context: mergeHeads(r.context), ...(r.probs ? { probs: r.probs } : {}) };
}

// Rotary position embeddings (Su et al. 2021, RoFormer) in Hugging Face's rotate_half layout:
// a head vector's two halves (not interleaved pairs) rotate together, as Llama, Mistral and
// Qwen2 checkpoints expect. Shared model code (STYLE 15): any rotary model imports it.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/** How positions are stretched for contexts longer than training (Hugging Face's rope_scaling); linear only. */
export interface RotaryScaling {
  kind: "linear";
  factor: number;
}

/**
 * The rotation frequencies 1 / theta^(2i / D), i < D/2, as float32 (D/2): computed in float32
 * with the same operations as Hugging Face's LlamaRotaryEmbedding, so the angles agree bit for bit.
 */
export function inverseFrequencies(headDim: number, theta: number): Tensor {
  if (headDim % 2 !== 0) throw new RangeError(`rotary embeddings need an even head size, got ${headDim}`);
  return torch.scope(() => {
    const exponent = torch.arange(0, headDim, 2, { dtype: "float32" }).div(headDim);
    return torch.full([headDim / 2], theta, { dtype: "float32" }).pow(exponent).reciprocal();
  });
}

/** cos and sin of each position's angles, (B, 1, T, D): the tables every layer of one forward shares. */
export interface RotaryTables {
  cos: Tensor;
  sin: Tensor;
}

/**
 * The rotation tables for positions (B, T) int64: angle = position · inverse frequency, the D/2
 * angles repeated for the two halves (cat(freqs, freqs)), float32; (B, 1, T, D) to broadcast over heads.
 */
export function rotaryTables(positions: Tensor, invFreq: Tensor, scaling: RotaryScaling | null = null): RotaryTables {
  return torch.scope(() => {
    let t = positions.float(); // (B, T)
    if (scaling) t = t.div(scaling.factor); // linear scaling: positions squeezed into the trained range
    const freqs = t.unsqueeze(-1).mul(invFreq); // (B, T, D/2)
    const emb = torch.cat([freqs, freqs], -1).unsqueeze(1); // (B, 1, T, D)
    return { cos: emb.cos(), sin: emb.sin() };
  });
}

/** (x1, x2) -> (-x2, x1) over the last dimension's halves. */
export function rotateHalf(x: Tensor): Tensor {
  return torch.scope(() => {
    const D = x.shape[x.ndim - 1]!;
    const [x1, x2] = x.split(D / 2, -1) as [Tensor, Tensor];
    return torch.cat([x2.neg(), x1], -1);
  });
}

/** x · cos + rotate_half(x) · sin, for x (B, H, T, D) and tables (B, 1, T, D). */
export function applyRotary(x: Tensor, tables: RotaryTables): Tensor {
  return torch.scope(() => {
    const cos = tables.cos.dtype === x.dtype ? tables.cos : tables.cos.to(x.dtype);
    const sin = tables.sin.dtype === x.dtype ? tables.sin : tables.sin.to(x.dtype);
    return x.mul(cos).add(rotateHalf(x).mul(sin));
  });
}

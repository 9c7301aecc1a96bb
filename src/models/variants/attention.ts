// The attention switch (attention=softmax | local | performer): full softmax attention, the
// same restricted to a window of nearby keys, or FAVOR+ linear attention (src/nn/performer.ts).
// Positions enter here too: rotary turns q and k, alibi and relative biases arrive in the mask.
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { Dropout, Linear, Module, applyRotary, attentionMerged, linearMany, mergeHeads, minValue, splitHeads } from "../../nn/index.js";
import { PerformerAttention } from "../../nn/performer.js";
import type { LmforgeConfig } from "./config.js";
import type { PositionContext } from "./positions.js";

/** One layer's view of a forward: built once by the model, shared by every layer. */
export interface AttentionContext {
  positions: PositionContext;
  /** (B, S) 1 = token, 0 = padding, as given; the Performer masks keys with it. */
  padding: Tensor | null;
  /** Additive, broadcastable to (B, H, T, S): padding, position bias and window together; null for none. */
  mask: Tensor | null;
  causal: boolean;
  returnProbs: boolean;
}

/**
 * attention=local as an additive (1, 1, T, S) mask: query i (position S - T + i) sees keys j with
 * |i - j| <= window, and j <= i too when causal. The scores outside the band are still computed
 * (one GEMM, exact, and what the kernels here run fastest); a blocked kernel could skip them.
 */
export function localWindowMask(T: number, S: number, window: number, causal: boolean, dtype: torch.DType = "float32", device = "cpu"): Tensor {
  return torch.scope(() => {
    const past = S - T;
    const ones = torch.ones([T, S], { dtype: "bool", device: device as "cpu" });
    const allowed = ones.tril(past + (causal ? 0 : window)).logicalAnd(ones.triu(past - window));
    return torch.zeros([T, S], { dtype, device: device as "cpu" }).maskedFill(allowed.logicalNot(), minValue(dtype)).view([1, 1, T, S]);
  });
}

/** Multi-head self-attention: query, key, value and output projections around the chosen kind. */
export class SelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  output: Linear;
  dropout: Dropout;
  performer: PerformerAttention | null;

  constructor(readonly config: LmforgeConfig, causal: boolean) {
    super();
    const { hidden_size: C, use_bias: bias } = config;
    this.query = new Linear(C, C, { bias });
    this.key = new Linear(C, C, { bias });
    this.value = new Linear(C, C, { bias });
    this.output = new Linear(C, C, { bias });
    this.dropout = new Dropout(config.hidden_dropout_prob);
    const headDim = C / config.num_attention_heads;
    const features = { ...(config.performer_features !== null ? { numFeatures: config.performer_features } : {}), ...(config.performer_redraw_every !== null ? { redrawEvery: config.performer_redraw_every } : {}) };
    this.performer = config.attention === "performer" ? new PerformerAttention({ headDim, causal, ...features }) : null;
  }

  /** x (B, T, C) -> (B, T, C), and the probabilities (B, H, T, S) when asked for (softmax kinds only). */
  forward(x: Tensor, ctx: AttentionContext): { out: Tensor; probs?: Tensor } {
    const H = this.config.num_attention_heads;
    const [q0, k0, v0] = linearMany(x, [this.query, this.key, this.value]) as [Tensor, Tensor, Tensor];
    let q = splitHeads(q0, H); // (B, H, T, D)
    let k = splitHeads(k0, H);
    const v = splitHeads(v0, H);
    if (ctx.positions.rope) {
      q = applyRotary(q, ctx.positions.rope);
      k = applyRotary(k, ctx.positions.rope);
    }
    if (this.performer) {
      if (ctx.returnProbs) throw new Error("attention=performer computes no attention probabilities (outputAttentions)");
      return { out: this.dropout.forward(this.output.forward(mergeHeads(this.performer.forward(q, k, v, ctx.padding)))) };
    }
    const r = attentionMerged(q, k, v, { mask: ctx.mask, causal: ctx.causal, dropout: this.config.attention_probs_dropout_prob, training: this.training, returnProbs: ctx.returnProbs }); // (B, T, C)
    return { out: this.dropout.forward(this.output.forward(r.context)), ...(r.probs ? { probs: r.probs } : {}) };
  }
}

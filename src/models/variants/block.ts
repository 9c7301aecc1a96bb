// One configurable Transformer block, composed from the switches: the norm placement around
// each residual sublayer (norms.ts), the attention kind (attention.ts), the feed-forward kind
// (feedforward.ts), and the convolution module of hybrid blocks (src/nn/conv.ts) before the
// attention, beside it (summed), or instead of it (a convolution-only layer).
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { Module } from "../../nn/index.js";
import { ConvModule } from "../../nn/conv.js";
import { SelfAttention } from "./attention.js";
import type { AttentionContext } from "./attention.js";
import { FeedForward } from "./feedforward.js";
import { makeNorm, residual } from "./norms.js";
import type { Norm } from "./norms.js";
import type { LmforgeConfig } from "./config.js";

/**
 * A block of kind "attention" (attention, with the convolution before or beside it when
 * conv=before|parallel) or "conv" (the convolution in the attention's place), then the
 * feed-forward. Each sublayer has its norm; sandwich adds a second one on the branch.
 */
export class TransformerBlock extends Module {
  attention: SelfAttention | null;
  attention_norm: Norm | null;
  attention_post_norm: Norm | null;
  conv: ConvModule | null;
  /** The convolution's own norm, where it is a sublayer of its own (conv=before, or a conv-only block). */
  conv_norm: Norm | null;
  conv_post_norm: Norm | null;
  ffn: FeedForward;
  ffn_norm: Norm;
  ffn_post_norm: Norm | null;
  private readonly convPlacement: "none" | "before" | "parallel" | "only";

  constructor(readonly config: LmforgeConfig, readonly kind: "attention" | "conv", causal: boolean) {
    super();
    const sandwich = config.norm === "sandwich";
    this.convPlacement = kind === "conv" ? "only" : config.conv;
    const hasAttention = kind === "attention";
    this.attention = hasAttention ? new SelfAttention(config, causal) : null;
    this.attention_norm = hasAttention ? makeNorm(config) : null;
    this.attention_post_norm = hasAttention && sandwich ? makeNorm(config) : null;
    const ownConv = this.convPlacement === "before" || this.convPlacement === "only";
    this.conv = this.convPlacement === "none" ? null : new ConvModule({ hidden: config.hidden_size, kernelSize: config.conv_kernel, causal: config.conv_causal ?? causal, dropout: config.hidden_dropout_prob });
    this.conv_norm = ownConv ? makeNorm(config) : null;
    this.conv_post_norm = ownConv && sandwich ? makeNorm(config) : null;
    this.ffn = new FeedForward(config);
    this.ffn_norm = makeNorm(config);
    this.ffn_post_norm = sandwich ? makeNorm(config) : null;
  }

  /** x (B, T, C) -> (B, T, C), and the attention probabilities when asked for. */
  forward(x: Tensor, ctx: AttentionContext): { out: Tensor; probs?: Tensor } {
    // a scope per layer frees its intermediates as soon as it is done (autograd keeps what backward needs)
    return torch.scope(() => {
      const placement = this.config.norm;
      let h = x;
      let probs: Tensor | undefined;
      if (this.conv_norm) h = residual(placement, h, this.conv_norm, this.conv_post_norm, (y) => this.conv!.forward(y, ctx.padding));
      if (this.attention) {
        h = residual(placement, h, this.attention_norm!, this.attention_post_norm, (y) => {
          const a = this.attention!.forward(y, ctx);
          probs = a.probs;
          // conv=parallel: the convolution reads the same normed input and its output is summed with the attention's
          return this.convPlacement === "parallel" ? a.out.add(this.conv!.forward(y, ctx.padding)) : a.out;
        });
      }
      h = residual(placement, h, this.ffn_norm, this.ffn_post_norm, (y) => this.ffn.forward(y));
      return { out: h, ...(probs ? { probs } : {}) };
    });
  }
}

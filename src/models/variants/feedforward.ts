// The feed-forward switch (ffn=gelu | relu | swiglu | geglu): two-layer MLPs and the gated
// variants of Shazeer 2020, "GLU Variants Improve Transformer".
import type { Tensor } from "../../torch/index.js";
import { Dropout, Linear, Module } from "../../nn/index.js";
import type { LmforgeConfig } from "./config.js";

/**
 * ffn=gelu|relu: down(act(up(x))); ffn=swiglu|geglu: down(act(gate(x)) · up(x)), act SiLU or
 * GELU. intermediate_size is the hidden width of both kinds (a gated FFN has a third matrix:
 * Llama takes 2/3 of 4C to keep the count, which is the config's to choose).
 */
export class FeedForward extends Module {
  up: Linear;
  gate: Linear | null;
  down: Linear;
  dropout: Dropout;
  private readonly act: (x: Tensor) => Tensor;

  constructor(readonly config: LmforgeConfig) {
    super();
    const { hidden_size: C, intermediate_size: I, use_bias: bias } = config;
    const gated = config.ffn === "swiglu" || config.ffn === "geglu";
    this.up = new Linear(C, I, { bias });
    this.gate = gated ? new Linear(C, I, { bias }) : null;
    this.down = new Linear(I, C, { bias });
    this.dropout = new Dropout(config.hidden_dropout_prob);
    this.act = config.ffn === "relu" ? (x) => x.relu() : config.ffn === "swiglu" ? (x) => x.silu() : (x) => x.gelu();
  }

  /** (B, T, C) -> (B, T, C) */
  forward(x: Tensor): Tensor {
    const h = this.gate ? this.act(this.gate.forward(x)).mul(this.up.forward(x)) : this.act(this.up.forward(x)); // (B, T, I)
    return this.dropout.forward(this.down.forward(h));
  }
}

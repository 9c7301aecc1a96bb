// The position switch (positions=learned | rotary | alibi | relative | none): where order
// enters the model. learned adds a table to the embeddings (model.ts); rotary turns queries and
// keys (src/nn/rotary.ts); alibi and relative add a per-head bias to the attention scores; none
// leaves order to causal masking or convolutions. Each forward builds one PositionContext that
// every layer shares.
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { Embedding, Module, inverseFrequencies, rotaryTables } from "../../nn/index.js";
import type { RotaryTables } from "../../nn/index.js";
import { relativePositionBucket } from "../t5.js";
import type { LmforgeConfig } from "./config.js";

/** What the attention of every layer reads about positions in one forward. */
export interface PositionContext {
  /** rotary: cos and sin tables (B|1, 1, T, D) for queries and keys. */
  rope: RotaryTables | null;
  /** alibi, relative: an additive score bias (1, H, T, S). */
  bias: Tensor | null;
}

/**
 * ALiBi's head slopes (Press et al. 2022, "Train Short, Test Long", and their reference code):
 * for n a power of 2, the geometric sequence starting at 2^(-8/n) with that ratio (8 heads:
 * 1/2, 1/4, ..., 1/256); otherwise the slopes of the largest power of 2 below n, m, followed by
 * every other slope of 2m heads, from the first, until there are n.
 */
export function alibiSlopes(heads: number): number[] {
  const powerOf2 = (n: number): number[] => {
    const start = 2 ** (-8 / n);
    return Array.from({ length: n }, (_, i) => start ** (i + 1));
  };
  if (Number.isInteger(Math.log2(heads))) return powerOf2(heads);
  const m = 2 ** Math.floor(Math.log2(heads));
  return [...powerOf2(m), ...alibiSlopes(2 * m).filter((_, i) => i % 2 === 0).slice(0, heads - m)];
}

/**
 * ALiBi's bias (1, H, T, S): -slope_h · |i - j| for query i and key j. For a decoder this is the
 * paper's -slope · (i - j) on every key it sees; for an encoder the distance counts both ways
 * (the symmetric form the bidirectional follow-ups use).
 */
export function alibiBias(slopes: number[], T: number, S: number, device = "cpu"): Tensor {
  return torch.scope(() => {
    const dev = { device: device as "cpu" };
    const query = torch.arange(S - T, S, 1, dev).view([T, 1]);
    const key = torch.arange(0, S, 1, dev).view([1, S]);
    const distance = key.sub(query).abs().float(); // (T, S)
    const m = torch.tensor(slopes, { dtype: "float32" }).to(device as "cpu").view([slopes.length, 1, 1]);
    return distance.unsqueeze(0).mul(m).neg().unsqueeze(0); // (1, H, T, S)
  });
}

/** T5's relative position bias: a learned scalar per head and distance bucket, added to the scores (one table shared by every layer, as T5). */
export class RelativePositionBias extends Module {
  relative_attention_bias: Embedding;

  constructor(readonly config: LmforgeConfig, readonly bidirectional: boolean) {
    super();
    this.relative_attention_bias = new Embedding(config.relative_attention_num_buckets, config.num_attention_heads);
  }

  /** (1, H, T, S) for T queries that are the last T of S positions. */
  forward(T: number, S: number, device = "cpu"): Tensor {
    return torch.scope(() => {
      const dev = { device: device as "cpu" };
      const query = torch.arange(S - T, S, 1, dev).view([T, 1]);
      const key = torch.arange(0, S, 1, dev).view([1, S]);
      const buckets = relativePositionBucket(key.sub(query), this.bidirectional, this.config.relative_attention_num_buckets, this.config.relative_attention_max_distance); // (T, S)
      return this.relative_attention_bias.forward(buckets).permute([2, 0, 1]).unsqueeze(0); // (1, H, T, S)
    });
  }
}

/** Rotary tables for positions (B|1, T): rotate_half layout, as Llama (src/nn/rotary.ts). */
export function rotaryFor(config: LmforgeConfig, positions: Tensor): RotaryTables {
  return torch.scope(() => rotaryTables(positions, inverseFrequencies(config.hidden_size / config.num_attention_heads, config.rope_theta).to(positions.device as "cpu")));
}

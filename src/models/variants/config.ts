// The configurable block's config (model_type "lmforge"): the sizes every Transformer has, and
// the switches that pick each part of a block. config.json holds them key for key, beside the
// sizes, and `lmforge pretrain --arch key=value,...` sets the same keys (parseArch). Every
// combination that cannot work is refused here, naming both keys, before anything is allocated.
import { ConfigError, parseConfig, requireDivides, requirePositive } from "../config.js";
import type { Schema } from "../config.js";

export const NORM_PLACEMENTS = ["post", "pre", "sandwich"] as const;
export const NORM_TYPES = ["layernorm", "rmsnorm"] as const;
export const POSITIONS = ["learned", "rotary", "alibi", "relative", "none"] as const;
export const FEED_FORWARDS = ["gelu", "relu", "swiglu", "geglu"] as const;
export const ATTENTIONS = ["softmax", "local", "performer"] as const;
export const CONV_PLACEMENTS = ["none", "before", "parallel"] as const;

export interface LmforgeConfig {
  readonly model_type: "lmforge";
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly hidden_dropout_prob: number;
  readonly attention_probs_dropout_prob: number;
  readonly max_position_embeddings: number;
  /** Segment embeddings (BERT's sentence A/B); 0 for none. */
  readonly type_vocab_size: number;
  readonly initializer_range: number;
  readonly layer_norm_eps: number;
  readonly pad_token_id: number | null;
  /** Biases in the attention and feed-forward projections (Llama has none). */
  readonly use_bias: boolean;
  readonly tie_word_embeddings: boolean;
  readonly norm: (typeof NORM_PLACEMENTS)[number];
  readonly norm_type: (typeof NORM_TYPES)[number];
  readonly positions: (typeof POSITIONS)[number];
  readonly rope_theta: number;
  readonly relative_attention_num_buckets: number;
  readonly relative_attention_max_distance: number;
  readonly ffn: (typeof FEED_FORWARDS)[number];
  readonly attention: (typeof ATTENTIONS)[number];
  /** attention=local: each query sees the keys at most this many positions away. */
  readonly window: number | null;
  /** attention=performer: random features per head (null: the module's default). */
  readonly performer_features: number | null;
  /** attention=performer: draw new random features every this many training forwards (null: the module's default). */
  readonly performer_redraw_every: number | null;
  readonly conv: (typeof CONV_PLACEMENTS)[number];
  readonly conv_kernel: number;
  /** Whether the convolution sees only the past; null follows `causal`. */
  readonly conv_causal: boolean | null;
  /** Every Nth layer (N, 2N, ...) is convolution-only, without attention; 0 for none. */
  readonly conv_only_layers: number;
  /** ALBERT's cross-layer sharing: the layers split into this many groups of one shared block each; null shares nothing. */
  readonly share_groups: number | null;
  /** ALBERT's factorised embeddings: tokens embed in this size and are projected to hidden_size; null embeds in hidden_size. */
  readonly embedding_size: number | null;
  /** Causal self-attention (a decoder); null lets the head decide (LmforgeForCausalLM: true, the others: false). */
  readonly causal: boolean | null;
  readonly classifier_dropout?: number | null;
  readonly id2label?: Record<string, string>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Sizes and switches default to BERT's (post-LayerNorm, learned positions, GELU, softmax), so a
// bare config is a BERT encoder; each switch is one key away.
export const LMFORGE_SCHEMA: Schema = {
  vocab_size: { type: "int", default: 30522 },
  hidden_size: { type: "int", default: 768 },
  num_hidden_layers: { type: "int", default: 12 },
  num_attention_heads: { type: "int", default: 12 },
  intermediate_size: { type: "int", default: 3072 },
  hidden_dropout_prob: { type: "number", default: 0.1 },
  attention_probs_dropout_prob: { type: "number", default: 0.1 },
  max_position_embeddings: { type: "int", default: 512 },
  type_vocab_size: { type: "int", default: 2 },
  initializer_range: { type: "number", default: 0.02 },
  layer_norm_eps: { type: "number", default: 1e-12 },
  pad_token_id: { type: "int?", default: 0 },
  use_bias: { type: "bool", default: true },
  tie_word_embeddings: { type: "bool", default: true },
  norm: { type: "string", default: "post" },
  norm_type: { type: "string", default: "layernorm" },
  positions: { type: "string", default: "learned" },
  rope_theta: { type: "number", default: 10000 },
  // T5's defaults
  relative_attention_num_buckets: { type: "int", default: 32 },
  relative_attention_max_distance: { type: "int", default: 128 },
  ffn: { type: "string", default: "gelu" },
  attention: { type: "string", default: "softmax" },
  window: { type: "int?", default: null },
  performer_features: { type: "int?", default: null },
  performer_redraw_every: { type: "int?", default: null },
  conv: { type: "string", default: "none" },
  // Conformer's kernel is 31 at 4x subsampled audio; 7 suits text
  conv_kernel: { type: "int", default: 7 },
  conv_causal: { type: "bool?", default: null },
  conv_only_layers: { type: "int", default: 0 },
  share_groups: { type: "int?", default: null },
  embedding_size: { type: "int?", default: null },
  causal: { type: "bool?", default: null },
};

function oneOf(where: string, key: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) throw new ConfigError(`${where}: ${key} must be one of ${allowed.join(", ")}, got "${value}"`);
}

/** Refuses a combination of two keys, naming both. */
function conflict(where: string, a: string, b: string, why: string): never {
  throw new ConfigError(`${where}: ${a} does not go with ${b}: ${why}`);
}

/** Validates a config.json's keys (unknown ones refused), fills defaults, and refuses the combinations that cannot work. */
export function lmforgeConfig(raw: Record<string, unknown> = {}, where = "config"): LmforgeConfig {
  const c = parseConfig<LmforgeConfig>(raw, LMFORGE_SCHEMA, "lmforge", where);
  requirePositive(where, { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_attention_heads: c.num_attention_heads, num_hidden_layers: c.num_hidden_layers, intermediate_size: c.intermediate_size, max_position_embeddings: c.max_position_embeddings, conv_kernel: c.conv_kernel });
  requireDivides(where, c.num_attention_heads, c.hidden_size);
  oneOf(where, "norm", c.norm, NORM_PLACEMENTS);
  oneOf(where, "norm_type", c.norm_type, NORM_TYPES);
  oneOf(where, "positions", c.positions, POSITIONS);
  oneOf(where, "ffn", c.ffn, FEED_FORWARDS);
  oneOf(where, "attention", c.attention, ATTENTIONS);
  oneOf(where, "conv", c.conv, CONV_PLACEMENTS);
  if (c.type_vocab_size < 0) throw new ConfigError(`${where}: type_vocab_size must be >= 0, got ${c.type_vocab_size}`);
  if (c.conv_only_layers < 0) throw new ConfigError(`${where}: conv_only_layers must be >= 0, got ${c.conv_only_layers}`);
  if (c.embedding_size !== null) requirePositive(where, { embedding_size: c.embedding_size });
  const headDim = c.hidden_size / c.num_attention_heads;
  if (c.positions === "rotary" && headDim % 2 !== 0) conflict(where, "positions=rotary", `hidden_size / num_attention_heads = ${headDim}`, "rotary embeddings turn pairs of dimensions, the head size must be even");
  // the Performer never forms the T x S score matrix that these biases are added to
  if (c.attention === "performer" && (c.positions === "relative" || c.positions === "alibi")) conflict(where, `positions=${c.positions}`, "attention=performer", "the bias is added to attention scores, which FAVOR+ never computes (use rotary, learned or none)");
  if (c.attention === "local" && c.window === null) throw new ConfigError(`${where}: attention=local needs window (the farthest key a query sees)`);
  if (c.attention === "local" && c.window !== null && c.window < 1) throw new ConfigError(`${where}: window must be >= 1, got ${c.window}`);
  if (c.attention !== "local" && c.window !== null) conflict(where, `window=${c.window}`, `attention=${c.attention}`, "a window applies to attention=local only");
  if (c.attention !== "performer" && c.performer_features !== null) conflict(where, `performer_features=${c.performer_features}`, `attention=${c.attention}`, "random features apply to attention=performer only");
  if (c.attention !== "performer" && c.performer_redraw_every !== null) conflict(where, `performer_redraw_every=${c.performer_redraw_every}`, `attention=${c.attention}`, "random features apply to attention=performer only");
  if (c.causal === true && c.conv_causal === false) conflict(where, "causal=true", "conv_causal=false", "a convolution over both sides would show a decoder the tokens it predicts");
  if (c.conv_only_layers > c.num_hidden_layers) conflict(where, `conv_only_layers=${c.conv_only_layers}`, `num_hidden_layers=${c.num_hidden_layers}`, "no layer would be convolution-only");
  if (c.share_groups !== null) {
    if (c.share_groups < 1 || c.num_hidden_layers % c.share_groups !== 0) conflict(where, `share_groups=${c.share_groups}`, `num_hidden_layers=${c.num_hidden_layers}`, "the layers must split into equal groups");
    const kinds = layerKinds(c);
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const first = groupOf(c, i) * (c.num_hidden_layers / c.share_groups);
      if (kinds[i] !== kinds[first]) conflict(where, `share_groups=${c.share_groups}`, `conv_only_layers=${c.conv_only_layers}`, `layers ${first} and ${i} share a block but one is convolution-only`);
    }
  }
  return c;
}

/** Whether each layer is a full block ("attention") or convolution-only: layers N, 2N, ... counting from 1. */
export function layerKinds(c: Pick<LmforgeConfig, "num_hidden_layers" | "conv_only_layers">): ("attention" | "conv")[] {
  return Array.from({ length: c.num_hidden_layers }, (_, i) => (c.conv_only_layers > 0 && (i + 1) % c.conv_only_layers === 0 ? "conv" : "attention"));
}

/** The shared block a layer runs (ALBERT: layer i of L in G groups uses block floor(i / (L / G))); the layer itself without sharing. */
export function groupOf(c: Pick<LmforgeConfig, "num_hidden_layers" | "share_groups">, layer: number): number {
  return c.share_groups === null ? layer : Math.floor(layer / (c.num_hidden_layers / c.share_groups));
}

/** The config with `causal` decided: a head that needs one direction sets it; the other direction is an error naming the head. */
export function withCausal(config: LmforgeConfig, causal: boolean, head: string): LmforgeConfig {
  if (config.causal !== null && config.causal !== causal) throw new ConfigError(`${head} needs causal=${causal}, the config has causal=${config.causal}`);
  const c = { ...config, causal };
  if (causal && c.conv_causal === false) conflict(head, "causal=true", "conv_causal=false", "a convolution over both sides would show a decoder the tokens it predicts");
  return c;
}

/**
 * `--arch norm=pre,positions=rotary,ffn=swiglu` -> config keys with their schema's types
 * (numbers, true/false, null); an unknown key is an error listing the known ones.
 */
export function parseArch(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq).trim();
    const value = eq < 0 ? "" : part.slice(eq + 1).trim();
    const spec = LMFORGE_SCHEMA[key];
    if (!spec || key === "vocab_size") throw new Error(`unknown key "${key}"; known: ${Object.keys(LMFORGE_SCHEMA).filter((k) => k !== "vocab_size").join(", ")}`);
    if (eq < 0 || value === "") throw new Error(`"${part}" must be KEY=VALUE, e.g. norm=pre`);
    const base = spec.type.replace("?", "");
    if (spec.type.endsWith("?") && value === "null") out[key] = null;
    else if (base === "int" || base === "number") {
      const n = Number(value);
      if (!Number.isFinite(n) || (base === "int" && !Number.isInteger(n))) throw new Error(`${key} must be ${base === "int" ? "an integer" : "a number"}, got "${value}"`);
      out[key] = n;
    } else if (base === "bool") {
      if (value !== "true" && value !== "false") throw new Error(`${key} must be true or false, got "${value}"`);
      out[key] = value === "true";
    } else out[key] = value;
  }
  return out;
}

// T5 (Raffel et al. 2020), as Hugging Face's modeling_t5.py (v4.30): an encoder-decoder with
// pre-norm residual blocks, T5's RMS layer norm (no bias, no mean subtraction), attention
// without the 1/sqrt(d) scale, relative position buckets whose bias table lives in block 0 of
// each stack and serves every block of it, relu (v1.0) or gated-gelu (v1.1) feed-forward, and
// an LM head tied to the shared embeddings (rescaled by d_model^-0.5) or not. Attribute names
// are the checkpoint's tensor names. Leaves first: buckets -> attention -> sublayers -> block ->
// stack -> models. Shared generation (greedy, beam search) lives outside model files; the model
// serves it with `encoderOutputs` (the encoder runs once) and a key/value cache.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, Embedding, Linear, MASK_MIN, Module, ModuleList, RMSNorm, activation, attentionMerged, init, splitHeads, tieWeight } from "../nn/index.js";
import { ConfigError, parseConfig, requirePositive } from "./config.js";
import type { Schema } from "./config.js";
import { runGenerate } from "./generation.js";
import { tokenLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";

export interface T5Config {
  readonly model_type: "t5";
  readonly vocab_size: number;
  readonly d_model: number;
  /** The size of one attention head; num_heads * d_kv may differ from d_model. */
  readonly d_kv: number;
  readonly d_ff: number;
  readonly num_layers: number;
  readonly num_decoder_layers: number;
  readonly num_heads: number;
  readonly relative_attention_num_buckets: number;
  readonly relative_attention_max_distance: number;
  readonly dropout_rate: number;
  readonly layer_norm_epsilon: number;
  readonly initializer_factor: number;
  /** "relu" (T5 v1.0), "gated-gelu" (v1.1), or "ACT" / "gated-ACT" for another activation. */
  readonly feed_forward_proj: string;
  readonly dense_act_fn: string;
  readonly is_gated_act: boolean;
  readonly tie_word_embeddings: boolean;
  readonly pad_token_id: number;
  readonly eos_token_id: number;
  readonly decoder_start_token_id: number;
  readonly n_positions: number | null;
  readonly [key: string]: unknown;
}

// Defaults are T5Config's (t5-small); pad 0, eos 1 and decoder start 0 as every T5 checkpoint.
export const T5_SCHEMA: Schema = {
  vocab_size: { type: "int", default: 32128 },
  d_model: { type: "int", default: 512 },
  d_kv: { type: "int", default: 64 },
  d_ff: { type: "int", default: 2048 },
  num_layers: { type: "int", default: 6 },
  num_decoder_layers: { type: "int?", default: null },
  num_heads: { type: "int", default: 8 },
  relative_attention_num_buckets: { type: "int", default: 32 },
  relative_attention_max_distance: { type: "int", default: 128 },
  dropout_rate: { type: "number", default: 0.1 },
  layer_norm_epsilon: { type: "number", default: 1e-6 },
  initializer_factor: { type: "number", default: 1.0 },
  feed_forward_proj: { type: "string", default: "relu" },
  dense_act_fn: { type: "string?", default: null },
  is_gated_act: { type: "bool?", default: null },
  tie_word_embeddings: { type: "bool", default: true },
  is_encoder_decoder: { type: "bool", default: true },
  use_cache: { type: "bool", default: true },
  pad_token_id: { type: "int", default: 0 },
  eos_token_id: { type: "int", default: 1 },
  decoder_start_token_id: { type: "int", default: 0 },
  // older checkpoints (t5-small on the Hub) carry the length they were trained at; a limit only when given
  n_positions: { type: "int?", default: null },
};

/** Parses a T5 config.json; dense_act_fn and is_gated_act follow feed_forward_proj unless given, as in T5Config. */
export function t5Config(raw: Record<string, unknown> = {}, where = "config"): T5Config {
  const c = parseConfig<T5Config>(raw, T5_SCHEMA, "t5", where);
  requirePositive(where, { vocab_size: c.vocab_size, d_model: c.d_model, d_kv: c.d_kv, d_ff: c.d_ff, num_layers: c.num_layers, num_heads: c.num_heads, relative_attention_num_buckets: c.relative_attention_num_buckets, relative_attention_max_distance: c.relative_attention_max_distance });
  const parts = c.feed_forward_proj.split("-");
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== "gated")) {
    throw new ConfigError(`${where}: feed_forward_proj "${c.feed_forward_proj}" must be "ACT" or "gated-ACT" (relu, gated-gelu, ...)`);
  }
  const act = c.dense_act_fn ?? (c.feed_forward_proj === "gated-gelu" ? "gelu_new" : parts[parts.length - 1]!);
  activation(act);
  return { ...c, num_decoder_layers: c.num_decoder_layers ?? c.num_layers, dense_act_fn: act, is_gated_act: c.is_gated_act ?? parts[0] === "gated" };
}

/**
 * T5's relative position buckets for int64 distances key - query: half the buckets exact, the
 * rest log-spaced up to maxDistance, then the last bucket. Bidirectional (encoder): half the
 * buckets per sign; otherwise (decoder) only keys at or before the query count. Computed with
 * float32 tensor ops in Hugging Face's order, so that distances on a bucket edge agree.
 */
export function relativePositionBucket(relative: Tensor, bidirectional: boolean, numBuckets: number, maxDistance: number): Tensor {
  return torch.scope(() => {
    let n = numBuckets;
    let offset: Tensor | null = null;
    let distance: Tensor;
    if (bidirectional) {
      n = Math.floor(n / 2);
      offset = relative.gt(0).to("int64").mul(n);
      distance = relative.abs();
    } else {
      distance = relative.clamp(null, 0).neg();
    }
    const maxExact = Math.floor(n / 2);
    const large = distance.float().div(maxExact).log().div(Math.log(maxDistance / maxExact)).mul(n - maxExact).to("int64").add(maxExact).clamp(null, n - 1);
    const bucket = torch.where(distance.lt(maxExact), distance, large);
    return offset ? bucket.add(offset) : bucket;
  });
}

/** Multi-head attention without scaling; block 0 of a stack also holds the relative position bias table. */
export class T5Attention extends Module {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  relative_attention_bias: Embedding | null;

  constructor(readonly config: T5Config, readonly isDecoder: boolean, hasRelativeBias: boolean) {
    super();
    const inner = config.num_heads * config.d_kv;
    this.q = new Linear(config.d_model, inner, { bias: false });
    this.k = new Linear(config.d_model, inner, { bias: false });
    this.v = new Linear(config.d_model, inner, { bias: false });
    this.o = new Linear(inner, config.d_model, { bias: false });
    this.relative_attention_bias = hasRelativeBias ? new Embedding(config.relative_attention_num_buckets, config.num_heads) : null;
  }

  /** The (1, H, T, S) bias of queries at positions start..start+T-1 over keys 0..S-1. */
  positionBias(start: number, T: number, S: number, device: string): Tensor {
    if (!this.relative_attention_bias) throw new Error("T5Attention: this layer has no relative_attention_bias (only block 0 of a stack does)");
    const table = this.relative_attention_bias;
    return torch.scope(() => {
      const query = torch.arange(start, start + T, 1, { device: device as "cpu" }).unsqueeze(1);
      const key = torch.arange(0, S, 1, { device: device as "cpu" }).unsqueeze(0);
      const c = this.config;
      const buckets = relativePositionBucket(key.sub(query), !this.isDecoder, c.relative_attention_num_buckets, c.relative_attention_max_distance); // (T, S)
      return table.forward(buckets).permute([2, 0, 1]).unsqueeze(0); // (1, H, T, S)
    });
  }

  /**
   * x (B, T, C) attends to itself (with the cache `past` prepended) or, given `source`, to the
   * encoder output (B, S, C) (or to `past`, its keys and values from an earlier step). bias is
   * additive, (B|1, H|1, T|1, S): position bias plus mask. present is the cache to keep.
   */
  forward(x: Tensor, bias: Tensor | null, options: { source?: Tensor; past?: [Tensor, Tensor] | null; returnProbs?: boolean } = {}): { out: Tensor; present: [Tensor, Tensor]; probs?: Tensor } {
    const H = this.config.num_heads;
    const q = splitHeads(this.q.forward(x), H); // (B, H, T, D)
    let k: Tensor, v: Tensor;
    if (options.source && options.past) {
      [k, v] = options.past; // cross-attention: the encoder's keys and values, computed once
    } else {
      const from = options.source ?? x;
      k = splitHeads(this.k.forward(from), H);
      v = splitHeads(this.v.forward(from), H);
      if (options.past) {
        k = torch.cat([options.past[0], k], 2);
        v = torch.cat([options.past[1], v], 2);
      }
    }
    const r = attentionMerged(q, k, v, { mask: bias, scale: 1, dropout: this.config.dropout_rate, training: this.training, returnProbs: options.returnProbs ?? false });
    return { out: this.o.forward(r.context), present: [k, v], ...(r.probs ? { probs: r.probs } : {}) };
  }
}

export class T5LayerSelfAttention extends Module {
  SelfAttention: T5Attention;
  layer_norm: RMSNorm;
  dropout: Dropout;

  constructor(config: T5Config, isDecoder: boolean, hasRelativeBias: boolean) {
    super();
    this.SelfAttention = new T5Attention(config, isDecoder, hasRelativeBias);
    this.layer_norm = new RMSNorm(config.d_model, config.layer_norm_epsilon);
    this.dropout = new Dropout(config.dropout_rate);
  }
}

export class T5LayerCrossAttention extends Module {
  EncDecAttention: T5Attention;
  layer_norm: RMSNorm;
  dropout: Dropout;

  constructor(config: T5Config) {
    super();
    this.EncDecAttention = new T5Attention(config, true, false);
    this.layer_norm = new RMSNorm(config.d_model, config.layer_norm_epsilon);
    this.dropout = new Dropout(config.dropout_rate);
  }
}

/** wo(act(wi(x))): T5 v1.0's feed-forward (relu). */
export class T5DenseActDense extends Module {
  wi: Linear;
  wo: Linear;
  dropout: Dropout;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: T5Config) {
    super();
    this.wi = new Linear(config.d_model, config.d_ff, { bias: false });
    this.wo = new Linear(config.d_ff, config.d_model, { bias: false });
    this.dropout = new Dropout(config.dropout_rate);
    this.act = activation(config.dense_act_fn);
  }

  forward(x: Tensor): Tensor {
    return this.wo.forward(this.dropout.forward(this.act(this.wi.forward(x))));
  }
}

/** wo(act(wi_0(x)) * wi_1(x)): T5 v1.1's gated feed-forward (gelu_new, the tanh approximation). */
export class T5DenseGatedActDense extends Module {
  wi_0: Linear;
  wi_1: Linear;
  wo: Linear;
  dropout: Dropout;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: T5Config) {
    super();
    this.wi_0 = new Linear(config.d_model, config.d_ff, { bias: false });
    this.wi_1 = new Linear(config.d_model, config.d_ff, { bias: false });
    this.wo = new Linear(config.d_ff, config.d_model, { bias: false });
    this.dropout = new Dropout(config.dropout_rate);
    this.act = activation(config.dense_act_fn);
  }

  forward(x: Tensor): Tensor {
    return this.wo.forward(this.dropout.forward(this.act(this.wi_0.forward(x)).mul(this.wi_1.forward(x))));
  }
}

export class T5LayerFF extends Module {
  DenseReluDense: T5DenseActDense | T5DenseGatedActDense;
  layer_norm: RMSNorm;
  dropout: Dropout;

  constructor(config: T5Config) {
    super();
    this.DenseReluDense = config.is_gated_act ? new T5DenseGatedActDense(config) : new T5DenseActDense(config);
    this.layer_norm = new RMSNorm(config.d_model, config.layer_norm_epsilon);
    this.dropout = new Dropout(config.dropout_rate);
  }

  forward(h: Tensor): Tensor {
    return h.add(this.dropout.forward(this.DenseReluDense.forward(this.layer_norm.forward(h))));
  }
}

/** What a block needs besides its input: biases (position bias + mask), the encoder output, caches. */
interface BlockContext {
  selfBias: Tensor | null;
  crossBias: Tensor | null;
  encoder: Tensor | null;
  selfPast: [Tensor, Tensor] | null;
  crossPast: [Tensor, Tensor] | null;
  returnProbs: boolean;
}

/** Pre-norm residual sublayers: self-attention, cross-attention (decoder), feed-forward. */
export class T5Block extends Module {
  layer: ModuleList;

  constructor(readonly config: T5Config, readonly isDecoder: boolean, hasRelativeBias: boolean) {
    super();
    const layers: Module[] = [new T5LayerSelfAttention(config, isDecoder, hasRelativeBias)];
    if (isDecoder) layers.push(new T5LayerCrossAttention(config));
    layers.push(new T5LayerFF(config));
    this.layer = new ModuleList(layers);
  }

  forward(x: Tensor, ctx: BlockContext): { out: Tensor; self: [Tensor, Tensor]; cross?: [Tensor, Tensor]; probs?: Tensor } {
    return torch.scope(() => {
      const sa = this.layer.at(0) as T5LayerSelfAttention;
      const a = sa.SelfAttention.forward(sa.layer_norm.forward(x), ctx.selfBias, { past: ctx.selfPast, returnProbs: ctx.returnProbs });
      let h = x.add(sa.dropout.forward(a.out));
      let cross: [Tensor, Tensor] | undefined;
      if (this.isDecoder && ctx.encoder) {
        const ca = this.layer.at(1) as T5LayerCrossAttention;
        const c = ca.EncDecAttention.forward(ca.layer_norm.forward(h), ctx.crossBias, { source: ctx.encoder, past: ctx.crossPast });
        h = h.add(ca.dropout.forward(c.out));
        cross = c.present;
      }
      const out = (this.layer.at(-1) as T5LayerFF).forward(h);
      return { out, self: a.present, ...(cross ? { cross } : {}), ...(a.probs ? { probs: a.probs } : {}) };
    });
  }
}

export interface T5StackInputs {
  inputIds?: Tensor;
  inputsEmbeds?: Tensor;
  attentionMask?: Tensor;
  /** Decoder: the encoder's output (B, S, C) and its padding mask (B, S). */
  encoderHiddenStates?: Tensor;
  encoderAttentionMask?: Tensor;
  /** Decoder: per layer, self-attention then cross-attention keys and values. */
  pastKeyValues?: [Tensor, Tensor][];
  useCache?: boolean;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
}

/** A stack of blocks (the encoder, or the decoder with cross-attention), then final_layer_norm. */
export class T5Stack extends Module {
  embed_tokens: Embedding;
  block: ModuleList<T5Block>;
  final_layer_norm: RMSNorm;
  dropout: Dropout;

  constructor(readonly config: T5Config, shared: Embedding, readonly isDecoder: boolean) {
    super();
    this.embed_tokens = new Embedding(config.vocab_size, config.d_model);
    tieWeight(this.embed_tokens, shared.weight); // Hugging Face's embed_tokens is the shared table
    const n = isDecoder ? config.num_decoder_layers : config.num_layers;
    this.block = new ModuleList(Array.from({ length: n }, (_, i) => new T5Block(config, isDecoder, i === 0)));
    this.final_layer_norm = new RMSNorm(config.d_model, config.layer_norm_epsilon);
    this.dropout = new Dropout(config.dropout_rate);
  }

  forward(input: T5StackInputs): ModelOutput {
    const words = input.inputsEmbeds ?? this.embed_tokens.forward(input.inputIds!); // (B, T, C), not scaled
    const [B, T] = words.shape as [number, number];
    const past = input.pastKeyValues;
    const P = past ? past[0]![0].shape[2]! : 0; // positions already in the self-attention cache
    const S = P + T;
    // The additive mask, 0 or float32's lowest, as get_extended_attention_mask: padding, and
    // in the decoder the causal mask (query i sees keys up to P + i).
    let keep = input.attentionMask ? input.attentionMask.to("float32").view([B, 1, 1, S]) : null;
    if (this.isDecoder) {
      const causal = torch.ones([T, S], { device: words.device as "cpu" }).tril(P).view([1, 1, T, S]);
      keep = keep ? causal.mul(keep) : causal;
    }
    const mask = keep ? keep.rsub(1).mul(MASK_MIN) : null;
    // block 0's relative bias, with the mask added, serves every block of the stack
    const first = (this.block.at(0).layer.at(0) as T5LayerSelfAttention).SelfAttention;
    const position = first.positionBias(P, T, S, words.device);
    const selfBias = mask ? position.add(mask) : position;
    const encoder = input.encoderHiddenStates ?? null;
    const crossBias = encoder && input.encoderAttentionMask ? input.encoderAttentionMask.to("float32").view([B, 1, 1, encoder.shape[1]!]).rsub(1).mul(MASK_MIN) : null;
    let h = this.dropout.forward(words);
    const hidden: Tensor[] = [];
    const attns: Tensor[] = [];
    const presents: [Tensor, Tensor][] = [];
    let i = 0;
    for (const block of this.block) {
      hidden.push(h);
      const step = this.isDecoder && encoder ? 2 : 1; // the decoder's cache has a cross-attention pair per layer
      const r = block.forward(h, { selfBias, crossBias, encoder, selfPast: past?.[step * i] ?? null, crossPast: step === 2 ? past?.[2 * i + 1] ?? null : null, returnProbs: input.outputAttentions ?? false });
      h = r.out;
      presents.push(r.self, ...(r.cross ? [r.cross] : []));
      if (r.probs) attns.push(r.probs);
      i++;
    }
    h = this.dropout.forward(this.final_layer_norm.forward(h));
    hidden.push(h);
    return {
      logits: h,
      lastHiddenState: h,
      ...(input.useCache ? { pastKeyValues: presents } : {}),
      ...(input.outputHiddenStates ? { hiddenStates: hidden } : {}),
      ...(input.outputAttentions ? { attentions: attns } : {}),
    };
  }
}

/** Hugging Face's T5 _init_weights: every scale follows initializer_factor and the layer's fan-in. */
function initT5Weights(model: Module, c: T5Config): void {
  const f = c.initializer_factor;
  for (const [name, m] of model.namedModules()) {
    if (m instanceof RMSNorm) torch.noGrad(() => m.weight.fill_(f));
    else if (m instanceof T5Attention) {
      init.normal_(m.q.weight, 0, f * (c.d_model * c.d_kv) ** -0.5);
      init.normal_(m.k.weight, 0, f * c.d_model ** -0.5);
      init.normal_(m.v.weight, 0, f * c.d_model ** -0.5);
      init.normal_(m.o.weight, 0, f * (c.num_heads * c.d_kv) ** -0.5);
      if (m.relative_attention_bias) init.normal_(m.relative_attention_bias.weight, 0, f * c.d_model ** -0.5);
    } else if (m instanceof T5DenseActDense || m instanceof T5DenseGatedActDense) {
      for (const wi of m instanceof T5DenseActDense ? [m.wi] : [m.wi_0, m.wi_1]) init.normal_(wi.weight, 0, f * c.d_model ** -0.5);
      init.normal_(m.wo.weight, 0, f * c.d_ff ** -0.5);
    } else if (name === "shared" || name === "lm_head") {
      init.normal_((m as Embedding | Linear).weight, 0, f);
    }
  }
}

/** decoder_input_ids from labels: shifted right, decoder_start_token_id first, -100 replaced by the pad id. */
export function shiftRight(labels: Tensor, config: Pick<T5Config, "decoder_start_token_id" | "pad_token_id">): Tensor {
  return torch.scope(() => {
    const [B, T] = labels.shape as [number, number];
    const start = torch.full([B, 1], config.decoder_start_token_id, { dtype: "int64", device: labels.device as "cpu" });
    const shifted = torch.cat([start, labels.narrow(1, 0, T - 1)], 1);
    return shifted.maskedFill(shifted.eq(-100), config.pad_token_id);
  });
}

function encode(encoder: T5Stack, input: ModelInputs): ModelOutput {
  if (!input.inputIds && !input.inputsEmbeds) throw new Error("t5: give inputIds or inputsEmbeds (or encoderOutputs)");
  return encoder.forward({
    ...(input.inputIds ? { inputIds: input.inputIds } : {}),
    ...(input.inputsEmbeds ? { inputsEmbeds: input.inputsEmbeds } : {}),
    ...(input.attentionMask ? { attentionMask: input.attentionMask } : {}),
    outputHiddenStates: input.outputHiddenStates ?? false,
    outputAttentions: input.outputAttentions ?? false,
  });
}

/** The encoder alone (sentence embeddings, classification on top): last hidden state (B, T, C). */
export class T5EncoderModel extends Module {
  shared: Embedding;
  encoder: T5Stack;

  constructor(readonly config: T5Config) {
    super();
    this.shared = new Embedding(config.vocab_size, config.d_model);
    this.encoder = new T5Stack(config, this.shared, false);
    initT5Weights(this, config);
  }

  forward(input: ModelInputs): ModelOutput {
    return encode(this.encoder, input);
  }
}

/**
 * Encoder then decoder: the encoder runs unless encoderOutputs is given; the decoder reads
 * decoderInputIds (or labels shifted right) under a causal mask, with the cache when given.
 */
function encodeDecode(model: { encoder: T5Stack; decoder: T5Stack; config: T5Config }, input: ModelInputs): { enc: ModelOutput | null; encoderStates: Tensor; dec: ModelOutput } {
  const enc = input.encoderOutputs ? null : encode(model.encoder, input);
  const encoderStates = input.encoderOutputs ?? enc!.lastHiddenState;
  const decoderIds = input.decoderInputIds ?? (input.labels ? shiftRight(input.labels, model.config) : undefined);
  if (!decoderIds) throw new Error("t5: give decoderInputIds or labels (the decoder's inputs are the labels shifted right)");
  const dec = model.decoder.forward({
    inputIds: decoderIds,
    ...(input.decoderAttentionMask ? { attentionMask: input.decoderAttentionMask } : {}),
    encoderHiddenStates: encoderStates,
    ...(input.attentionMask ? { encoderAttentionMask: input.attentionMask } : {}),
    ...(input.pastKeyValues ? { pastKeyValues: input.pastKeyValues } : {}),
    useCache: input.useCache ?? false,
    outputHiddenStates: input.outputHiddenStates ?? false,
    outputAttentions: input.outputAttentions ?? false,
  });
  return { enc, encoderStates, dec };
}

function encoderFields(r: { enc: ModelOutput | null; encoderStates: Tensor }): Partial<ModelOutput> {
  return { encoderLastHiddenState: r.encoderStates, ...(r.enc?.hiddenStates ? { encoderHiddenStates: r.enc.hiddenStates } : {}) };
}

/** The bare encoder-decoder: the decoder's last hidden state (B, T, C). */
export class T5Model extends Module {
  shared: Embedding;
  encoder: T5Stack;
  decoder: T5Stack;

  constructor(readonly config: T5Config) {
    super();
    this.shared = new Embedding(config.vocab_size, config.d_model);
    this.encoder = new T5Stack(config, this.shared, false);
    this.decoder = new T5Stack(config, this.shared, true);
    initT5Weights(this, config);
  }

  forward(input: ModelInputs): ModelOutput {
    const r = encodeDecode(this, input);
    return { ...r.dec, ...encoderFields(r) };
  }
}

/** Sequence to sequence: logits (B, T, V) over the decoder positions; with labels, the loss (-100 ignored). */
export class T5ForConditionalGeneration extends Module {
  shared: Embedding;
  encoder: T5Stack;
  decoder: T5Stack;
  lm_head: Linear;

  constructor(readonly config: T5Config) {
    super();
    this.shared = new Embedding(config.vocab_size, config.d_model);
    this.encoder = new T5Stack(config, this.shared, false);
    this.decoder = new T5Stack(config, this.shared, true);
    this.lm_head = new Linear(config.d_model, config.vocab_size, { bias: false });
    if (config.tie_word_embeddings) tieWeight(this.lm_head, this.shared.weight);
    initT5Weights(this, config);
  }

  forward(input: ModelInputs): ModelOutput {
    const r = encodeDecode(this, input);
    let h = r.dec.lastHiddenState;
    // Mesh TensorFlow's rescale of a head tied to the embeddings
    if (this.config.tie_word_embeddings) h = h.mul(this.config.d_model ** -0.5);
    const logits = this.lm_head.forward(h);
    return { ...r.dec, ...encoderFields(r), logits, ...(input.labels ? { loss: tokenLoss(logits, input.labels) } : {}) };
  }

  /**
   * Generates from encoder inputs (B, S) and returns the decoder's tokens (B, 1 + new), starting
   * with decoder_start_token_id: src/generate's generate(this, inputIds, options) (attentionMask, numBeams, ...).
   */
  generate(inputIds: Tensor, options: object = {}): Tensor {
    return runGenerate(this, inputIds, options);
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** T5 in the architecture registry (architectures.ts registers it). */
export const architecture: ArchitectureEntry = {
  modelType: "t5",
  // T5's heads hold the stacks themselves (no base-model attribute): every parameter is body
  prefix: "t5",
  parseConfig: (raw, where) => t5Config(raw, where),
  // checkpoints before transformers 4.x saved a cross-attention bias table that nothing reads
  ignore: /^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$/,
  classes: {
    T5Model: ["base", c(T5Model)],
    T5EncoderModel: ["base", c(T5EncoderModel)],
    T5ForConditionalGeneration: ["seq2seq-lm", c(T5ForConditionalGeneration)],
  },
  embeddings: /^shared\./,
  // freeze:N freezes blocks 0..N-1 of both stacks
  layers: /^(?:encoder|decoder)\.block\.(\d+)\./,
  loraTargets: /(SelfAttention|EncDecAttention)\.(q|v)$/,
  wordEmbeddings: "shared",
  dropoutKeys: ["dropout_rate"],
  // relative positions have no table to outgrow; a config's n_positions, where given, is the limit
  positions: { key: "n_positions", needed: (n) => n },
  presets: {
    // Tay et al. 2021, "Scale Efficiently": T5-Tiny
    "t5-tiny": { d_model: 256, d_ff: 1024, d_kv: 64, num_layers: 4, num_heads: 4, feed_forward_proj: "relu" },
    // Raffel et al. 2020, Table 14: T5-Small
    "t5-small": { d_model: 512, d_ff: 2048, d_kv: 64, num_layers: 6, num_heads: 8, feed_forward_proj: "relu" },
  },
};

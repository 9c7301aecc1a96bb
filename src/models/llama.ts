// Llama (Touvron et al. 2023), as Hugging Face's modeling_llama.py: a pre-RMSNorm decoder with
// rotary positions (rotate_half layout, src/nn/rotary.ts), a SwiGLU MLP, no biases, grouped-query
// attention (num_key_value_heads) and an LM head tied or not. Two switches cover its close
// relatives: sliding_window (Mistral: each query sees that many most recent positions) and
// attention_bias (q/k/v/o biases, as Hugging Face's LlamaConfig has it; Qwen2 keeps the q/k/v
// ones only, and its zero o_proj bias then computes the same). Attribute names are the
// checkpoint's tensor names. Leaves first: attention -> MLP -> decoder layer -> model -> heads.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Embedding, checkpointLayers, checkpointingActive, Linear, Module, ModuleList, RMSNorm, activation, additiveMask, applyRotary, attentionMerged, initTransformerWeights, inverseFrequencies, linearMany, minValue, rotaryTables, slidingWindowMask, splitHeads, tieWeight } from "../nn/index.js";
import type { KVCache, RotaryScaling, RotaryTables } from "../nn/index.js";
import { ConfigError, numLabels, parseConfig, requireDivides, requirePositive } from "./config.js";
import type { Schema } from "./config.js";
import { runGenerate } from "./generation.js";
import { causalLmLoss, sequenceLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";

export interface LlamaConfig {
  readonly model_type: "llama";
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  /** Filled in: num_attention_heads when the file has none (multi-head attention). */
  readonly num_key_value_heads: number;
  /** Filled in: hidden_size / num_attention_heads when the file has none. */
  readonly head_dim: number;
  readonly hidden_act: string;
  readonly max_position_embeddings: number;
  readonly initializer_range: number;
  readonly rms_norm_eps: number;
  readonly rope_theta: number;
  readonly rope_scaling: Record<string, unknown> | null;
  readonly attention_bias: boolean;
  readonly attention_dropout: number;
  readonly mlp_bias: boolean;
  readonly sliding_window: number | null;
  readonly tie_word_embeddings: boolean;
  readonly bos_token_id: number | null;
  readonly eos_token_id: number | number[] | null;
  readonly pad_token_id: number | null;
  readonly id2label?: Record<string, string>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Defaults are Hugging Face's LlamaConfig's (Llama-7B's sizes).
export const LLAMA_SCHEMA: Schema = {
  vocab_size: { type: "int", default: 32000 },
  hidden_size: { type: "int", default: 4096 },
  intermediate_size: { type: "int", default: 11008 },
  num_hidden_layers: { type: "int", default: 32 },
  num_attention_heads: { type: "int", default: 32 },
  num_key_value_heads: { type: "int?", default: null },
  head_dim: { type: "int?", default: null },
  hidden_act: { type: "string", default: "silu" },
  max_position_embeddings: { type: "int", default: 2048 },
  initializer_range: { type: "number", default: 0.02 },
  rms_norm_eps: { type: "number", default: 1e-6 },
  rope_theta: { type: "number", default: 10000 },
  rope_scaling: { type: "object?", default: null },
  attention_bias: { type: "bool", default: false },
  attention_dropout: { type: "number", default: 0 },
  mlp_bias: { type: "bool", default: false },
  // Mistral's key; absent from Llama's own configs (full attention)
  sliding_window: { type: "int?", default: null },
  // tensor-parallel pretraining splits (Llama 2): the same function computed in slices; accepted, computed whole
  pretraining_tp: { type: "int", default: 1 },
  tie_word_embeddings: { type: "bool", default: false },
  bos_token_id: { type: "int?", default: 1 },
  eos_token_id: { type: "any", default: 2 },
  pad_token_id: { type: "int?", default: null },
};

/** Validates a config.json's keys (unknown ones refused) and fills Hugging Face's defaults, num_key_value_heads and head_dim. */
export function llamaConfig(raw: Record<string, unknown> = {}, where = "config"): LlamaConfig {
  const c = parseConfig<Record<string, unknown> & LlamaConfig>(raw, LLAMA_SCHEMA, "llama", where);
  requirePositive(where, { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_attention_heads: c.num_attention_heads, num_hidden_layers: c.num_hidden_layers, intermediate_size: c.intermediate_size, rope_theta: c.rope_theta });
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  requirePositive(where, { num_key_value_heads: kvHeads });
  if (c.num_attention_heads % kvHeads !== 0) throw new ConfigError(`${where}: num_attention_heads (${c.num_attention_heads}) is not a multiple of num_key_value_heads (${kvHeads})`);
  if (c.head_dim === null) requireDivides(where, c.num_attention_heads, c.hidden_size);
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new ConfigError(`${where}: head_dim ${headDim} must be even (rotary embeddings turn pairs of dimensions)`);
  if (c.sliding_window !== null && c.sliding_window < 1) throw new ConfigError(`${where}: sliding_window must be >= 1 or null, got ${c.sliding_window}`);
  const eos = c.eos_token_id;
  if (!(eos === null || Number.isInteger(eos) || (Array.isArray(eos) && eos.every((e) => Number.isInteger(e))))) throw new ConfigError(`${where}: eos_token_id must be an integer, a list of integers or null, got ${JSON.stringify(eos)}`);
  rotaryScaling(c.rope_scaling, where);
  activation(c.hidden_act);
  return { ...c, num_key_value_heads: kvHeads, head_dim: headDim };
}

/** rope_scaling as the rotary module takes it: null, or linear with its factor (other kinds are refused by name). */
function rotaryScaling(raw: Record<string, unknown> | null, where = "config"): RotaryScaling | null {
  if (raw === null) return null;
  const kind = raw.rope_type ?? raw.type;
  if (kind === "default") return null;
  if (kind !== "linear") throw new ConfigError(`${where}: rope_scaling of type ${JSON.stringify(kind)} is not supported (linear only)`);
  const factor = raw.factor;
  if (typeof factor !== "number" || !(factor > 0)) throw new ConfigError(`${where}: rope_scaling.factor must be a positive number, got ${JSON.stringify(factor)}`);
  return { kind: "linear", factor };
}

/** One decoder layer's view of the forward: the shared rotary tables and the attention mask. */
interface LayerContext {
  rope: RotaryTables;
  /** Additive, (B, 1, 1, S) padding or (B|1, 1, T, S) with the sliding window; null for none. */
  mask: Tensor | null;
  /** Whether the attention kernel adds the causal mask itself (false when `mask` holds it). */
  causal: boolean;
  cache: KVCache | null;
  returnProbs: boolean;
}

/** Self-attention with rotary positions; keys and values have num_key_value_heads heads, each serving a group of queries. */
export class LlamaAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  private readonly heads: number;
  private readonly kvHeads: number;

  constructor(readonly config: LlamaConfig, readonly layerIdx: number) {
    super();
    const { hidden_size: C, head_dim: D, attention_bias: bias } = config;
    this.heads = config.num_attention_heads;
    this.kvHeads = config.num_key_value_heads;
    this.q_proj = new Linear(C, this.heads * D, { bias });
    this.k_proj = new Linear(C, this.kvHeads * D, { bias });
    this.v_proj = new Linear(C, this.kvHeads * D, { bias });
    this.o_proj = new Linear(this.heads * D, C, { bias });
  }

  forward(x: Tensor, ctx: LayerContext): { out: Tensor; probs?: Tensor } {
    const [q0, k0, v0] = linearMany(x, [this.q_proj, this.k_proj, this.v_proj]) as [Tensor, Tensor, Tensor];
    const q = applyRotary(splitHeads(q0, this.heads), ctx.rope); // (B, H, T, D)
    let k = applyRotary(splitHeads(k0, this.kvHeads), ctx.rope); // (B, Hkv, T, D)
    let v = splitHeads(v0, this.kvHeads); // (B, Hkv, T, D)
    if (ctx.cache) [k, v] = ctx.cache.update(this.layerIdx, k, v); // (B, Hkv, S, D)
    const r = attentionMerged(q, repeatKv(k, this.heads), repeatKv(v, this.heads), {
      mask: ctx.mask,
      causal: ctx.causal,
      dropout: this.config.attention_dropout,
      training: this.training,
      returnProbs: ctx.returnProbs,
    });
    return { out: this.o_proj.forward(r.context), ...(r.probs ? { probs: r.probs } : {}) };
  }
}

/** (B, Hkv, S, D) -> (B, H, S, D), each key/value head repeated for the H / Hkv query heads of its group. */
export function repeatKv(x: Tensor, heads: number): Tensor {
  const [B, Hkv, S, D] = x.shape as [number, number, number, number];
  if (Hkv === heads) return x;
  return x.unsqueeze(2).expand([B, Hkv, heads / Hkv, S, D]).reshape([B, heads, S, D]);
}

/** SwiGLU: down_proj(act(gate_proj(x)) · up_proj(x)). */
export class LlamaMLP extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: LlamaConfig) {
    super();
    const { hidden_size: C, intermediate_size: I, mlp_bias: bias } = config;
    this.gate_proj = new Linear(C, I, { bias });
    this.up_proj = new Linear(C, I, { bias });
    this.down_proj = new Linear(I, C, { bias });
    this.act = activation(config.hidden_act);
  }

  forward(x: Tensor): Tensor {
    const [gate, up] = linearMany(x, [this.gate_proj, this.up_proj]) as [Tensor, Tensor]; // (B, T, I) each
    return this.down_proj.forward(this.act(gate).mul(up));
  }
}

/** x + attn(input_layernorm(x)), then + mlp(post_attention_layernorm(x)): pre-RMSNorm. */
export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;

  constructor(config: LlamaConfig, layerIdx: number) {
    super();
    this.self_attn = new LlamaAttention(config, layerIdx);
    this.mlp = new LlamaMLP(config);
    this.input_layernorm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
    this.post_attention_layernorm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
  }

  forward(x: Tensor, ctx: LayerContext): { out: Tensor; probs?: Tensor } {
    return torch.scope(() => {
      const a = this.self_attn.forward(this.input_layernorm.forward(x), ctx);
      const h = x.add(a.out);
      return { out: h.add(this.mlp.forward(this.post_attention_layernorm.forward(h))), ...(a.probs ? { probs: a.probs } : {}) };
    });
  }
}

/** The bare decoder: last hidden state (B, T, C), after the final norm. */
export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: ModuleList<LlamaDecoderLayer>;
  norm: RMSNorm;
  private readonly scaling: RotaryScaling | null;

  constructor(readonly config: LlamaConfig) {
    super();
    const pad = config.pad_token_id;
    this.embed_tokens = new Embedding(config.vocab_size, config.hidden_size, pad !== null && pad >= 0 && pad < config.vocab_size ? { paddingIdx: pad } : {});
    this.layers = new ModuleList(Array.from({ length: config.num_hidden_layers }, (_, i) => new LlamaDecoderLayer(config, i)));
    this.norm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
    this.scaling = rotaryScaling(config.rope_scaling);
    initTransformerWeights(this, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    if (!input.inputIds && !input.inputsEmbeds) throw new Error("llama: give inputIds or inputsEmbeds");
    let h = input.inputsEmbeds ?? this.embed_tokens.forward(input.inputIds!); // (B, T, C)
    const T = h.shape[1]!;
    const past = input.kvCache?.length ?? 0;
    const S = past + T;
    if (input.attentionMask && input.attentionMask.shape[1] !== S) throw new Error(`llama: attentionMask covers ${input.attentionMask.shape[1]} positions, the cache and input ${S}`);
    // Without position ids, positions count on from the cache, as Hugging Face's arange(past, past + T).
    const positions = input.positionIds ?? torch.arange(past, S, 1, { device: h.device as "cpu" }).unsqueeze(0); // (B|1, T)
    // the inverse frequencies are recomputed (D/2 numbers) rather than loaded: checkpoints' inv_freq buffers are ignored
    const invFreq = inverseFrequencies(this.config.head_dim, this.config.rope_theta).to(h.device as "cpu");
    const ctx: LayerContext = { rope: rotaryTables(positions, invFreq, this.scaling), ...this.mask(input.attentionMask, T, S, h), cache: input.kvCache ?? null, returnProbs: input.outputAttentions ?? false };
    const hidden: Tensor[] = [h];
    const attentions: Tensor[] = [];
    // gradient checkpointing (src/nn/checkpoint.ts): keep each layer's input only
    const checkpointed = checkpointingActive(this) && !ctx.cache && !ctx.returnProbs && !input.outputHiddenStates;
    if (checkpointed) {
      const layerAt = (k: number, x: Tensor, [cos, sin, mask]: readonly (Tensor | null)[]): Tensor => this.layers.at(k).forward(x, { ...ctx, rope: { cos: cos!, sin: sin! }, mask: mask ?? null }).out;
      h = checkpointLayers(this.layers.length, h, [ctx.rope.cos, ctx.rope.sin, ctx.mask], layerAt);
    }
    for (const layer of checkpointed ? [] : this.layers) {
      const r = layer.forward(h, ctx);
      h = r.out;
      hidden.push(h);
      if (r.probs) attentions.push(r.probs);
    }
    h = this.norm.forward(h);
    hidden[hidden.length - 1] = h; // Hugging Face's last hidden state is after the final norm
    return { logits: h, lastHiddenState: h, ...(input.outputHiddenStates ? { hiddenStates: hidden } : {}), ...(input.outputAttentions ? { attentions } : {}) };
  }

  /** Padding (B, S) as an additive mask; with a sliding window narrower than S, the causal window folded in too. */
  private mask(attentionMask: Tensor | undefined, T: number, S: number, like: Tensor): { mask: Tensor | null; causal: boolean } {
    const padding = attentionMask ? additiveMask(attentionMask, like.dtype) : null; // (B, 1, 1, S)
    const window = this.config.sliding_window;
    if (window === null || S <= window) return { mask: padding, causal: true };
    const windowed = slidingWindowMask(T, S, window, like.dtype, like.device); // (1, 1, T, S)
    return { mask: padding ? padding.add(windowed).clamp(minValue(like.dtype), null) : windowed, causal: false };
  }
}

/** Logits over the vocabulary; with labels, the next-token loss (labels are shifted inside). */
export class LlamaForCausalLM extends Module {
  model: LlamaModel;
  lm_head: Linear;

  constructor(readonly config: LlamaConfig) {
    super();
    this.model = new LlamaModel(config);
    this.lm_head = new Linear(config.hidden_size, config.vocab_size, { bias: false });
    initTransformerWeights(this.lm_head, config.initializer_range);
    if (config.tie_word_embeddings) tieWeight(this.lm_head, this.model.embed_tokens.weight);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.model.forward(input);
    const logits = this.lm_head.forward(out.lastHiddenState); // (B, T, V)
    return { ...out, logits, ...(input.labels ? { loss: causalLmLoss(logits, input.labels) } : {}) };
  }

  /** Continues each row of inputIds (B, T) and returns (B, T + new): src/generate's generate(this, inputIds, options). */
  generate(inputIds: Tensor, options: object = {}): Tensor {
    return runGenerate(this, inputIds, options);
  }
}

/** Classifies a sequence from its last non-padding token (the rightmost one: left and right padding alike). */
export class LlamaForSequenceClassification extends Module {
  model: LlamaModel;
  score: Linear;
  readonly numLabels: number;

  constructor(readonly config: LlamaConfig) {
    super();
    this.numLabels = numLabels(config);
    this.model = new LlamaModel(config);
    this.score = new Linear(config.hidden_size, this.numLabels, { bias: false });
    initTransformerWeights(this.score, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.model.forward(input);
    const all = this.score.forward(out.lastHiddenState); // (B, T, L)
    const [B, T] = all.shape as [number, number];
    const pad = this.config.pad_token_id;
    const real = pad !== null && input.inputIds ? input.inputIds.ne(pad) : input.attentionMask ? input.attentionMask.ne(0) : null; // (B, T)
    // the largest index of a real token: argmax of index · real
    const last = real ? torch.arange(0, T, 1, { dtype: "int64" }).mul(real.long()).argmax(1) : torch.full([B], T - 1, { dtype: "int64" });
    const logits = all.gather(1, last.view([B, 1, 1]).expand([B, 1, this.numLabels])).squeeze(1); // (B, L)
    return { ...out, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** Llama in the architecture registry. */
export const architecture: ArchitectureEntry = {
  modelType: "llama",
  prefix: "model",
  parseConfig: (raw, where) => llamaConfig(raw, where),
  // Hugging Face 4.30 to 4.3x saved the rotary inverse frequencies as buffers; they are recomputed
  ignore: /(^|\.)rotary_emb\.inv_freq$/,
  classes: {
    LlamaModel: ["base", c(LlamaModel)],
    LlamaForCausalLM: ["causal-lm", c(LlamaForCausalLM)],
    LlamaForSequenceClassification: ["sequence-classification", c(LlamaForSequenceClassification)],
  },
  embeddings: /^embed_tokens\./,
  layers: /^layers\.(\d+)\./,
  loraTargets: /self_attn\.(q_proj|v_proj)$/,
  wordEmbeddings: "embed_tokens",
  // rotary positions have no table to outgrow; max_position_embeddings is the length trained for
  positions: { key: "max_position_embeddings", needed: (n) => n },
  dropoutKeys: ["attention_dropout"],
  presets: {
    // CPU-sized, grouped-query attention in both (2 query heads per key/value head)
    "llama-tiny": { hidden_size: 128, intermediate_size: 352, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512 },
    "llama-small": { hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 1024 },
    // TinyLlama-1.1B's shape (vocab_size follows the tokenizer; TinyLlama's is 32000)
    tinyllama: { hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000 },
  },
};

// GPT-2 (Radford et al. 2019), as Hugging Face's modeling_gpt2.py: pre-LayerNorm decoder
// with causal attention, learned positions, Conv1D weights stored (in, out), a final ln_f and
// an LM head tied to the token embeddings; generation (src/generate) with a key/value cache.
// Leaves first: attention -> MLP -> block -> model -> heads.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Conv1D, checkpointLayers, checkpointingActive, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, activation, additiveMask, attentionMerged, fusedActivation, init, initTransformerWeights, splitHeads, tieWeight } from "../nn/index.js";
import type { FusedActivation, KVCache } from "../nn/index.js";
import { parseConfig, requireDivides, requirePositive, numLabels } from "./config.js";
import type { Schema } from "./config.js";
import { runGenerate } from "./generation.js";
import { causalLmLoss, sequenceLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";

export interface GPT2Config {
  readonly model_type: "gpt2";
  readonly vocab_size: number;
  readonly n_positions: number;
  readonly n_embd: number;
  readonly n_layer: number;
  readonly n_head: number;
  readonly n_inner: number | null;
  readonly activation_function: string;
  readonly resid_pdrop: number;
  readonly embd_pdrop: number;
  readonly attn_pdrop: number;
  readonly layer_norm_epsilon: number;
  readonly initializer_range: number;
  readonly scale_attn_weights: boolean;
  readonly scale_attn_by_inverse_layer_idx: boolean;
  readonly reorder_and_upcast_attn: boolean;
  readonly bos_token_id: number;
  readonly eos_token_id: number;
  readonly pad_token_id?: number | null;
  readonly id2label?: Record<string, string>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Defaults are gpt2 (small)'s.
export const GPT2_SCHEMA: Schema = {
  vocab_size: { type: "int", default: 50257 },
  n_positions: { type: "int", default: 1024 },
  n_embd: { type: "int", default: 768 },
  n_layer: { type: "int", default: 12 },
  n_head: { type: "int", default: 12 },
  n_inner: { type: "int?", default: null },
  activation_function: { type: "string", default: "gelu_new" },
  resid_pdrop: { type: "number", default: 0.1 },
  embd_pdrop: { type: "number", default: 0.1 },
  attn_pdrop: { type: "number", default: 0.1 },
  layer_norm_epsilon: { type: "number", default: 1e-5 },
  initializer_range: { type: "number", default: 0.02 },
  scale_attn_weights: { type: "bool", default: true },
  scale_attn_by_inverse_layer_idx: { type: "bool", default: false },
  reorder_and_upcast_attn: { type: "bool", default: false },
  bos_token_id: { type: "int", default: 50256 },
  eos_token_id: { type: "int", default: 50256 },
  // the sequence-summary keys of GPT2DoubleHeadsModel, accepted and unused
  summary_type: { type: "string", default: "cls_index" },
  summary_use_proj: { type: "bool", default: true },
  summary_activation: { type: "string?", default: null },
  summary_proj_to_labels: { type: "bool", default: true },
  summary_first_dropout: { type: "number", default: 0.1 },
  n_ctx: { type: "int?", default: null },
};

export function gpt2Config(raw: Record<string, unknown> = {}, where = "config"): GPT2Config {
  const c = parseConfig<GPT2Config>(raw, GPT2_SCHEMA, "gpt2", where);
  requirePositive(where, { vocab_size: c.vocab_size, n_embd: c.n_embd, n_head: c.n_head, n_layer: c.n_layer });
  requireDivides(where, c.n_head, c.n_embd, "n_head", "n_embd");
  activation(c.activation_function);
  return c;
}

export class GPT2Attention extends Module {
  c_attn: Conv1D;
  c_proj: Conv1D;
  resid_dropout: Dropout;

  constructor(readonly config: GPT2Config, readonly layerIdx: number) {
    super();
    this.c_attn = new Conv1D(3 * config.n_embd, config.n_embd);
    this.c_proj = new Conv1D(config.n_embd, config.n_embd);
    this.resid_dropout = new Dropout(config.resid_pdrop);
  }

  forward(x: Tensor, mask: Tensor | null, past: [Tensor, Tensor] | null, returnProbs: boolean, cache: KVCache | null = null): { out: Tensor; present: [Tensor, Tensor]; probs?: Tensor } {
    const c = this.config;
    const [q, k0, v0] = this.c_attn.forward(x).split(c.n_embd, 2) as [Tensor, Tensor, Tensor];
    let k = splitHeads(k0, c.n_head); // (B, H, T, D)
    let v = splitHeads(v0, c.n_head);
    if (cache) {
      [k, v] = cache.update(this.layerIdx, k, v); // (B, H, S, D), written in place
    } else if (past) {
      k = torch.cat([past[0], k], -2);
      v = torch.cat([past[1], v], -2);
    }
    const D = c.n_embd / c.n_head;
    let scale = c.scale_attn_weights ? 1 / Math.sqrt(D) : 1;
    if (c.scale_attn_by_inverse_layer_idx) scale /= this.layerIdx + 1;
    const r = attentionMerged(splitHeads(q, c.n_head), k, v, { mask, causal: true, dropout: c.attn_pdrop, training: this.training, returnProbs, ...(scale === 1 / Math.sqrt(D) ? {} : { scale }) });
    const out = this.resid_dropout.forward(this.c_proj.forward(r.context));
    return { out, present: [k, v], ...(r.probs ? { probs: r.probs } : {}) };
  }
}

export class GPT2MLP extends Module {
  c_fc: Conv1D;
  c_proj: Conv1D;
  dropout: Dropout;
  private readonly act: (x: Tensor) => Tensor;
  private readonly fused: FusedActivation | null;

  constructor(config: GPT2Config) {
    super();
    const inner = config.n_inner ?? 4 * config.n_embd;
    this.c_fc = new Conv1D(inner, config.n_embd);
    this.c_proj = new Conv1D(config.n_embd, inner);
    this.act = activation(config.activation_function);
    this.fused = fusedActivation(config.activation_function);
    this.dropout = new Dropout(config.resid_pdrop);
  }

  forward(x: Tensor): Tensor {
    // the activation applied in place after the GEMM where it can be
    const h = this.fused ? torch.fusedLinear(x, [this.c_fc.weight], [this.c_fc.bias], this.fused, true) : this.act(this.c_fc.forward(x));
    return this.dropout.forward(this.c_proj.forward(h));
  }
}

/** x + attn(ln_1(x)), then + mlp(ln_2(x)): pre-LayerNorm. */
export class GPT2Block extends Module {
  ln_1: LayerNorm;
  attn: GPT2Attention;
  ln_2: LayerNorm;
  mlp: GPT2MLP;

  constructor(config: GPT2Config, layerIdx: number) {
    super();
    this.ln_1 = new LayerNorm(config.n_embd, config.layer_norm_epsilon);
    this.attn = new GPT2Attention(config, layerIdx);
    this.ln_2 = new LayerNorm(config.n_embd, config.layer_norm_epsilon);
    this.mlp = new GPT2MLP(config);
  }

  forward(x: Tensor, mask: Tensor | null, past: [Tensor, Tensor] | null, returnProbs: boolean, cache: KVCache | null = null): { out: Tensor; present: [Tensor, Tensor]; probs?: Tensor } {
    return torch.scope(() => {
      const a = this.attn.forward(this.ln_1.forward(x), mask, past, returnProbs, cache);
      const h = x.add(a.out);
      return { out: h.add(this.mlp.forward(this.ln_2.forward(h))), present: a.present, ...(a.probs ? { probs: a.probs } : {}) };
    });
  }
}

export interface GPT2Inputs extends ModelInputs {
  /** The key/value cache from the previous call (generation). */
  pastKeyValues?: [Tensor, Tensor][];
  useCache?: boolean;
}

export class GPT2Model extends Module {
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  h: ModuleList<GPT2Block>;
  ln_f: LayerNorm;

  constructor(readonly config: GPT2Config) {
    super();
    this.wte = new Embedding(config.vocab_size, config.n_embd);
    this.wpe = new Embedding(config.n_positions, config.n_embd);
    this.drop = new Dropout(config.embd_pdrop);
    this.h = new ModuleList(Array.from({ length: config.n_layer }, (_, i) => new GPT2Block(config, i)));
    this.ln_f = new LayerNorm(config.n_embd, config.layer_norm_epsilon);
    initTransformerWeights(this, config.initializer_range);
    // GPT-2's scaled init of the residual projections: std / sqrt(2 * n_layer)
    for (const [name, p] of this.namedParameters()) {
      if (/c_proj\.weight$/.test(name)) init.normal_(p, 0, config.initializer_range / Math.sqrt(2 * config.n_layer));
    }
  }

  forward(input: GPT2Inputs): ModelOutput {
    if (!input.inputIds && !input.inputsEmbeds) throw new Error("gpt2: give inputIds or inputsEmbeds");
    const words = input.inputsEmbeds ?? this.wte.forward(input.inputIds!); // (B, T, C)
    const T = words.shape[1]!;
    const pastLen = input.kvCache ? input.kvCache.length : input.pastKeyValues ? input.pastKeyValues[0]![0].shape[2]! : 0;
    if (pastLen + T > this.config.n_positions) throw new Error(`gpt2: ${pastLen + T} positions exceed n_positions ${this.config.n_positions}`);
    // Positions count from 0 even for padded rows, as Hugging Face does without position_ids.
    const positions = input.positionIds ?? torch.arange(pastLen, pastLen + T, 1, { device: words.device as "cpu" }).unsqueeze(0);
    let h = this.drop.forward(words.add(this.wpe.forward(positions)));
    const mask = input.attentionMask ? additiveMask(input.attentionMask, h.dtype) : null;
    const hidden: Tensor[] = [h];
    const attns: Tensor[] = [];
    const presents: [Tensor, Tensor][] = [];
    this.h.at(0); // (validates there is at least one layer)
    // gradient checkpointing (src/nn/checkpoint.ts): keep each block's input only
    const checkpointed = checkpointingActive(this) && !input.useCache && !input.pastKeyValues && !input.kvCache && !input.outputHiddenStates && !input.outputAttentions;
    if (checkpointed) h = checkpointLayers(this.h.length, h, [mask], (k, x, [m]) => this.h.at(k).forward(x, m ?? null, null, false).out);
    let i = 0;
    for (const block of checkpointed ? [] : this.h) {
      const r = block.forward(h, mask, input.pastKeyValues?.[i] ?? null, input.outputAttentions ?? false, input.kvCache ?? null);
      h = r.out;
      presents.push(r.present);
      if (r.probs) attns.push(r.probs);
      hidden.push(h);
      i++;
    }
    h = this.ln_f.forward(h);
    hidden[hidden.length - 1] = h; // Hugging Face's last hidden state is after ln_f
    return {
      logits: h,
      lastHiddenState: h,
      ...(input.useCache ? { pastKeyValues: presents } : {}),
      ...(input.outputHiddenStates ? { hiddenStates: hidden } : {}),
      ...(input.outputAttentions ? { attentions: attns } : {}),
    };
  }
}

/** Logits over the vocabulary; with labels, the next-token loss (labels are shifted inside). */
export class GPT2LMHeadModel extends Module {
  transformer: GPT2Model;
  lm_head: Linear;

  constructor(readonly config: GPT2Config) {
    super();
    this.transformer = new GPT2Model(config);
    this.lm_head = new Linear(config.n_embd, config.vocab_size, { bias: false });
    tieWeight(this.lm_head, this.transformer.wte.weight);
  }

  forward(input: GPT2Inputs): ModelOutput {
    const out = this.transformer.forward(input);
    const logits = this.lm_head.forward(out.lastHiddenState);
    return { ...out, logits, ...(input.labels ? { loss: causalLmLoss(logits, input.labels) } : {}) };
  }

  /** Text continuation, (B, T) -> (B, T + new): src/generate's generate(this, inputIds, options). */
  generate(inputIds: Tensor, options: GenerateOptions = {}): Tensor {
    return generate(this, inputIds, options);
  }
}

/** Classifies a sequence from its last non-padding token. */
export class GPT2ForSequenceClassification extends Module {
  transformer: GPT2Model;
  score: Linear;
  readonly numLabels: number;

  constructor(readonly config: GPT2Config) {
    super();
    this.numLabels = numLabels(config);
    this.transformer = new GPT2Model(config);
    this.score = new Linear(config.n_embd, this.numLabels, { bias: false });
    initTransformerWeights(this.score, config.initializer_range);
  }

  forward(input: GPT2Inputs): ModelOutput {
    const out = this.transformer.forward(input);
    const all = this.score.forward(out.lastHiddenState); // (B, T, L)
    const [B, T] = all.shape as [number, number];
    let last: Tensor;
    const pad = this.config.pad_token_id;
    if (pad !== undefined && pad !== null && input.inputIds) {
      // the position before the first pad token, or the last position without one (as Hugging Face)
      last = input.inputIds.eq(pad).long().argmax(1).sub(1).remainder(T);
    } else if (input.attentionMask) {
      last = input.attentionMask.sum(1).sub(1).clamp(0, T - 1); // right padding without a pad id
    } else {
      last = torch.full([B], T - 1, { dtype: "int64" });
    }
    const logits = all.gather(1, last.view([B, 1, 1]).expand([B, 1, this.numLabels])).squeeze(1);
    return { ...out, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

// --- generation -------------------------------------------------------------------------------------

/** The options GPT-2's generate() has always taken; src/generate's GenerateOptions has them all (beams, penalties, ...). */
export interface GenerateOptions {
  maxNewTokens?: number;
  /** Sample instead of taking the most likely token. */
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Stop a row when it produces this token (default: the config's eos_token_id, as Hugging Face). */
  eosTokenId?: number | null;
  /** Use the key/value cache (default true): each step feeds one token. */
  useCache?: boolean;
  [option: string]: unknown;
}

/** Greedy, sampling and beam search for a causal LM, routed to src/generate's generate(). Returns (B, T + new). */
export function generate(model: object, inputIds: Tensor, options: GenerateOptions = {}): Tensor {
  return runGenerate(model, inputIds, options);
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** GPT-2 in the architecture registry: its attention and MLP are Conv1D, which LoRA does not wrap here. */
export const architecture: ArchitectureEntry = {
  modelType: "gpt2",
  prefix: "transformer",
  parseConfig: (raw, where) => gpt2Config(raw, where),
  ignore: /\.attn\.(masked_)?bias$/,
  classes: {
    GPT2Model: ["base", c(GPT2Model)],
    GPT2LMHeadModel: ["causal-lm", c(GPT2LMHeadModel)],
    GPT2ForSequenceClassification: ["sequence-classification", c(GPT2ForSequenceClassification)],
  },
  embeddings: /^(wte|wpe)\./,
  layers: /^h\.(\d+)\./,
  loraTargets: null,
  wordEmbeddings: "wte",
  dropoutKeys: ["resid_pdrop", "embd_pdrop"],
  positions: { key: "n_positions", needed: (n) => n },
  presets: {
    gpt2: { n_embd: 768, n_layer: 12, n_head: 12 },
    "gpt2-medium": { n_embd: 1024, n_layer: 24, n_head: 16 },
  },
};

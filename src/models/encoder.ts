// The BERT-family encoder trunk, shared by BERT, RoBERTa, ALBERT (its embeddings and the
// forward) and ELECTRA: embeddings, post-LayerNorm self-attention layers, the pooler, the
// bare-encoder forward with its shortcuts (firstTokenOnly, lastLayerAtLabels), and the span
// head. One copy here, imported by each model file (STYLE.md 15: shared code lives in a file
// of its own, not inside one model's file that others import). Class names and attribute
// names are Hugging Face's (BertEmbeddings, attention.self.query, ...), which are the
// checkpoints' tensor names for every model of the family.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, Embedding, checkpointLayers, checkpointingActive, LayerNorm, Linear, Module, ModuleList, activation, additiveMask, attentionMerged, fusedActivation, linearMany, splitHeads } from "../nn/index.js";
import type { FusedActivation } from "../nn/index.js";
import type { Schema } from "./config.js";
import { labelPositions } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";

// Defaults are bert-base-uncased's.
export const ENCODER_SCHEMA: Schema = {
  vocab_size: { type: "int", default: 30522 },
  hidden_size: { type: "int", default: 768 },
  num_hidden_layers: { type: "int", default: 12 },
  num_attention_heads: { type: "int", default: 12 },
  intermediate_size: { type: "int", default: 3072 },
  hidden_act: { type: "string", default: "gelu" },
  hidden_dropout_prob: { type: "number", default: 0.1 },
  attention_probs_dropout_prob: { type: "number", default: 0.1 },
  max_position_embeddings: { type: "int", default: 512 },
  type_vocab_size: { type: "int", default: 2 },
  initializer_range: { type: "number", default: 0.02 },
  layer_norm_eps: { type: "number", default: 1e-12 },
  pad_token_id: { type: "int", default: 0 },
  position_embedding_type: { type: "string", default: "absolute" },
};

/** The keys the encoder blocks read: RoBERTa's and ELECTRA's configs have them too. */
export interface EncoderConfig {
  readonly hidden_size: number;
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly hidden_act: string;
  readonly hidden_dropout_prob: number;
  readonly attention_probs_dropout_prob: number;
  readonly layer_norm_eps: number;
  readonly num_hidden_layers: number;
}

export interface EmbeddingsConfig {
  readonly model_type: string;
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly max_position_embeddings: number;
  readonly type_vocab_size: number;
  readonly layer_norm_eps: number;
  readonly hidden_dropout_prob: number;
  readonly pad_token_id: number;
  /** ALBERT and ELECTRA embed in a smaller size, then project. */
  readonly embedding_size?: number;
}

/** word + position + token type embeddings, then LayerNorm and dropout (BERT, ALBERT, ELECTRA). */
export class BertEmbeddings extends Module {
  word_embeddings: Embedding;
  position_embeddings: Embedding;
  token_type_embeddings: Embedding;
  LayerNorm: LayerNorm;
  dropout: Dropout;

  constructor(readonly config: EmbeddingsConfig, options: { positionPaddingIdx?: number } = {}) {
    super();
    const size = config.embedding_size ?? config.hidden_size;
    this.word_embeddings = new Embedding(config.vocab_size, size, { paddingIdx: config.pad_token_id });
    this.position_embeddings = new Embedding(config.max_position_embeddings, size, { paddingIdx: options.positionPaddingIdx ?? -1 });
    this.token_type_embeddings = new Embedding(config.type_vocab_size, size);
    this.LayerNorm = new LayerNorm(size, config.layer_norm_eps);
    this.dropout = new Dropout(config.hidden_dropout_prob);
  }

  /** Position ids for a batch: 0..T-1 (RoBERTa overrides this). */
  protected positionIds(input: ModelInputs, words: Tensor): Tensor {
    const T = words.shape[1]!;
    return torch.arange(0, T, 1, { device: words.device as "cpu" }).unsqueeze(0);
  }

  /** The largest position id a sequence of T tokens can get (RoBERTa counts from padding_idx + 1). */
  protected lastPosition(T: number): number {
    return T - 1;
  }

  forward(input: ModelInputs): Tensor {
    const words = input.inputsEmbeds ?? this.word_embeddings.forward(input.inputIds!); // (B, T, C)
    const [B, T] = words.shape as [number, number];
    // checked by arithmetic, not by reading the ids back (no sync on the hot path); given
    // positionIds out of range fail in the embedding lookup with the op's own message
    if (!input.positionIds && this.lastPosition(T) >= this.config.max_position_embeddings) {
      throw new Error(`${this.config.model_type}: sequence length ${T} needs more than max_position_embeddings (${this.config.max_position_embeddings}) positions`);
    }
    const positions = input.positionIds ?? this.positionIds(input, words);
    const types = input.tokenTypeIds ?? torch.zeros([B, T], { dtype: "int64", device: words.device as "cpu" });
    const x = words.add(this.token_type_embeddings.forward(types)).add(this.position_embeddings.forward(positions));
    return this.dropout.forward(this.LayerNorm.forward(x));
  }
}

export class BertSelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;

  constructor(readonly config: EncoderConfig) {
    super();
    this.query = new Linear(config.hidden_size, config.hidden_size);
    this.key = new Linear(config.hidden_size, config.hidden_size);
    this.value = new Linear(config.hidden_size, config.hidden_size);
  }

  /** select: the rows whose queries are computed (the first token, labelled positions); keys and values of all. */
  forward(x: Tensor, mask: Tensor | null, returnProbs: boolean, select: QuerySelect | null = null): { context: Tensor; probs?: Tensor } {
    const H = this.config.num_attention_heads;
    let q0: Tensor, k0: Tensor, v0: Tensor;
    if (select) {
      q0 = this.query.forward(select(x));
      [k0, v0] = linearMany(x, [this.key, this.value]) as [Tensor, Tensor];
    } else {
      // One GEMM for the three projections (the weights stay separate, as the checkpoint has them).
      [q0, k0, v0] = linearMany(x, [this.query, this.key, this.value]) as [Tensor, Tensor, Tensor];
    }
    const q = splitHeads(q0, H); // (B, H, T, D)
    const k = splitHeads(k0, H);
    const v = splitHeads(v0, H);
    return attentionMerged(q, k, v, { mask, dropout: this.config.attention_probs_dropout_prob, training: this.training, returnProbs }); // (B, T, C)
  }
}

/** dense -> dropout -> LayerNorm(x + residual): BERT's post-LN sublayer output. */
export class BertSelfOutput extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  dropout: Dropout;

  constructor(config: EncoderConfig, inSize = config.hidden_size) {
    super();
    this.dense = new Linear(inSize, config.hidden_size);
    this.LayerNorm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
    this.dropout = new Dropout(config.hidden_dropout_prob);
  }

  forward(h: Tensor, residual: Tensor): Tensor {
    return this.LayerNorm.forward(this.dropout.forward(this.dense.forward(h)).add(residual));
  }
}

export class BertAttention extends Module {
  self: BertSelfAttention;
  output: BertSelfOutput;

  constructor(config: EncoderConfig) {
    super();
    this.self = new BertSelfAttention(config);
    this.output = new BertSelfOutput(config);
  }

  forward(x: Tensor, mask: Tensor | null, returnProbs: boolean, select: QuerySelect | null = null): { out: Tensor; probs?: Tensor } {
    const r = this.self.forward(x, mask, returnProbs, select);
    return { out: this.output.forward(r.context, select ? select(x) : x), ...(r.probs ? { probs: r.probs } : {}) };
  }
}

export class BertIntermediate extends Module {
  dense: Linear;
  private readonly act: (x: Tensor) => Tensor;
  private readonly fused: FusedActivation | null;

  constructor(config: EncoderConfig) {
    super();
    this.dense = new Linear(config.hidden_size, config.intermediate_size);
    this.act = activation(config.hidden_act);
    this.fused = fusedActivation(config.hidden_act);
  }

  forward(x: Tensor): Tensor {
    // GELU applied in place after the GEMM where it can be (no second tokens x intermediate tensor).
    return this.fused ? linearMany(x, [this.dense], this.fused)[0]! : this.act(this.dense.forward(x));
  }
}

export class BertLayer extends Module {
  attention: BertAttention;
  intermediate: BertIntermediate;
  output: BertSelfOutput;

  constructor(config: EncoderConfig) {
    super();
    this.attention = new BertAttention(config);
    this.intermediate = new BertIntermediate(config);
    this.output = new BertSelfOutput(config, config.intermediate_size);
  }

  /** select: the output at the selected rows only, (B, Q, C). */
  forward(x: Tensor, mask: Tensor | null, returnProbs: boolean, select: QuerySelect | null = null): { out: Tensor; probs?: Tensor } {
    // A scope per layer frees its intermediates as soon as the layer is done (autograd keeps
    // what backward needs), which keeps the working set, and page faults, small.
    return torch.scope(() => {
      const a = this.attention.forward(x, mask, returnProbs, select);
      return { out: this.output.forward(this.intermediate.forward(a.out), a.out), ...(a.probs ? { probs: a.probs } : {}) };
    });
  }
}

export class BertEncoder extends Module {
  layer: ModuleList<BertLayer>;

  constructor(config: EncoderConfig) {
    super();
    this.layer = new ModuleList(Array.from({ length: config.num_hidden_layers }, () => new BertLayer(config)));
  }

  forward(x: Tensor, mask: Tensor | null, options: EncoderOptions): { out: Tensor; hiddenStates?: Tensor[]; attentions?: Tensor[] } {
    if (checkpointingActive(this) && !options.hidden && !options.attentions) {
      // gradient checkpointing (src/nn/checkpoint.ts): keep each layer's input only
      const last = this.layer.length - 1;
      const out = checkpointLayers(this.layer.length, x, [mask, options.positions ?? null], (i, h, [m, positions]) =>
        this.layer.at(i).forward(h, m ?? null, false, i === last ? lastLayerSelect({ ...options, ...(positions ? { positions } : {}) }) : null).out,
      );
      return { out };
    }
    const hidden: Tensor[] = [x];
    const attns: Tensor[] = [];
    let h = x;
    for (let i = 0; i < this.layer.length; i++) {
      const r = this.layer.at(i).forward(h, mask, options.attentions ?? false, i === this.layer.length - 1 ? lastLayerSelect(options) : null);
      h = r.out;
      hidden.push(h);
      if (r.probs) attns.push(r.probs);
    }
    return { out: h, ...(options.hidden ? { hiddenStates: hidden } : {}), ...(options.attentions ? { attentions: attns } : {}) };
  }
}

export class BertPooler extends Module {
  dense: Linear;

  constructor(config: EncoderConfig) {
    super();
    this.dense = new Linear(config.hidden_size, config.hidden_size);
  }

  /** tanh(dense(h[:, 0])): the [CLS] token's summary. */
  forward(h: Tensor): Tensor {
    return this.dense.forward(h.select(1, 0)).tanh();
  }
}


/**
 * The bare-encoder forward shared by BERT, RoBERTa, ALBERT and ELECTRA: embeddings, the
 * additive padding mask, the layers, an optional pooler, and the outputs asked for.
 */
export interface EncoderOptions {
  hidden?: boolean;
  attentions?: boolean;
  /** The last layer computes the first token's output only (sequence-level heads). */
  firstTokenOnly?: boolean;
  /** The last layer computes these positions only, (B, Q) int64, -1 for padding (computed at 0, unused). */
  positions?: Tensor;
}

/** (B, T, C) -> (B, Q, C): the rows of a layer whose output is computed. */
export type QuerySelect = (x: Tensor) => Tensor;

/** What the last layer computes under the options: the first token, given positions, or all (null). */
export function lastLayerSelect(options: EncoderOptions): QuerySelect | null {
  if (options.positions) {
    const pos = options.positions.clamp(0, null).unsqueeze(-1);
    return (x) => x.gather(1, pos.expand([pos.shape[0]!, pos.shape[1]!, x.shape[2]!]));
  }
  if (options.firstTokenOnly) return (x) => x.narrow(1, 0, 1);
  return null;
}

/** Sequence-level heads read the first token only: the last layer can skip the others. */
export function sequenceHeadInputs(input: ModelInputs): ModelInputs {
  return { ...input, firstTokenOnly: input.firstTokenOnly ?? true };
}

export function encoderForward(
  name: string,
  input: ModelInputs,
  embed: (input: ModelInputs) => Tensor,
  encoder: { forward(x: Tensor, mask: Tensor | null, o: EncoderOptions): { out: Tensor; hiddenStates?: Tensor[]; attentions?: Tensor[] } },
  pool: ((h: Tensor) => Tensor) | null,
): ModelOutput {
  if (!input.inputIds && !input.inputsEmbeds) throw new Error(`${name}: give inputIds or inputsEmbeds`);
  const x = embed(input);
  const mask = input.attentionMask ? additiveMask(input.attentionMask, x.dtype) : null;
  const hidden = input.outputHiddenStates ?? false;
  const attentions = input.outputAttentions ?? false;
  const atLabels = (input.lastLayerAtLabels ?? false) && (input.maskedOnly ?? false) && !!input.labels && !hidden && !attentions && input.labels.ndim === 2;
  const positions = atLabels ? labelPositions(input.labels!) : undefined;
  const enc = encoder.forward(x, mask, { hidden, attentions, firstTokenOnly: (input.firstTokenOnly ?? false) && !hidden && !attentions, ...(positions ? { positions } : {}) });
  const pooled = pool ? pool(enc.out) : undefined; // row 0 is the first token in every case
  return {
    logits: enc.out,
    lastHiddenState: enc.out,
    ...(positions ? { positions } : {}),
    ...(pooled ? { pooledOutput: pooled } : {}),
    ...(enc.hiddenStates ? { hiddenStates: enc.hiddenStates } : {}),
    ...(enc.attentions ? { attentions: enc.attentions } : {}),
  };
}

// --- heads ----------------------------------------------------------------------------------------

/** Registers an existing tensor as a parameter of a module (tied weights). */
export function tie(module: Module, name: string, t: Tensor): Tensor {
  return (module as unknown as { registerParameter(n: string, x: Tensor): Tensor }).registerParameter(name, t);
}

/** Splits (B, T, 2) span logits and computes the QA loss (positions past the end are ignored). */
export function qaHead(spanLogits: Tensor, input: ModelInputs): Pick<ModelOutput, "logits" | "startLogits" | "endLogits" | "loss"> {
  const [start, end] = spanLogits.split(1, -1) as [Tensor, Tensor];
  const startLogits = start.squeeze(-1);
  const endLogits = end.squeeze(-1);
  let loss: Tensor | undefined;
  if (input.startPositions && input.endPositions) {
    const T = startLogits.shape[1]!;
    const s = input.startPositions.view([-1]).clamp(0, T);
    const e = input.endPositions.view([-1]).clamp(0, T);
    loss = torch.crossEntropy(startLogits.float(), s, null, "mean", T).add(torch.crossEntropy(endLogits.float(), e, null, "mean", T)).div(2);
  }
  return { logits: spanLogits, startLogits, endLogits, ...(loss ? { loss } : {}) };
}

// BERT (Devlin et al. 2019), as Hugging Face's modeling_bert.py: post-LayerNorm encoder,
// absolute positions, token types, pooler, and the pretraining and fine-tuning heads.
// Attribute names are the checkpoint's tensor names. Leaves first: embeddings -> attention
// -> layer -> encoder -> model -> heads.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, activation, additiveMask, attentionMerged, fusedActivation, initTransformerWeights, linearMany, splitHeads } from "../nn/index.js";
import type { FusedActivation } from "../nn/index.js";
import { parseConfig, requireDivides, requirePositive, numLabels } from "./config.js";
import type { Schema } from "./config.js";
import { labelPositions, selectMasked, sequenceLoss, tokenLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";

export interface BertConfig {
  readonly model_type: "bert";
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly hidden_act: string;
  readonly hidden_dropout_prob: number;
  readonly attention_probs_dropout_prob: number;
  readonly max_position_embeddings: number;
  readonly type_vocab_size: number;
  readonly initializer_range: number;
  readonly layer_norm_eps: number;
  readonly pad_token_id: number;
  readonly position_embedding_type: string;
  readonly classifier_dropout?: number | null;
  readonly architectures?: string[];
  readonly id2label?: Record<string, string>;
  readonly label2id?: Record<string, number>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Defaults are bert-base-uncased's.
export const BERT_SCHEMA: Schema = {
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

export function bertConfig(raw: Record<string, unknown> = {}, where = "config"): BertConfig {
  const c = parseConfig<BertConfig>(raw, BERT_SCHEMA, "bert", where);
  requirePositive(where, { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_attention_heads: c.num_attention_heads, num_hidden_layers: c.num_hidden_layers });
  requireDivides(where, c.num_attention_heads, c.hidden_size);
  if (c.position_embedding_type !== "absolute") throw new Error(`${where}: position_embedding_type "${c.position_embedding_type}" is not supported (absolute only)`);
  activation(c.hidden_act);
  return c;
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

/** The bare encoder: last hidden state (B, T, C) and pooled output (B, C). */
export class BertModel extends Module {
  embeddings: BertEmbeddings;
  encoder: BertEncoder;
  pooler: BertPooler | null;

  constructor(readonly config: BertConfig, options: { addPoolingLayer?: boolean } = {}) {
    super();
    this.embeddings = new BertEmbeddings(config);
    this.encoder = new BertEncoder(config);
    this.pooler = options.addPoolingLayer === false ? null : new BertPooler(config);
    initTransformerWeights(this, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    return encoderForward("bert", input, (i) => this.embeddings.forward(i), this.encoder, this.pooler ? (h) => this.pooler!.forward(h) : null);
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

export class BertPredictionHeadTransform extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: BertConfig) {
    super();
    this.dense = new Linear(config.hidden_size, config.hidden_size);
    this.act = activation(config.hidden_act);
    this.LayerNorm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
  }

  forward(h: Tensor): Tensor {
    return this.LayerNorm.forward(this.act(this.dense.forward(h)));
  }
}

/** transform -> decoder tied to the word embeddings, plus a bias of its own. */
export class BertLMPredictionHead extends Module {
  transform: BertPredictionHeadTransform;
  decoder: Linear;
  bias: Tensor;

  constructor(config: BertConfig, wordEmbeddings: Tensor) {
    super();
    this.transform = new BertPredictionHeadTransform(config);
    this.decoder = new Linear(config.hidden_size, config.vocab_size, { bias: false });
    this.decoder.weight.dispose();
    this.decoder.weight = tie(this.decoder, "weight", wordEmbeddings);
    this.bias = this.registerParameter("bias", torch.zeros([config.vocab_size]));
    this.decoder.bias = tie(this.decoder, "bias", this.bias); // Hugging Face saves it as decoder.bias too
  }

  forward(h: Tensor): Tensor {
    return this.decoder.forward(this.transform.forward(h));
  }
}

/** Registers an existing tensor as a parameter of a module (tied weights). */
export function tie(module: Module, name: string, t: Tensor): Tensor {
  return (module as unknown as { registerParameter(n: string, x: Tensor): Tensor }).registerParameter(name, t);
}

export class BertOnlyMLMHead extends Module {
  predictions: BertLMPredictionHead;
  constructor(config: BertConfig, wordEmbeddings: Tensor) {
    super();
    this.predictions = new BertLMPredictionHead(config, wordEmbeddings);
  }
}

export class BertPreTrainingHeads extends Module {
  predictions: BertLMPredictionHead;
  seq_relationship: Linear;
  constructor(config: BertConfig, wordEmbeddings: Tensor) {
    super();
    this.predictions = new BertLMPredictionHead(config, wordEmbeddings);
    this.seq_relationship = new Linear(config.hidden_size, 2);
  }
}

/** Masked LM and next sentence prediction; loss = MLM + NSP when both labels are given. */
export class BertForPreTraining extends Module {
  bert: BertModel;
  cls: BertPreTrainingHeads;

  constructor(readonly config: BertConfig) {
    super();
    this.bert = new BertModel(config);
    this.cls = new BertPreTrainingHeads(config, this.bert.embeddings.word_embeddings.weight);
    initTransformerWeights(this.cls, config.initializer_range, { except: [this.bert.embeddings.word_embeddings.weight] });
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.bert.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly, out.positions);
    const logits = this.cls.predictions.forward(sel.h);
    const nsp = this.cls.seq_relationship.forward(out.pooledOutput!);
    let loss: Tensor | undefined;
    if (sel.labels) {
      loss = tokenLoss(logits, sel.labels);
      if (input.nextSentenceLabel) loss = loss.add(torch.crossEntropy(nsp.float(), input.nextSentenceLabel.view([-1])));
    }
    return { ...out, logits, seqRelationshipLogits: nsp, ...(loss ? { loss } : {}) };
  }
}

export class BertForMaskedLM extends Module {
  bert: BertModel;
  cls: BertOnlyMLMHead;

  constructor(readonly config: BertConfig) {
    super();
    this.bert = new BertModel(config, { addPoolingLayer: false });
    this.cls = new BertOnlyMLMHead(config, this.bert.embeddings.word_embeddings.weight);
    initTransformerWeights(this.cls, config.initializer_range, { except: [this.bert.embeddings.word_embeddings.weight] });
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.bert.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly, out.positions);
    const logits = this.cls.predictions.forward(sel.h);
    return { ...out, logits, ...(sel.labels ? { loss: tokenLoss(logits, sel.labels) } : {}) };
  }
}

export class BertForNextSentencePrediction extends Module {
  bert: BertModel;
  cls: Module & { seq_relationship: Linear };

  constructor(readonly config: BertConfig) {
    super();
    this.bert = new BertModel(config);
    const head = new (class BertOnlyNSPHead extends Module {
      seq_relationship = new Linear(config.hidden_size, 2);
    })();
    this.cls = head;
    initTransformerWeights(this.cls, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.bert.forward(input);
    const logits = this.cls.seq_relationship.forward(out.pooledOutput!);
    const labels = input.nextSentenceLabel ?? input.labels;
    return { ...out, logits, ...(labels ? { loss: torch.crossEntropy(logits.float(), labels.view([-1])) } : {}) };
  }
}

function classifierDropout(config: BertConfig): number {
  return config.classifier_dropout ?? config.hidden_dropout_prob;
}

/** Dropout then a linear layer on the pooled [CLS] output; CE, MSE or BCE loss by problem type. */
export class BertForSequenceClassification extends Module {
  bert: BertModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(readonly config: BertConfig) {
    super();
    this.numLabels = numLabels(config);
    this.bert = new BertModel(config);
    this.dropout = new Dropout(classifierDropout(config));
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.bert.forward(sequenceHeadInputs(input));
    const logits = this.classifier.forward(this.dropout.forward(out.pooledOutput!));
    return { ...out, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

/** A label per token (NER); -100 labels are ignored. */
export class BertForTokenClassification extends Module {
  bert: BertModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(readonly config: BertConfig) {
    super();
    this.numLabels = numLabels(config);
    this.bert = new BertModel(config, { addPoolingLayer: false });
    this.dropout = new Dropout(classifierDropout(config));
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.bert.forward(input);
    const logits = this.classifier.forward(this.dropout.forward(out.lastHiddenState));
    return { ...out, logits, ...(input.labels ? { loss: tokenLoss(logits, input.labels) } : {}) };
  }
}

/** Inputs (B, C, T) for C choices; one score per choice, (B, C). */
export class BertForMultipleChoice extends Module {
  bert: BertModel;
  dropout: Dropout;
  classifier: Linear;

  constructor(readonly config: BertConfig) {
    super();
    this.bert = new BertModel(config);
    this.dropout = new Dropout(classifierDropout(config));
    this.classifier = new Linear(config.hidden_size, 1);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const ids = input.inputIds!;
    const [B, C, T] = ids.shape as [number, number, number];
    const flat = (t?: Tensor): Tensor | undefined => t?.reshape([B * C, T]);
    const out = this.bert.forward(sequenceHeadInputs({ ...input, inputIds: flat(ids)!, attentionMask: flat(input.attentionMask), tokenTypeIds: flat(input.tokenTypeIds), labels: undefined }));
    const logits = this.classifier.forward(this.dropout.forward(out.pooledOutput!)).view([B, C]);
    return { ...out, logits, ...(input.labels ? { loss: torch.crossEntropy(logits.float(), input.labels.view([-1])) } : {}) };
  }
}

/** Span start and end logits per token; loss is the mean of the two cross-entropies. */
export class BertForQuestionAnswering extends Module {
  bert: BertModel;
  qa_outputs: Linear;

  constructor(readonly config: BertConfig) {
    super();
    this.bert = new BertModel(config, { addPoolingLayer: false });
    this.qa_outputs = new Linear(config.hidden_size, 2);
    initTransformerWeights(this.qa_outputs, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.bert.forward(input);
    return { ...out, ...qaHead(this.qa_outputs.forward(out.lastHiddenState), input) };
  }
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

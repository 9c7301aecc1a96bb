// ALBERT (Lan et al. 2020), as Hugging Face's modeling_albert.py: factorised embeddings
// (embedding_size projected to hidden_size), layers shared across depth in groups, sentence
// order prediction. Leaves first: attention -> layer -> group -> transformer -> model -> heads.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, LayerNorm, checkpointLayers, checkpointingActive, Linear, Module, ModuleList, activation, attentionMerged, fusedActivation, initTransformerWeights, linearMany, splitHeads } from "../nn/index.js";
import type { FusedActivation } from "../nn/index.js";
import { BertEmbeddings, encoderForward, lastLayerSelect, sequenceHeadInputs, qaHead, tie } from "./encoder.js";
import type { EncoderOptions, QuerySelect } from "./encoder.js";
import { parseConfig, requireDivides, requirePositive, numLabels, ConfigError } from "./config.js";
import type { Schema } from "./config.js";
import { selectMasked, sequenceLoss, tokenLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";

export interface AlbertConfig {
  readonly model_type: "albert";
  readonly vocab_size: number;
  readonly embedding_size: number;
  readonly hidden_size: number;
  readonly num_hidden_layers: number;
  readonly num_hidden_groups: number;
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly inner_group_num: number;
  readonly hidden_act: string;
  readonly hidden_dropout_prob: number;
  readonly attention_probs_dropout_prob: number;
  readonly max_position_embeddings: number;
  readonly type_vocab_size: number;
  readonly initializer_range: number;
  readonly layer_norm_eps: number;
  readonly classifier_dropout_prob: number;
  readonly pad_token_id: number;
  readonly id2label?: Record<string, string>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Defaults are albert-base-v2's.
export const ALBERT_SCHEMA: Schema = {
  vocab_size: { type: "int", default: 30000 },
  embedding_size: { type: "int", default: 128 },
  hidden_size: { type: "int", default: 768 },
  num_hidden_layers: { type: "int", default: 12 },
  num_hidden_groups: { type: "int", default: 1 },
  num_attention_heads: { type: "int", default: 12 },
  intermediate_size: { type: "int", default: 3072 },
  inner_group_num: { type: "int", default: 1 },
  hidden_act: { type: "string", default: "gelu_new" },
  hidden_dropout_prob: { type: "number", default: 0 },
  attention_probs_dropout_prob: { type: "number", default: 0 },
  max_position_embeddings: { type: "int", default: 512 },
  type_vocab_size: { type: "int", default: 2 },
  initializer_range: { type: "number", default: 0.02 },
  layer_norm_eps: { type: "number", default: 1e-12 },
  classifier_dropout_prob: { type: "number", default: 0.1 },
  position_embedding_type: { type: "string", default: "absolute" },
  pad_token_id: { type: "int", default: 0 },
  bos_token_id: { type: "int", default: 2 },
  eos_token_id: { type: "int", default: 3 },
  down_scale_factor: { type: "int", default: 1 },
  gap_size: { type: "int", default: 0 },
  net_structure_type: { type: "int", default: 0 },
  num_memory_blocks: { type: "int", default: 0 },
};

export function albertConfig(raw: Record<string, unknown> = {}, where = "config"): AlbertConfig {
  const c = parseConfig<AlbertConfig>(raw, ALBERT_SCHEMA, "albert", where);
  requirePositive(where, { vocab_size: c.vocab_size, embedding_size: c.embedding_size, hidden_size: c.hidden_size, num_hidden_groups: c.num_hidden_groups, inner_group_num: c.inner_group_num });
  requireDivides(where, c.num_attention_heads, c.hidden_size);
  if (c.num_hidden_layers % c.num_hidden_groups !== 0) {
    throw new ConfigError(`${where}: num_hidden_layers (${c.num_hidden_layers}) is not a multiple of num_hidden_groups (${c.num_hidden_groups})`);
  }
  activation(c.hidden_act);
  return c;
}

/** Self-attention with its output projection and post-LayerNorm in one module (ALBERT's layout). */
export class AlbertAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  attention_dropout: Dropout;
  output_dropout: Dropout;
  dense: Linear;
  LayerNorm: LayerNorm;

  constructor(readonly config: AlbertConfig) {
    super();
    const H = config.hidden_size;
    this.query = new Linear(H, H);
    this.key = new Linear(H, H);
    this.value = new Linear(H, H);
    this.attention_dropout = new Dropout(config.attention_probs_dropout_prob);
    this.output_dropout = new Dropout(config.hidden_dropout_prob);
    this.dense = new Linear(H, H);
    this.LayerNorm = new LayerNorm(H, config.layer_norm_eps);
  }

  /** select: the rows whose output is computed (their queries; keys and values of all). */
  forward(x: Tensor, mask: Tensor | null, returnProbs: boolean, select: QuerySelect | null = null): { out: Tensor; probs?: Tensor } {
    const heads = this.config.num_attention_heads;
    const xq = select ? select(x) : x;
    // one GEMM for the projections that read the same rows (each layer's own forward under LoRA)
    const [q, k, v] = select ? [this.query.forward(xq), ...linearMany(x, [this.key, this.value])] : linearMany(x, [this.query, this.key, this.value]);
    const r = attentionMerged(splitHeads(q!, heads), splitHeads(k!, heads), splitHeads(v!, heads), {
      mask,
      dropout: this.config.attention_probs_dropout_prob,
      training: this.training,
      returnProbs,
    });
    const out = this.LayerNorm.forward(xq.add(this.output_dropout.forward(this.dense.forward(r.context))));
    return { out, ...(r.probs ? { probs: r.probs } : {}) };
  }
}

export class AlbertLayer extends Module {
  full_layer_layer_norm: LayerNorm;
  attention: AlbertAttention;
  ffn: Linear;
  ffn_output: Linear;
  dropout: Dropout;
  private readonly act: (x: Tensor) => Tensor;
  private readonly fused: FusedActivation | null;

  constructor(config: AlbertConfig) {
    super();
    this.full_layer_layer_norm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
    this.attention = new AlbertAttention(config);
    this.ffn = new Linear(config.hidden_size, config.intermediate_size);
    this.ffn_output = new Linear(config.intermediate_size, config.hidden_size);
    this.act = activation(config.hidden_act);
    this.fused = fusedActivation(config.hidden_act);
    this.dropout = new Dropout(config.hidden_dropout_prob);
  }

  forward(x: Tensor, mask: Tensor | null, returnProbs: boolean, select: QuerySelect | null = null): { out: Tensor; probs?: Tensor } {
    return torch.scope(() => {
      const a = this.attention.forward(x, mask, returnProbs, select);
      // GELU applied in place after the GEMM where it can be
      const inner = this.fused ? linearMany(a.out, [this.ffn], this.fused)[0]! : this.act(this.ffn.forward(a.out));
      const f = this.dropout.forward(this.ffn_output.forward(inner));
      return { out: this.full_layer_layer_norm.forward(f.add(a.out)), ...(a.probs ? { probs: a.probs } : {}) };
    });
  }
}

export class AlbertLayerGroup extends Module {
  albert_layers: ModuleList<AlbertLayer>;
  constructor(config: AlbertConfig) {
    super();
    this.albert_layers = new ModuleList(Array.from({ length: config.inner_group_num }, () => new AlbertLayer(config)));
  }
}

/** Maps embeddings to hidden size, then runs num_hidden_layers steps through the shared groups. */
export class AlbertTransformer extends Module {
  embedding_hidden_mapping_in: Linear;
  albert_layer_groups: ModuleList<AlbertLayerGroup>;

  constructor(readonly config: AlbertConfig) {
    super();
    this.embedding_hidden_mapping_in = new Linear(config.embedding_size, config.hidden_size);
    this.albert_layer_groups = new ModuleList(Array.from({ length: config.num_hidden_groups }, () => new AlbertLayerGroup(config)));
  }

  forward(x: Tensor, mask: Tensor | null, options: EncoderOptions): { out: Tensor; hiddenStates?: Tensor[]; attentions?: Tensor[] } {
    const c = this.config;
    let h = this.embedding_hidden_mapping_in.forward(x);
    const hidden: Tensor[] = [h];
    const attns: Tensor[] = [];
    const perGroup = c.num_hidden_layers / c.num_hidden_groups;
    if (checkpointingActive(this) && !options.hidden && !options.attentions) {
      // gradient checkpointing (src/nn/checkpoint.ts): each layer step's input kept; a shared layer is recomputed at each of its steps
      const steps = Array.from({ length: c.num_hidden_layers }, (_, i) => [...this.albert_layer_groups.at(Math.floor(i / perGroup)).albert_layers]).flat();
      const out = checkpointLayers(steps.length, h, [mask, options.positions ?? null], (k, x, [m, positions]) =>
        steps[k]!.forward(x, m ?? null, false, k === steps.length - 1 ? lastLayerSelect({ ...options, ...(positions ? { positions } : {}) }) : null).out,
      );
      return { out };
    }
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const group = this.albert_layer_groups.at(Math.floor(i / perGroup));
      const layers = [...group.albert_layers];
      for (const [j, layer] of layers.entries()) {
        // the very last layer step: the first token (or the labelled positions) only, where the head asks no more
        const last = i === c.num_hidden_layers - 1 && j === layers.length - 1;
        const r = layer.forward(h, mask, options.attentions ?? false, last ? lastLayerSelect(options) : null);
        h = r.out;
        if (r.probs) attns.push(r.probs);
      }
      hidden.push(h);
    }
    return { out: h, ...(options.hidden ? { hiddenStates: hidden } : {}), ...(options.attentions ? { attentions: attns } : {}) };
  }
}

export class AlbertModel extends Module {
  embeddings: BertEmbeddings;
  encoder: AlbertTransformer;
  pooler: Linear | null;

  constructor(readonly config: AlbertConfig, options: { addPoolingLayer?: boolean } = {}) {
    super();
    this.embeddings = new BertEmbeddings(config);
    this.encoder = new AlbertTransformer(config);
    this.pooler = options.addPoolingLayer === false ? null : new Linear(config.hidden_size, config.hidden_size);
    initTransformerWeights(this, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    // pooler_activation is tanh
    return encoderForward("albert", input, (i) => this.embeddings.forward(i), this.encoder, this.pooler ? (h) => this.pooler!.forward(h.select(1, 0)).tanh() : null);
  }

}

/** dense (H -> E) -> activation -> LayerNorm -> decoder (E -> V, tied) + bias. */
export class AlbertMLMHead extends Module {
  LayerNorm: LayerNorm;
  bias: Tensor;
  dense: Linear;
  decoder: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(config: AlbertConfig, wordEmbeddings: Tensor) {
    super();
    this.LayerNorm = new LayerNorm(config.embedding_size, config.layer_norm_eps);
    this.bias = this.registerParameter("bias", torch.zeros([config.vocab_size]));
    this.dense = new Linear(config.hidden_size, config.embedding_size);
    this.decoder = new Linear(config.embedding_size, config.vocab_size, { bias: false });
    this.decoder.weight.dispose();
    this.decoder.weight = tie(this.decoder, "weight", wordEmbeddings);
    this.decoder.bias = tie(this.decoder, "bias", this.bias);
    this.act = activation(config.hidden_act);
  }

  forward(h: Tensor): Tensor {
    return this.decoder.forward(this.LayerNorm.forward(this.act(this.dense.forward(h))));
  }
}

/** Sentence order prediction: dropout then a 2-way classifier on the pooled output. */
export class AlbertSOPHead extends Module {
  dropout: Dropout;
  classifier: Linear;
  constructor(config: AlbertConfig) {
    super();
    this.dropout = new Dropout(config.classifier_dropout_prob);
    this.classifier = new Linear(config.hidden_size, 2);
  }
  forward(pooled: Tensor): Tensor {
    return this.classifier.forward(this.dropout.forward(pooled));
  }
}

/** Masked LM and sentence order prediction; loss = MLM + SOP when both labels are given. */
export class AlbertForPreTraining extends Module {
  albert: AlbertModel;
  predictions: AlbertMLMHead;
  sop_classifier: AlbertSOPHead;

  constructor(readonly config: AlbertConfig) {
    super();
    this.albert = new AlbertModel(config);
    this.predictions = new AlbertMLMHead(config, this.albert.embeddings.word_embeddings.weight);
    this.sop_classifier = new AlbertSOPHead(config);
    const tied = { except: [this.albert.embeddings.word_embeddings.weight] };
    initTransformerWeights(this.predictions, config.initializer_range, tied);
    initTransformerWeights(this.sop_classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.albert.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly, out.positions);
    const logits = this.predictions.forward(sel.h);
    const sop = this.sop_classifier.forward(out.pooledOutput!);
    let loss: Tensor | undefined;
    if (sel.labels) {
      loss = tokenLoss(logits, sel.labels);
      if (input.nextSentenceLabel) loss = loss.add(torch.crossEntropy(sop.float(), input.nextSentenceLabel.view([-1])));
    }
    return { ...out, logits, seqRelationshipLogits: sop, ...(loss ? { loss } : {}) };
  }
}

export class AlbertForMaskedLM extends Module {
  albert: AlbertModel;
  predictions: AlbertMLMHead;

  constructor(readonly config: AlbertConfig) {
    super();
    this.albert = new AlbertModel(config, { addPoolingLayer: false });
    this.predictions = new AlbertMLMHead(config, this.albert.embeddings.word_embeddings.weight);
    initTransformerWeights(this.predictions, config.initializer_range, { except: [this.albert.embeddings.word_embeddings.weight] });
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.albert.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly, out.positions);
    const logits = this.predictions.forward(sel.h);
    return { ...out, logits, ...(sel.labels ? { loss: tokenLoss(logits, sel.labels) } : {}) };
  }
}

export class AlbertForSequenceClassification extends Module {
  albert: AlbertModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(readonly config: AlbertConfig) {
    super();
    this.numLabels = numLabels(config);
    this.albert = new AlbertModel(config);
    this.dropout = new Dropout(config.classifier_dropout_prob);
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.albert.forward(sequenceHeadInputs(input));
    const logits = this.classifier.forward(this.dropout.forward(out.pooledOutput!));
    return { ...out, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

export class AlbertForTokenClassification extends Module {
  albert: AlbertModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(readonly config: AlbertConfig) {
    super();
    this.numLabels = numLabels(config);
    this.albert = new AlbertModel(config, { addPoolingLayer: false });
    this.dropout = new Dropout(config.classifier_dropout_prob);
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.albert.forward(input);
    const logits = this.classifier.forward(this.dropout.forward(out.lastHiddenState));
    return { ...out, logits, ...(input.labels ? { loss: tokenLoss(logits, input.labels) } : {}) };
  }
}

export class AlbertForQuestionAnswering extends Module {
  albert: AlbertModel;
  qa_outputs: Linear;

  constructor(readonly config: AlbertConfig) {
    super();
    this.albert = new AlbertModel(config, { addPoolingLayer: false });
    this.qa_outputs = new Linear(config.hidden_size, 2);
    initTransformerWeights(this.qa_outputs, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.albert.forward(input);
    return { ...out, ...qaHead(this.qa_outputs.forward(out.lastHiddenState), input) };
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** ALBERT in the architecture registry: its layers are shared across depth, so there is no "layer N" to freeze. */
export const architecture: ArchitectureEntry = {
  modelType: "albert",
  prefix: "albert",
  parseConfig: (raw, where) => albertConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    AlbertModel: ["base", c(AlbertModel)],
    AlbertForPreTraining: ["pretraining", c(AlbertForPreTraining)],
    AlbertForMaskedLM: ["masked-lm", c(AlbertForMaskedLM)],
    AlbertForSequenceClassification: ["sequence-classification", c(AlbertForSequenceClassification)],
    AlbertForTokenClassification: ["token-classification", c(AlbertForTokenClassification)],
    AlbertForQuestionAnswering: ["question-answering", c(AlbertForQuestionAnswering)],
  },
  // the factorised embeddings and their projection into the hidden size
  embeddings: /^(embeddings\.|encoder\.embedding_hidden_mapping_in\.)/,
  layers: null,
  loraTargets: /attention\.(query|value)$/,
  wordEmbeddings: "embeddings.word_embeddings",
  dropoutKeys: ["hidden_dropout_prob", "classifier_dropout_prob"],
  positions: { key: "max_position_embeddings", needed: (n) => n },
  presets: {
    // bert-tiny, -mini and -small's sizes with ALBERT's factorised embeddings and one shared layer
    "albert-tiny": { embedding_size: 64, hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
    "albert-mini": { embedding_size: 128, hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
    "albert-small": { embedding_size: 128, hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, intermediate_size: 2048 },
    "albert-base": { embedding_size: 128, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
  },
};

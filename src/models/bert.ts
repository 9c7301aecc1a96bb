// BERT (Devlin et al. 2019), as Hugging Face's modeling_bert.py: post-LayerNorm encoder,
// absolute positions, token types, pooler, and the pretraining and fine-tuning heads.
// Attribute names are the checkpoint's tensor names. Leaves first: embeddings -> attention
// -> layer -> encoder -> model -> heads.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, LayerNorm, Linear, Module, activation, initTransformerWeights } from "../nn/index.js";
import { parseConfig, requireDivides, requirePositive, numLabels } from "./config.js";
import type { Schema } from "./config.js";
import { selectMasked, sequenceLoss, tokenLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";

import { ENCODER_SCHEMA, BertEmbeddings, BertEncoder, BertPooler, encoderForward, sequenceHeadInputs, qaHead, tie } from "./encoder.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";
export { BertEmbeddings, BertEncoder, BertPooler, BertLayer, BertAttention, BertSelfAttention, BertSelfOutput, BertIntermediate } from "./encoder.js";

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

/** bert-base-uncased's keys and defaults (the encoder trunk's, shared with RoBERTa and ELECTRA). */
export const BERT_SCHEMA: Schema = ENCODER_SCHEMA;


export function bertConfig(raw: Record<string, unknown> = {}, where = "config"): BertConfig {
  const c = parseConfig<BertConfig>(raw, BERT_SCHEMA, "bert", where);
  requirePositive(where, { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_attention_heads: c.num_attention_heads, num_hidden_layers: c.num_hidden_layers });
  requireDivides(where, c.num_attention_heads, c.hidden_size);
  if (c.position_embedding_type !== "absolute") throw new Error(`${where}: position_embedding_type "${c.position_embedding_type}" is not supported (absolute only)`);
  activation(c.hidden_act);
  return c;
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

const c = (x: unknown): ModelClass => x as ModelClass;

/** BERT in the architecture registry (architectures.ts registers it). */
export const architecture: ArchitectureEntry = {
  modelType: "bert",
  prefix: "bert",
  parseConfig: (raw, where) => bertConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    BertModel: ["base", c(BertModel)],
    BertForPreTraining: ["pretraining", c(BertForPreTraining)],
    BertForMaskedLM: ["masked-lm", c(BertForMaskedLM)],
    BertForNextSentencePrediction: ["next-sentence", c(BertForNextSentencePrediction)],
    BertForSequenceClassification: ["sequence-classification", c(BertForSequenceClassification)],
    BertForTokenClassification: ["token-classification", c(BertForTokenClassification)],
    BertForMultipleChoice: ["multiple-choice", c(BertForMultipleChoice)],
    BertForQuestionAnswering: ["question-answering", c(BertForQuestionAnswering)],
  },
  embeddings: /^embeddings\./,
  layers: /^encoder\.layer\.(\d+)\./,
  loraTargets: /attention\.self\.(query|value)$/,
  wordEmbeddings: "embeddings.word_embeddings",
  dropoutKeys: ["hidden_dropout_prob", "classifier_dropout"],
  positions: { key: "max_position_embeddings", needed: (n) => n },
  // Turc et al. 2019, "Well-Read Students Learn Better": the compact BERTs; and bert-base
  presets: {
    "bert-tiny": { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
    "bert-mini": { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
    "bert-small": { hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, intermediate_size: 2048 },
    "bert-medium": { hidden_size: 512, num_hidden_layers: 8, num_attention_heads: 8, intermediate_size: 2048 },
    "bert-base": { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
  },
};

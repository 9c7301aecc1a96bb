// ELECTRA (Clark et al. 2020), as Hugging Face's modeling_electra.py: BERT's encoder over
// embeddings of embedding_size (projected when smaller than hidden_size), a discriminator
// that detects replaced tokens and a small generator (masked LM) that shares the embeddings.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, LayerNorm, Linear, Module, activation, initTransformerWeights } from "../nn/index.js";
import { ENCODER_SCHEMA, BertEmbeddings, BertEncoder, encoderForward, sequenceHeadInputs, qaHead, tie } from "./encoder.js";
import type { EncoderConfig } from "./encoder.js";
import { parseConfig, requireDivides, requirePositive, numLabels } from "./config.js";
import type { Schema } from "./config.js";
import { selectMasked, sequenceLoss, tokenLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";

export interface ElectraConfig extends EncoderConfig {
  readonly model_type: "electra";
  readonly vocab_size: number;
  readonly embedding_size: number;
  readonly max_position_embeddings: number;
  readonly type_vocab_size: number;
  readonly initializer_range: number;
  readonly pad_token_id: number;
  readonly classifier_dropout?: number | null;
  readonly id2label?: Record<string, string>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Defaults are google/electra-small-discriminator's.
export const ELECTRA_SCHEMA: Schema = {
  ...ENCODER_SCHEMA,
  embedding_size: { type: "int", default: 128 },
  hidden_size: { type: "int", default: 256 },
  num_attention_heads: { type: "int", default: 4 },
  intermediate_size: { type: "int", default: 1024 },
  summary_type: { type: "string", default: "first" },
  summary_use_proj: { type: "bool", default: true },
  summary_activation: { type: "string?", default: "gelu" },
  summary_last_dropout: { type: "number", default: 0.1 },
};

export function electraConfig(raw: Record<string, unknown> = {}, where = "config"): ElectraConfig {
  const c = parseConfig<ElectraConfig>(raw, ELECTRA_SCHEMA, "electra", where);
  requirePositive(where, { vocab_size: c.vocab_size, embedding_size: c.embedding_size, hidden_size: c.hidden_size });
  requireDivides(where, c.num_attention_heads, c.hidden_size);
  activation(c.hidden_act);
  return c;
}

export class ElectraModel extends Module {
  embeddings: BertEmbeddings;
  embeddings_project: Linear | null;
  encoder: BertEncoder;

  constructor(readonly config: ElectraConfig) {
    super();
    this.embeddings = new BertEmbeddings(config);
    this.embeddings_project = config.embedding_size !== config.hidden_size ? new Linear(config.embedding_size, config.hidden_size) : null;
    this.encoder = new BertEncoder(config);
    initTransformerWeights(this, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const project = this.embeddings_project;
    const embed = (i: ModelInputs): Tensor => (project ? project.forward(this.embeddings.forward(i)) : this.embeddings.forward(i));
    return encoderForward("electra", input, embed, this.encoder, null);
  }

}

/** dense -> activation -> dense_prediction: one logit per token, "was this token replaced?". */
export class ElectraDiscriminatorPredictions extends Module {
  dense: Linear;
  dense_prediction: Linear;
  private readonly act: (x: Tensor) => Tensor;
  constructor(config: ElectraConfig) {
    super();
    this.dense = new Linear(config.hidden_size, config.hidden_size);
    this.act = activation(config.hidden_act);
    this.dense_prediction = new Linear(config.hidden_size, 1);
  }
  forward(h: Tensor): Tensor {
    return this.dense_prediction.forward(this.act(this.dense.forward(h))).squeeze(-1);
  }
}

/**
 * The discriminator (replaced token detection). labels (B, T): 1 where the token was
 * replaced; the loss is binary cross-entropy over the positions the attention mask keeps.
 */
export class ElectraForPreTraining extends Module {
  electra: ElectraModel;
  discriminator_predictions: ElectraDiscriminatorPredictions;

  constructor(readonly config: ElectraConfig) {
    super();
    this.electra = new ElectraModel(config);
    this.discriminator_predictions = new ElectraDiscriminatorPredictions(config);
    initTransformerWeights(this.discriminator_predictions, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.electra.forward(input);
    const logits = this.discriminator_predictions.forward(out.lastHiddenState); // (B, T)
    let loss: Tensor | undefined;
    if (input.labels) {
      const lf = logits.float();
      const lab = input.labels.float();
      if (input.attentionMask) {
        const active = input.attentionMask.eq(1);
        loss = torch.binaryCrossEntropyWithLogits(lf.maskedFill(active.logicalNot(), 0), lab, active.float(), null, "sum").div(active.sum().clamp(1, null));
      } else {
        loss = torch.binaryCrossEntropyWithLogits(lf, lab);
      }
    }
    return { ...out, logits, ...(loss ? { loss } : {}) };
  }
}

/** dense (H -> E) -> gelu -> LayerNorm: the generator's prediction transform. */
export class ElectraGeneratorPredictions extends Module {
  LayerNorm: LayerNorm;
  dense: Linear;
  constructor(config: ElectraConfig) {
    super();
    this.LayerNorm = new LayerNorm(config.embedding_size, config.layer_norm_eps);
    this.dense = new Linear(config.hidden_size, config.embedding_size);
  }
  forward(h: Tensor): Tensor {
    return this.LayerNorm.forward(this.dense.forward(h).gelu());
  }
}

/** The generator: a masked LM whose output layer is tied to the word embeddings. */
export class ElectraForMaskedLM extends Module {
  electra: ElectraModel;
  generator_predictions: ElectraGeneratorPredictions;
  generator_lm_head: Linear;

  constructor(readonly config: ElectraConfig) {
    super();
    this.electra = new ElectraModel(config);
    this.generator_predictions = new ElectraGeneratorPredictions(config);
    this.generator_lm_head = new Linear(config.embedding_size, config.vocab_size);
    this.generator_lm_head.weight.dispose();
    this.generator_lm_head.weight = tie(this.generator_lm_head, "weight", this.electra.embeddings.word_embeddings.weight);
    const tied = { except: [this.electra.embeddings.word_embeddings.weight] };
    initTransformerWeights(this.generator_predictions, config.initializer_range);
    initTransformerWeights(this.generator_lm_head, config.initializer_range, tied);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.electra.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly, out.positions);
    const logits = this.generator_lm_head.forward(this.generator_predictions.forward(sel.h));
    return { ...out, logits, ...(sel.labels ? { loss: tokenLoss(logits, sel.labels) } : {}) };
  }
}

/** On the first token: dropout -> dense -> gelu -> dropout -> out_proj. */
export class ElectraClassificationHead extends Module {
  dense: Linear;
  dropout: Dropout;
  out_proj: Linear;
  constructor(config: ElectraConfig, labels: number) {
    super();
    this.dense = new Linear(config.hidden_size, config.hidden_size);
    this.dropout = new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob);
    this.out_proj = new Linear(config.hidden_size, labels);
  }
  forward(h: Tensor): Tensor {
    return this.out_proj.forward(this.dropout.forward(this.dense.forward(this.dropout.forward(h.select(1, 0))).gelu()));
  }
}

export class ElectraForSequenceClassification extends Module {
  electra: ElectraModel;
  classifier: ElectraClassificationHead;
  readonly numLabels: number;

  constructor(readonly config: ElectraConfig) {
    super();
    this.numLabels = numLabels(config);
    this.electra = new ElectraModel(config);
    this.classifier = new ElectraClassificationHead(config, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.electra.forward(sequenceHeadInputs(input));
    const logits = this.classifier.forward(out.lastHiddenState);
    return { ...out, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

export class ElectraForTokenClassification extends Module {
  electra: ElectraModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(readonly config: ElectraConfig) {
    super();
    this.numLabels = numLabels(config);
    this.electra = new ElectraModel(config);
    this.dropout = new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob);
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.electra.forward(input);
    const logits = this.classifier.forward(this.dropout.forward(out.lastHiddenState));
    return { ...out, logits, ...(input.labels ? { loss: tokenLoss(logits, input.labels) } : {}) };
  }
}

export class ElectraForQuestionAnswering extends Module {
  electra: ElectraModel;
  qa_outputs: Linear;

  constructor(readonly config: ElectraConfig) {
    super();
    this.electra = new ElectraModel(config);
    this.qa_outputs = new Linear(config.hidden_size, 2);
    initTransformerWeights(this.qa_outputs, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.electra.forward(input);
    return { ...out, ...qaHead(this.qa_outputs.forward(out.lastHiddenState), input) };
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** ELECTRA in the architecture registry. */
export const architecture: ArchitectureEntry = {
  modelType: "electra",
  prefix: "electra",
  parseConfig: (raw, where) => electraConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    ElectraModel: ["base", c(ElectraModel)],
    ElectraForPreTraining: ["electra-discriminator", c(ElectraForPreTraining)],
    ElectraForMaskedLM: ["masked-lm", c(ElectraForMaskedLM)],
    ElectraForSequenceClassification: ["sequence-classification", c(ElectraForSequenceClassification)],
    ElectraForTokenClassification: ["token-classification", c(ElectraForTokenClassification)],
    ElectraForQuestionAnswering: ["question-answering", c(ElectraForQuestionAnswering)],
  },
  // the embeddings and their projection into the hidden size (when embedding_size differs)
  embeddings: /^(embeddings\.|embeddings_project\.)/,
  layers: /^encoder\.layer\.(\d+)\./,
  loraTargets: /attention\.self\.(query|value)$/,
  wordEmbeddings: "embeddings.word_embeddings",
  dropoutKeys: ["hidden_dropout_prob", "classifier_dropout"],
  positions: { key: "max_position_embeddings", needed: (n) => n },
  presets: {
    "electra-small": { embedding_size: 128, hidden_size: 256, num_hidden_layers: 12, num_attention_heads: 4, intermediate_size: 1024 },
    "electra-small-generator": { embedding_size: 128, hidden_size: 64, num_hidden_layers: 12, num_attention_heads: 1, intermediate_size: 256 },
  },
};

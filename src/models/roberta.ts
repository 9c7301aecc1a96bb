// RoBERTa (Liu et al. 2019), as Hugging Face's modeling_roberta.py: BERT's encoder with
// RoBERTa's position ids (counted from padding_idx + 1, padding keeps padding_idx), one token
// type, and its own heads. The encoder blocks are BERT's (imported, not copied: the two are
// the same code in Hugging Face, kept equal there by a "Copied from" check).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, LayerNorm, Linear, Module, initTransformerWeights } from "../nn/index.js";
import { ENCODER_SCHEMA, BertEmbeddings, BertEncoder, BertPooler, encoderForward, sequenceHeadInputs, qaHead, tie } from "./encoder.js";
import type { EncoderConfig } from "./encoder.js";
import { parseConfig, requireDivides, requirePositive, numLabels } from "./config.js";
import type { Schema } from "./config.js";
import { selectMasked, sequenceLoss, tokenLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";

export interface RobertaConfig extends EncoderConfig {
  readonly model_type: "roberta";
  readonly vocab_size: number;
  readonly max_position_embeddings: number;
  readonly type_vocab_size: number;
  readonly initializer_range: number;
  readonly pad_token_id: number;
  readonly bos_token_id: number;
  readonly eos_token_id: number;
  readonly classifier_dropout?: number | null;
  readonly id2label?: Record<string, string>;
  readonly problem_type?: string;
  readonly [key: string]: unknown;
}

// Defaults are roberta-base's.
export const ROBERTA_SCHEMA: Schema = {
  ...ENCODER_SCHEMA,
  vocab_size: { type: "int", default: 50265 },
  max_position_embeddings: { type: "int", default: 514 },
  type_vocab_size: { type: "int", default: 1 },
  layer_norm_eps: { type: "number", default: 1e-5 },
  pad_token_id: { type: "int", default: 1 },
  bos_token_id: { type: "int", default: 0 },
  eos_token_id: { type: "int", default: 2 },
};

export function robertaConfig(raw: Record<string, unknown> = {}, where = "config"): RobertaConfig {
  const c = parseConfig<RobertaConfig>(raw, ROBERTA_SCHEMA, "roberta", where);
  requirePositive(where, { vocab_size: c.vocab_size, hidden_size: c.hidden_size, num_attention_heads: c.num_attention_heads });
  requireDivides(where, c.num_attention_heads, c.hidden_size);
  return c;
}

/** BERT's embeddings with positions padding_idx+1, padding_idx+2, ... for real tokens and padding_idx for pads. */
export class RobertaEmbeddings extends BertEmbeddings {
  constructor(config: RobertaConfig) {
    super(config, { positionPaddingIdx: config.pad_token_id });
  }

  protected override lastPosition(T: number): number {
    return this.config.pad_token_id + T;
  }

  protected override positionIds(input: ModelInputs, words: Tensor): Tensor {
    const pad = this.config.pad_token_id;
    if (input.inputIds) {
      const mask = input.inputIds.ne(pad).long();
      return mask.cumsum(1).mul(mask).add(pad); // (B, T)
    }
    const T = words.shape[1]!;
    return torch.arange(pad + 1, pad + 1 + T, 1, { device: words.device as "cpu" }).unsqueeze(0);
  }
}

export class RobertaModel extends Module {
  embeddings: RobertaEmbeddings;
  encoder: BertEncoder;
  pooler: BertPooler | null;

  constructor(readonly config: RobertaConfig, options: { addPoolingLayer?: boolean } = {}) {
    super();
    this.embeddings = new RobertaEmbeddings(config);
    this.encoder = new BertEncoder(config);
    this.pooler = options.addPoolingLayer === false ? null : new BertPooler(config);
    initTransformerWeights(this, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    return encoderForward("roberta", input, (i) => this.embeddings.forward(i), this.encoder, this.pooler ? (h) => this.pooler!.forward(h) : null);
  }

}

/** dense -> gelu -> layer_norm -> decoder (tied to the word embeddings) + bias. */
export class RobertaLMHead extends Module {
  dense: Linear;
  layer_norm: LayerNorm;
  decoder: Linear;
  bias: Tensor;

  constructor(config: RobertaConfig, wordEmbeddings: Tensor) {
    super();
    this.dense = new Linear(config.hidden_size, config.hidden_size);
    this.layer_norm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
    this.decoder = new Linear(config.hidden_size, config.vocab_size, { bias: false });
    this.decoder.weight.dispose();
    this.decoder.weight = tie(this.decoder, "weight", wordEmbeddings);
    this.bias = this.registerParameter("bias", torch.zeros([config.vocab_size]));
    this.decoder.bias = tie(this.decoder, "bias", this.bias);
  }

  forward(h: Tensor): Tensor {
    return this.decoder.forward(this.layer_norm.forward(this.dense.forward(h).gelu()));
  }
}

export class RobertaForMaskedLM extends Module {
  roberta: RobertaModel;
  lm_head: RobertaLMHead;

  constructor(readonly config: RobertaConfig) {
    super();
    this.roberta = new RobertaModel(config, { addPoolingLayer: false });
    this.lm_head = new RobertaLMHead(config, this.roberta.embeddings.word_embeddings.weight);
    initTransformerWeights(this.lm_head, config.initializer_range, { except: [this.roberta.embeddings.word_embeddings.weight] });
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.roberta.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly, out.positions);
    const logits = this.lm_head.forward(sel.h);
    return { ...out, logits, ...(sel.labels ? { loss: tokenLoss(logits, sel.labels) } : {}) };
  }
}

/** On the <s> token: dropout -> dense -> tanh -> dropout -> out_proj. */
export class RobertaClassificationHead extends Module {
  dense: Linear;
  dropout: Dropout;
  out_proj: Linear;

  constructor(config: RobertaConfig, labels: number) {
    super();
    this.dense = new Linear(config.hidden_size, config.hidden_size);
    this.dropout = new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob);
    this.out_proj = new Linear(config.hidden_size, labels);
  }

  forward(h: Tensor): Tensor {
    const x = this.dropout.forward(this.dense.forward(this.dropout.forward(h.select(1, 0))).tanh());
    return this.out_proj.forward(x);
  }
}

export class RobertaForSequenceClassification extends Module {
  roberta: RobertaModel;
  classifier: RobertaClassificationHead;
  readonly numLabels: number;

  constructor(readonly config: RobertaConfig) {
    super();
    this.numLabels = numLabels(config);
    this.roberta = new RobertaModel(config, { addPoolingLayer: false });
    this.classifier = new RobertaClassificationHead(config, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.roberta.forward(sequenceHeadInputs(input));
    const logits = this.classifier.forward(out.lastHiddenState);
    return { ...out, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

export class RobertaForTokenClassification extends Module {
  roberta: RobertaModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(readonly config: RobertaConfig) {
    super();
    this.numLabels = numLabels(config);
    this.roberta = new RobertaModel(config, { addPoolingLayer: false });
    this.dropout = new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob);
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.roberta.forward(input);
    const logits = this.classifier.forward(this.dropout.forward(out.lastHiddenState));
    return { ...out, logits, ...(input.labels ? { loss: tokenLoss(logits, input.labels) } : {}) };
  }
}

export class RobertaForQuestionAnswering extends Module {
  roberta: RobertaModel;
  qa_outputs: Linear;

  constructor(readonly config: RobertaConfig) {
    super();
    this.roberta = new RobertaModel(config, { addPoolingLayer: false });
    this.qa_outputs = new Linear(config.hidden_size, 2);
    initTransformerWeights(this.qa_outputs, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.roberta.forward(input);
    return { ...out, ...qaHead(this.qa_outputs.forward(out.lastHiddenState), input) };
  }
}

/** Inputs (B, C, T); the pooled output scores each choice. */
export class RobertaForMultipleChoice extends Module {
  roberta: RobertaModel;
  dropout: Dropout;
  classifier: Linear;

  constructor(readonly config: RobertaConfig) {
    super();
    this.roberta = new RobertaModel(config);
    this.dropout = new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob);
    this.classifier = new Linear(config.hidden_size, 1);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const [B, C, T] = input.inputIds!.shape as [number, number, number];
    const flat = (t?: Tensor): Tensor | undefined => t?.reshape([B * C, T]);
    const out = this.roberta.forward({ inputIds: flat(input.inputIds)!, attentionMask: flat(input.attentionMask), tokenTypeIds: flat(input.tokenTypeIds), firstTokenOnly: input.firstTokenOnly ?? true });
    const logits = this.classifier.forward(this.dropout.forward(out.pooledOutput!)).view([B, C]);
    return { ...out, logits, ...(input.labels ? { loss: torch.crossEntropy(logits.float(), input.labels.view([-1])) } : {}) };
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** RoBERTa in the architecture registry. */
export const architecture: ArchitectureEntry = {
  modelType: "roberta",
  prefix: "roberta",
  parseConfig: (raw, where) => robertaConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    RobertaModel: ["base", c(RobertaModel)],
    RobertaForMaskedLM: ["masked-lm", c(RobertaForMaskedLM)],
    RobertaForSequenceClassification: ["sequence-classification", c(RobertaForSequenceClassification)],
    RobertaForTokenClassification: ["token-classification", c(RobertaForTokenClassification)],
    RobertaForQuestionAnswering: ["question-answering", c(RobertaForQuestionAnswering)],
    RobertaForMultipleChoice: ["multiple-choice", c(RobertaForMultipleChoice)],
  },
  embeddings: /^embeddings\./,
  layers: /^encoder\.layer\.(\d+)\./,
  loraTargets: /attention\.self\.(query|value)$/,
  wordEmbeddings: "embeddings.word_embeddings",
  // positions count from padding_idx + 1 (= 2 with RoBERTa's padding_idx 1)
  dropoutKeys: ["hidden_dropout_prob", "classifier_dropout"],
  positions: { key: "max_position_embeddings", needed: (n) => n + 2 },
  presets: {
    // the sizes of bert-tiny, -mini and -small (Turc et al. 2019), for comparisons at equal size
    "roberta-tiny": { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
    "roberta-mini": { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
    "roberta-small": { hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, intermediate_size: 2048 },
    "roberta-base": { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
  },
};

// Registers every architecture with the Auto classes.
import { registerArchitecture } from "./registry.js";
import type { ModelClass } from "./registry.js";
import * as bert from "./bert.js";

const c = (x: unknown): ModelClass => x as ModelClass;

registerArchitecture({
  modelType: "bert",
  prefix: "bert",
  parseConfig: (raw, where) => bert.bertConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    BertModel: ["base", c(bert.BertModel)],
    BertForPreTraining: ["pretraining", c(bert.BertForPreTraining)],
    BertForMaskedLM: ["masked-lm", c(bert.BertForMaskedLM)],
    BertForNextSentencePrediction: ["next-sentence", c(bert.BertForNextSentencePrediction)],
    BertForSequenceClassification: ["sequence-classification", c(bert.BertForSequenceClassification)],
    BertForTokenClassification: ["token-classification", c(bert.BertForTokenClassification)],
    BertForMultipleChoice: ["multiple-choice", c(bert.BertForMultipleChoice)],
    BertForQuestionAnswering: ["question-answering", c(bert.BertForQuestionAnswering)],
  },
});

import * as gpt2 from "./gpt2.js";

registerArchitecture({
  modelType: "gpt2",
  prefix: "transformer",
  parseConfig: (raw, where) => gpt2.gpt2Config(raw, where),
  ignore: /\.attn\.(masked_)?bias$/,
  classes: {
    GPT2Model: ["base", c(gpt2.GPT2Model)],
    GPT2LMHeadModel: ["causal-lm", c(gpt2.GPT2LMHeadModel)],
    GPT2ForSequenceClassification: ["sequence-classification", c(gpt2.GPT2ForSequenceClassification)],
  },
});

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

import * as roberta from "./roberta.js";
import * as albert from "./albert.js";
import * as electra from "./electra.js";

registerArchitecture({
  modelType: "roberta",
  prefix: "roberta",
  parseConfig: (raw, where) => roberta.robertaConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    RobertaModel: ["base", c(roberta.RobertaModel)],
    RobertaForMaskedLM: ["masked-lm", c(roberta.RobertaForMaskedLM)],
    RobertaForSequenceClassification: ["sequence-classification", c(roberta.RobertaForSequenceClassification)],
    RobertaForTokenClassification: ["token-classification", c(roberta.RobertaForTokenClassification)],
    RobertaForQuestionAnswering: ["question-answering", c(roberta.RobertaForQuestionAnswering)],
    RobertaForMultipleChoice: ["multiple-choice", c(roberta.RobertaForMultipleChoice)],
  },
});

registerArchitecture({
  modelType: "albert",
  prefix: "albert",
  parseConfig: (raw, where) => albert.albertConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    AlbertModel: ["base", c(albert.AlbertModel)],
    AlbertForPreTraining: ["pretraining", c(albert.AlbertForPreTraining)],
    AlbertForMaskedLM: ["masked-lm", c(albert.AlbertForMaskedLM)],
    AlbertForSequenceClassification: ["sequence-classification", c(albert.AlbertForSequenceClassification)],
    AlbertForTokenClassification: ["token-classification", c(albert.AlbertForTokenClassification)],
    AlbertForQuestionAnswering: ["question-answering", c(albert.AlbertForQuestionAnswering)],
  },
});

registerArchitecture({
  modelType: "electra",
  prefix: "electra",
  parseConfig: (raw, where) => electra.electraConfig(raw, where),
  ignore: /\.position_ids$/,
  classes: {
    ElectraModel: ["base", c(electra.ElectraModel)],
    ElectraForPreTraining: ["electra-discriminator", c(electra.ElectraForPreTraining)],
    ElectraForMaskedLM: ["masked-lm", c(electra.ElectraForMaskedLM)],
    ElectraForSequenceClassification: ["sequence-classification", c(electra.ElectraForSequenceClassification)],
    ElectraForTokenClassification: ["token-classification", c(electra.ElectraForTokenClassification)],
    ElectraForQuestionAnswering: ["question-answering", c(electra.ElectraForQuestionAnswering)],
  },
});

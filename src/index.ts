// lmforge's library entry. Everything a user needs is exported from here, except the two parts that
// load an HTTP framework (fastify): the server as "lmforge/serve", reports and the dashboard as
// "lmforge/report" (package.json's exports), so that importing the library stays fast.
export * as torch from "./torch/index.js";
export * from "./torch/index.js";
export * as nn from "./nn/index.js";
export * as optim from "./optim/index.js";
export * as io from "./io/index.js";
export * as tokenizers from "./tokenizers/index.js";
export { Tokenizer, AutoTokenizer, loadTokenizer, saveTokenizer, trainTokenizer } from "./tokenizers/index.js";
export * as models from "./models/index.js";
export {
  AutoConfig,
  AutoModel,
  AutoModelForPreTraining,
  AutoModelForMaskedLM,
  AutoModelForCausalLM,
  AutoModelForSeq2SeqLM,
  AutoModelForSequenceClassification,
  AutoModelForTokenClassification,
  AutoModelForQuestionAnswering,
  AutoModelForMultipleChoice,
  savePretrained,
  loadReport,
} from "./models/index.js";
export * as data from "./data/index.js";
export * as objectives from "./objectives/index.js";
export * as train from "./train/index.js";
export * as tasks from "./tasks/index.js";
export * as metrics from "./eval/index.js";
export * as generate from "./generate/index.js";
export * as onnx from "./export/index.js";
export { exportOnnx, exportOnnxFromFolder, writeOnnx } from "./export/index.js";
export * as explain from "./explain/index.js";

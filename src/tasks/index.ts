import "./builtin.js";
export { registerTask, taskEntry, knownTasks, allTasks } from "./registry.js";
export type { FinetuneTask, TaskContext, TaskObjective, Splits } from "./registry.js";
export { classification, scoreClassification, LAYER_POOL_HEAD } from "./classification.js";
export type { ClassPrediction, EncodedText } from "./classification.js";
export { tokenClassification, scoreNer, nerWindows, splitWords, tagSet, decodeIob2 } from "./token-classification.js";
export type { NerExample, NerPrediction, NerWindow } from "./token-classification.js";
export { questionAnswering, scoreQa } from "./question-answering.js";

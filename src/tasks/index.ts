import "./builtin.js";
export { registerTask, taskEntry, knownTasks, allTasks } from "./registry.js";
export type { FinetuneTask, TaskContext, TaskObjective, Splits } from "./registry.js";
export { classification, scoreClassification, LAYER_POOL_HEAD } from "./classification.js";
export type { ClassPrediction, EncodedText } from "./classification.js";

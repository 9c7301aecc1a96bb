export { finetuneClassifier, evaluateClassifier, predictProbabilities, writeErrors, saveClassifier, applyStrategy } from "./classification.js";
export type { FinetuneOptions, FinetuneResult, EvalRecord, Strategy, Classifier } from "./classification.js";
export { hyperparameterSearch } from "./search.js";
export type { SearchSpace, SearchTrial } from "./search.js";

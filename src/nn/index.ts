export { Module, ModuleList, patternToRegExp } from "./module.js";
export type { StateDict, LoadResult, NamePattern } from "./module.js";
export { Linear, Embedding, LayerNorm, RMSNorm, Dropout, Conv1d, GELU, ReLU, SiLU, Tanh, activation } from "./layers.js";
export type { LayerOptions, ActivationName } from "./layers.js";
export { LoRALinear, applyLoRA } from "./lora.js";
export type { LoRAOptions } from "./lora.js";
export * as init from "./init.js";
export { savePretrained, loadPretrained, tensorsToSave } from "./pretrained.js";
export type { LoadPretrainedOptions } from "./pretrained.js";

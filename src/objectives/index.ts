export { maskExample } from "./masking.js";
export type { MaskingOptions, MaskingStrategy, Masked } from "./masking.js";
export { MaskedLM, CausalLM, mlmAccuracy } from "./pretraining.js";
export type { Objective, Batch } from "./pretraining.js";

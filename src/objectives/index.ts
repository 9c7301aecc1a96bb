export { maskExample } from "./masking.js";
export type { MaskingOptions, MaskingStrategy, Masked } from "./masking.js";
export { MaskedLM, CausalLM, mlmAccuracy } from "./pretraining.js";
export type { Objective, Batch } from "./pretraining.js";
export { perturbExample } from "./perturb.js";
export type { PerturbOptions } from "./perturb.js";
export { ElectraPair, ReplacedTokenDetection } from "./electra.js";
export { adversarialBackward, wordEmbeddings } from "../nn/adversarial.js";
export type { AdversarialOptions } from "../nn/adversarial.js";

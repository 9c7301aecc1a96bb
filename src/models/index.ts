export * from "./auto.js";
export { knownModelTypes, architecture } from "./registry.js";
export type { PretrainedModel, Task } from "./registry.js";
export type { ModelInputs, ModelOutput } from "./outputs.js";
export { ConfigError } from "./config.js";
export * as bert from "./bert.js";
export * as gpt2 from "./gpt2.js";

export { Trainer, NonFiniteLossError, lastCheckpoint } from "./trainer.js";
export type { TrainerOptions, StepInfo } from "./trainer.js";
export { pretrain } from "./pretrain.js";
export type { PretrainOptions, PretrainResult } from "./pretrain.js";

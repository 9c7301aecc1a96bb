export { Trainer, NonFiniteLossError, lastCheckpoint } from "./trainer.js";
export type { TrainerOptions, StepInfo, TrainTask } from "./trainer.js";
export { mixingRates, pickTask } from "./mixing.js";
export type { Mixing } from "./mixing.js";
export { pretrain, parseObjectives } from "./pretrain.js";
export type { PretrainOptions, PretrainResult, PretrainTask } from "./pretrain.js";

// The Trainer's options, declared once (src/io/options.ts): pretraining and fine-tuning share
// them, each with its own defaults where the literature's recipes differ (a pretraining peak
// learning rate of 5e-4, a fine-tuning one of 5e-5). The CLI's flags, --help and checks come
// from these declarations, and so do the library's defaults.
import * as torch from "../torch/index.js";
import { defineOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import type { AdversarialOptions } from "../nn/index.js";
import { DEFAULT_BUCKET_MB } from "./data-parallel.js";

/** --adversarial fgm:EPSILON or freelb:EPSILON[:STEPS] */
export function parseAdversarial(text: string): AdversarialOptions {
  const [method, eps, steps, ...rest] = text.split(":");
  const epsilon = Number(eps);
  const k = steps === undefined ? undefined : Number(steps);
  if ((method !== "fgm" && method !== "freelb") || !(epsilon > 0) || rest.length || (method === "fgm" && k !== undefined) || (k !== undefined && !(Number.isInteger(k) && k >= 1))) {
    throw new Error(`must be fgm:EPSILON or freelb:EPSILON:STEPS (EPSILON > 0, STEPS a positive integer), got "${text}"`);
  }
  return { method, epsilon, ...(k !== undefined ? { steps: k } : {}) };
}

/** The defaults that differ between pretraining and fine-tuning. */
export interface TrainingDefaults {
  learningRate: number;
  batchSize: number;
  /** Evaluations without improvement before an early stop (0: never). */
  patience: number;
  /** Evaluate / checkpoint every N steps: a number, a function of the other options, or undefined with the help's words for it. */
  evalEvery?: number | ((o: Record<string, number>) => number);
  saveEvery?: number | ((o: Record<string, number>) => number);
  everyText: { eval: string; save: string };
}

/** The Trainer's options with a command's defaults. */
export function trainingOptions(d: TrainingDefaults): readonly OptionSpec[] {
  return defineOptions([
    { flag: "out", key: "out", type: "string", arg: "DIR", required: true, help: "output folder: the model, metrics.jsonl, checkpoint-N/" },
    { flag: "batch-size", key: "batchSize", type: "int", min: 1, default: d.batchSize, help: "examples per micro-batch" },
    { flag: "grad-accum", key: "gradientAccumulation", type: "int", min: 1, default: 1, help: "micro-batches per optimizer step (the gradient equals one batch of all of them)" },
    { flag: "learning-rate", key: "learningRate", type: "number", min: 0, exclusiveMin: true, max: 1, default: d.learningRate, help: "peak learning rate of AdamW" },
    { flag: "weight-decay", key: "weightDecay", type: "number", min: 0, max: 1, default: 0.01, help: "AdamW's decoupled weight decay (none on biases and norms)" },
    { flag: "clip-norm", key: "clipNorm", type: "number", min: 0, default: 1, help: "clip the gradients' global norm to this (0: no clipping)" },
    {
      flag: "precision",
      key: "precision",
      type: "string",
      choices: ["fp32", "bf16"],
      default: () => torch.defaultPrecision(),
      defaultText: "bf16 on CPUs with AMX or AVX512-BF16, else fp32; $LMFORGE_PRECISION overrides",
      help: "bf16: bfloat16 autocast (weights and optimizer stay float32)",
    },
    { flag: "seed", key: "seed", type: "int", min: 0, default: 42, help: "seed of the data order, masks, dropout and initialisation" },
    { flag: "eval-every", key: "evalEvery", type: "int", min: 1, words: ["epoch"], default: d.evalEvery, defaultText: d.everyText.eval, help: "evaluate on the validation data every N steps, or at the end of every epoch" },
    { flag: "save-every", key: "saveEvery", type: "int", min: 1, words: ["epoch"], default: d.saveEvery, defaultText: d.everyText.save, help: "write a checkpoint (for --resume) every N steps, or at the end of every epoch" },
    { flag: "eval-batches", key: "evalBatches", type: "int", min: 1, help: "validation batches per evaluation (all if unset)" },
    { flag: "keep-last", key: "keepLast", type: "int", min: 1, default: 2, help: "checkpoints kept (the best one too, with early stopping)" },
    { flag: "patience", key: "patience", type: "int", min: 0, default: d.patience, help: "early stopping: evaluations without improvement of --metric before stopping (0: never); the best weights are restored" },
    { flag: "metric", key: "metric", type: "string", arg: "NAME", help: "the validation metric early stopping and the best weights follow (default: the task's main metric)" },
    { flag: "resume", key: "resume", type: "boolean", default: false, help: "continue from the last checkpoint in --out exactly (a new --learning-rate applies from there on)" },
    { flag: "bucket-mb", key: "bucketMb", type: "number", min: 0, exclusiveMin: true, default: DEFAULT_BUCKET_MB, help: "data parallel: gradient bucket size in MB (smaller buckets start their allreduce earlier in the backward; comm_hidden in metrics.jsonl says how much is hidden)" },
    { flag: "ddp-tail", key: "ddpTail", type: "string", choices: ["uneven", "pad", "drop"], default: "uneven", help: "data parallel: the epoch's tail over the ranks (uneven: the last ranks get fewer, each step is the one-process step; pad: repeat the first examples, as torch's DistributedSampler; drop: drop the tail)" },
    { flag: "gradient-checkpointing", key: "gradientCheckpointing", type: "boolean", default: false, help: "keep only each transformer layer's input and recompute the layer in the backward (less memory, about a third more compute; same gradients)" },
    { flag: "group-by-length", key: "groupByLength", type: "boolean", default: false, help: "batches of examples of like length, drawn from shuffled groups of 50 batches (as Hugging Face's group_by_length): less padding, faster steps on text of mixed lengths" },
    { flag: "adversarial", key: "adversarial", type: "string", arg: "fgm:EPS|freelb:EPS:STEPS", parse: parseAdversarial, help: "adversarial training on the word embeddings (FGM, or FreeLB with K ascent steps)" },
  ]);
}

// Fine-tuning end to end, for every registered task: read and split the data, build the model
// with the task's head, apply the transfer strategy, train with the Trainer (early stopping,
// best weights restored, checkpoints, exact resume), save a folder that describes itself, and
// score the test set. Every argument is checked, the data read and the model built before
// anything is written.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { architecture, checkPositions, classFor, configFromPretrained, modelFromPretrained, savePretrained } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { LoRALinear } from "../nn/index.js";
import type { AdversarialOptions } from "../nn/index.js";
import { saveCheckpoint, writeTextAtomic } from "../io/index.js";
import { copyFileAtomic } from "../io/atomic.js";
import { splitIndices } from "../data/index.js";
import { OptionError, defineOptions, resolveOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { schedules } from "../optim/index.js";
import { referenceStats, textFeatures } from "../eval/drift.js";
import type { PredictionFeatures, ReferenceStats } from "../eval/drift.js";
import { knownTasks, taskEntry } from "../tasks/index.js";
import { taskHead } from "../tasks/registry.js";
// the generation strategies serve model.generate(), which generation-evaluated tasks call (translation, summarization)
import "../generate/index.js";
import type { FinetuneTask, Splits } from "../tasks/index.js";
import { Trainer } from "./trainer.js";
import type { StepInfo, TrainResult } from "./trainer.js";
import { DEFAULT_BUCKET_MB, joinFromEnv } from "./data-parallel.js";
import type { DistributedOptions } from "./data-parallel.js";
import { trainingOptions } from "./options.js";
import { DP_OPTIONS } from "./privacy/dp-sgd.js";
import { BASELINE_FINETUNE_OPTIONS, baselineAfterFinetune } from "./baseline.js";
import type { BaselineResult } from "./baseline.js";
import { applyStrategy, parseStrategy, strategyHead } from "./strategy.js";
import type { Strategy } from "./strategy.js";
import { hyperparameterSearch } from "./search.js";
import { RECIPE_OPTIONS, prepareRecipes } from "./recipes/index.js";
import type { RecipeOptions } from "./recipes/index.js";
import type { SearchTrial } from "./search.js";
import { TOKENIZER_FILES } from "./finetuned.js";
import type { FinetunedMeta } from "./finetuned.js";
import { FEW_SHOT_OPTIONS, fewShotFinetune } from "./few-shot.js";
import type { FewShotSummary } from "./few-shot.js";
import { isPromptEnsemble, promptEnsembleFinetune } from "./prompt-ensemble.js";
import { ADAPT_OPTIONS, prepareBase } from "./adapt.js";
import type { TokenizationReport } from "./adapt.js";

const numberList = (text: string): number[] => {
  const xs = text.split(",").map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) throw new Error(`must be a comma-separated list of numbers, got "${text}"`);
  return xs;
};

/** The search flags: option key -> its list of values. */
const SEARCH_KEYS = { "search-learning-rate": "learningRate", "search-batch-size": "batchSize", "search-dropout": "dropout", "search-epochs": "epochs", "search-weight-decay": "weightDecay" } as const;

/** Every option of finetune() (and so of `lmforge finetune`) but the tasks' own. */
export const FINETUNE_OPTIONS = defineOptions([
  { flag: "model", key: "model", type: "string", arg: "DIR", required: true, help: "a checkpoint folder (lmforge pretrain's output, or one Hugging Face saved)" },
  { flag: "tokenizer", key: "tokenizer", type: "string", arg: "DIR", help: "the tokenizer folder (default: the model folder)" },
  { flag: "task", key: "task", type: "string", arg: knownTasks().join("|"), choices: knownTasks(), default: "classification", help: "what to learn" },
  { flag: "train", key: "train", type: "string", arg: "FILE", help: "labelled training data (the task's formats, or a built-in dataset); required, but image-classification takes --images DIR instead" },
  { flag: "validation", key: "validation", type: "string", arg: "FILE", help: "validation data (default: split from --train, seeded; the split is saved)" },
  { flag: "test", key: "test", type: "string", arg: "FILE", help: "test data, scored at the end (default: split from --train when --validation is not given)" },
  { flag: "validation-fraction", key: "validationFraction", type: "number", min: 0, exclusiveMin: true, max: 0.5, default: 0.1, help: "share of --train held out for validation when no --validation is given" },
  { flag: "test-fraction", key: "testFraction", type: "number", min: 0, max: 0.5, default: 0.1, help: "share of --train held out for testing when neither --validation nor --test is given" },
  { flag: "limit", key: "limit", type: "int", min: 1, help: "at most N training examples (a seeded sample; a built-in dataset scales its three parts together), for a quick run" },
  { flag: "skip-bad-rows", key: "skipBadRows", type: "boolean", default: false, help: "skip and count bad rows instead of stopping at the first" },
  { flag: "strategy", key: "strategy", type: "string", arg: "full|features|features:N|freeze:N|lora", parse: parseStrategy, default: "full", help: "what trains: everything; the head only (on the last N layers' [CLS]); all but the embeddings and first N layers; LoRA adapters and the head" },
  { flag: "from-scratch", key: "fromScratch", type: "boolean", default: false, help: "the same architecture from random weights (a baseline for: does pretraining help?)" },
  { flag: "epochs", key: "epochs", type: "int", min: 1, default: 3, help: "passes over the training data" },
  { flag: "max-steps", key: "maxSteps", type: "int", min: 1, help: "optimizer steps instead of --epochs" },
  { flag: "max-length", key: "maxLength", type: "int", min: 8, default: 128, help: "tokens per input (longer inputs are truncated or windowed, by task); saved with the model" },
  { flag: "dropout", key: "dropout", type: "number", min: 0, max: 0.9, help: "the model's hidden and classifier dropout (default: the checkpoint's)" },
  { flag: "lora-rank", key: "loraRank", type: "int", min: 1, default: 8, help: "LoRA's rank r (alpha = 2r)" },
  { flag: "warmup-ratio", key: "warmupRatio", type: "number", min: 0, max: 1, default: 0.1, help: "share of the steps spent warming up, then linear decay to 0" },
  ...trainingOptions({ learningRate: 5e-5, batchSize: 32, patience: 2, everyText: { eval: "the end of every epoch", save: "the end of every epoch" } }),
  ...DP_OPTIONS,
  ...RECIPE_OPTIONS,
  ...ADAPT_OPTIONS,
  ...BASELINE_FINETUNE_OPTIONS,
  { flag: "search", key: "search", type: "string", choices: ["grid", "random"], help: "hyperparameter search over the --search-* lists; the best trial's model is kept" },
  { flag: "search-learning-rate", key: "searchLearningRate", type: "string", arg: "X,Y,...", parse: numberList, help: "learning rates to try" },
  { flag: "search-batch-size", key: "searchBatchSize", type: "string", arg: "N,M,...", parse: numberList, help: "batch sizes to try" },
  { flag: "search-dropout", key: "searchDropout", type: "string", arg: "P,Q,...", parse: numberList, help: "dropout rates to try" },
  { flag: "search-epochs", key: "searchEpochs", type: "string", arg: "N,M,...", parse: numberList, help: "epoch counts to try" },
  { flag: "search-weight-decay", key: "searchWeightDecay", type: "string", arg: "X,Y,...", parse: numberList, help: "weight decays to try" },
  { flag: "trials", key: "trials", type: "int", min: 1, default: 4, help: "random search: how many combinations to try" },
  ...FEW_SHOT_OPTIONS,
] as const satisfies readonly OptionSpec[]);

export interface FinetuneOptions extends RecipeOptions {
  model: string;
  tokenizer?: string;
  task?: string;
  /** A file or built-in dataset name, or the examples themselves. */
  train?: string | unknown[];
  validation?: string | unknown[];
  test?: string | unknown[];
  validationFraction?: number;
  testFraction?: number;
  skipBadRows?: boolean;
  limit?: number;
  /** The label names in class order (default: from the training data). */
  labels?: string[];
  strategy?: Strategy;
  fromScratch?: boolean;
  epochs?: number;
  maxSteps?: number;
  maxLength?: number;
  dropout?: number;
  loraRank?: number;
  warmupRatio?: number;
  batchSize?: number;
  gradientAccumulation?: number;
  learningRate?: number;
  weightDecay?: number;
  clipNorm?: number;
  precision?: "fp32" | "bf16";
  seed?: number;
  evalEvery?: number | "epoch";
  saveEvery?: number | "epoch";
  evalBatches?: number;
  keepLast?: number;
  patience?: number;
  metric?: string;
  resume?: boolean;
  adversarial?: AdversarialOptions;
  /** Gradient checkpointing per transformer layer: less memory, a recomputed forward. */
  gradientCheckpointing?: boolean;
  /** Batches of examples of like length (TrainerOptions.groupByLength). */
  groupByLength?: boolean;
  /** DP-SGD: a target ε or a noise multiplier, δ, the per-example clipping norm (src/train/privacy/dp-sgd.ts). */
  dpEpsilon?: number;
  dpNoiseMultiplier?: number;
  dpDelta?: number;
  dpMaxGradNorm?: number;
  search?: "grid" | "random";
  searchLearningRate?: number[];
  searchBatchSize?: number[];
  searchDropout?: number[];
  searchEpochs?: number[];
  searchWeightDecay?: number[];
  trials?: number;
  /** Few-shot: K examples per class, over `seeds` draws (src/train/few-shot.ts). */
  shots?: number;
  seeds?: number;
  /** Task-adaptive pretraining steps, their learning rate and batch size; words to add to the vocabulary (src/train/adapt.ts). */
  adapt?: number;
  adaptLearningRate?: number;
  adaptBatchSize?: number;
  extendVocab?: number;
  out: string;
  /** Data parallelism over a process group; by default the one a launcher's RANK/WORLD_SIZE name, if any. */
  distributed?: DistributedOptions;
  /** Data parallelism: the epoch's tail over the ranks (src/train/sampler.ts; default uneven). */
  ddpTail?: "uneven" | "pad" | "drop";
  /** Data parallel: gradient bucket size in MB (default 25, as DDP). */
  bucketMb?: number;
  onStep?: (info: StepInfo) => void;
  onEval?: (metrics: Record<string, number>) => void;
  onTrial?: (t: SearchTrial, index: number, count: number) => void;
  log?: (line: string) => void;
  /** The task's own options (textColumn, tagScheme, docStride, ...). */
  [taskOption: string]: unknown;
}

export interface FinetuneResult {
  model: PretrainedModel;
  tokenizer: Tokenizer;
  labels: string[];
  meta: FinetunedMeta;
  train: TrainResult;
  trainable: number;
  /** The test set's examples, metrics and report, when there was one. */
  test?: { metrics: Record<string, number>; report: unknown; predictions: unknown[]; examples: unknown[] };
  search?: { trials: SearchTrial[]; best: SearchTrial };
  /** With shots: every draw's test metrics and their mean ± std. */
  fewShot?: FewShotSummary;
  /** The tokenizer's unknown-token rate and pieces per word on each split (and before --extend-vocab). */
  tokenization?: TokenizationReport;
  /** --baseline: TF-IDF + logistic regression on the same splits (src/train/baseline.ts). */
  baseline?: BaselineResult;
}

export type Resolved = Required<Pick<FinetuneOptions, "model" | "train" | "task" | "validationFraction" | "testFraction" | "skipBadRows" | "strategy" | "fromScratch" | "epochs" | "maxLength" | "loraRank" | "warmupRatio" | "batchSize" | "gradientAccumulation" | "learningRate" | "weightDecay" | "clipNorm" | "precision" | "seed" | "keepLast" | "patience" | "resume" | "trials" | "out">> & FinetuneOptions;

const DATA_KEYS = ["train", "validation", "test"] as const;

/** Reads one data argument: the examples given, a built-in dataset's part, or a file. */
function readData(task: FinetuneTask, arg: string | unknown[], o: Record<string, unknown>, log?: (line: string) => void): unknown[] {
  if (Array.isArray(arg)) return arg;
  const r = task.read(arg, o);
  if (r.skipped.length) log?.(`${arg}: skipped ${r.skipped.length} bad row(s), e.g. ${r.skipped[0]!.source}: ${r.skipped[0]!.reason}`);
  if (r.examples.length === 0) throw new Error(`${arg}: no examples`);
  return r.examples;
}

/** Train, validation and test examples; split from the training data when not given (the split saved). Distillation reads its data so too. */
export function loadSplits(task: FinetuneTask, o: Resolved): Splits<unknown> & { saved?: Record<string, unknown> } {
  const builtin = typeof o.train === "string" ? task.builtin?.(o.train, o) : null;
  if (builtin) {
    o.log?.(`${o.train}: the built-in dataset's own split: ${builtin.train.length} train, ${builtin.validation.length} validation, ${builtin.test.length} test`);
    return {
      train: builtin.train,
      validation: o.validation === undefined ? builtin.validation : readData(task, o.validation, o, o.log),
      test: o.test === undefined ? builtin.test : readData(task, o.test, o, o.log),
    };
  }
  let train = readData(task, o.train, o, o.log);
  if (o.limit !== undefined && train.length > o.limit) {
    const keep = splitIndices(train.length, { validation: 0, test: 1 - o.limit / train.length }, o.seed).train;
    o.log?.(`--limit ${o.limit}: ${keep.length} of ${train.length} training examples`);
    train = keep.map((i) => train[i]!);
  }
  const test = o.test === undefined ? undefined : readData(task, o.test, o, o.log);
  if (o.validation !== undefined) return { train, validation: readData(task, o.validation, o, o.log), test: test ?? [] };
  const fractions = { validation: o.validationFraction, test: test ? 0 : o.testFraction };
  const s = task.split(train, fractions, o.seed);
  if (s.train.length === 0 || s.validation.length === 0) throw new Error(`${typeof o.train === "string" ? o.train : "the training data"}: ${train.length} examples are too few to split off validation data; give --validation`);
  o.log?.(`split ${train.length} examples (seed ${o.seed}): ${s.train.length} train, ${s.validation.length} validation, ${s.test.length} test`);
  return { train: s.train, validation: s.validation, test: test ?? s.test, saved: { source: typeof o.train === "string" ? o.train : "examples", seed: o.seed, ...fractions, ...s.indices } };
}

/** The tokenizer files of a folder, to copy beside a model. */
export function tokenizerFiles(dir: string): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const f of TOKENIZER_FILES) if (existsSync(join(dir, f))) copy[f] = join(dir, f);
  return copy;
}

/**
 * Saves a fine-tuned model as a Hugging Face folder that describes itself: LoRA folded into the
 * weights, the tokenizer beside it, and config.json's "lmforge" key holding the task, labels,
 * max length, strategy and tokenizer settings that evaluate, predict and serve use.
 */
export function saveFinetuned(model: PretrainedModel, out: string, meta: FinetunedMeta, tokenizerDir: string): void {
  for (const [, m] of model.namedModules()) if (m instanceof LoRALinear) m.merge();
  const copy = tokenizerFiles(tokenizerDir);
  const plain = new Map([...model.stateDict()].filter(([n]) => !/\.lora_[AB]\./.test(n)));
  const own = { ...model.config, lmforge: meta };
  if (plain.size === model.stateDict().size) {
    savePretrained(model, out, { copy, mode: "files", config: { lmforge: meta } });
    return;
  }
  // LoRA's A and B are folded in: the plain model's tensors only, each tied tensor once
  const seen = new Set<unknown>();
  const tensors = new Map([...plain].filter(([, t]) => (seen.has(t) ? false : (seen.add(t), true))));
  const entry = architecture(model.config.model_type);
  const named = Object.entries(entry.classes).find(([, [, cls]]) => model.constructor === cls)?.[0] ?? classFor(entry, taskHead(taskEntry(meta.task), entry))[0];
  saveCheckpoint(out, { ...own, architectures: [named] }, tensors, { copy, mode: "files" });
}

/** The file of the drift reference in a fine-tuned folder (src/serve reads it). */
export const INPUT_STATS_FILE = "input_stats.json";

/**
 * Writes a classifier's drift reference (src/eval/drift.ts) into its folder as input_stats.json:
 * length, out-of-vocabulary and unknown-token rates over the training texts (untruncated, as the
 * server sees them), and the predicted label and its confidence over the validation examples.
 */
export function saveInputStats(out: string, tokenizer: Tokenizer, train: readonly { text: string; textPair?: string }[], validationPredictions: readonly PredictionFeatures[], labels: readonly string[]): ReferenceStats {
  const unk = tokenizer.specialTokens.unk;
  const unkId = unk === undefined ? undefined : tokenizer.tokenToId(unk);
  const inputs = train.map((e) => textFeatures(tokenizer.encode(e.text, e.textPair ?? null), unkId));
  const stats = referenceStats(inputs, validationPredictions, labels, `inputs: ${train.length} training examples; predictions: ${validationPredictions.length} validation examples`);
  writeTextAtomic(join(out, INPUT_STATS_FILE), JSON.stringify(stats) + "\n");
  return stats;
}

/** Fine-tunes a model on a task (or searches hyperparameters when o.search is set). */
export async function finetune(given: FinetuneOptions): Promise<FinetuneResult> {
  const task = taskEntry(typeof given.task === "string" ? given.task : "classification");
  const data = Object.fromEntries(DATA_KEYS.filter((k) => Array.isArray(given[k])).map((k) => [k, given[k]]));
  // examples given directly stand in as text for the checks, then come back as they are
  const stripped = { ...given, ...Object.fromEntries(Object.keys(data).map((k) => [k, "(examples)"])) };
  const o = { ...resolveOptions([...FINETUNE_OPTIONS, ...task.options], stripped), ...data } as Resolved;
  // image tasks name their data --images (a folder with its train and test parts)
  if (o.train === undefined && typeof o.images === "string") o.train = o.images;
  if (o.train === undefined) throw new OptionError(`train is required${task.options.some((s) => s.key === "images") ? " (or images)" : ""}`);
  if (o.shots !== undefined) return fewShotFinetune(task, o as Resolved & { shots: number }, finetune);
  if (o.seeds !== undefined) throw new OptionError("seeds repeats a few-shot run over draws; give shots too");
  if (o.search) return searchFinetune(o);
  if (isPromptEnsemble(o)) return promptEnsembleFinetune(o, finetune, saveFinetuned);
  if (o.metric !== undefined && !task.metrics.includes(o.metric)) throw new Error(`--metric ${o.metric}: ${task.name} reports ${task.metrics.join(", ")}`);
  if (o.baseline && !task.labelsTexts) throw new OptionError(`--baseline: the TF-IDF baseline classifies texts; the task is ${task.name}`);
  // the model folder, its architecture and head, the tokenizer and the length: checked first
  if (!existsSync(join(o.model, "config.json"))) throw new Error(`--model ${o.model}: no config.json there (a checkpoint folder is expected)`);
  const config = await configFromPretrained(o.model);
  const entry = architecture(config.model_type, join(o.model, "config.json"));
  const modelHead = taskHead(task, entry);
  classFor(entry, modelHead);
  let tokDir = o.tokenizer ?? o.model;
  if (!existsSync(tokDir)) throw new Error(`--tokenizer ${tokDir}: no such folder`);
  let tok = loadTokenizer(tokDir);
  const vocab = config.vocab_size as number;
  if (tok.vocabSize > vocab) throw new Error(`the tokenizer in ${tokDir} has ${tok.vocabSize} tokens, more than the model's vocabulary (vocab_size ${vocab} in ${join(o.model, "config.json")}): use the tokenizer the model was trained with`);
  checkPositions(config, o.maxLength, "--max-length");
  // the data, its label space, the model
  const splits = loadSplits(task, o);
  Object.assign(o, task.settle?.(splits.train, o) ?? {});
  const labels = o.labels ?? task.labels(splits.train, o);
  task.check?.(splits.validation, labels, "validation");
  task.check?.(splits.test, labels, "test");
  if (o.fromScratch && (o.adapt !== undefined || o.extendVocab !== undefined)) throw new Error("--from-scratch starts from random weights: --adapt and --extend-vocab change a pretrained model");
  // the tokenizer's fit; --extend-vocab and --adapt write OUT/extended and OUT/adapted (src/train/adapt.ts)
  const base = await prepareBase({ ...o, adaptLearningRate: o.adaptLearningRate!, tokenizer: tok, tokenizerDir: tokDir, splits, ...(o.onStep ? { onStep: o.onStep } : {}), ...(o.log ? { log: o.log } : {}) });
  ({ tokenizer: tok, tokenizerDir: tokDir } = base);
  torch.manualSeed(o.seed);
  const labelConfig = labels.length ? { id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])), label2id: Object.fromEntries(labels.map((l, i) => [l, i])) } : {};
  const dropout = o.dropout === undefined ? {} : Object.fromEntries(entry.dropoutKeys.map((k) => [k, o.dropout]));
  const optionHead = task.optionHead?.(o);
  if (optionHead && strategyHead(o.strategy)) throw new Error(`--strategy ${String(o.strategy)} attaches a head of its own; ${optionHead} needs another: choose one`);
  const head = strategyHead(o.strategy) ?? optionHead ?? task.ownHead;
  const [, cls] = classFor(entry, modelHead);
  const model = o.fromScratch
    ? new cls(entry.parseConfig({ ...config, ...labelConfig, ...dropout, architectures: undefined }, join(o.model, "config.json")) as never)
    : await modelFromPretrained(base.model, modelHead, { config: { ...labelConfig, ...dropout }, verbose: false });
  const counts = applyStrategy(model, o.strategy, { loraRank: o.loraRank });
  if (head) task.attachHead?.(model, head, labels);
  const trainable = [...model.namedParameters()].reduce((n, [, p]) => n + (p.requiresGrad ? p.numel : 0), 0);
  o.log?.(`${model.constructor.name}: ${trainable.toLocaleString("en-US")} of ${counts.total.toLocaleString("en-US")} parameters train (strategy ${o.strategy})`);
  const meta: FinetunedMeta = {
    task: task.name,
    labels,
    max_length: o.maxLength,
    strategy: o.strategy,
    ...(head ? { head } : {}),
    tokenizer: { files: Object.keys(tokenizerFiles(tokDir)), vocab_size: tok.vocabSize },
    options: Object.fromEntries(task.options.filter((s) => o[s.key] !== undefined).map((s) => [s.key, o[s.key]])),
  };
  const objective = task.objective({ tokenizer: tok, labels, maxLength: o.maxLength, options: o, modelHead, ...(head ? { head } : {}) });
  // a launcher's worker joins its group; only rank 0 writes
  const joined = o.distributed ? undefined : await joinFromEnv(o.log, { tail: o.ddpTail ?? "uneven", bucketMb: o.bucketMb ?? DEFAULT_BUCKET_MB });
  const distributed = (o.distributed as DistributedOptions | undefined) ?? joined;
  const main = (distributed?.group.rank ?? 0) === 0;
  // the recipes that change the model, checked before the first write (src/train/recipes)
  if (o.mixout && (o.dpEpsilon !== undefined || o.dpNoiseMultiplier !== undefined)) throw new Error("--mixout and DP-SGD (--dp-*) both take over the Linear layers' forward: choose one");
  const recipes = prepareRecipes(model, { ...o, main, ...(o.log ? { log: o.log } : {}) });
  // everything checked: the first write
  if (main) mkdirSync(o.out, { recursive: true });
  if (main && splits.saved && !o.resume) writeTextAtomic(join(o.out, "split.json"), JSON.stringify(splits.saved) + "\n");
  const privacy = o.dpEpsilon !== undefined || o.dpNoiseMultiplier !== undefined;
  if (privacy && given.precision === "bf16") throw new Error("--dp-epsilon / --dp-noise-multiplier: DP-SGD runs in fp32; drop --precision bf16");
  const trainer = new Trainer({
    model,
    objective,
    train: splits.train,
    validation: splits.validation,
    batchSize: o.batchSize,
    gradientAccumulation: o.gradientAccumulation,
    ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : { epochs: o.epochs }),
    learningRate: o.learningRate,
    weightDecay: o.weightDecay,
    scheduleFor: (steps) => schedules.linearWarmupDecay(Math.round(steps * o.warmupRatio), steps),
    // DP-SGD clips each example's gradient instead of the batch's
    clipNorm: privacy ? 0 : o.clipNorm,
    precision: privacy ? "fp32" : o.precision,
    seed: o.seed,
    out: o.out,
    ...(privacy ? { privacy: { ...(o.dpEpsilon !== undefined ? { epsilon: o.dpEpsilon } : {}), ...(o.dpNoiseMultiplier !== undefined ? { noiseMultiplier: o.dpNoiseMultiplier } : {}), ...(o.dpDelta !== undefined ? { delta: o.dpDelta } : {}), maxGradNorm: o.dpMaxGradNorm ?? 1 } } : {}),
    evalEvery: o.evalEvery ?? "epoch",
    saveEvery: o.saveEvery ?? "epoch",
    keepLast: o.keepLast,
    ...(o.evalBatches ? { evalBatches: o.evalBatches } : {}),
    best: { metric: o.metric ?? task.metric, patience: o.patience, restore: true },
    resume: o.resume,
    copy: tokenizerFiles(tokDir),
    config: { lmforge: meta },
    ...(distributed ? { distributed } : {}),
    ...(o.adversarial ? { adversarial: o.adversarial } : {}),
    ...(o.gradientCheckpointing ? { gradientCheckpointing: true } : {}),
    ...(o.groupByLength ? { groupByLength: true } : {}),
    ...(o.onStep ? { onStep: o.onStep } : {}),
    ...recipes.trainer,
    onEval: (m) => {
      recipes.onEval(m);
      o.onEval?.(m);
    },
    ...(o.log ? { log: o.log } : {}),
  });
  const r = await trainer.trainAsync(); // SIGINT/SIGTERM: a checkpoint, then r.interrupted
  const metric = o.metric ?? task.metric;
  recipes.finish(r, () => trainer.evaluate(), { name: metric, mode: objective.metricDirections?.[metric] ?? (metric.endsWith("loss") ? "min" : "max") });
  trainer.optimizer.dispose();
  model.eval();
  const result: FinetuneResult = { model, tokenizer: tok, labels, meta, train: r, trainable, tokenization: base.tokenization };
  joined?.group.destroy();
  if (r.interrupted || !main) return result;
  objective.afterTraining?.(model, splits.train, { batchSize: o.batchSize, precision: o.precision });
  saveFinetuned(model, o.out, meta, tokDir);
  writeTextAtomic(join(o.out, "tokenization.json"), JSON.stringify(base.tokenization, null, 2) + "\n");
  if (task.labelsTexts) {
    // the drift reference `lmforge serve` compares live inputs with
    const predictions = objective.predict(model, splits.validation, { batchSize: o.batchSize, precision: o.precision }) as PredictionFeatures[];
    saveInputStats(o.out, tok, splits.train as { text: string; textPair?: string }[], predictions, labels);
  }
  if (splits.test.length) {
    const predictions = objective.predict(model, splits.test, { batchSize: o.batchSize, precision: o.precision });
    const scored = task.score(splits.test, predictions, labels, o);
    writeTextAtomic(join(o.out, "test_metrics.json"), JSON.stringify({ examples: splits.test.length, ...scored.metrics, report: scored.report, tokenization: base.tokenization }, null, 2) + "\n");
    for (const [name, text] of Object.entries(task.analysis?.(splits.test, predictions, labels) ?? {})) writeTextAtomic(join(o.out, name), text);
    result.test = { ...scored, predictions, examples: splits.test };
  }
  if (o.baseline) result.baseline = baselineAfterFinetune(splits, labels, o);
  return result;
}

/** Hyperparameter search: a fine-tuning run per trial in out/trials/N, the best trial's model copied to out. */
async function searchFinetune(o: Resolved): Promise<FinetuneResult> {
  const task = taskEntry(o.task);
  const space: Record<string, number[]> = {};
  for (const [flag, key] of Object.entries(SEARCH_KEYS)) {
    const values = o[`search${key[0]!.toUpperCase()}${key.slice(1)}`] as number[] | undefined;
    if (values?.length) space[key] = values;
    void flag;
  }
  if (Object.keys(space).length === 0) throw new Error(`--search needs at least one of ${Object.keys(SEARCH_KEYS).map((f) => `--${f}`).join(", ")}`);
  const metric = o.metric ?? task.metric;
  const { search: _s, onTrial, test, ...base } = o;
  let bestRun: FinetuneResult | null = null;
  const { trials, best } = await hyperparameterSearch(
    space,
    async (params, i) => {
      const out = join(o.out, "trials", String(i + 1));
      const r = await finetune({ ...base, ...params, out, test: undefined, validation: base.validation ?? undefined } as FinetuneOptions);
      const value = r.train.best?.value ?? NaN;
      if (!bestRun || (r.train.best && bestRun.train.best && (metric.endsWith("loss") ? value < bestRun.train.best.value : value > bestRun.train.best.value))) {
        bestRun?.model.dispose();
        bestRun = r;
      } else r.model.dispose();
      return { value, steps: r.train.steps, out };
    },
    { mode: o.search!, trials: o.trials, seed: o.seed, direction: metric.endsWith("loss") ? "min" : "max", ...(onTrial ? { onTrial } : {}) },
  );
  writeTextAtomic(join(o.out, "search_results.json"), JSON.stringify({ metric, trials }, null, 2) + "\n");
  // the best trial's model becomes the run's output
  for (const f of readdirSync(best.out)) if (f === "config.json" || f === INPUT_STATS_FILE || f.startsWith("model.safetensors") || (TOKENIZER_FILES as readonly string[]).includes(f)) copyFileAtomic(join(best.out, f), join(o.out, f));
  const chosen = bestRun! as FinetuneResult;
  chosen.search = { trials, best };
  if (test !== undefined) {
    const splits = { test: readData(task, test, o, o.log) };
    const modelHead = taskHead(task, architecture(chosen.model.config.model_type), chosen.model.constructor.name);
    const objective = task.objective({ tokenizer: chosen.tokenizer, labels: chosen.labels, maxLength: o.maxLength, options: o, modelHead, ...(chosen.meta.head ? { head: chosen.meta.head } : {}) });
    const predictions = objective.predict(chosen.model, splits.test, { batchSize: o.batchSize, precision: o.precision });
    const scored = task.score(splits.test, predictions, chosen.labels, o);
    writeTextAtomic(join(o.out, "test_metrics.json"), JSON.stringify({ examples: splits.test.length, ...scored.metrics, report: scored.report }, null, 2) + "\n");
    chosen.test = { ...scored, predictions, examples: splits.test };
  }
  return chosen;
}

// Fine-tuning tasks by name. A task is one file: how its data is read and split, its label
// space, the model head it needs, its objective for the Trainer (features, batches, loss,
// evaluation with the field's metrics and predictions), its own options, and how it answers
// `lmforge predict`. `lmforge finetune --task NAME`, evaluate and predict ask this registry;
// builtin.ts registers the tasks, one line each.
import type { ArchitectureEntry, Objective, PretrainedModel, Task } from "../models/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import type { OptionSpec } from "../io/options.js";
import type { Batch } from "../models/index.js";

/** What a task's objective is made from: the tokenizer, the labels, the length, its options. */
export interface TaskContext {
  tokenizer: Tokenizer;
  /** Label names in class-index order (empty for question answering). */
  labels: string[];
  maxLength: number;
  /** The task's own options (its declarations resolved). */
  options: Record<string, unknown>;
  /** Extra modules the task attached to the model (a pooled head), by name. */
  head?: string;
  /** The architecture head the model has, for a task that trains more than one (translation: seq2seq-lm or causal-lm); default the task's head. */
  modelHead?: Task;
}

/** A task's objective: training features from raw examples, and evaluation of raw examples. */
export interface TaskObjective<X, F = unknown> extends Objective<F, Batch, X> {
  /** Predictions for raw examples, in order, in the task's own form (label and probabilities, entities, answers). */
  predict(model: PretrainedModel, examples: readonly X[], options?: { batchSize?: number; precision?: "fp32" | "bf16" }): unknown[];
  /** Work after the Trainer's last step (best weights restored), before the model is saved: SetFit fits its head on the trained encoder. */
  afterTraining?(model: PretrainedModel, train: readonly X[], options: { batchSize?: number; precision?: "fp32" | "bf16" }): void;
}

export interface Splits<X> {
  train: X[];
  validation: X[];
  test: X[];
}

export interface FinetuneTask<X = unknown> {
  readonly name: string;
  /** One line for --help. */
  readonly summary: string;
  /** The model head it needs (the architecture registry's task). */
  readonly head: Task;
  /** A head of the task's own that every run attaches (attachHead), kept as the folder's meta.head so loading attaches it too. */
  readonly ownHead?: string;
  /** Every head it can train, preferred first (default [head]): translation takes an encoder-decoder or a decoder-only model. */
  readonly heads?: readonly Task[];
  /** Its own options (declared once): flags of finetune and evaluate (and kept with the model for predict). */
  readonly options: readonly OptionSpec[];
  /** Options of `lmforge predict` only (a question and its context). */
  readonly predictOptions?: readonly OptionSpec[];
  /** The validation metric early stopping follows unless --metric says otherwise. */
  readonly metric: string;
  /** Whether the model has a label space (id2label): classes or entity tags. */
  readonly needsLabels: boolean;
  /**
   * One label per text, predicted as { label, probabilities } (classification and the tasks built on
   * it): what the few-shot draw, the TF-IDF baseline and the drift reference work with.
   */
  readonly labelsTexts?: boolean;
  /** The `lmforge serve` endpoint its folders answer on (none: not served). */
  readonly serves?: "classify" | "tokens" | "answer" | "generate";
  /** Only a folder with its lmforge record is this task's (its settings, e.g. a prompt's pattern, are not in a Hugging Face config): never inferred from the architecture alone. */
  readonly recordOnly?: boolean;
  /** The metrics --metric may name. */
  readonly metrics: readonly string[];
  /** Data formats it reads, for --help. */
  readonly formats: string;
  /** Reads labelled data: a file, or a built-in dataset's name. Bad input names the file and line. */
  read(path: string, options: Record<string, unknown>): { examples: X[]; skipped: { source: string; reason: string }[] };
  /** A built-in dataset's own split, for a name such as "sotu-ner" (whole documents held out). */
  builtin?(name: string, options: Record<string, unknown>): Splits<X> | null;
  /** Splits training data when no validation file is given (seeded; stratified where it can be). */
  split(examples: X[], fractions: { validation: number; test: number }, seed: number): Splits<X> & { indices: Record<keyof Splits<X>, number[]> };
  /** Label names from the training examples (sorted classes, or B-/I- tags of the entity types). */
  labels(train: readonly X[], options: Record<string, unknown>): string[];
  /**
   * Options whose value depends on the training data, settled before training and saved with
   * the model (question answering's SQuAD version: 2.0 when the data has unanswerable questions).
   */
  settle?(train: readonly X[], options: Record<string, unknown>): Record<string, unknown>;
  /** Checks examples against the label space (a label the model does not know), naming the example. */
  check?(examples: readonly X[], labels: readonly string[], where: string): void;
  /** A head of the task's own that its options ask for (classification's --window-pool attention); attached as attachHead's, saved as meta.head. */
  optionHead?(options: Record<string, unknown>): string | undefined;
  objective(ctx: TaskContext): TaskObjective<X>;
  /**
   * Model parts of the task's own beyond the architecture's head (a pooled classifier for
   * features:N), attached before training and before loading a saved folder.
   */
  attachHead?(model: PretrainedModel, head: string, labels: readonly string[]): void;
  /** The console report of evaluation metrics. */
  formatMetrics(metrics: Record<string, number>, extra?: unknown): string;
  /**
   * Files worth writing beside a test evaluation (the errors, most confident first), from
   * the examples and their predictions; name -> content.
   */
  analysis?(examples: readonly X[], predictions: readonly unknown[], labels: readonly string[]): Record<string, string>;
  /** Builds raw examples from `lmforge predict` input (texts, or question and context). */
  predictInput(texts: string[], options: Record<string, unknown>): X[];
  /** One line of `lmforge predict` output for a prediction: text, or with json one JSON object. */
  formatPrediction(example: X, prediction: unknown, json: boolean): string;
  /** Full metrics for a test set, with whatever else the report needs (confusion matrix, per-type table). */
  score(examples: readonly X[], predictions: readonly unknown[], labels: readonly string[], options: Record<string, unknown>): { metrics: Record<string, number>; report: unknown };
}

/** The three parts of examples picked by split indices, with the indices (to save the split). */
export function pickSplits<X>(examples: readonly X[], indices: Record<keyof Splits<X>, number[]>): Splits<X> & { indices: Record<keyof Splits<X>, number[]> } {
  const part = (k: keyof Splits<X>): X[] => indices[k].map((i) => examples[i]!);
  return { train: part("train"), validation: part("validation"), test: part("test"), indices };
}

/**
 * The head a task trains on an architecture: the head of the class a saved folder names
 * (config.json's architectures[0]) when the task takes it, else the first of the task's heads
 * the architecture has. None is an error naming both sides.
 */
export function taskHead(task: FinetuneTask, entry: ArchitectureEntry, savedClass?: string): Task {
  const heads = task.heads ?? [task.head];
  const saved = savedClass ? entry.classes[savedClass]?.[0] : undefined;
  if (saved && heads.includes(saved)) return saved;
  const has = new Set(Object.values(entry.classes).map(([h]) => h));
  const head = heads.find((h) => has.has(h));
  if (!head) throw new Error(`${task.name} needs a ${heads.join(" or ")} model; ${entry.modelType} has ${[...has].join(", ")}`);
  return head;
}

const registry = new Map<string, FinetuneTask>();

export function registerTask(task: FinetuneTask): void {
  if (registry.has(task.name)) throw new Error(`task "${task.name}" is registered twice`);
  registry.set(task.name, task);
}

export function knownTasks(): string[] {
  return [...registry.keys()];
}

/** The task of a name; an unknown one is an error listing the known ones. */
export function taskEntry(name: string): FinetuneTask {
  const t = registry.get(name);
  if (!t) throw new Error(`unknown task "${name}"; lmforge knows ${[...registry.keys()].join(", ")}`);
  return t;
}

export function allTasks(): FinetuneTask[] {
  return [...registry.values()];
}

// Knowledge distillation end to end: fine-tuned classification teachers (one, or several as an
// ensemble) teach a smaller student (a preset from random weights, or a pretrained folder).
// The teachers' logits are computed once per training example before training, each teacher
// under no-grad on its own tokenizer, and cached in the training features; the student reads the
// same texts through its own tokenizer. The student trains with the Trainer, on the
// distillation objective (src/tasks/distillation.ts) that wraps its classification objective,
// and is saved as a normal fine-tuned classification folder (evaluate, predict and serve take it).
// On the test set the student, the teacher(s) and, with --compare, the same student fine-tuned
// alone on the same budget are scored and timed (examples per second, one batch size).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { PRESETS, architecture, checkPositions, configFromPretrained, classFor, modelFromPretrained, presetConfig } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { writeTextAtomic } from "../io/index.js";
import { OptionError, defineOptions, resolveOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { schedules } from "../optim/index.js";
import type { LabelledExample } from "../data/index.js";
import { classification, scoreClassification } from "../tasks/index.js";
import type { ClassPrediction, TaskObjective } from "../tasks/index.js";
import { taskHead } from "../tasks/registry.js";
import { toPrediction } from "../tasks/classification.js";
import type { ClassBatch } from "../tasks/classification.js";
import { DISTILL_DEFAULTS, DistillationObjective, HiddenProjections, PROJECTIONS_ATTRIBUTE, layerMapping } from "../tasks/distillation.js";
import type { HiddenMatching } from "../tasks/distillation.js";
import { Trainer } from "./trainer.js";
import type { StepInfo, TrainResult } from "./trainer.js";
import { trainingOptions } from "./options.js";
import { FINETUNE_OPTIONS, loadSplits, saveFinetuned, saveInputStats, tokenizerFiles } from "./finetune.js";
import { loadFinetuned } from "./finetuned.js";
import type { Finetuned, FinetunedMeta } from "./finetuned.js";

const folderList = (text: string): string[] => {
  const dirs = text.split(",").map((d) => d.trim());
  if (dirs.some((d) => d === "")) throw new Error(`must be a comma-separated list of folders, got "${text}"`);
  return dirs;
};

/** The data and budget flags, as fine-tuning declares them. */
const FROM_FINETUNE = ["validation", "test", "validation-fraction", "test-fraction", "limit", "skip-bad-rows", "epochs", "max-steps", "max-length", "dropout", "warmup-ratio"];

/** Every option of distill() (and so of `lmforge distill`) but classification's own (its columns). */
export const DISTILL_OPTIONS = defineOptions([
  { flag: "teacher", key: "teacher", type: "string", arg: "DIR[,DIR...]", parse: folderList, required: true, help: "fine-tuned classification folder(s) (lmforge finetune's output); several are an ensemble, their probabilities averaged" },
  { flag: "student", key: "student", type: "string", arg: "PRESET|DIR", required: true, help: `a preset from random weights (${Object.keys(PRESETS).filter((p) => /^(bert|albert|roberta)-/.test(p)).join(", ")}, ...) or a pretrained checkpoint folder` },
  { flag: "tokenizer", key: "tokenizer", type: "string", arg: "DIR", help: "the student's tokenizer folder (default: the student folder's; for a preset, the first teacher's)" },
  { flag: "train", key: "train", type: "string", arg: "FILE", required: true, help: "labelled training data (classification's formats, or spam-assassin)" },
  ...FINETUNE_OPTIONS.filter((s) => FROM_FINETUNE.includes(s.flag)),
  { flag: "temperature", key: "temperature", type: "number", min: 0, exclusiveMin: true, default: DISTILL_DEFAULTS.temperature, help: "T: the softmax temperature of the soft targets (the soft term is scaled by T²)" },
  { flag: "alpha", key: "alpha", type: "number", min: 0, max: 1, default: DISTILL_DEFAULTS.alpha, help: "weight of the soft term (the teachers'); 1 - alpha weighs the cross-entropy on the hard labels" },
  { flag: "hidden-loss", key: "hiddenLoss", type: "number", min: 0, default: DISTILL_DEFAULTS.hiddenLoss, help: "W > 0: add W x the MSE between student and teacher hidden states (uniform layer mapping, learned projections where widths differ); one teacher with the student's tokenizer" },
  { flag: "compare", key: "compare", type: "boolean", default: false, help: "also fine-tune the same student alone (same seed, data and budget) into OUT/compare, and report it beside" },
  ...trainingOptions({ learningRate: 1e-4, batchSize: 32, patience: 2, everyText: { eval: "the end of every epoch", save: "the end of every epoch" } })
    // no resume, adversarial training or data parallelism here: their flags are not offered
    .filter((s) => !["resume", "adversarial", "bucketMb", "ddpTail"].includes(s.key))
    // a student from random weights learns nothing in a few epochs at a fine-tuning rate (1e-4 left bert-tiny predicting one class on SpamAssassin)
    .map((s) => (s.key === "learningRate" ? { ...s, default: (o: Record<string, unknown>) => (PRESETS[String(o.student)] ? 1e-3 : 1e-4), defaultText: "1e-3 for a preset student (random weights), 1e-4 for a pretrained folder" } : s)),
] as const satisfies readonly OptionSpec[]);

export interface DistillOptions {
  /** Fine-tuned classification folders: one teacher, or an ensemble. */
  teacher: string | string[];
  /** A preset name (random weights) or a checkpoint folder. */
  student: string;
  tokenizer?: string;
  /** A file or built-in dataset name, or the examples themselves. */
  train: string | LabelledExample[];
  validation?: string | LabelledExample[];
  test?: string | LabelledExample[];
  validationFraction?: number;
  testFraction?: number;
  limit?: number;
  skipBadRows?: boolean;
  epochs?: number;
  maxSteps?: number;
  maxLength?: number;
  dropout?: number;
  warmupRatio?: number;
  temperature?: number;
  alpha?: number;
  hiddenLoss?: number;
  compare?: boolean;
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
  /** Gradient checkpointing per transformer layer, and batches of like length (the Trainer's options). */
  gradientCheckpointing?: boolean;
  groupByLength?: boolean;
  /** A preset student's config keys overridden (smaller sizes in tests); not a flag. */
  studentConfig?: Record<string, unknown>;
  out: string;
  onStep?: (info: StepInfo) => void;
  onEval?: (metrics: Record<string, number>) => void;
  log?: (line: string) => void;
  /** Classification's own options (text and label columns). */
  [taskOption: string]: unknown;
}

type Resolved = DistillOptions &
  Required<Pick<DistillOptions, "validationFraction" | "testFraction" | "skipBadRows" | "epochs" | "maxLength" | "warmupRatio" | "temperature" | "alpha" | "hiddenLoss" | "compare" | "batchSize" | "gradientAccumulation" | "learningRate" | "weightDecay" | "clipNorm" | "precision" | "seed" | "keepLast" | "patience">> & { teacher: string[] };

/** One model's test score and speed. */
export interface ModelScore {
  /** What it is: "teacher", "student (distilled)", "student (alone)". */
  name: string;
  /** Its folder(s). */
  dirs: string[];
  parameters: number;
  metrics: Record<string, number>;
  report: unknown;
  /** Test examples scored. */
  examples: number;
  /** Test examples per second of prediction (tokenisation included), at batchSize. */
  examplesPerSecond: number;
  batchSize: number;
}

export interface DistillResult {
  model: PretrainedModel;
  tokenizer: Tokenizer;
  labels: string[];
  meta: FinetunedMeta;
  train: TrainResult;
  /** Scores on the test set (none when it is empty). */
  student?: ModelScore;
  teacher?: ModelScore;
  /** --compare: the student fine-tuned alone, its training and its score. */
  compare?: { train: TrainResult; score?: ModelScore };
}

const parameterCount = (m: PretrainedModel): number => m.parameters().reduce((n, p) => n + p.numel, 0);

/**
 * Every teacher's logits for examples, each on its own tokenizer, under no-grad: (N, C) per teacher.
 * A teacher's own head is its model's (a features:N teacher was refused when loaded).
 */
function teacherLogits(t: Finetuned, examples: readonly LabelledExample[], batchSize: number): number[][] {
  const rows = t.objective.prepare!(examples);
  const out: number[][] = [];
  t.model.eval();
  torch.noGrad(() => {
    for (let s = 0; s < rows.length; s += batchSize) {
      torch.scope(() => {
        const idx = Array.from({ length: Math.min(batchSize, rows.length - s) }, (_, i) => s + i);
        const b = t.objective.batch(rows, idx, -1) as ClassBatch;
        out.push(...(t.model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds }).logits.float().toArray() as number[][]));
      });
    }
  });
  return out;
}

/**
 * Predictions and their speed at one batch size: the faster of two timed passes over the whole
 * set (the first warms up; on a shared machine the noise only ever slows a pass down).
 */
function timedPredict(objective: TaskObjective<LabelledExample>, model: PretrainedModel, examples: readonly LabelledExample[], o: { batchSize: number; precision: "fp32" | "bf16" }): { predictions: ClassPrediction[]; seconds: number } {
  let predictions: ClassPrediction[] = [];
  let seconds = Infinity;
  for (let pass = 0; pass < 2; pass++) {
    const t0 = process.hrtime.bigint();
    predictions = objective.predict(model, examples, o) as ClassPrediction[];
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { predictions, seconds };
}

/** Loads the teachers and checks that they can teach: classifiers with the model's own head and one label space. */
async function loadTeachers(dirs: readonly string[], log?: (line: string) => void): Promise<Finetuned[]> {
  const teachers: Finetuned[] = [];
  for (const dir of dirs) {
    if (!existsSync(join(dir, "config.json"))) throw new OptionError(`--teacher ${dir}: no config.json there (a fine-tuned classification folder is expected)`);
    const t = await loadFinetuned(dir, log ? { log } : {});
    if (t.meta.task !== "classification") throw new Error(`--teacher ${dir}: a ${t.meta.task} model; distillation teaches classification`);
    if (t.meta.head) throw new Error(`--teacher ${dir}: its head is ${t.meta.head} (strategy ${t.meta.strategy}), not the model's own; distill from a teacher fine-tuned with --strategy full, freeze:N or lora`);
    const first = teachers[0];
    if (first && first.meta.labels.join("\u0000") !== t.meta.labels.join("\u0000")) {
      throw new Error(`--teacher: the ensemble's labels differ: ${first.dir} has [${first.meta.labels.join(", ")}], ${dir} has [${t.meta.labels.join(", ")}] (the same labels in the same order are needed)`);
    }
    teachers.push(t);
  }
  return teachers;
}

/** The student, from a preset (random weights, seeded) or a folder, with the teachers' labels. */
async function makeStudent(o: Resolved, tok: Tokenizer, labels: readonly string[]): Promise<PretrainedModel> {
  torch.manualSeed(o.seed);
  const labelConfig = { id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])), label2id: Object.fromEntries(labels.map((l, i) => [l, i])) };
  if (PRESETS[o.student]) {
    const base = presetConfig(o.student);
    const entry = architecture(base.model_type as string);
    const [, cls] = classFor(entry, taskHead(classification, entry));
    const dropout = o.dropout === undefined ? {} : Object.fromEntries(entry.dropoutKeys.map((k) => [k, o.dropout]));
    const pad = tok.tokenToId(tok.specialTokens.pad ?? "[PAD]") ?? 0;
    const config = entry.parseConfig({ ...base, vocab_size: tok.vocabSize, pad_token_id: pad, ...labelConfig, ...dropout, ...o.studentConfig }, `preset ${o.student}`);
    checkPositions(config, o.maxLength, "--max-length");
    return new cls(config as never);
  }
  if (!existsSync(join(o.student, "config.json"))) throw new OptionError(`--student "${o.student}" is neither a preset (${Object.keys(PRESETS).join(", ")}) nor a checkpoint folder (no config.json there)`);
  const config = await configFromPretrained(o.student);
  const entry = architecture(config.model_type, join(o.student, "config.json"));
  const dropout = o.dropout === undefined ? {} : Object.fromEntries(entry.dropoutKeys.map((k) => [k, o.dropout]));
  if (tok.vocabSize > (config.vocab_size as number)) throw new Error(`the student's tokenizer has ${tok.vocabSize} tokens, more than its vocabulary (vocab_size ${config.vocab_size as number} in ${join(o.student, "config.json")})`);
  checkPositions(config, o.maxLength, "--max-length");
  return modelFromPretrained(o.student, taskHead(classification, entry), { config: { ...labelConfig, ...dropout }, verbose: false });
}

/**
 * Hidden-state matching needs the teacher's tokens to be the student's: one teacher whose
 * tokenizer encodes the training texts exactly as the student's does. Returns its setup,
 * with the projections attached to the student (so the optimizer trains them).
 */
function hiddenMatching(o: Resolved, teachers: readonly Finetuned[], student: PretrainedModel, tok: Tokenizer, tokDir: string, train: readonly LabelledExample[]): HiddenMatching {
  if (teachers.length !== 1) throw new OptionError(`--hidden-loss matches one teacher's hidden states; --teacher names ${teachers.length} (an ensemble has no one hidden state per layer)`);
  const t = teachers[0]!;
  const refuse = (why: string): never => {
    throw new OptionError(`--hidden-loss compares hidden states token by token, so the student needs the teacher's tokenizer; ${why} (give --tokenizer ${t.dir}, or drop --hidden-loss)`);
  };
  if (t.tokenizer.vocabSize !== tok.vocabSize) refuse(`the teacher's (${t.dir}) has ${t.tokenizer.vocabSize} tokens and the student's (${tokDir}) ${tok.vocabSize}`);
  for (const e of train.slice(0, 64)) {
    const a = t.tokenizer.encode(e.text, e.textPair ?? null).ids;
    const b = tok.encode(e.text, e.textPair ?? null).ids;
    if (a.join(",") !== b.join(",")) refuse(`they encode ${e.source} differently (the teacher's ${t.dir}, the student's ${tokDir})`);
  }
  checkPositions(t.model.config, o.maxLength, "--max-length (the teacher reads the student's tokens)");
  // one example through both models: the hidden states' count and widths
  const probe = (m: PretrainedModel): number[] =>
    torch.noGrad(() =>
      torch.scope(() => {
        const ids = tok.encode(train[0]!.text, null, { maxLength: 8, truncation: "longest_first" }).ids;
        const inputIds = torch.tensor([ids], { dtype: "int64" });
        m.eval();
        return m.forward({ inputIds, attentionMask: torch.onesLike(inputIds), tokenTypeIds: torch.zerosLike(inputIds), outputHiddenStates: true }).hiddenStates!.map((h) => h.shape[h.shape.length - 1]!);
      }),
    );
  const studentWidths = probe(student);
  const teacherWidths = probe(t.model);
  const mapping = layerMapping(studentWidths.length - 1, teacherWidths.length - 1);
  const projections = new HiddenProjections(studentWidths, mapping.map((n) => teacherWidths[n]!));
  (student as unknown as Record<string, unknown>)[PROJECTIONS_ATTRIBUTE] = projections;
  o.log?.(`hidden-state matching (weight ${o.hiddenLoss}): student states 0..${studentWidths.length - 1} <- teacher states ${mapping.join(", ")}; widths ${studentWidths.join("/")} -> ${teacherWidths.join("/")}`);
  return { weight: o.hiddenLoss, teacher: t.model, mapping, projections };
}

/** Trains a student with an objective through the Trainer (early stopping on the validation metric, best weights restored). */
async function trainStudent(o: Resolved, model: PretrainedModel, objective: TaskObjective<LabelledExample>, train: readonly LabelledExample[], validation: readonly LabelledExample[], out: string, meta: FinetunedMeta, tokDir: string): Promise<TrainResult> {
  const trainer = new Trainer({
    model,
    objective,
    train,
    validation,
    batchSize: o.batchSize,
    gradientAccumulation: o.gradientAccumulation,
    ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : { epochs: o.epochs }),
    learningRate: o.learningRate,
    weightDecay: o.weightDecay,
    scheduleFor: (steps) => schedules.linearWarmupDecay(Math.round(steps * o.warmupRatio), steps),
    clipNorm: o.clipNorm,
    precision: o.precision,
    seed: o.seed,
    out,
    evalEvery: o.evalEvery ?? "epoch",
    saveEvery: o.saveEvery ?? "epoch",
    keepLast: o.keepLast,
    ...(o.evalBatches ? { evalBatches: o.evalBatches } : {}),
    best: { metric: o.metric ?? classification.metric, patience: o.patience, restore: true },
    copy: tokenizerFiles(tokDir),
    config: { lmforge: meta },
    ...(o.gradientCheckpointing ? { gradientCheckpointing: true } : {}),
    ...(o.groupByLength ? { groupByLength: true } : {}),
    ...(o.onStep ? { onStep: o.onStep } : {}),
    ...(o.onEval ? { onEval: o.onEval } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  const r = await trainer.trainAsync();
  trainer.optimizer.dispose();
  model.eval();
  return r;
}

/** Saves a trained student as a fine-tuned folder with its drift reference, and scores it on the test set. */
function finishStudent(o: Resolved, name: string, model: PretrainedModel, objective: TaskObjective<LabelledExample>, out: string, meta: FinetunedMeta, tok: Tokenizer, tokDir: string, splits: { train: LabelledExample[]; validation: LabelledExample[]; test: LabelledExample[] }, parameters: number): ModelScore | undefined {
  saveFinetuned(model, out, meta, tokDir);
  const speed = { batchSize: o.batchSize, precision: o.precision };
  saveInputStats(out, tok, splits.train, objective.predict(model, splits.validation, speed) as ClassPrediction[], meta.labels);
  if (splits.test.length === 0) return undefined;
  const { predictions, seconds } = timedPredict(objective, model, splits.test, speed);
  const scored = scoreClassification(splits.test, predictions, meta.labels);
  writeTextAtomic(join(out, "test_metrics.json"), JSON.stringify({ examples: splits.test.length, ...scored.metrics, report: scored.report }, null, 2) + "\n");
  for (const [file, text] of Object.entries(classification.analysis?.(splits.test, predictions, meta.labels) ?? {})) writeTextAtomic(join(out, file), text);
  return { name, dirs: [out], parameters, ...scored, examples: splits.test.length, examplesPerSecond: splits.test.length / seconds, batchSize: o.batchSize };
}

/** The teachers on the test set: each predicts on its own tokenizer, the ensemble averages their probabilities; the time is all of theirs. */
function scoreTeachers(o: Resolved, teachers: readonly Finetuned[], test: readonly LabelledExample[]): ModelScore {
  const labels = teachers[0]!.meta.labels;
  let seconds = 0;
  const sums = test.map(() => labels.map(() => 0));
  for (const t of teachers) {
    const r = timedPredict(t.objective as TaskObjective<LabelledExample>, t.model, test, { batchSize: o.batchSize, precision: o.precision });
    seconds += r.seconds;
    r.predictions.forEach((p, i) => labels.forEach((l, k) => (sums[i]![k]! += p.probabilities[l]!)));
  }
  const predictions = sums.map((row) => toPrediction(row.map((x) => x / teachers.length), labels));
  const scored = scoreClassification(test, predictions, labels);
  return { name: teachers.length === 1 ? "teacher" : `teacher ensemble (${teachers.length})`, dirs: teachers.map((t) => t.dir), parameters: teachers.reduce((n, t) => n + parameterCount(t.model), 0), ...scored, examples: test.length, examplesPerSecond: test.length / seconds, batchSize: o.batchSize };
}

/**
 * Distils fine-tuned classification teacher(s) into a student and saves it as a fine-tuned
 * classification folder in `out` (with --compare, the student trained alone in out/compare).
 * Writes distill_summary.json: the settings and every model's test metrics and speed.
 *
 * @example
 * await distill({ teacher: "runs/teacher", student: "bert-tiny", train: "spam-assassin", limit: 2000, epochs: 2, out: "runs/student" });
 */
export async function distill(given: DistillOptions): Promise<DistillResult> {
  const data = Object.fromEntries((["train", "validation", "test"] as const).filter((k) => Array.isArray(given[k])).map((k) => [k, given[k]]));
  const stripped = { ...given, ...Object.fromEntries(Object.keys(data).map((k) => [k, "(examples)"])) };
  const o = { ...resolveOptions([...DISTILL_OPTIONS, ...classification.options], stripped), ...data } as Resolved;
  if (o.windowPool === "attention") throw new OptionError("--window-pool attention trains a head of its own; distillation pools the windows' logits: use mean or max");
  if (o.metric !== undefined && !classification.metrics.includes(o.metric)) throw new OptionError(`--metric ${o.metric}: classification reports ${classification.metrics.join(", ")}`);
  // the teachers, the student's tokenizer, the data and the student: all checked before anything is written
  const teachers = await loadTeachers(o.teacher, o.log);
  const labels = teachers[0]!.meta.labels;
  const tokDir = o.tokenizer ?? (PRESETS[o.student] ? teachers[0]!.dir : o.student);
  if (!existsSync(tokDir)) throw new OptionError(`--tokenizer ${tokDir}: no such folder`);
  const tok = loadTokenizer(tokDir);
  const splits = loadSplits(classification, o as unknown as Parameters<typeof loadSplits>[1]) as { train: LabelledExample[]; validation: LabelledExample[]; test: LabelledExample[]; saved?: Record<string, unknown> };
  for (const [part, examples] of Object.entries({ training: splits.train, validation: splits.validation, test: splits.test })) classification.check!(examples, labels, `${part} data (the teachers know ${labels.join(", ")})`);
  const student = await makeStudent(o, tok, labels);
  const parameters = parameterCount(student);
  const inner = classification.objective({ tokenizer: tok, labels, maxLength: o.maxLength, options: o });
  const hidden = o.hiddenLoss > 0 ? hiddenMatching(o, teachers, student, tok, tokDir, splits.train) : undefined;
  o.log?.(`student ${o.student}: ${student.constructor.name}, ${parameters.toLocaleString("en-US")} parameters; ${teachers.length === 1 ? "teacher" : `${teachers.length} teachers`} ${teachers.map((t) => `${t.dir} (${parameterCount(t.model).toLocaleString("en-US")})`).join(", ")}`);
  const meta: FinetunedMeta = {
    task: classification.name,
    labels,
    max_length: o.maxLength,
    strategy: "full",
    tokenizer: { files: Object.keys(tokenizerFiles(tokDir)), vocab_size: tok.vocabSize },
    options: Object.fromEntries(classification.options.filter((s) => o[s.key] !== undefined).map((s) => [s.key, o[s.key]])),
  };
  const objective = new DistillationObjective({
    inner,
    // computed once, when the Trainer prepares the training features
    teacherLogits: (examples) => {
      const t0 = Date.now();
      const perTeacher = teachers.map((t) => teacherLogits(t, examples, o.batchSize));
      o.log?.(`teacher logits of ${examples.length} training examples computed and cached in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return examples.map((_, i) => perTeacher.map((l) => l[i]!));
    },
    temperature: o.temperature,
    alpha: o.alpha,
    pool: o.windowPool === "max" ? "max" : "mean",
    ...(hidden ? { hidden } : {}),
  });
  mkdirSync(o.out, { recursive: true });
  if (splits.saved) writeTextAtomic(join(o.out, "split.json"), JSON.stringify(splits.saved) + "\n");
  const train = await trainStudent(o, student, objective, splits.train, splits.validation, o.out, meta, tokDir);
  const result: DistillResult = { model: student, tokenizer: tok, labels, meta, train };
  // the projections only served training: the saved folder is a plain classifier
  delete (student as unknown as Record<string, unknown>)[PROJECTIONS_ATTRIBUTE];
  if (train.interrupted) return result;
  const score = finishStudent(o, "student (distilled)", student, inner, o.out, meta, tok, tokDir, splits, parameters);
  if (score) result.student = score;
  if (splits.test.length) result.teacher = scoreTeachers(o, teachers, splits.test);
  if (o.compare) {
    const out = join(o.out, "compare");
    o.log?.(`--compare: the same student fine-tuned alone on the hard labels, into ${out}`);
    const alone = await makeStudent(o, tok, labels);
    const r = await trainStudent(o, alone, inner, splits.train, splits.validation, out, meta, tokDir);
    result.compare = { train: r };
    if (!r.interrupted) {
      const s = finishStudent(o, "student (alone)", alone, inner, out, meta, tok, tokDir, splits, parameters);
      if (s) result.compare.score = s;
    }
  }
  const strip = (s?: ModelScore) => (s ? { ...s, report: undefined } : undefined);
  writeTextAtomic(
    join(o.out, "distill_summary.json"),
    JSON.stringify(
      {
        teachers: o.teacher,
        student: o.student,
        temperature: o.temperature,
        alpha: o.alpha,
        hidden_loss: o.hiddenLoss,
        teacher_logits: "computed once per training example before training (each teacher on its own tokenizer, no-grad) and cached",
        test_examples: splits.test.length,
        threads: torch.getNumThreads(),
        models: [strip(result.teacher), strip(result.student), strip(result.compare?.score)].filter(Boolean),
      },
      null,
      2,
    ) + "\n",
  );
  return result;
}

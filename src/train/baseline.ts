// The classical baseline a fine-tuned classifier should beat: TF-IDF of words and word pairs
// (src/eval/tfidf.ts, scikit-learn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
// min_df=2)) and multinomial logistic regression (src/eval/sparse-logistic.ts, scikit-learn's
// LogisticRegression(solver="lbfgs", multi_class="multinomial")). C is chosen from a grid by the
// validation macro-F1 (the first best, so the strongest regularisation on a tie; each fit starts
// from the previous C's solution); the model fitted on the training part alone with that C is the one scored (as scikit-learn users usually
// do; validation is never trained on). Scored on the test part with the classification task's
// metrics and report. Seconds, no GPU, the same answer every run.
import { join } from "node:path";
import { writeTextAtomic } from "../io/index.js";
import { defineOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { fitSparseLogistic, fitTfidf, sparseLogisticProba, transformTfidf } from "../eval/index.js";
import type { ClassificationReport } from "../eval/index.js";
import type { LabelledExample } from "../data/index.js";
import { scoreClassification, toPrediction } from "../tasks/classification.js";
import type { ClassPrediction } from "../tasks/classification.js";

const positiveList = (text: string): number[] => {
  const xs = text.split(",").map((x) => Number(x.trim()));
  if (xs.some((x) => !(Number.isFinite(x) && x > 0))) throw new Error(`must be a comma-separated list of positive numbers, got "${text}"`);
  return xs;
};

/** The baseline's own options (`lmforge baseline`, and `lmforge finetune --baseline`). */
export const BASELINE_OPTIONS = defineOptions([
  { flag: "min-df", key: "minDf", type: "int", min: 1, default: 2, help: "baseline: keep words and word pairs found in at least N training texts (scikit-learn's min_df)" },
  { flag: "c-grid", key: "cGrid", type: "string", arg: "C,C,...", parse: positiveList, default: [0.01, 0.1, 1, 10, 100], help: "baseline: the inverse regularisation strengths C tried; the best validation macro-F1 wins" },
  { flag: "max-iter", key: "maxIter", type: "int", min: 1, default: 1000, help: "baseline: L-BFGS iterations at most per fit (scikit-learn's max_iter)" },
] as const satisfies readonly OptionSpec[]);

/** `lmforge finetune --baseline` and the baseline's options. */
export const BASELINE_FINETUNE_OPTIONS = defineOptions([
  { flag: "baseline", key: "baseline", type: "boolean", default: false, help: "classification: after fine-tuning, fit the TF-IDF + logistic regression baseline on the same splits, print and save it beside the model (baseline_metrics.json)" },
  ...BASELINE_OPTIONS,
] as const satisfies readonly OptionSpec[]);

export interface BaselineOptions {
  minDf?: number;
  cGrid?: readonly number[];
  maxIter?: number;
  /** L-BFGS's gradient tolerance (default 1e-4, scikit-learn's tol). */
  tolerance?: number;
  log?: (line: string) => void;
}

export interface BaselineResult {
  labels: string[];
  /** The C chosen, and every C tried with its validation scores and L-BFGS iterations. */
  C: number;
  grid: { C: number; macro_f1: number; accuracy: number; iterations: number }[];
  vocabulary: number;
  examples: { train: number; validation: number; test: number };
  /** The test part's metrics, report and predictions (absent without test examples). */
  test?: { metrics: Record<string, number>; report: ClassificationReport; predictions: ClassPrediction[] };
  seconds: number;
}

/** What TF-IDF reads of an example: its text, and the second text of a pair on a line of its own. */
const textOf = (e: LabelledExample): string => (e.textPair === undefined ? e.text : `${e.text}\n${e.textPair}`);

/**
 * Fits the baseline on splits.train, picks C on splits.validation, scores splits.test.
 * labels: the class names in index order (the fine-tuned model's, so the reports line up).
 * @example runBaseline({ train, validation, test }, ["ham", "spam"]).test?.metrics.macro_f1
 */
export function runBaseline(splits: { train: readonly LabelledExample[]; validation: readonly LabelledExample[]; test: readonly LabelledExample[] }, labels: readonly string[], o: BaselineOptions = {}): BaselineResult {
  const started = performance.now();
  const grid = [...(o.cGrid ?? [0.01, 0.1, 1, 10, 100])];
  if (grid.length === 0) throw new Error("baseline: the C grid is empty");
  if (grid.length > 1 && splits.validation.length === 0) throw new Error(`baseline: choosing C among ${grid.length} values needs validation examples`);
  const index = new Map(labels.map((l, i) => [l, i]));
  const y = splits.train.map((e) => {
    const k = index.get(e.label);
    if (k === undefined) throw new Error(`${e.source}: label "${e.label}" is not one of ${labels.join(", ")}`);
    return k;
  });
  const vectorizer = fitTfidf(splits.train.map(textOf), { maxN: 2, minDf: o.minDf ?? 2 });
  const xTrain = transformTfidf(vectorizer, splits.train.map(textOf));
  const xValidation = transformTfidf(vectorizer, splits.validation.map(textOf));
  o.log?.(`baseline: ${vectorizer.vocabulary.length.toLocaleString("en-US")} terms (words and word pairs in ${o.minDf ?? 2}+ of ${splits.train.length} training texts)`);
  let best: { C: number; score: number; model: ReturnType<typeof fitSparseLogistic> } | undefined;
  const tried: BaselineResult["grid"] = [];
  let last: ReturnType<typeof fitSparseLogistic> | undefined;
  for (const C of grid) {
    // each fit starts where the previous C's ended (a regularisation path): the optimum is unique, only the steps to it are fewer
    const start = tried.length ? { start: last! } : {};
    const model = fitSparseLogistic(xTrain, y, labels.length, { C, maxIterations: o.maxIter ?? 1000, tolerance: o.tolerance ?? 1e-4, ...start });
    last = model;
    const predictions = sparseLogisticProba(model, xValidation).map((p) => toPrediction(p, labels));
    const { metrics } = splits.validation.length ? scoreClassification(splits.validation, predictions, labels) : { metrics: { macro_f1: NaN, accuracy: NaN } };
    tried.push({ C, macro_f1: metrics.macro_f1!, accuracy: metrics.accuracy!, iterations: model.iterations });
    o.log?.(`baseline: C ${C}: validation macro-F1 ${metrics.macro_f1!.toFixed(4)}, accuracy ${metrics.accuracy!.toFixed(4)} (${model.iterations} L-BFGS iterations)`);
    // strictly better only: on a tie the smaller C (listed first) stays
    if (!best || metrics.macro_f1! > best.score || (Number.isNaN(best.score) && !Number.isNaN(metrics.macro_f1!))) best = { C, score: metrics.macro_f1!, model };
  }
  const result: BaselineResult = {
    labels: [...labels],
    C: best!.C,
    grid: tried,
    vocabulary: vectorizer.vocabulary.length,
    examples: { train: splits.train.length, validation: splits.validation.length, test: splits.test.length },
    seconds: 0,
  };
  if (splits.test.length) {
    const predictions = sparseLogisticProba(best!.model, transformTfidf(vectorizer, splits.test.map(textOf))).map((p) => toPrediction(p, labels));
    const scored = scoreClassification(splits.test, predictions, labels);
    result.test = { metrics: scored.metrics, report: scored.report, predictions };
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/**
 * Writes the baseline's metrics (the C grid, the report) as JSON and its test predictions as
 * JSONL into dir: `${prefix}metrics.json` and `${prefix}predictions.jsonl`.
 */
export function saveBaseline(dir: string, r: BaselineResult, test: readonly LabelledExample[], prefix = "baseline_"): string[] {
  const { test: scored, ...rest } = r;
  const metricsFile = join(dir, `${prefix}metrics.json`);
  const model = { model: "tf-idf (1-2 grams, sublinear tf, l2) + multinomial logistic regression (lbfgs)", C: r.C, refit: "train only" };
  writeTextAtomic(metricsFile, JSON.stringify({ ...model, ...rest, ...(scored ? { ...scored.metrics, report: scored.report } : {}) }, null, 2) + "\n");
  if (!scored) return [metricsFile];
  const predictionsFile = join(dir, `${prefix}predictions.jsonl`);
  const lines = scored.predictions.map((p, i) => JSON.stringify({ source: test[i]!.source, true_label: test[i]!.label, label: p.label, confidence: p.confidence, probabilities: p.probabilities }));
  writeTextAtomic(predictionsFile, lines.join("\n") + (lines.length ? "\n" : ""));
  return [metricsFile, predictionsFile];
}

/** The hook of `lmforge finetune --baseline`: the baseline on the run's own splits, saved in its folder. */
export function baselineAfterFinetune(splits: { train: unknown[]; validation: unknown[]; test: unknown[] }, labels: readonly string[], o: BaselineOptions & { out: string }): BaselineResult {
  const parts = splits as { train: LabelledExample[]; validation: LabelledExample[]; test: LabelledExample[] };
  const r = runBaseline(parts, labels, o);
  saveBaseline(o.out, r, parts.test);
  return r;
}

/** The fine-tuned model's test metrics beside the baseline's, one row per metric. */
export function formatBeside(finetuned: Record<string, number> | undefined, baseline: BaselineResult): string {
  const keys = ["accuracy", "macro_f1", "micro_f1", "weighted_f1", "roc_auc"].filter((k) => baseline.test?.metrics[k] !== undefined || finetuned?.[k] !== undefined);
  const cell = (x: number | undefined): string => (x === undefined ? "-" : x.toFixed(4)).padStart(10);
  return [
    `baseline: TF-IDF + logistic regression, C ${baseline.C} (validation macro-F1), ${baseline.vocabulary.toLocaleString("en-US")} terms, ${baseline.seconds.toFixed(1)} s`,
    `${"test".padEnd(12)}${"fine-tuned".padStart(10)}${"baseline".padStart(10)}`,
    ...keys.map((k) => `${k.padEnd(12)}${cell(finetuned?.[k])}${cell(baseline.test?.metrics[k])}`),
  ].join("\n");
}

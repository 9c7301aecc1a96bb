// A run folder as the reports see it: what pretrain, finetune and evaluate leave there, read
// without the Trainer. metrics.jsonl (the Trainer's log: start, step, eval, checkpoint, ...),
// config.json (the model; a fine-tuned one's "lmforge" key names its task and labels),
// train_summary.json (written when training ends), test_metrics.json (finetune's test set) or
// eval_metrics.json (`lmforge evaluate --out`), and the task's analysis files: errors.jsonl
// (the wrong predictions, most confident first) and predictions.jsonl (generated texts and
// answers beside their references). A missing file is a missing section, never an error; a
// file that is there but unreadable is an error naming it.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { LogRecord } from "./charts.js";

/** A task evaluation of the run: finetune's test set, or the data `lmforge evaluate` scored. */
export interface Evaluation {
  /** The file it came from (test_metrics.json or eval_metrics.json). */
  file: string;
  examples?: number;
  /** The numbers (accuracy, macro_f1, f1, exact_match, bleu, rougeL, ...). */
  metrics: Record<string, number>;
  /** The task's report: a classification report (confusion matrix, per class), seqeval's (per type), SQuAD's, BLEU's. */
  report?: Record<string, unknown>;
  /** evaluate: the model folder and data it scored. */
  model?: string;
  data?: string;
}

export type RunKind = "pretrain" | "finetune" | "evaluate" | "search" | "unknown";
export type RunStatus = "finished" | "stopped early" | "running" | "interrupted" | "failed" | "unfinished" | "evaluated" | "empty";

export interface RunData {
  dir: string;
  name: string;
  kind: RunKind;
  status: RunStatus;
  /** Every record of metrics.jsonl, in order. */
  records: LogRecord[];
  /** Bytes of metrics.jsonl read as whole lines: where a follower of the growing log starts. */
  logBytes: number;
  /** Lines of metrics.jsonl that were not JSON objects (a line torn by a crash). */
  badLines: number;
  /** config.json without its "lmforge" key; that key apart. */
  config?: Record<string, unknown>;
  meta?: Record<string, unknown>;
  /** The task: the model's lmforge record, or what evaluate wrote. */
  task?: string;
  summary?: Record<string, unknown>;
  evaluation?: Evaluation;
  /** The first rows of errors.jsonl (the worst first) and how many it has. */
  errors: Record<string, unknown>[];
  errorCount: number;
  /** The first rows of predictions.jsonl and how many it has. */
  predictions: Record<string, unknown>[];
  predictionCount: number;
  /** search_results.json of a hyperparameter search. */
  search?: Record<string, unknown>;
  /** Last change of the folder's log or result files, in ms since the epoch. */
  modified: number;
}

export interface ReadRunOptions {
  /** Rows kept of errors.jsonl and predictions.jsonl (default 50). */
  maxRows?: number;
  /** Say how the run ended, where the caller knows better than the files (an interrupted run). */
  status?: RunStatus;
  /** A log changed this recently (ms) and without an end counts as running (default 120000). */
  runningWithinMs?: number;
  /** The clock (tests). */
  now?: number;
}

/** The files whose presence makes a folder a run. */
const RUN_FILES = ["metrics.jsonl", "eval_metrics.json", "search_results.json"] as const;

/** Whether a folder holds a run (a training log, an evaluation, or a search's results). */
export function isRunDir(dir: string): boolean {
  return RUN_FILES.some((f) => existsSync(join(dir, f)));
}

/** Parses JSONL text: the objects, how many lines were not objects, and the bytes of whole lines (up to the last newline). */
export function parseJsonl(text: string): { records: LogRecord[]; badLines: number; bytes: number } {
  const end = text.lastIndexOf("\n") + 1; // a last line without its newline may still be being written
  const records: LogRecord[] = [];
  let badLines = 0;
  for (const line of text.slice(0, end).split("\n")) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v !== null && typeof v === "object" && !Array.isArray(v)) records.push(v as LogRecord);
      else badLines += 1;
    } catch {
      badLines += 1;
    }
  }
  return { records, badLines, bytes: Buffer.byteLength(text.slice(0, end)) };
}

function readJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${path}: expected a JSON object`);
  return v as Record<string, unknown>;
}

function readRows(path: string, max: number): { rows: Record<string, unknown>[]; count: number } {
  if (!existsSync(path)) return { rows: [], count: 0 };
  const text = readFileSync(path, "utf8");
  const parsed = parseJsonl(text.endsWith("\n") ? text : text + "\n");
  return { rows: parsed.records.slice(0, max), count: parsed.records.length };
}

/** An evaluation file's numbers apart from its report and bookkeeping. */
function readEvaluation(path: string): Evaluation | undefined {
  const raw = readJson(path);
  if (!raw) return undefined;
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === "number" && k !== "examples") metrics[k] = v;
  const report = raw.report !== null && typeof raw.report === "object" ? (raw.report as Record<string, unknown>) : undefined;
  return {
    file: basename(path),
    ...(typeof raw.examples === "number" ? { examples: raw.examples } : {}),
    metrics,
    ...(report ? { report } : {}),
    ...(typeof raw.model === "string" ? { model: raw.model } : {}),
    ...(typeof raw.data === "string" ? { data: raw.data } : {}),
  };
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Finished, stopped early, running (the log grew lately), or unfinished (interrupted or crashed). */
function statusOf(records: LogRecord[], summary: Record<string, unknown> | undefined, modified: number, o: ReadRunOptions): RunStatus {
  const steps = records.filter((r) => r.event === "step" && typeof r.step === "number").map((r) => r.step as number);
  if (records.length === 0) return "empty";
  const last = steps.length ? Math.max(...steps) : 0;
  // a summary from before a resume that trained further is stale
  if (summary && typeof summary.steps === "number" && summary.steps >= last) return summary.stoppedEarly === true ? "stopped early" : summary.interrupted === true ? "interrupted" : "finished";
  return (o.now ?? Date.now()) - modified < (o.runningWithinMs ?? 120_000) ? "running" : "unfinished";
}

/** Reads a run folder (see the top of this file); throws when it holds no run. */
export function readRun(dir: string, o: ReadRunOptions = {}): RunData {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder`);
  if (!isRunDir(dir)) throw new Error(`${dir}: not a run folder (it has none of ${RUN_FILES.join(", ")})`);
  const max = o.maxRows ?? 50;
  const logPath = join(dir, "metrics.jsonl");
  const log = existsSync(logPath) ? parseJsonl(readFileSync(logPath, "utf8")) : { records: [], badLines: 0, bytes: 0 };
  const fullConfig = readJson(join(dir, "config.json"));
  const meta = fullConfig?.lmforge !== null && typeof fullConfig?.lmforge === "object" ? (fullConfig.lmforge as Record<string, unknown>) : undefined;
  const config = fullConfig ? Object.fromEntries(Object.entries(fullConfig).filter(([k]) => k !== "lmforge")) : undefined;
  const summary = readJson(join(dir, "train_summary.json"));
  const evalFile = existsSync(join(dir, "eval_metrics.json")) ? "eval_metrics.json" : "test_metrics.json";
  const evaluation = readEvaluation(join(dir, evalFile));
  const errors = readRows(join(dir, "errors.jsonl"), max);
  const predictions = readRows(join(dir, "predictions.jsonl"), max);
  const search = readJson(join(dir, "search_results.json"));
  const evalRaw = evalFile === "eval_metrics.json" ? readJson(join(dir, evalFile)) : undefined;
  const task = typeof meta?.task === "string" ? meta.task : typeof evalRaw?.task === "string" ? evalRaw.task : undefined;
  const modified = Math.max(...[...RUN_FILES, "train_summary.json", "test_metrics.json"].map((f) => mtime(join(dir, f))));
  const kind: RunKind = log.records.some((r) => r.event === "start") ? (meta ? "finetune" : "pretrain") : evalRaw ? "evaluate" : search ? "search" : "unknown";
  const status = o.status ?? (kind === "evaluate" ? "evaluated" : kind === "search" ? "finished" : statusOf(log.records, summary, modified, o));
  return {
    dir: resolve(dir),
    name: basename(resolve(dir)),
    kind,
    status,
    records: log.records,
    logBytes: log.bytes,
    badLines: log.badLines,
    ...(config ? { config } : {}),
    ...(meta ? { meta } : {}),
    ...(task ? { task } : {}),
    ...(summary ? { summary } : {}),
    ...(evaluation ? { evaluation } : {}),
    errors: errors.rows,
    errorCount: errors.count,
    predictions: predictions.rows,
    predictionCount: predictions.count,
    ...(search ? { search } : {}),
    modified,
  };
}

/**
 * Run folders under a root (the root itself included), depth first in name order, at most
 * `maxDepth` levels down; checkpoint-N folders, node_modules and hidden folders are skipped.
 */
export function findRuns(root: string, maxDepth = 3): string[] {
  const out: string[] = [];
  const visit = (dir: string, depth: number): void => {
    if (isRunDir(dir)) out.push(dir);
    if (depth >= maxDepth) return;
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.startsWith(".") && d.name !== "node_modules" && !/^checkpoint-\d+$/.test(d.name))
        .map((d) => d.name)
        .sort();
    } catch {
      return; // unreadable: nothing to list
    }
    for (const n of names) visit(join(dir, n), depth + 1);
  };
  visit(root || ".", 0);
  return out;
}

/** The last record of an event, if any. */
export function lastRecord(run: Pick<RunData, "records">, event: string): LogRecord | undefined {
  for (let i = run.records.length - 1; i >= 0; i--) if (run.records[i]!.event === event) return run.records[i];
  return undefined;
}

/**
 * The run's headline numbers, for a table of runs side by side: steps, the last training
 * loss, the last evaluation's validation metrics, the best value, and the test (or evaluate)
 * metrics prefixed test_.
 */
export function finalMetrics(run: RunData): Record<string, number> {
  const out: Record<string, number> = {};
  const step = lastRecord(run, "step");
  if (step) {
    if (typeof step.step === "number") out.steps = step.step;
    if (typeof step.loss === "number") out.loss = step.loss;
  }
  const ev = lastRecord(run, "eval");
  for (const [k, v] of Object.entries(ev ?? {})) if (typeof v === "number" && k !== "step") out[k] = v;
  const best = run.summary?.best as { value?: unknown; metric?: unknown } | null | undefined;
  if (best && typeof best.value === "number" && typeof best.metric === "string") out[`best_val_${best.metric}`] = best.value;
  for (const [k, v] of Object.entries(run.evaluation?.metrics ?? {})) out[`test_${k}`] = v;
  return out;
}

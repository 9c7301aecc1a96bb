// Studies that train several models on equal terms and put them in one table: `lmforge
// ablate` (variants of one preset) and `lmforge compare` (model families). What they share
// lives here: the tokenizer every model uses, one child process per model (study-worker.ts),
// the rows it writes, and the rerun that keeps the rows already done.
//
// A model in its own process: its peak memory is its own, a crash fails its row and not the
// study, and the study can be stopped and rerun.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeTextAtomic } from "../io/atomic.js";
import { embeddedCorpus } from "../data/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../tokenizers/index.js";

/** One model of a study, as the worker is told. */
export interface StudyJob {
  /** The row's name: a variant ("pre-ln+rotary") or a model ("roberta-small"). */
  name: string;
  dir: string;
  /** A preset to pretrain, or a checkpoint folder to fine-tune as it is. */
  model: string;
  /** Whether to pretrain `model` first (a preset) or take it as it is (a folder). */
  pretrain: boolean;
  /** The configurable block's switches (ablate). */
  arch?: Record<string, unknown>;
  tokenizer: string;
  input?: string[];
  objectives: string;
  masking?: "static" | "dynamic";
  /** Pretraining wall-clock seconds (its steps set from its speed), or steps. */
  budgetSeconds?: number;
  steps?: number;
  batchSize: number;
  seqLen: number;
  learningRate: number;
  /** Classification data: a built-in dataset or a file. */
  task: string;
  finetuneEpochs: number;
  finetuneLimit?: number;
  finetuneLearningRate: number;
  precision: "fp32" | "bf16";
  /** The pretraining seed, and one fine-tuning run per seed (each its own data split and initialisation). */
  seeds: number[];
}

/** A model's measured figures: one row of a study's table. */
export interface StudyRow {
  name: string;
  /** The model's folder in the study (pretrained/, the fine-tuned folders, result.json). */
  dir: string;
  model: string;
  arch: Record<string, unknown>;
  parameters: number;
  /** Pretraining steps and tokens (0 for a folder taken as it is). */
  steps: number;
  tokens: number;
  /** Median pretraining tokens per second. */
  tokensPerSec: number;
  pretrainSeconds: number;
  valLoss: number;
  valPerplexity: number;
  /** Test accuracy and macro-F1: mean and standard deviation (n - 1) over the seeds. */
  accuracy: number;
  accuracyStd: number;
  macroF1: number;
  macroF1Std: number;
  seeds: number;
  /** Mean fine-tuning seconds per seed. */
  finetuneSeconds: number;
  /** Median milliseconds to classify one text (batch 1, after a warm-up). */
  latencyMs: number;
  /** The worker process's peak resident memory, MB. */
  peakRssMB: number;
  error?: string;
}

export const RESULT_FILE = "result.json";

/**
 * A worker process's main: its job is argv[2] (JSON, with the folder `dir` it owns), its row is
 * written atomically to dir/RESULT_FILE; a failure prints its message and exits 1.
 */
export function workerMain<J extends { dir: string }, R>(who: string, run: (job: J) => Promise<R>): void {
  const job = JSON.parse(process.argv[2] ?? "null") as J | null;
  if (!job) {
    console.error(`${who}: started without a job`);
    process.exit(2);
  }
  run(job).then(
    (row) => writeTextAtomic(join(job.dir, RESULT_FILE), JSON.stringify(row, null, 2) + "\n"),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(1);
    },
  );
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/** "20m", "90s", "1h30m", "1.5h" or seconds -> seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)(h|m|s)/gy;
  let seconds = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    seconds += Number(m[1]) * { h: 3600, m: 60, s: 1 }[m[2] as "h" | "m" | "s"];
    end = re.lastIndex;
  }
  if (end !== t.length || end === 0 || seconds <= 0) throw new Error(`a duration is like 20m, 90s, 1h30m or a number of seconds, got "${text}"`);
  return seconds;
}

/**
 * The tokenizer every model of a study shares: the one given, or a WordPiece of 8,000 pieces
 * trained once on the pretraining text (kept in out/tokenizer for reruns).
 */
export function studyTokenizer(out: string, given: string | undefined, input: string[] | undefined, log: (line: string) => void): string {
  if (given) return given;
  const dir = join(out, "tokenizer");
  if (!existsSync(join(dir, "tokenizer.json"))) {
    const docs = input?.length ? input.map((f) => readFileSync(f, "utf8")) : [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")];
    log(`tokenizer: training a WordPiece of 8,000 pieces on the pretraining text (${docs.length} documents), shared by every model`);
    saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 8000, lowercase: true }), dir);
  }
  return dir;
}

/** A folder name for a row. */
export function rowDir(out: string, name: string): string {
  return join(out, name.replace(/[^A-Za-z0-9._+=-]/g, "_"));
}

/** A row as the worker saved it: JSON has no NaN, so a figure saved as null reads back as NaN. */
function readRow(path: string): StudyRow {
  const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) if (v === null) raw[k] = NaN;
  return raw as unknown as StudyRow;
}

function failedRow(job: StudyJob, error: string): StudyRow {
  return { name: job.name, dir: job.dir, model: job.model, arch: job.arch ?? {}, parameters: NaN, steps: 0, tokens: 0, tokensPerSec: NaN, pretrainSeconds: NaN, valLoss: NaN, valPerplexity: NaN, accuracy: NaN, accuracyStd: NaN, macroF1: NaN, macroF1Std: NaN, seeds: 0, finetuneSeconds: NaN, latencyMs: NaN, peakRssMB: NaN, error };
}

/** Runs every job in its own process, one after another (rows done before are kept); returns the rows in order. */
export async function runStudy(jobs: readonly StudyJob[], log: (line: string) => void): Promise<StudyRow[]> {
  const rows: StudyRow[] = [];
  for (const [i, job] of jobs.entries()) {
    const done = join(job.dir, RESULT_FILE);
    if (existsSync(done)) {
      const row = { ...readRow(done), dir: job.dir }; // rows of older lmforge versions did not record it
      if (!row.error) {
        log(`[${i + 1}/${jobs.length}] ${job.name}: done before (${done}), kept`);
        rows.push(row);
        continue;
      }
    }
    mkdirSync(job.dir, { recursive: true });
    log(`[${i + 1}/${jobs.length}] ${job.name}${job.arch ? ` (${JSON.stringify(job.arch)})` : ""}`);
    const error = await runWorker(job, (line) => log(`  ${line}`));
    const row = error === null && existsSync(done) ? readRow(done) : failedRow(job, error ?? "the worker wrote no result");
    if (row.error) {
      log(`  ${job.name} failed: ${row.error}`);
      writeTextAtomic(done, JSON.stringify(row, null, 2) + "\n");
    }
    rows.push(row);
  }
  return rows;
}

/** Runs one job in a child process (study-worker.js, or the worker named), relaying its lines; null when it succeeded, else why not. */
export function runWorker(job: object, relay: (line: string) => void, workerFile = "./study-worker.js"): Promise<string | null> {
  const worker = fileURLToPath(new URL(workerFile, import.meta.url));
  return new Promise((done) => {
    const child = spawn(process.execPath, [worker, JSON.stringify(job)], { stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    let last = "";
    const lines = (chunk: Buffer): void => {
      const parts = (tail + chunk.toString("utf8")).split(/\r|\n/);
      tail = parts.pop() ?? "";
      for (const p of parts) if (p.trim()) relay(p);
    };
    child.stdout.on("data", lines);
    child.stderr.on("data", (c: Buffer) => {
      last = c.toString("utf8").trim().split("\n").pop() ?? last;
      lines(c);
    });
    // a signal to the study stops the model in progress; its row is redone on the next run
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on("SIGINT", forward);
    child.on("close", (code, signal) => {
      process.off("SIGINT", forward);
      if (tail.trim()) relay(tail);
      done(code === 0 ? null : `exit ${signal ?? code}${last ? `: ${last}` : ""}`);
    });
  });
}

const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** A column of a study's table: its header and how a row shows in it. */
export type StudyColumn = [header: string, cell: (r: StudyRow) => string];

export const COLUMNS = {
  name: (header: string): StudyColumn => [header, (r) => r.name],
  parameters: ["parameters", (r) => (Number.isFinite(r.parameters) ? `${(r.parameters / 1e6).toFixed(2)}M` : "-")] as StudyColumn,
  steps: ["steps", (r) => String(r.steps)] as StudyColumn,
  tokens: ["tokens", (r) => (r.tokens ? `${(r.tokens / 1e6).toFixed(2)}M` : "-")] as StudyColumn,
  tokensPerSec: ["tokens/s", (r) => fixed(r.tokensPerSec, 0)] as StudyColumn,
  perplexity: ["val perplexity", (r) => fixed(r.valPerplexity, 2)] as StudyColumn,
  accuracy: ["accuracy", (r) => (Number.isFinite(r.accuracy) ? `${(r.accuracy * 100).toFixed(2)}%${r.seeds > 1 ? ` ± ${(r.accuracyStd * 100).toFixed(2)}` : ""}` : "-")] as StudyColumn,
  macroF1: ["macro F1", (r) => (Number.isFinite(r.macroF1) ? `${r.macroF1.toFixed(4)}${r.seeds > 1 ? ` ± ${r.macroF1Std.toFixed(4)}` : ""}` : "-")] as StudyColumn,
  finetuneSeconds: ["fine-tune s", (r) => fixed(r.finetuneSeconds, 0)] as StudyColumn,
  latency: ["latency ms", (r) => fixed(r.latencyMs, 1)] as StudyColumn,
  peakRss: ["peak RSS MB", (r) => fixed(r.peakRssMB, 0)] as StudyColumn,
};

/** The table as Markdown, the first column left-aligned, the failed rows listed with their cause below. */
export function studyTable(rows: readonly StudyRow[], columns: readonly StudyColumn[]): string {
  const header = columns.map(([h]) => h);
  const body = rows.map((r) => columns.map(([, cell]) => cell(r)));
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(" | ")} |`;
  const rule = `| ${widths.map((w, c) => (c === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`;
  const table = [line(header), rule, ...body.map(line)].join("\n");
  const failed = rows.filter((r) => r.error).map((r) => `${r.name} failed: ${r.error}`);
  return failed.length ? `${table}\n\n${failed.join("\n")}` : table;
}

// `lmforge ablate`: Transformer variants compared on equal terms. Each variant is the same
// lmforge preset with a few block switches changed (--arch keys); each is pretrained on the
// same text with the same tokenizer, batch and sequence length for the same wall-clock budget
// (or the same number of steps), then fine-tuned on the same classification task. The table
// says what each variant costs and buys: parameters, tokens/s, tokens seen, validation
// perplexity, downstream accuracy and macro-F1, peak memory.
//
// Every variant runs in a child process (ablate-worker.ts): its peak memory is its own, a
// crash fails its row and not the ablation, and a rerun skips the variants already done.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineOptions, resolveOptions } from "../io/options.js";
import { writeTextAtomic } from "../io/atomic.js";
import { embeddedCorpus } from "../data/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../tokenizers/index.js";

/** The named switches a variant combines with "+": each sets one or two config keys of the configurable block. */
export const VARIANT_SWITCHES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  "post-ln": { norm: "post" },
  "pre-ln": { norm: "pre" },
  sandwich: { norm: "sandwich" },
  layernorm: { norm_type: "layernorm" },
  rmsnorm: { norm_type: "rmsnorm" },
  learned: { positions: "learned" },
  rotary: { positions: "rotary" },
  alibi: { positions: "alibi" },
  relative: { positions: "relative" },
  "no-positions": { positions: "none" },
  gelu: { ffn: "gelu" },
  relu: { ffn: "relu" },
  swiglu: { ffn: "swiglu" },
  geglu: { ffn: "geglu" },
  softmax: { attention: "softmax" },
  performer: { attention: "performer" },
  local: { attention: "local", window: 32 },
  // ConvBERT-style: a depthwise-separable convolution beside attention in every layer
  "conv-hybrid": { conv: "parallel" },
  // Conformer-style: the convolution module before attention
  "conv-before": { conv: "before" },
  // ALBERT's two savings
  shared: { share_groups: 1 },
  factorised: { embedding_size: 128 },
};

export const DEFAULT_VARIANTS = "post-ln,pre-ln,rmsnorm+rotary+swiglu,performer,conv-hybrid";

export interface Variant {
  /** As given: "rmsnorm+rotary+swiglu". */
  name: string;
  /** The config keys it sets. */
  arch: Record<string, unknown>;
}

/**
 * "rmsnorm+rotary+swiglu" -> its config keys. A part is a named switch (VARIANT_SWITCHES) or
 * KEY=VALUE (any key of the configurable block); two parts that set one key differently are
 * refused, naming both.
 */
export function parseVariant(spec: string): Variant {
  const name = spec.trim();
  if (!name) throw new Error("--variants: an empty variant");
  const arch: Record<string, unknown> = {};
  const from: Record<string, string> = {};
  for (const part of name.split("+").map((p) => p.trim())) {
    let keys: Record<string, unknown>;
    if (part.includes("=")) {
      const [key, ...rest] = part.split("=");
      const text = rest.join("=");
      if (!key || !text) throw new Error(`--variants: "${part}" in "${name}" is not KEY=VALUE`);
      const n = Number(text);
      keys = { [key]: text === "true" ? true : text === "false" ? false : text === "null" ? null : Number.isFinite(n) ? n : text };
    } else {
      const known = VARIANT_SWITCHES[part];
      if (!known) throw new Error(`--variants: unknown switch "${part}" in "${name}"; known: ${Object.keys(VARIANT_SWITCHES).join(", ")} (or KEY=VALUE)`);
      keys = { ...known };
    }
    for (const [k, v] of Object.entries(keys)) {
      if (k in arch && arch[k] !== v) throw new Error(`--variants: "${from[k]}" and "${part}" in "${name}" both set ${k} (${JSON.stringify(arch[k])} vs ${JSON.stringify(v)})`);
      arch[k] = v;
      from[k] = part;
    }
  }
  return { name, arch };
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

export const ABLATE_OPTIONS = defineOptions([
  { flag: "variants", key: "variants", type: "string", arg: "V,V,...", default: DEFAULT_VARIANTS, help: `the variants, comma-separated; each joins switches with + (${Object.keys(VARIANT_SWITCHES).join(", ")}) or KEY=VALUE config keys` },
  { flag: "model", key: "model", type: "string", arg: "PRESET", default: "lmforge-mini", help: "the configurable preset every variant starts from (lmforge-tiny, lmforge-mini)" },
  { flag: "budget", key: "budget", type: "string", arg: "DURATION", help: "pretraining wall-clock time per variant (20m, 90s, 1h): each variant's steps are set from its measured speed (default 5m unless --steps)" },
  { flag: "steps", key: "steps", type: "int", min: 1, help: "pretraining steps per variant instead of a time budget: the same tokens for each" },
  { flag: "tokenizer", key: "tokenizer", type: "string", arg: "DIR", help: "a tokenizer folder (default: a WordPiece of 8,000 pieces trained on the pretraining text, shared by every variant)" },
  { flag: "input", key: "input", type: "strings", arg: "FILE", help: "pretraining text files (default: the embedded corpora, Moby Dick and the State of the Union addresses)" },
  { flag: "objectives", key: "objectives", type: "string", default: "mlm", help: "the pretraining objective(s) (mlm for encoders, clm for decoders)" },
  { flag: "batch-size", key: "batchSize", type: "int", min: 1, default: 32, help: "pretraining sequences per step" },
  { flag: "seq-len", key: "seqLen", type: "int", min: 8, default: 128, help: "pretraining sequence length" },
  { flag: "learning-rate", key: "learningRate", type: "number", exclusiveMin: true, min: 0, default: 1e-3, help: "pretraining peak learning rate" },
  { flag: "task", key: "task", type: "string", default: "spam-assassin", help: "the classification data every variant is fine-tuned on: a built-in dataset or a file (TSV, CSV, JSONL)" },
  { flag: "finetune-epochs", key: "finetuneEpochs", type: "int", min: 1, default: 2, help: "fine-tuning epochs" },
  { flag: "finetune-limit", key: "finetuneLimit", type: "int", min: 1, help: "at most N fine-tuning training examples (a seeded sample)" },
  { flag: "finetune-learning-rate", key: "finetuneLearningRate", type: "number", exclusiveMin: true, min: 0, default: 2e-4, help: "fine-tuning learning rate" },
  { flag: "precision", key: "precision", type: "string", choices: ["fp32", "bf16"], default: "fp32", help: "training precision" },
  { flag: "seed", key: "seed", type: "int", min: 0, default: 42, help: "the seed of every variant (the same data order and initialisation scheme)" },
  { flag: "out", key: "out", type: "string", arg: "DIR", required: true, help: "output folder: one folder per variant, ablation.json and ablation.md (a rerun skips the variants already done)" },
]);

export interface AblateOptions {
  variants?: string;
  model?: string;
  budget?: string;
  steps?: number;
  tokenizer?: string;
  input?: string[];
  objectives?: string;
  batchSize?: number;
  seqLen?: number;
  learningRate?: number;
  task?: string;
  finetuneEpochs?: number;
  finetuneLimit?: number;
  finetuneLearningRate?: number;
  precision?: "fp32" | "bf16";
  seed?: number;
  out: string;
  log?: (line: string) => void;
}

/** What the worker is told: the variant and the settings every variant shares. */
export interface WorkerJob {
  variant: Variant;
  dir: string;
  model: string;
  tokenizer: string;
  input?: string[];
  objectives: string;
  budgetSeconds?: number;
  steps?: number;
  batchSize: number;
  seqLen: number;
  learningRate: number;
  task: string;
  finetuneEpochs: number;
  finetuneLimit?: number;
  finetuneLearningRate: number;
  precision: "fp32" | "bf16";
  seed: number;
}

/** One row of the table: a variant's measured figures. */
export interface AblationRow {
  variant: string;
  arch: Record<string, unknown>;
  parameters: number;
  steps: number;
  tokens: number;
  /** Median training tokens per second (pretraining). */
  tokensPerSec: number;
  pretrainSeconds: number;
  valLoss: number;
  valPerplexity: number;
  accuracy: number;
  macroF1: number;
  finetuneSeconds: number;
  /** The worker process's peak resident memory, MB. */
  peakRssMB: number;
  error?: string;
}

const RESULT = "result.json";

/** Runs the ablation (see the file comment); returns the rows in the order of the variants. */
export async function ablate(given: AblateOptions): Promise<AblationRow[]> {
  const o = resolveOptions(ABLATE_OPTIONS, given as unknown as Record<string, unknown>) as unknown as Required<Omit<AblateOptions, "budget" | "steps" | "tokenizer" | "input" | "finetuneLimit" | "log">> & AblateOptions;
  const log = o.log ?? ((line: string) => console.error(line));
  const variants = o.variants.split(",").map(parseVariant);
  const names = variants.map((v) => v.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`--variants: "${twice}" is given twice`);
  if (o.budget !== undefined && o.steps !== undefined) throw new Error("give --budget (the same time per variant) or --steps (the same tokens), not both");
  const budgetSeconds = o.steps === undefined ? parseDuration(o.budget ?? "5m") : undefined;
  mkdirSync(o.out, { recursive: true });

  let tokenizer = o.tokenizer;
  if (!tokenizer) {
    tokenizer = join(o.out, "tokenizer");
    if (!existsSync(join(tokenizer, "tokenizer.json"))) {
      const docs = o.input?.length ? o.input.map((f) => readFileSync(f, "utf8")) : [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")];
      log(`tokenizer: training a WordPiece of 8,000 pieces on the pretraining text (${docs.length} documents), shared by every variant`);
      saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 8000, lowercase: true }), tokenizer);
    }
  }
  log(`ablation of ${variants.length} variants of ${o.model}: ${budgetSeconds !== undefined ? `${budgetSeconds} s of pretraining each` : `${o.steps} pretraining steps each`}, batch ${o.batchSize} x ${o.seqLen} tokens, then ${o.finetuneEpochs} epochs of fine-tuning on ${o.task}`);

  const rows: AblationRow[] = [];
  for (const [i, variant] of variants.entries()) {
    const dir = join(o.out, variant.name.replace(/[^A-Za-z0-9._+=-]/g, "_"));
    const done = join(dir, RESULT);
    if (existsSync(done)) {
      const row = JSON.parse(readFileSync(done, "utf8")) as AblationRow;
      if (!row.error) {
        log(`[${i + 1}/${variants.length}] ${variant.name}: done before (${done}), kept`);
        rows.push(row);
        continue;
      }
    }
    mkdirSync(dir, { recursive: true });
    log(`[${i + 1}/${variants.length}] ${variant.name} (${JSON.stringify(variant.arch)})`);
    const job: WorkerJob = {
      variant,
      dir,
      model: o.model,
      tokenizer,
      ...(o.input ? { input: o.input } : {}),
      objectives: o.objectives,
      ...(budgetSeconds !== undefined ? { budgetSeconds } : { steps: o.steps! }),
      batchSize: o.batchSize,
      seqLen: o.seqLen,
      learningRate: o.learningRate,
      task: o.task,
      finetuneEpochs: o.finetuneEpochs,
      ...(o.finetuneLimit !== undefined ? { finetuneLimit: o.finetuneLimit } : {}),
      finetuneLearningRate: o.finetuneLearningRate,
      precision: o.precision,
      seed: o.seed,
    };
    const error = await runWorker(job, (line) => log(`  ${line}`));
    const row: AblationRow = error === null && existsSync(done) ? (JSON.parse(readFileSync(done, "utf8")) as AblationRow) : failedRow(variant, error ?? "the worker wrote no result");
    if (row.error) {
      log(`  ${variant.name} failed: ${row.error}`);
      writeTextAtomic(done, JSON.stringify(row, null, 2) + "\n");
    }
    rows.push(row);
  }
  writeTextAtomic(join(o.out, "ablation.json"), JSON.stringify({ model: o.model, budgetSeconds: budgetSeconds ?? null, steps: o.steps ?? null, batchSize: o.batchSize, seqLen: o.seqLen, task: o.task, seed: o.seed, rows }, null, 2) + "\n");
  writeTextAtomic(join(o.out, "ablation.md"), ablationTable(rows) + "\n");
  return rows;
}

function failedRow(variant: Variant, error: string): AblationRow {
  return { variant: variant.name, arch: variant.arch, parameters: NaN, steps: 0, tokens: 0, tokensPerSec: NaN, pretrainSeconds: NaN, valLoss: NaN, valPerplexity: NaN, accuracy: NaN, macroF1: NaN, finetuneSeconds: NaN, peakRssMB: NaN, error };
}

/** Runs one variant in a child process, relaying its lines; null when it succeeded, else why not. */
function runWorker(job: WorkerJob, relay: (line: string) => void): Promise<string | null> {
  const worker = fileURLToPath(new URL("./ablate-worker.js", import.meta.url));
  return new Promise((done) => {
    const child = spawn(process.execPath, [worker, JSON.stringify(job)], { stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const lines = (chunk: Buffer): void => {
      const text = tail + chunk.toString("utf8");
      const parts = text.split(/\r|\n/);
      tail = parts.pop() ?? "";
      for (const p of parts) if (p.trim()) relay(p);
    };
    let last = "";
    child.stdout.on("data", lines);
    child.stderr.on("data", (c: Buffer) => {
      last = c.toString("utf8").trim().split("\n").pop() ?? last;
      lines(c);
    });
    // a signal to the ablation stops the variant in progress; its row is then redone on the next run
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on("SIGINT", forward);
    child.on("close", (code, signal) => {
      process.off("SIGINT", forward);
      if (tail.trim()) relay(tail);
      done(code === 0 ? null : `exit ${signal ?? code}${last ? `: ${last}` : ""}`);
    });
  });
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** The table, as Markdown (printed and saved). */
export function ablationTable(rows: readonly AblationRow[]): string {
  const header = ["variant", "parameters", "steps", "tokens", "tokens/s", "val perplexity", "accuracy", "macro F1", "peak RSS MB"];
  const body = rows.map((r) => [
    r.variant,
    Number.isFinite(r.parameters) ? `${(r.parameters / 1e6).toFixed(2)}M` : "-",
    String(r.steps),
    r.tokens ? `${(r.tokens / 1e6).toFixed(2)}M` : "-",
    fmt(r.tokensPerSec, 0),
    fmt(r.valPerplexity, 2),
    Number.isFinite(r.accuracy) ? `${(r.accuracy * 100).toFixed(2)}%` : "-",
    fmt(r.macroF1, 4),
    fmt(r.peakRssMB, 0),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join(" | ")} |`;
  const failed = rows.filter((r) => r.error).map((r) => `${r.variant} failed: ${r.error}`);
  const table = [line(header), `| ${widths.map((w, c) => (c === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`, ...body.map(line)].join("\n");
  return failed.length ? `${table}\n\n${failed.join("\n")}` : table;
}

// `lmforge ablate`: Transformer variants compared on equal terms. Each variant is the same
// lmforge preset with a few block switches changed (--arch keys); each is pretrained on the
// same text with the same tokenizer, batch and sequence length for the same wall-clock budget
// (or the same number of steps), then fine-tuned on the same classification task, each in its
// own process (study.ts). The table says what each variant costs and buys: parameters,
// tokens/s, tokens seen, validation perplexity, downstream accuracy and macro-F1, peak memory.
import { join } from "node:path";
import { defineOptions, resolveOptions } from "../io/options.js";
import { writeTextAtomic } from "../io/atomic.js";
import { COLUMNS, parseDuration, rowDir, runStudy, studyTable, studyTokenizer } from "./study.js";
import type { StudyJob, StudyRow } from "./study.js";

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

/** The options every study shares (ablate's and compare's), declared once. */
export const STUDY_OPTIONS = defineOptions([
  { flag: "budget", key: "budget", type: "string", arg: "DURATION", help: "pretraining wall-clock time per model (20m, 90s, 1h): each model's steps are set from its measured speed (default 5m unless --steps)" },
  { flag: "steps", key: "steps", type: "int", min: 1, help: "pretraining steps per model instead of a time budget: the same tokens for each" },
  { flag: "tokenizer", key: "tokenizer", type: "string", arg: "DIR", help: "a tokenizer folder (default: a WordPiece of 8,000 pieces trained on the pretraining text, shared by every model)" },
  { flag: "input", key: "input", type: "strings", arg: "FILE", help: "pretraining text files (default: the embedded corpora, Moby Dick and the State of the Union addresses)" },
  { flag: "batch-size", key: "batchSize", type: "int", min: 1, default: 32, help: "pretraining sequences per step" },
  { flag: "seq-len", key: "seqLen", type: "int", min: 8, default: 128, help: "pretraining sequence length, and the fine-tuning length" },
  { flag: "learning-rate", key: "learningRate", type: "number", exclusiveMin: true, min: 0, default: 1e-3, help: "pretraining peak learning rate" },
  { flag: "task", key: "task", type: "string", default: "spam-assassin", help: "the classification data every model is fine-tuned on: a built-in dataset or a file (TSV, CSV, JSONL)" },
  { flag: "finetune-epochs", key: "finetuneEpochs", type: "int", min: 1, default: 2, help: "fine-tuning epochs" },
  { flag: "finetune-limit", key: "finetuneLimit", type: "int", min: 1, help: "at most N fine-tuning training examples (a seeded sample)" },
  { flag: "finetune-learning-rate", key: "finetuneLearningRate", type: "number", exclusiveMin: true, min: 0, default: 2e-4, help: "fine-tuning learning rate" },
  { flag: "precision", key: "precision", type: "string", choices: ["fp32", "bf16"], default: "fp32", help: "training precision" },
  { flag: "seed", key: "seed", type: "int", min: 0, default: 42, help: "the seed of pretraining and of the first fine-tuning run" },
  { flag: "out", key: "out", type: "string", arg: "DIR", required: true, help: "output folder: one folder per model and the table (a rerun keeps the models done)" },
]);

export interface StudyOptions {
  budget?: string;
  steps?: number;
  tokenizer?: string;
  input?: string[];
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

/** The settings every model of a study shares, as a job's fields (name, folder and model come from the study). */
export function sharedJobFields(o: Required<Pick<StudyOptions, "batchSize" | "seqLen" | "learningRate" | "task" | "finetuneEpochs" | "finetuneLearningRate" | "precision">> & StudyOptions, tokenizer: string): Pick<StudyJob, "tokenizer" | "input" | "budgetSeconds" | "steps" | "batchSize" | "seqLen" | "learningRate" | "task" | "finetuneEpochs" | "finetuneLimit" | "finetuneLearningRate" | "precision"> {
  return {
    tokenizer,
    ...(o.input ? { input: o.input } : {}),
    ...studyBudget(o),
    batchSize: o.batchSize,
    seqLen: o.seqLen,
    learningRate: o.learningRate,
    task: o.task,
    finetuneEpochs: o.finetuneEpochs,
    ...(o.finetuneLimit !== undefined ? { finetuneLimit: o.finetuneLimit } : {}),
    finetuneLearningRate: o.finetuneLearningRate,
    precision: o.precision,
  };
}

/** The pretraining budget: seconds or steps, one of them. */
export function studyBudget(o: { budget?: string; steps?: number }): { budgetSeconds: number } | { steps: number } {
  if (o.budget !== undefined && o.steps !== undefined) throw new Error("give --budget (the same time per model) or --steps (the same tokens), not both");
  return o.steps !== undefined ? { steps: o.steps } : { budgetSeconds: parseDuration(o.budget ?? "5m") };
}

export const ABLATE_OPTIONS = defineOptions([
  { flag: "variants", key: "variants", type: "string", arg: "V,V,...", default: DEFAULT_VARIANTS, help: `the variants, comma-separated; each joins switches with + (${Object.keys(VARIANT_SWITCHES).join(", ")}) or KEY=VALUE config keys` },
  { flag: "model", key: "model", type: "string", arg: "PRESET", default: "lmforge-mini", help: "the configurable preset every variant starts from (lmforge-tiny, lmforge-mini)" },
  { flag: "objectives", key: "objectives", type: "string", default: "mlm", help: "the pretraining objective(s) (mlm for encoders, clm for decoders)" },
  ...STUDY_OPTIONS,
]);

export interface AblateOptions extends StudyOptions {
  variants?: string;
  model?: string;
  objectives?: string;
}

export const ABLATION_COLUMNS = [COLUMNS.name("variant"), COLUMNS.parameters, COLUMNS.steps, COLUMNS.tokens, COLUMNS.tokensPerSec, COLUMNS.perplexity, COLUMNS.accuracy, COLUMNS.macroF1, COLUMNS.peakRss];

/** Runs the ablation (see the file comment); returns the rows in the order of the variants. */
export async function ablate(given: AblateOptions): Promise<StudyRow[]> {
  const o = resolveOptions(ABLATE_OPTIONS, given as unknown as Record<string, unknown>) as unknown as Required<Omit<AblateOptions, "budget" | "steps" | "tokenizer" | "input" | "finetuneLimit" | "log">> & AblateOptions;
  const log = o.log ?? ((line: string) => console.error(line));
  const variants = o.variants.split(",").map(parseVariant);
  const names = variants.map((v) => v.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`--variants: "${twice}" is given twice`);
  const budget = studyBudget(o);
  const tokenizer = studyTokenizer(o.out, o.tokenizer, o.input, log);
  log(`ablation of ${variants.length} variants of ${o.model}: ${"budgetSeconds" in budget ? `${budget.budgetSeconds} s of pretraining each` : `${budget.steps} pretraining steps each`}, batch ${o.batchSize} x ${o.seqLen} tokens, then ${o.finetuneEpochs} epochs of fine-tuning on ${o.task}`);
  const rows = await runStudy(
    variants.map((v) => ({
      name: v.name,
      dir: rowDir(o.out, v.name),
      model: o.model,
      pretrain: true,
      arch: v.arch,
      objectives: o.objectives,
      ...sharedJobFields(o, tokenizer),
      seeds: [o.seed],
    })),
    log,
  );
  writeTextAtomic(join(o.out, "ablation.json"), JSON.stringify({ model: o.model, ...budget, batchSize: o.batchSize, seqLen: o.seqLen, task: o.task, seed: o.seed, rows }, null, 2) + "\n");
  writeTextAtomic(join(o.out, "ablation.md"), studyTable(rows, ABLATION_COLUMNS) + "\n");
  return rows;
}

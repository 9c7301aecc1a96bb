// Before fine-tuning: fit the model and its tokenizer to the task's own text.
//
// --adapt STEPS is task-adaptive pretraining (TAPT; Gururangan et al. 2020, "Don't Stop
// Pretraining"): the checkpoint continues its pretraining objective (masked LM; causal LM for a
// causal model; span corruption for T5) for STEPS steps on the text of the training split only,
// after the split is made: labels unused, validation and test text never seen. It is pretrain()
// itself (the same Trainer, objective registry, checkpoints and --resume) writing OUT/adapted/,
// which fine-tuning then starts from.
//
// --extend-vocab N adds the task's N most frequent words that the tokenizer splits (or cannot
// cover) as tokens, and grows the checkpoint into OUT/extended/ (src/train/extend-vocab.ts);
// it comes first, so that adaptation also trains the new rows.
//
// The tokenizer's fit is reported either way: the unknown-token rate and pieces per word of
// every split (src/tokenizers/extend.ts), before and after an extension.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tokenizationStats } from "../tokenizers/index.js";
import type { TokenizationStats, Tokenizer } from "../tokenizers/index.js";
import { architecture, configFromPretrained } from "../models/index.js";
import type { Task } from "../models/index.js";
import { defineOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { pretrain } from "./pretrain.js";
import type { StepInfo } from "./trainer.js";
import { checkpointSteps } from "./checkpoints.js";
import { extendModelVocabulary } from "./extend-vocab.js";
import type { VocabularyExtension } from "./extend-vocab.js";

/** finetune's options for adaptation and vocabulary extension (spread into FINETUNE_OPTIONS). */
export const ADAPT_OPTIONS = defineOptions([
  { flag: "adapt", key: "adapt", type: "int", min: 1, arg: "STEPS", help: "task-adaptive pretraining first: STEPS steps of the model's pretraining objective (mlm; clm for a causal model) on the training split's text only, into OUT/adapted/" },
  { flag: "adapt-learning-rate", key: "adaptLearningRate", type: "number", min: 0, exclusiveMin: true, max: 1, default: 1e-4, help: "--adapt's peak learning rate (6% warmup, then linear decay; Gururangan et al. used 1e-4)" },
  { flag: "adapt-batch-size", key: "adaptBatchSize", type: "int", min: 1, help: "--adapt's sequences of --max-length tokens per step (default: --batch-size)" },
  { flag: "extend-vocab", key: "extendVocab", type: "int", min: 1, arg: "N", help: "add the training split's N most frequent words that the tokenizer splits or cannot cover as tokens (WordPiece and byte-level BPE), each embedding the mean of its old pieces'; into OUT/extended/" },
] as const satisfies readonly OptionSpec[]);

/**
 * The texts of a task's examples, for adaptation and the tokenizer's statistics: text and
 * textPair (classification, seq2seq inputs), question and context (QA), a tagged sentence's
 * tokens joined by spaces (NER). Labels and targets are not text the model reads.
 */
export function exampleTexts(examples: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const e of examples as Record<string, unknown>[]) {
    if (typeof e.text === "string") out.push(e.text);
    else if (Array.isArray(e.tokens)) out.push(e.tokens.join(" "));
    for (const k of ["textPair", "question", "context"]) if (typeof e[k] === "string") out.push(e[k]);
  }
  return out;
}

/** The pretraining objective a checkpoint continues: masked LM if it has that head and is not causal. */
export async function adaptationObjective(modelDir: string): Promise<string> {
  const config = await configFromPretrained(modelDir);
  const entry = architecture(config.model_type, join(modelDir, "config.json"));
  const has = (task: Task): boolean => Object.values(entry.classes).some(([t]) => t === task);
  if (config.causal !== true && has("masked-lm")) return "mlm";
  if (has("causal-lm")) return "clm";
  if (has("seq2seq-lm")) return "span-corruption";
  throw new Error(`--adapt: ${config.model_type} (${modelDir}) has no masked, causal or seq2seq LM head to continue pretraining with`);
}

/** Tokenization statistics per split, with the tokenizer used and (after an extension) the original one. */
export interface TokenizationReport {
  splits: Record<string, TokenizationStats>;
  /** The original tokenizer's, when --extend-vocab changed it. */
  before?: Record<string, TokenizationStats>;
  /** The words --extend-vocab added, with their counts in the training split and their old pieces. */
  added?: VocabularyExtension["words"];
}

export interface AdaptOptions {
  model: string;
  tokenizer: Tokenizer;
  tokenizerDir: string;
  splits: { train: readonly unknown[]; validation: readonly unknown[]; test: readonly unknown[] };
  out: string;
  adapt?: number;
  adaptLearningRate: number;
  adaptBatchSize?: number;
  batchSize: number;
  maxLength: number;
  seed: number;
  precision: "fp32" | "bf16";
  resume: boolean;
  extendVocab?: number;
  onStep?: (info: StepInfo) => void;
  log?: (line: string) => void;
}

const fmt = (s: TokenizationStats): string => `[UNK] ${(100 * s.unknownRate).toFixed(2)}% of ${s.tokens} pieces, ${s.piecesPerWord.toFixed(3)} pieces per word`;

/**
 * Reports the tokenizer's fit, extends the vocabulary and adapts the model as asked; returns the
 * checkpoint and tokenizer that fine-tuning starts from (the given ones when neither is asked).
 */
export async function prepareBase(o: AdaptOptions): Promise<{ model: string; tokenizer: Tokenizer; tokenizerDir: string; tokenization: TokenizationReport }> {
  const texts = Object.fromEntries((["train", "validation", "test"] as const).map((k) => [k, exampleTexts(o.splits[k])]));
  if ((o.adapt !== undefined || o.extendVocab !== undefined) && Number(process.env.WORLD_SIZE ?? 1) > 1) throw new Error("--adapt and --extend-vocab run in one process: adapt or extend once, then launch the fine-tuning from OUT/adapted or OUT/extended");
  if ((o.adapt !== undefined || o.extendVocab !== undefined) && texts.train!.length === 0) throw new Error("--adapt and --extend-vocab read the training examples' text: this task's examples hold none");
  const stats = (tok: Tokenizer): Record<string, TokenizationStats> => Object.fromEntries(Object.entries(texts).filter(([, t]) => t.length).map(([k, t]) => [k, tokenizationStats(tok, t)]));
  const splits = stats(o.tokenizer);
  for (const [k, s] of Object.entries(splits)) o.log?.(`tokenizer on ${k}: ${fmt(s)}`);
  let model = o.model;
  let tokenizer = o.tokenizer;
  let tokenizerDir = o.tokenizerDir;
  const tokenization: TokenizationReport = { splits };
  if (o.extendVocab !== undefined) {
    const ext = extendModelVocabulary(model, tokenizer, texts.train!, o.extendVocab, join(o.out, "extended"));
    ({ tokenizer, dir: model } = ext);
    tokenizerDir = model;
    const shown = ext.words.slice(0, 10).map((w) => `${w.word.trim()} (${w.count}, was ${w.was.join(" ")})`).join(", ");
    o.log?.(`--extend-vocab: added ${ext.words.length} words, vocabulary ${o.tokenizer.vocabSize} -> ${tokenizer.vocabSize} (${ext.resized.join(", ")} grown to ${ext.vocabSize} rows): ${shown}${ext.words.length > 10 ? ", ..." : ""}`);
    tokenization.before = splits;
    tokenization.splits = stats(tokenizer);
    tokenization.added = ext.words;
    for (const [k, s] of Object.entries(tokenization.splits)) o.log?.(`extended tokenizer on ${k}: ${fmt(s)}`);
  }
  if (o.adapt !== undefined) model = await adapt(model, tokenizerDir, texts.train!, o);
  return { model, tokenizer, tokenizerDir, tokenization };
}

/** --adapt: pretrain() on the training split's text from `model` into OUT/adapted (skipped when a resumed run finished it). */
async function adapt(model: string, tokenizerDir: string, documents: string[], o: AdaptOptions): Promise<string> {
  const out = join(o.out, "adapted");
  const summary = join(out, "train_summary.json");
  if (o.resume && existsSync(summary) && existsSync(join(out, "config.json"))) {
    const done = JSON.parse(readFileSync(summary, "utf8")) as { steps?: number };
    if (done.steps === o.adapt) {
      o.log?.(`--adapt: ${out} already holds ${done.steps} steps of adaptation; fine-tuning from it`);
      return out;
    }
  }
  const objectives = await adaptationObjective(model);
  const resume = o.resume && checkpointSteps(out).length > 0;
  o.log?.(`--adapt: ${o.adapt} steps of ${objectives} on the training split's ${documents.length} texts (labels unused; validation and test text never), into ${out}`);
  const started = Date.now();
  const r = await pretrain({
    model,
    tokenizer: tokenizerDir,
    objectives,
    documents,
    maxSteps: o.adapt!,
    seqLen: o.maxLength,
    batchSize: o.adaptBatchSize ?? o.batchSize,
    learningRate: o.adaptLearningRate,
    seed: o.seed,
    precision: o.precision,
    out,
    resume,
    ...(o.onStep ? { onStep: o.onStep } : {}),
    onEval: (m) => o.log?.(`--adapt step ${m.step}: ${Object.entries(m).filter(([k]) => k !== "step").map(([k, x]) => `${k} ${x.toFixed(4)}`).join(", ")}`),
    ...(o.log ? { log: (line: string) => o.log!(`--adapt: ${line}`) } : {}),
  });
  r.model.dispose();
  if (r.interrupted) throw new Error(`--adapt was interrupted at step ${r.steps}; continue with --resume`);
  o.log?.(`--adapt: done in ${((Date.now() - started) / 1000).toFixed(0)} s; fine-tuning from ${out}`);
  return out;
}

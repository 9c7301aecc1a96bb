// `lmforge compare`: model families on one task, in one command, the classic question of the
// field (BERT vs RoBERTa vs ALBERT). Each preset is pretrained with its family's own recipe on
// the same text, tokenizer, batch, sequence length and compute budget; a folder is taken as it
// is; each is then fine-tuned on the same task over several seeds. The table: parameters,
// pretraining tokens/s, validation perplexity, accuracy and macro-F1 (mean ± std over seeds),
// fine-tuning time, inference latency. Each model runs in its own process (study.ts).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defineOptions, resolveOptions } from "../io/options.js";
import { writeTextAtomic } from "../io/atomic.js";
import { PRESETS } from "../models/presets.js";
import { STUDY_OPTIONS, sharedJobFields, studyBudget } from "./ablate.js";
import type { StudyOptions } from "./ablate.js";
import { COLUMNS, rowDir, runStudy, studyTable, studyTokenizer } from "./study.js";
import type { StudyJob, StudyRow } from "./study.js";

/**
 * Each family's pretraining, as its paper did it (within what a preset and one objective
 * allow): BERT masked LM with masks drawn once (static; its next-sentence task left out, as
 * later work found it does not help), RoBERTa masked LM with masks drawn anew each epoch,
 * ALBERT masked LM with sentence-order prediction, ELECTRA replaced-token detection, the
 * decoders causal LM.
 */
export const FAMILY_RECIPES: Readonly<Record<string, { objectives: string; masking?: "static" | "dynamic"; note: string }>> = {
  bert: { objectives: "mlm", masking: "static", note: "masked LM, static masks" },
  roberta: { objectives: "mlm", masking: "dynamic", note: "masked LM, dynamic masks" },
  albert: { objectives: "mlm,sop", masking: "static", note: "masked LM + sentence order" },
  electra: { objectives: "electra", note: "replaced-token detection" },
  lmforge: { objectives: "mlm", masking: "dynamic", note: "masked LM, dynamic masks" },
  gpt2: { objectives: "clm", note: "causal LM" },
  llama: { objectives: "clm", note: "causal LM" },
};

export const COMPARE_OPTIONS = defineOptions([
  { flag: "models", key: "models", type: "string", arg: "M,M,...", default: "bert-mini,roberta-mini,albert-mini", help: "presets to pretrain (bert-mini, roberta-small, albert-small, electra-small, ...) or fine-tuned-ready checkpoint folders, comma-separated" },
  { flag: "seeds", key: "seeds", type: "int", min: 1, default: 3, help: "fine-tuning runs per model (each its own split and initialisation): mean ± std" },
  ...STUDY_OPTIONS,
]);

export interface CompareOptions extends StudyOptions {
  models?: string;
  seeds?: number;
}

export const COMPARE_COLUMNS = [COLUMNS.name("model"), COLUMNS.parameters, COLUMNS.tokensPerSec, COLUMNS.perplexity, COLUMNS.accuracy, COLUMNS.macroF1, COLUMNS.finetuneSeconds, COLUMNS.latency];

/** A model of the list: a preset with its family's recipe, or a folder taken as it is. */
export function compareEntry(name: string): { pretrain: true; objectives: string; masking?: "static" | "dynamic" } | { pretrain: false } {
  const preset = PRESETS[name];
  if (preset) {
    const recipe = FAMILY_RECIPES[preset.model_type as string];
    if (!recipe) throw new Error(`--models: no pretraining recipe for ${name} (model_type ${String(preset.model_type)}); families: ${Object.keys(FAMILY_RECIPES).join(", ")}`);
    return { pretrain: true, objectives: recipe.objectives, ...(recipe.masking ? { masking: recipe.masking } : {}) };
  }
  if (existsSync(join(name, "config.json"))) return { pretrain: false };
  throw new Error(`--models: "${name}" is neither a preset (${Object.keys(PRESETS).join(", ")}) nor a folder with a config.json`);
}

/** Runs the comparison (see the file comment); returns the rows in the order of the models. */
export async function compare(given: CompareOptions): Promise<StudyRow[]> {
  const o = resolveOptions(COMPARE_OPTIONS, given as unknown as Record<string, unknown>) as unknown as Required<Omit<CompareOptions, "budget" | "steps" | "tokenizer" | "input" | "finetuneLimit" | "log">> & CompareOptions;
  const log = o.log ?? ((line: string) => console.error(line));
  const names = o.models.split(",").map((m) => m.trim()).filter(Boolean);
  if (names.length === 0) throw new Error("--models: no model given");
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`--models: "${twice}" is given twice`);
  const entries = names.map(compareEntry);
  const budget = studyBudget(o);
  const tokenizer = studyTokenizer(o.out, o.tokenizer, o.input, log);
  const seeds = Array.from({ length: o.seeds }, (_, i) => o.seed + i);
  log(`comparing ${names.join(", ")}: ${"budgetSeconds" in budget ? `${budget.budgetSeconds} s of pretraining each` : `${budget.steps} pretraining steps each`} (presets), then fine-tuning on ${o.task} with seeds ${seeds.join(", ")}`);
  const jobs: StudyJob[] = names.map((name, i) => {
    const e = entries[i]!;
    return {
      name,
      // the whole path, so that two folders named alike (run-a/pretrained, run-b/pretrained) keep apart
      dir: rowDir(o.out, name.replace(/\/+$/, "")),
      model: name,
      pretrain: e.pretrain,
      objectives: e.pretrain ? e.objectives : "mlm",
      ...(e.pretrain && e.masking ? { masking: e.masking } : {}),
      ...sharedJobFields(o, tokenizer),
      seeds,
    };
  });
  const rows = await runStudy(jobs, log);
  writeTextAtomic(join(o.out, "comparison.json"), JSON.stringify({ models: names, ...budget, batchSize: o.batchSize, seqLen: o.seqLen, task: o.task, seeds, rows }, null, 2) + "\n");
  writeTextAtomic(join(o.out, "comparison.md"), studyTable(rows, COMPARE_COLUMNS) + "\n");
  return rows;
}

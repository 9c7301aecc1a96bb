// A fine-tuned model folder, loaded as it was trained: config.json's "lmforge" key names the
// task, labels, max length, strategy, head and the task's options, so that evaluate, predict
// and serve score a model exactly as training did. Folders without the key (Hugging Face's,
// or older lmforge ones) are read from their architecture and id2label, with the length said.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { architecture, modelFromPretrained } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { allTasks, taskEntry } from "../tasks/index.js";
import { taskHead } from "../tasks/registry.js";
// the generation strategies serve model.generate(), which generation-evaluated tasks call (translation, summarization)
import "../generate/index.js";
import { defineOptions } from "../io/options.js";
import type { FinetuneTask, TaskObjective } from "../tasks/index.js";

/** The tokenizer files a model folder carries. */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json"] as const;

/** What a fine-tuned folder says of itself (config.json, key "lmforge"). */
export interface FinetunedMeta {
  task: string;
  /** Label names in class order (B-/I- tags for named entities; none for question answering). */
  labels: string[];
  max_length: number;
  strategy: string;
  /** A head of the task's own beyond the architecture's ("layer-pool:4"). */
  head?: string;
  tokenizer: { files: string[]; vocab_size: number };
  /** The task's own options as training used them (text columns, tag scheme, document stride, ...). */
  options: Record<string, unknown>;
}

export interface Finetuned {
  dir: string;
  model: PretrainedModel;
  tokenizer: Tokenizer;
  task: FinetuneTask;
  meta: FinetunedMeta;
  objective: TaskObjective<unknown>;
  /** How the meta was found: the folder's own record, or inferred from a folder without one. */
  source: "lmforge" | "inferred";
}

/** The meta of a folder without an lmforge key: the task from its architecture, labels from id2label. */
function inferMeta(dir: string, config: Record<string, unknown>): FinetunedMeta {
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0]) : "";
  const entry = architecture(String(config.model_type), join(dir, "config.json"));
  const head = entry.classes[arch]?.[0];
  // a task's preferred head first (a clip folder is image-classification's, scored zero-shot)
  const tasks = allTasks().filter((t) => !t.recordOnly);
  const task = tasks.find((t) => t.head === head) ?? tasks.find((t) => head !== undefined && t.heads?.includes(head));
  if (!task) throw new Error(`${dir}: config.json names ${arch || "no architecture"}, which is no fine-tuned task lmforge knows (${tasks.map((t) => `${t.name}: ${t.head}`).join(", ")})`);
  const id2label = (config.id2label ?? {}) as Record<string, string>;
  const labels = Object.keys(id2label).sort((a, b) => Number(a) - Number(b)).map((k) => id2label[k]!);
  let maxLength = Math.min(512, (config[entry.positions.key] as number | undefined) ?? 512);
  const tc = join(dir, "tokenizer_config.json");
  if (existsSync(tc)) {
    const m = (JSON.parse(readFileSync(tc, "utf8")) as { model_max_length?: number }).model_max_length;
    if (typeof m === "number" && m > 0 && m < maxLength) maxLength = m;
  }
  return { task: task.name, labels, max_length: maxLength, strategy: "unknown", tokenizer: { files: [], vocab_size: 0 }, options: {} };
}

/** Loads a fine-tuned folder with its tokenizer, task and objective, in eval mode. */
export async function loadFinetuned(dir: string, options: { log?: (line: string) => void } = {}): Promise<Finetuned> {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new Error(`--model ${dir}: no config.json there (a fine-tuned model folder is expected)`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const own = config.lmforge as FinetunedMeta | undefined;
  const meta = own && typeof own === "object" && typeof own.task === "string" ? own : inferMeta(dir, config);
  if (!own) options.log?.(`${dir}: no lmforge record in config.json; read as ${meta.task} with ${meta.labels.length} labels at max length ${meta.max_length}`);
  const task = taskEntry(meta.task);
  if (task.needsLabels && meta.labels.length < 1) throw new Error(`${path}: no labels (id2label); is it a fine-tuned ${task.name} model?`);
  const tokenizer = loadTokenizer(dir);
  const modelHead = taskHead(task, architecture(String(config.model_type), path), Array.isArray(config.architectures) ? String(config.architectures[0]) : undefined);
  const model = await modelFromPretrained(dir, modelHead, { verbose: false, ...(meta.head ? { prepare: (m) => task.attachHead?.(m, meta.head!, meta.labels) } : {}) });
  model.eval();
  const objective = task.objective({ tokenizer, labels: meta.labels, maxLength: meta.max_length, options: meta.options, modelHead, ...(meta.head ? { head: meta.head } : {}) });
  return { dir, model, tokenizer, task, meta, objective, source: own ? "lmforge" : "inferred" };
}

/** Scores a fine-tuned model on labelled examples: metrics, the task's report, predictions. */
export function evaluateFinetuned(f: Finetuned, examples: readonly unknown[], options: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): { metrics: Record<string, number>; report: unknown; predictions: unknown[] } {
  f.task.check?.(examples, f.meta.labels, "evaluation data");
  const predictions = f.objective.predict(f.model, examples, options);
  return { ...f.task.score(examples, predictions, f.meta.labels, f.meta.options), predictions };
}

/** `lmforge evaluate`'s options (beside the tasks' own, which say how to read the data). */
export const EVALUATE_OPTIONS = defineOptions([
  { flag: "model", key: "model", type: "string", arg: "DIR", required: true, help: "a fine-tuned model folder" },
  { flag: "data", key: "data", type: "string", arg: "FILE", required: true, help: "labelled data in the task's formats" },
  { flag: "json", key: "json", type: "boolean", default: false, help: "print the metrics and the task's report as one JSON object" },
  { flag: "errors", key: "errors", type: "string", arg: "FILE.jsonl", help: "write the wrong predictions there, most confident first" },
  { flag: "batch-size", key: "batchSize", type: "int", min: 1, default: 32, help: "examples per forward pass" },
  { flag: "precision", key: "precision", type: "string", choices: ["fp32", "bf16"], default: "fp32", help: "bf16: bfloat16 autocast" },
  { flag: "skip-bad-rows", key: "skipBadRows", type: "boolean", default: false, help: "skip and count bad rows instead of stopping at the first" },
  { flag: "membership", key: "membership", type: "string", arg: "TRAIN_FILE", help: "membership inference: the model's training data; a loss-threshold attack tells it from --data (held out) and reports its AUC (classification)" },
]);

/** `lmforge predict`'s options (beside the tasks' own: a question and its context). */
export const PREDICT_OPTIONS = defineOptions([
  { flag: "model", key: "model", type: "string", arg: "DIR", required: true, help: "a fine-tuned model folder" },
  { flag: "file", key: "file", type: "string", arg: "FILE", help: "inputs, one per line (default: the arguments, else standard input)" },
  { flag: "json", key: "json", type: "boolean", default: false, help: "one JSON object per input" },
  { flag: "batch-size", key: "batchSize", type: "int", min: 1, default: 32, help: "inputs per forward pass" },
  { flag: "precision", key: "precision", type: "string", choices: ["fp32", "bf16"], default: "fp32", help: "bf16: bfloat16 autocast" },
]);

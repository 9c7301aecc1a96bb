// Hugging Face's Auto classes: `await AutoModelForMaskedLM.fromPretrained(dir)` reads
// config.json, picks the class from `architectures` / `model_type`, and loads the weights;
// `savePretrained(model, dir)` writes a folder that Hugging Face transformers loads.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadPretrained, savePretrained as saveModule } from "../nn/index.js";
import type { LoadResult } from "../nn/index.js";
import type { DType } from "../torch/index.js";
import { architecture, classFor, className } from "./registry.js";
import type { PretrainedModel, Task } from "./registry.js";
import "./architectures.js";

export interface FromPretrainedOptions {
  /** Convert the weights to this dtype after loading. */
  dtype?: DType;
  /** Overrides for config.json keys (e.g. id2label for a new classification head). */
  config?: Record<string, unknown>;
  /** Throw on missing or unexpected weights instead of reporting them. */
  strict?: boolean;
  /** Print what was missing or newly initialised (default true). */
  verbose?: boolean;
  /** Called on the new model before its weights are loaded (to attach modules the checkpoint holds weights for). */
  prepare?: (model: PretrainedModel) => void;
}

export interface LoadReport extends LoadResult {
  /** Weights the checkpoint lacked, initialised fresh (a new classification head). */
  initialized: string[];
}

const loadReports = new WeakMap<object, LoadReport>();

/** What fromPretrained found missing, unexpected or mismatched for a model it loaded. */
export function loadReport(model: PretrainedModel): LoadReport | undefined {
  return loadReports.get(model);
}

function readConfig(dir: string): Record<string, unknown> {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new Error(`${dir}: config.json is missing`);
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Reads and validates a config.json (AutoConfig.fromPretrained). */
export async function configFromPretrained(dir: string, overrides: Record<string, unknown> = {}): Promise<Record<string, unknown> & { model_type: string }> {
  const raw = { ...readConfig(dir), ...overrides };
  if (typeof raw.model_type !== "string") throw new Error(`${join(dir, "config.json")}: no model_type`);
  return architecture(raw.model_type, join(dir, "config.json")).parseConfig(raw, join(dir, "config.json"));
}

/** Maps a checkpoint's tensor names onto a model's: old LayerNorm names, base-model prefixes. */
function renamer(model: PretrainedModel, prefix: string, ignore: RegExp | undefined): (name: string) => string | null {
  const own = new Set(model.stateDict().keys());
  const hasPrefix = [...own].some((k) => k.startsWith(`${prefix}.`));
  return (name) => {
    if (ignore && ignore.test(name)) return null;
    let n = name.replace(/\.gamma$/, ".weight").replace(/\.beta$/, ".bias");
    if (own.has(n)) return n;
    if (hasPrefix && !n.startsWith(`${prefix}.`) && own.has(`${prefix}.${n}`)) n = `${prefix}.${n}`;
    else if (!hasPrefix && n.startsWith(`${prefix}.`) && own.has(n.slice(prefix.length + 1))) n = n.slice(prefix.length + 1);
    return n;
  };
}

/** Builds the model for a task from a checkpoint folder and loads its weights. */
export async function modelFromPretrained(dir: string, task: Task | "auto", options: FromPretrainedOptions = {}): Promise<PretrainedModel> {
  const config = await configFromPretrained(dir, options.config);
  const entry = architecture(config.model_type);
  let cls;
  if (task === "auto") {
    const arch = Array.isArray(config.architectures) ? (config.architectures[0] as string) : undefined;
    cls = arch && entry.classes[arch] ? entry.classes[arch]![1] : classFor(entry, "base")[1];
  } else {
    cls = classFor(entry, task)[1];
  }
  const model = new cls(config as never);
  options.prepare?.(model);
  const r = loadPretrained(model, dir, { rename: renamer(model, entry.prefix, entry.ignore), strict: false });
  const report: LoadReport = { missingKeys: r.missingKeys, unexpectedKeys: r.unexpectedKeys, mismatchedKeys: r.mismatchedKeys, initialized: [...r.missingKeys, ...r.mismatchedKeys.map((m) => m.split(":")[0]!)] };
  if (options.strict && (r.missingKeys.length || r.unexpectedKeys.length || r.mismatchedKeys.length)) {
    throw new Error(`${dir}: weights do not match ${model.constructor.name}: missing ${JSON.stringify(r.missingKeys)}, unexpected ${JSON.stringify(r.unexpectedKeys)}, mismatched ${JSON.stringify(r.mismatchedKeys)}`);
  }
  if (options.verbose ?? true) {
    if (report.initialized.length) {
      console.warn(`lmforge: ${model.constructor.name} weights not in ${dir}, newly initialised (train them): ${report.initialized.join(", ")}`);
    }
    if (r.unexpectedKeys.length) console.warn(`lmforge: ${dir} weights unused by ${model.constructor.name}: ${r.unexpectedKeys.join(", ")}`);
  }
  if (options.dtype) model.to(options.dtype);
  model.eval();
  loadReports.set(model, report);
  return model;
}

/**
 * Writes config.json (with architectures and model_type) and model.safetensors, atomically;
 * tied weights are saved once, as Hugging Face does. Extra files (a tokenizer's) can be copied in.
 */
export function savePretrained(model: PretrainedModel, dir: string, options: { copy?: Record<string, string>; maxShardBytes?: number; mode?: "swap" | "files"; config?: Record<string, unknown> } = {}): void {
  const config = { ...model.config, ...options.config, architectures: [className(model)], model_type: model.config.model_type, torch_dtype: model.parameters()[0]?.dtype ?? "float32" };
  saveModule(model, dir, config, { ...(options.copy ? { copy: options.copy } : {}), ...(options.maxShardBytes ? { maxShardBytes: options.maxShardBytes } : {}), ...(options.mode ? { mode: options.mode } : {}) });
}

function auto(task: Task | "auto") {
  return {
    fromPretrained: (dir: string, options: FromPretrainedOptions = {}) => modelFromPretrained(dir, task, options),
    /** A freshly initialised model of this kind from a config (a preset name, or config.json keys). */
    fromConfig: (config: Record<string, unknown>) => {
      if (typeof config.model_type !== "string") throw new Error("fromConfig: the config needs a model_type");
      const entry = architecture(config.model_type);
      const parsed = entry.parseConfig(config, "config");
      const cls = task === "auto" ? classFor(entry, "base")[1] : classFor(entry, task)[1];
      return new cls(parsed as never);
    },
  };
}

export const AutoModel = auto("base");
export const AutoModelForPreTraining = auto("pretraining");
export const AutoModelForMaskedLM = auto("masked-lm");
export const AutoModelForCausalLM = auto("causal-lm");
/** Encoder-decoders with an LM head (T5ForConditionalGeneration). */
export const AutoModelForSeq2SeqLM = auto("seq2seq-lm");
export const AutoModelForSequenceClassification = auto("sequence-classification");
export const AutoModelForTokenClassification = auto("token-classification");
export const AutoModelForQuestionAnswering = auto("question-answering");
export const AutoModelForMultipleChoice = auto("multiple-choice");
/** The class named by config.json's `architectures`. */
export const AutoModelFromArchitecture = auto("auto");
export const AutoConfig = { fromPretrained: configFromPretrained };

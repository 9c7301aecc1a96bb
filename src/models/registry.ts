// The architecture registry: which class serves which Hugging Face architecture, and what
// the layers above need to know about a model without knowing the model: where its body
// lives, which parameters are embeddings and which belong to layer N (freeze:N), which
// linear layers LoRA wraps, where the word embeddings are (adversarial training), how many
// positions a sequence needs, and the named sizes to pretrain from scratch. Each model file
// exports its entry; architectures.ts registers them, one line each.
import type { Module } from "../nn/index.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import { ConfigError } from "./config.js";

/** A model as the rest of lmforge sees it: a module with a config and a forward pass. */
export interface PretrainedModel extends Module {
  readonly config: Record<string, unknown> & { model_type: string };
  forward(input: ModelInputs): ModelOutput;
}

export type ModelClass = new (config: never) => PretrainedModel;

export type Task =
  | "base"
  | "pretraining"
  | "masked-lm"
  | "causal-lm"
  | "seq2seq-lm"
  | "sequence-classification"
  | "token-classification"
  | "question-answering"
  | "multiple-choice"
  | "next-sentence"
  | "electra-discriminator"
  | "image-text-contrastive"
  | "image-classification";

export interface ArchitectureEntry {
  modelType: string;
  /** The attribute that holds the base model in head classes ("bert", "roberta", "transformer"). */
  prefix: string;
  parseConfig(raw: Record<string, unknown>, where: string): Record<string, unknown> & { model_type: string };
  /** Hugging Face class name -> [task, class]. */
  classes: Record<string, [Task, ModelClass]>;
  /** Checkpoint names that are never weights (buffers Hugging Face once saved). */
  ignore?: RegExp;
  /** Body-relative parameter names of the embeddings (frozen by freeze:N, N >= 0). */
  embeddings: RegExp;
  /**
   * Body-relative parameter names of the layers, with the layer index as the first group
   * (freeze:N freezes layers 0..N-1); null where layers are shared across depth (ALBERT), so
   * that there is no "first N layers" to freeze.
   */
  layers: RegExp | null;
  /** Module paths (anywhere in the model) of the linear layers LoRA wraps; null where none can be. */
  loraTargets: RegExp | null;
  /** Body-relative path of the word-embedding module (its output is what adversarial training perturbs). */
  wordEmbeddings: string;
  /** The config key that holds the position count, and how many positions a sequence of n tokens uses. */
  positions: { key: string; needed(tokens: number): number };
  /** The config keys a fine-tuning run's --dropout sets (the hidden and classifier dropout). */
  dropoutKeys: string[];
  /** Named sizes for pretraining from scratch (config keys; vocab_size follows the tokenizer). */
  presets?: Record<string, Record<string, unknown>>;
}

const registry = new Map<string, ArchitectureEntry>();

/** Adds an architecture (a model file's exported entry); a second one of the same model_type is an error. */
export function registerArchitecture(entry: ArchitectureEntry): void {
  if (registry.has(entry.modelType)) throw new Error(`architecture "${entry.modelType}" is registered twice`);
  for (const name of Object.keys(entry.presets ?? {})) {
    const other = [...registry.values()].find((e) => e.presets?.[name]);
    if (other) throw new Error(`preset "${name}" of ${entry.modelType} is already a preset of ${other.modelType}`);
  }
  // every error of a config check names the config (a check deep inside, such as an unknown
  // activation name, may not know where the config came from)
  const parse = entry.parseConfig;
  registry.set(entry.modelType, {
    ...entry,
    parseConfig: (raw, where) => {
      try {
        return parse(raw, where);
      } catch (e) {
        if (e instanceof Error && !e.message.includes(where)) throw new ConfigError(`${where}: ${e.message}`);
        throw e;
      }
    },
  });
}

/** The entry of a model_type; an unregistered one is an error listing the known ones. */
export function architecture(modelType: string, where = "config.json"): ArchitectureEntry {
  const e = registry.get(modelType);
  if (!e) throw new Error(`${where}: unknown model_type "${modelType}"; lmforge knows ${[...registry.keys()].join(", ")}`);
  return e;
}

export function knownModelTypes(): string[] {
  return [...registry.keys()];
}

/** The entry of a model instance (by its config's model_type). */
export function architectureOf(model: PretrainedModel): ArchitectureEntry {
  return architecture(model.config.model_type, model.constructor.name);
}

/** Every registered preset by name. */
export function presets(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const e of registry.values()) for (const [name, p] of Object.entries(e.presets ?? {})) out[name] = { model_type: e.modelType, ...p };
  return out;
}

/** The class for a task of an architecture. */
export function classFor(entry: ArchitectureEntry, task: Task): [string, ModelClass] {
  const hit = Object.entries(entry.classes).find(([, [t]]) => t === task);
  if (!hit) {
    const has = [...new Set(Object.values(entry.classes).map(([t]) => t))].join(", ");
    throw new Error(`${entry.modelType} has no ${task} model in lmforge (it has: ${has})`);
  }
  return [hit[0], hit[1][1]];
}

/** The Hugging Face class name of a model instance. */
export function className(model: PretrainedModel): string {
  const entry = architecture(model.config.model_type);
  const hit = Object.entries(entry.classes).find(([, [, cls]]) => model instanceof cls && model.constructor === cls);
  return hit ? hit[0] : model.constructor.name;
}

/**
 * A parameter name split into the model's body and the rest: `bert.encoder.layer.3.x` ->
 * { inBody: true, local: "encoder.layer.3.x" }. A bare base model (no prefix) is all body.
 */
export function bodyPath(model: PretrainedModel, name: string): { inBody: boolean; local: string } {
  const { prefix } = architectureOf(model);
  if (name.startsWith(`${prefix}.`)) return { inBody: true, local: name.slice(prefix.length + 1) };
  const bare = !(model as unknown as Record<string, unknown>)[prefix];
  return bare ? { inBody: true, local: name } : { inBody: false, local: name };
}

/** The word-embedding lookup of a model, from its registry entry. */
export function wordEmbeddingModule(model: PretrainedModel): Module {
  const entry = architectureOf(model);
  const bare = !(model as unknown as Record<string, unknown>)[entry.prefix];
  const path = bare ? entry.wordEmbeddings : `${entry.prefix}.${entry.wordEmbeddings}`;
  for (const [name, m] of model.namedModules()) if (name === path) return m;
  throw new Error(`${model.constructor.name}: no module at ${path} (the registry's word embeddings for ${entry.modelType})`);
}

/** Checks that sequences of n tokens fit a config's positions; the error names both numbers. */
export function checkPositions(config: Record<string, unknown> & { model_type: string }, tokens: number, what = "sequence length"): void {
  const { positions } = architecture(config.model_type);
  const have = config[positions.key];
  const need = positions.needed(tokens);
  if (typeof have === "number" && need > have) {
    throw new Error(`${what} ${tokens} needs ${need} positions but the model has ${positions.key} = ${have}; use a ${what} of at most ${tokens - (need - have)}`);
  }
}

// Which class serves which Hugging Face architecture, and how checkpoint names map onto ours.
import type { Module } from "../nn/index.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";

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
  | "sequence-classification"
  | "token-classification"
  | "question-answering"
  | "multiple-choice"
  | "next-sentence"
  | "electra-discriminator";

export interface ArchitectureEntry {
  modelType: string;
  /** The attribute that holds the base model in head classes ("bert", "roberta", "transformer"). */
  prefix: string;
  parseConfig(raw: Record<string, unknown>, where: string): Record<string, unknown> & { model_type: string };
  /** Hugging Face class name -> [task, class]. */
  classes: Record<string, [Task, ModelClass]>;
  /** Checkpoint names that are never weights (buffers Hugging Face once saved). */
  ignore?: RegExp;
}

const registry = new Map<string, ArchitectureEntry>();

export function registerArchitecture(entry: ArchitectureEntry): void {
  registry.set(entry.modelType, entry);
}

export function architecture(modelType: string, where = "config.json"): ArchitectureEntry {
  const e = registry.get(modelType);
  if (!e) throw new Error(`${where}: unknown model_type "${modelType}"; lmforge knows ${[...registry.keys()].join(", ")}`);
  return e;
}

export function knownModelTypes(): string[] {
  return [...registry.keys()];
}

/** The class for a task of an architecture. */
export function classFor(entry: ArchitectureEntry, task: Task): [string, ModelClass] {
  const hit = Object.entries(entry.classes).find(([, [t]]) => t === task);
  if (!hit) throw new Error(`${entry.modelType} has no ${task} model in lmforge`);
  return [hit[0], hit[1][1]];
}

/** The Hugging Face class name of a model instance. */
export function className(model: PretrainedModel): string {
  const entry = architecture(model.config.model_type);
  const hit = Object.entries(entry.classes).find(([, [, cls]]) => model instanceof cls && model.constructor === cls);
  return hit ? hit[0] : model.constructor.name;
}

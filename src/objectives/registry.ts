// The pretraining objectives by name. Each objective's file exports its entries (what model
// head it trains, how sequences are cut from the corpus, which options it takes, how it is
// made); the list at the bottom registers them, one line per file. `lmforge pretrain` and
// pretrain() ask this registry; an unknown name is an error listing the known ones.
import type { Objective, PretrainedModel, Task } from "../models/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import type { Example } from "../data/pretraining.js";
import type { MaskingOptions } from "./masking.js";
import type { PerturbOptions } from "./perturb.js";
import type { WeightedAuxiliary } from "./auxiliary.js";

/** What an objective is made from: the tokenizer's special ids and the run's options. */
export interface ObjectiveContext {
  padId: number;
  masking: MaskingOptions;
  perturb: PerturbOptions | null;
  auxiliary: WeightedAuxiliary[];
  /** The weight of a weighted part (sop:0.5), 1 unless given. */
  weight: number;
  /** The run's tokenizer (span corruption takes its sentinels and EOS from it). */
  tokenizer: Tokenizer;
  /** Span corruption: the share of tokens dropped, and the mean length of a dropped span. */
  noiseDensity: number;
  meanSpanLength: number;
  /** Image objectives (clip): the class names, the model's config (image size, channels), the text length and the seed of template draws. */
  images?: { classes: string[]; config: Record<string, unknown>; maxLength: number; seed: number };
}

/**
 * How training sequences are cut from a tokenised corpus: "spans" are blocks of plain tokens
 * as "causal", of the length the objective's sequenceTokens asks (span corruption).
 */
export type SequenceLayout = "packed" | "causal" | "sop" | "nsp" | "spans" | "images";

export interface ObjectiveEntry {
  /** Its canonical name, parts joined by "+": "mlm", "mlm+sop", "clm". */
  name: string;
  /** One line for --help. */
  summary: string;
  /** The model head it trains (the architecture registry's task). */
  head: Task;
  sequences: SequenceLayout;
  /** Needs the tokenizer's mask token. */
  needsMask: boolean;
  /** The part that takes a loss weight (sop in "mlm,sop:0.5"), if any. */
  weightedPart?: string;
  /** Options it works with; each unsupported one is refused by name. */
  supports: { perturb: boolean; auxiliary: boolean; adversarial: boolean; mixing: boolean };
  create(ctx: ObjectiveContext): Objective<Example>;
  /** Checks, before any work, that the tokenizer has what the objective needs (span corruption's sentinels); `where` names it. */
  checkTokenizer?(tok: Tokenizer, where: string): void;
  /**
   * Corpus tokens per training sequence where the objective changes the length (span
   * corruption: T5's random_spans_helper, so that corrupted inputs fill --seq-len); a line for the log.
   */
  sequenceTokens?(seqLen: number, ctx: ObjectiveContext): { tokens: number; note: string };
  /**
   * Objectives that train more than one network (ELECTRA's generator and discriminator) build
   * the model themselves from the base model the run starts with, and say which one to keep.
   */
  pair?: { build(base: PretrainedModel): PretrainedModel; keep(model: PretrainedModel): PretrainedModel };
  /**
   * Objectives over images (sequences "images") read their examples from --images instead of
   * text: training and validation images, test images scored at the end (none where the folder
   * has no test part), the class names in label order, and a line for the log.
   */
  images?(dir: string, o: { valFraction: number; seed: number }): { train: unknown[]; validation: unknown[]; test: unknown[]; classes: string[]; note: string };
}

const registry = new Map<string, ObjectiveEntry>();

export function registerObjective(entry: ObjectiveEntry): void {
  if (registry.has(entry.name)) throw new Error(`objective "${entry.name}" is registered twice`);
  registry.set(entry.name, entry);
}

export function knownObjectives(): string[] {
  return [...registry.keys()];
}

/** The entry of a canonical name; unknown names are an error listing the known ones. */
export function objectiveEntry(name: string): ObjectiveEntry {
  const e = registry.get(name);
  if (!e) throw new Error(`objective "${name}" is not supported; use ${[...registry.keys()].map((k) => k.replace(/\+/g, ",")).join(", ")}`);
  return e;
}

/**
 * "mlm,sop:0.5" (or "mlm+sop") -> the entry and the weight of its weighted part. Only the part
 * an entry names as weighted takes a weight.
 */
export function parseObjectiveSpec(text: string): { entry: ObjectiveEntry; weight: number } {
  const parts = text.toLowerCase().split(/[,+]/).map((p) => p.trim());
  let weight = 1;
  const names: string[] = [];
  const weighted: string[] = [];
  for (const p of parts) {
    const [name, w] = p.split(":") as [string, string | undefined];
    names.push(name);
    if (w !== undefined) {
      weighted.push(name);
      weight = Number(w);
      if (w.trim() === "" || !(weight >= 0) || !Number.isFinite(weight)) throw new Error(`--objectives "${text}": the weight of ${name} must be a number >= 0`);
    }
  }
  const entry = registry.get(names.join("+"));
  if (!entry) throw new Error(`--objectives "${text}" is not supported; use ${[...registry.keys()].map((k) => k.replace(/\+/g, ",")).join(", ")}${[...registry.values()].some((e) => e.weightedPart) ? " (sop and nsp take a weight: mlm,sop:0.5)" : ""}`);
  for (const name of weighted) {
    if (name !== entry.weightedPart) throw new Error(`--objectives "${text}": only the sentence-pair loss (${[...registry.values()].map((e) => e.weightedPart).filter(Boolean).join(", ")}) takes a weight, as sop:0.5`);
  }
  return { entry, weight };
}

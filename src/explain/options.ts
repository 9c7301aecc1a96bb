// The attribution options, declared once: the library's defaults come from here, and
// `lmforge explain` reads the same declarations for its flags and --help.
import { defineOptions } from "../io/options.js";
import { INTEGRATION_RULES } from "./quadrature.js";
import type { IntegrationRule } from "./quadrature.js";

export type AttributionMethod = "gradxinput" | "ig" | "occlusion";
/** IG's starting point: the [PAD] token's word embedding at each word's place, or zeros. */
export type Baseline = "pad" | "zero";
/** Occlusion: a word's tokens become [MASK] or [PAD], or are removed. */
export type Occluder = "mask" | "pad" | "delete";

export const EXPLAIN_DEFAULTS = {
  method: "ig" as AttributionMethod,
  // 64 Gauss–Legendre points put the completeness gap of a small BERT far under 1%
  steps: 64,
  rule: "gauss-legendre" as IntegrationRule,
  baseline: "pad" as Baseline,
  // points of the IG path (or occluded copies) per forward pass: memory against passes
  batchSize: 16,
};

/** The attribution flags (the library's ExplainOptions). */
export const EXPLAIN_OPTIONS = defineOptions([
  { flag: "method", key: "method", type: "string", choices: ["gradxinput", "ig", "occlusion"], default: EXPLAIN_DEFAULTS.method, help: "attribution: gradient × input, integrated gradients, or occlusion (leave one word out)" },
  { flag: "target", key: "target", type: "string", arg: "LABEL", help: "the class to explain, by label or index (default: the predicted one)" },
  { flag: "position", key: "position", type: "int", arg: "N", min: 0, help: "token classification: the token (index among the printed tokens) whose tag is explained (default: the first tagged other than O)" },
  { flag: "steps", key: "steps", type: "int", arg: "N", min: 1, max: 4096, default: EXPLAIN_DEFAULTS.steps, help: "integrated gradients: steps of the path integral" },
  { flag: "rule", key: "rule", type: "string", choices: INTEGRATION_RULES, default: EXPLAIN_DEFAULTS.rule, help: "integrated gradients: quadrature of the path integral" },
  { flag: "baseline", key: "baseline", type: "string", choices: ["pad", "zero"], default: EXPLAIN_DEFAULTS.baseline, help: "integrated gradients: each word's embedding replaced by [PAD]'s, or zeros (special tokens kept)" },
  { flag: "occlude", key: "occlude", type: "string", choices: ["mask", "pad", "delete"], help: "occlusion: what replaces a word (default: mask if the tokenizer has one, else pad)" },
  { flag: "batch-size", key: "batchSize", type: "int", arg: "N", min: 1, default: EXPLAIN_DEFAULTS.batchSize, help: "path points or occluded copies per forward pass" },
] as const);

// `lmforge pretrain`'s own options (beside the Trainer's, in options.ts), declared once, with
// the parsers of its structured flags.
import { defineOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { AUXILIARY_TASKS, knownObjectives } from "../objectives/index.js";
import { SPAN_CORRUPTION_DEFAULTS } from "../objectives/span-corruption.js";
import type { PerturbOptions } from "../objectives/index.js";
import { parseArch } from "../models/variants/config.js";
import { trainingOptions } from "./options.js";
import type { Mixing } from "./mixing.js";
import { STREAM_THRESHOLD_MB_DEFAULT } from "./stream-data.js";

/** --perturb deletion=0.1,replacement=0.05,local-shuffle=0.5,shuffle-window=3,infilling=0.03,sentence-permutation=0.5 */
export function parsePerturb(text: string): Omit<PerturbOptions, "vocabSize" | "specialIds" | "maskId" | "seed"> {
  const names: Record<string, keyof PerturbOptions> = { deletion: "deletion", replacement: "replacement", "local-shuffle": "localShuffle", "shuffle-window": "shuffleWindow", infilling: "infilling", "sentence-permutation": "sentencePermutation" };
  const out: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [k, val] = part.split("=");
    const key = names[k!.trim()];
    const n = Number(val);
    if (!key || val === undefined || !Number.isFinite(n) || n < 0) throw new Error(`"${part}" must be NAME=VALUE with NAME one of ${Object.keys(names).join(", ")} and VALUE >= 0`);
    if (key !== "shuffleWindow" && n > 1) throw new Error(`"${part}": ${k} is a probability, at most 1`);
    out[key] = n;
  }
  return out;
}

/** --task OBJECTIVES=INPUT[,INPUT...], e.g. mlm=moby-dick or mlm,sop:0.5=data/mails.txt */
export function parseTask(text: string): { objectives: string; input: string[] } {
  const eq = text.indexOf("=");
  const objectives = eq < 0 ? "" : text.slice(0, eq).trim();
  const input = eq < 0 ? [] : text.slice(eq + 1).split(",").map((x) => x.trim()).filter(Boolean);
  if (!objectives || input.length === 0) throw new Error(`"${text}" must be OBJECTIVES=INPUT[,INPUT...], e.g. mlm=moby-dick or mlm,sop=data/mails.txt`);
  return { objectives, input };
}

/** --mixing proportional[:LIMIT] | temperature:T[:LIMIT] | equal | weights:W1,W2,... */
export function parseMixing(text: string): Mixing {
  const [kind, a, b] = text.split(":");
  const num = (x: string | undefined, what: string): number => {
    const n = Number(x);
    if (x === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${text}: ${what} must be a number > 0`);
    return n;
  };
  switch (kind) {
    case "proportional":
      return a === undefined ? { kind } : { kind, limit: num(a, "the limit K") };
    case "temperature": {
      const temperature = num(a, "the temperature T");
      if (temperature < 1) throw new Error(`${text}: the temperature must be >= 1 (1 is examples-proportional)`);
      return b === undefined ? { kind, temperature } : { kind, temperature, limit: num(b, "the limit K") };
    }
    case "equal":
      return { kind };
    case "weights":
      return { kind, weights: a === undefined ? [] : a.split(",").map((w) => num(w, "each weight")) };
    default:
      throw new Error(`"${text}" must be proportional[:LIMIT], temperature:T[:LIMIT], equal or weights:W1,W2,...`);
  }
}

/** --auxiliary word-boundary:0.1[,sentence-reordering:0.5] (weight 0.1 when left out) */
export function parseAuxiliary(text: string): { name: string; weight: number }[] {
  return text.split(",").map((part) => {
    const [name, w] = part.split(":");
    const weight = w === undefined ? 0.1 : Number(w);
    if (!name || !(weight > 0) || !Number.isFinite(weight)) throw new Error(`"${part}" must be NAME:WEIGHT with WEIGHT > 0, e.g. word-boundary:0.1 or sentence-reordering:0.5`);
    return { name, weight };
  });
}

/** Every option of pretrain(), and so of `lmforge pretrain`. */
export const PRETRAIN_OPTIONS = defineOptions([
  { flag: "model", key: "model", type: "string", arg: "PRESET|DIR", required: true, help: "a preset (bert-mini, roberta-base, albert-base, electra-small, gpt2, ...) or a checkpoint folder to continue from" },
  { flag: "arch", key: "arch", type: "string", arg: "KEY=VALUE,...", parse: parseArch, help: "the block's switches for an lmforge preset: norm=post|pre|sandwich, norm_type=layernorm|rmsnorm, positions=learned|rotary|alibi|relative|none, ffn=gelu|relu|swiglu|geglu, attention=softmax|local|performer, window=N, conv=none|before|parallel, conv_kernel=K, conv_only_layers=N, share_groups=G, embedding_size=E, causal=true|false (any config.json key of model_type lmforge)" },
  { flag: "tokenizer", key: "tokenizer", type: "string", arg: "DIR", help: "a tokenizer folder (lmforge tokenizer train) or tokenizer.json (default: the --model folder's own; required with a preset)" },
  { flag: "objectives", key: "objectives", type: "string", arg: "NAME", help: `what to learn: ${knownObjectives().map((n) => n.replace(/\+/g, ",")).join(", ")}; sop and nsp take a weight (mlm,sop:0.5) (default mlm)` },
  { flag: "images", key: "images", type: "string", arg: "DIR", help: "images for an image objective (clip): a folder of IDX files by their standard names (Debian's /usr/share/datasets/fashion-mnist), or of PNGs in train|test/<class>/" },
  { flag: "input", key: "input", type: "strings", arg: "FILE|DIR|moby-dick|sotu", help: "text files or folders (documents separated by blank lines), JSONL with a text field, or an embedded corpus (default: the embedded corpora)" },
  { flag: "task", key: "tasks", type: "strings", arg: "OBJECTIVES=INPUT", parse: parseTask, help: "one task of a mixture, its objectives and its own text: --task mlm=moby-dick --task mlm,sop=sotu" },
  { flag: "mixing", key: "mixing", type: "string", arg: "proportional[:K]|temperature:T[:K]|equal|weights:W,...", parse: parseMixing, help: "how --task mixtures are sampled (T5's rates; default proportional)" },
  { flag: "masking", key: "masking", type: "string", choices: ["dynamic", "static"], default: "dynamic", help: "dynamic: new masks each epoch (RoBERTa); static: the same every epoch (BERT)" },
  { flag: "mask-strategy", key: "maskStrategy", type: "string", choices: ["token", "whole-word", "span"], default: "token", help: "what is masked: tokens, whole words, or SpanBERT's spans" },
  { flag: "mask-probability", key: "maskProbability", type: "number", min: 0.01, max: 0.9, default: 0.15, help: "share of tokens masked" },
  { flag: "noise-density", key: "noiseDensity", type: "number", min: 0.01, max: 0.5, default: SPAN_CORRUPTION_DEFAULTS.noiseDensity, help: "span-corruption: share of tokens dropped (T5's noise_density)" },
  { flag: "mean-span-length", key: "meanSpanLength", type: "number", min: 1, max: 64, default: SPAN_CORRUPTION_DEFAULTS.meanSpanLength, help: "span-corruption: mean length of a dropped span, in tokens (T5's mean_noise_span_length)" },
  { flag: "max-steps", key: "maxSteps", type: "int", min: 1, required: true, help: "optimizer steps" },
  { flag: "seq-len", key: "seqLen", type: "int", min: 8, default: 128, help: "tokens per training sequence (span-corruption: the encoder's input length, EOS included; the log gives the target length)" },
  { flag: "warmup-steps", key: "warmupSteps", type: "int", min: 0, default: (o: Record<string, number>) => Math.round(o.maxSteps! * 0.06), defaultText: "6% of --max-steps", help: "linear warmup, then linear decay to 0" },
  { flag: "val-fraction", key: "valFraction", type: "number", min: 0, max: 0.5, default: 0.05, help: "share held out for validation (whole documents; sequences when the corpus has few documents)" },
  { flag: "perturb", key: "perturb", type: "string", arg: "deletion=P,replacement=P,local-shuffle=P,shuffle-window=K,infilling=P,sentence-permutation=P", parse: parsePerturb, help: "context perturbation of training sequences before masking (masked-LM objectives)" },
  { flag: "auxiliary", key: "auxiliary", type: "string", arg: "NAME:W,...", parse: parseAuxiliary, help: `auxiliary tasks beside the masked LM: ${Object.keys(AUXILIARY_TASKS).join(", ")}` },
  { flag: "stream", key: "stream", type: "boolean", default: false, help: "tokenise --input by streaming into a token file (on all cores, kept in the data cache) and train on windows read from it, without the corpus in memory (default: when the input is over --stream-threshold-mb)" },
  { flag: "stream-threshold-mb", key: "streamThresholdMb", type: "number", min: 0, default: STREAM_THRESHOLD_MB_DEFAULT, arg: "MB", help: "inputs larger than this are streamed" },
  { flag: "tokenize-threads", key: "tokenizeThreads", type: "int", min: 0, arg: "N", help: "worker threads of streaming tokenisation (default: the cores; 0: the main thread)" },
  ...trainingOptions({
    learningRate: 5e-4,
    batchSize: 32,
    patience: 0,
    evalEvery: (o) => Math.max(10, Math.round(o.maxSteps! / 10)),
    saveEvery: (o) => Math.max(100, Math.round(o.maxSteps! / 4)),
    everyText: { eval: "a tenth of --max-steps, at least 10", save: "a quarter of --max-steps, at least 100" },
  }),
] as const satisfies readonly OptionSpec[]);

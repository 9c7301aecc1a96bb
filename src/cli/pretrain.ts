// `lmforge pretrain`
import { readFileSync } from "node:fs";
import { pretrain } from "../train/index.js";
import type { Mixing } from "../train/index.js";
import { choiceArg, intArg, numberArg, stringArg } from "./args.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";


/** Merges a JSON --config file under the command-line flags (flags win). */
export function withConfigFile(values: Record<string, unknown>): Record<string, unknown> {
  if (typeof values.config !== "string") return values;
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(values.config, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`--config ${values.config}: ${(e as Error).message}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) {
    const kebab = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, "-");
    out[kebab] = Array.isArray(v) ? v.map(String) : typeof v === "boolean" ? v : String(v);
  }
  return { ...out, ...values };
}

export async function pretrainCommand(raw: Record<string, unknown>): Promise<void> {
  const v = withConfigFile(raw);
  const maxSteps = intArg(v, "max-steps", { min: 1 });
  if (v.task !== undefined && (v.input !== undefined || v.objectives !== undefined)) throw new UsageError("--task carries its own objectives and input (--task OBJECTIVES=INPUT): drop --objectives and --input");
  if (v.mixing !== undefined && v.task === undefined) throw new UsageError("--mixing mixes tasks: give two or more --task OBJECTIVES=INPUT");
  const opts = {
    model: stringArg(v, "model"),
    tokenizer: stringArg(v, "tokenizer"),
    ...(v.task !== undefined
      ? { tasks: (Array.isArray(v.task) ? (v.task as string[]) : [String(v.task)]).map(taskArg) }
      : { objectives: typeof v.objectives === "string" ? v.objectives : "mlm", input: (v.input as string[] | undefined) ?? [] }),
    ...(typeof v.mixing === "string" ? { mixing: mixingArg(v.mixing) } : {}),
    masking: choiceArg(v, "masking", ["static", "dynamic"] as const, "dynamic"),
    maskStrategy: choiceArg(v, "mask-strategy", ["token", "whole-word", "span"] as const, "token"),
    maskProbability: numberArg(v, "mask-probability", { min: 0.01, max: 0.9, default: 0.15 }),
    maxSteps,
    batchSize: intArg(v, "batch-size", { min: 1, default: 32 }),
    seqLen: intArg(v, "seq-len", { min: 8, default: 128 }),
    learningRate: numberArg(v, "learning-rate", { min: 0, max: 1, default: 5e-4 }),
    warmupSteps: intArg(v, "warmup-steps", { min: 0, default: Math.round(maxSteps * 0.06) }),
    weightDecay: numberArg(v, "weight-decay", { min: 0, default: 0.01 }),
    gradientAccumulation: intArg(v, "grad-accum", { min: 1, default: 1 }),
    clipNorm: numberArg(v, "clip-norm", { min: 0, default: 1 }),
    ...(v.precision !== undefined ? { precision: choiceArg(v, "precision", ["fp32", "bf16"] as const) } : {}),
    seed: intArg(v, "seed", { default: 42 }),
    valFraction: numberArg(v, "val-fraction", { min: 0, max: 0.5, default: 0.05 }),
    evalEvery: intArg(v, "eval-every", { min: 1, default: Math.max(10, Math.round(maxSteps / 10)) }),
    saveEvery: intArg(v, "save-every", { min: 1, default: Math.max(100, Math.round(maxSteps / 4)) }),
    keepLast: intArg(v, "keep-last", { min: 1, default: 2 }),
    out: stringArg(v, "out"),
    resume: Boolean(v.resume),
    ...(typeof v.perturb === "string" ? { perturb: perturbArg(v.perturb) } : {}),
    ...(typeof v.adversarial === "string" ? { adversarial: adversarialArg(v.adversarial) } : {}),
    ...(typeof v.auxiliary === "string" ? { auxiliary: auxiliaryArg(v.auxiliary) } : {}),
  };
  const progress = new Progress("pretrain");
  const r = await pretrain({
    ...opts,
    onStep: (s) => progress.update(s.step, s.maxSteps, `loss ${s.loss.toFixed(3)} lr ${s.lr.toExponential(2)} ${Math.round(s.tokensPerSec)} tok/s`),
    onEval: (m) => {
      progress.done();
      console.log(`step ${m.step}: ` + Object.entries(m).filter(([k]) => k !== "step").map(([k, x]) => `${k} ${x.toFixed(4)}`).join(", "));
    },
    log: (line) => console.error(line),
  });
  progress.done();
  console.log(`${r.interrupted ? "interrupted at" : "finished"} step ${r.steps}; model and tokenizer in ${opts.out} (log: ${opts.out}/metrics.jsonl)`);
}

/** --perturb deletion=0.1,replacement=0.05,local-shuffle=0.5,infilling=0.03,sentence-permutation=0.5 */
export function perturbArg(text: string): Record<string, number> {
  const names: Record<string, string> = { deletion: "deletion", replacement: "replacement", "local-shuffle": "localShuffle", "shuffle-window": "shuffleWindow", infilling: "infilling", "sentence-permutation": "sentencePermutation" };
  const out: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [k, val] = part.split("=");
    const key = names[k!.trim()];
    const n = Number(val);
    if (!key || !Number.isFinite(n) || n < 0) throw new UsageError(`--perturb: "${part}" must be NAME=VALUE with NAME one of ${Object.keys(names).join(", ")}`);
    out[key] = n;
  }
  return out;
}

/** --adversarial fgm:EPSILON or freelb:EPSILON:STEPS */
export function adversarialArg(text: string): { method: "fgm" | "freelb"; epsilon: number; steps?: number } {
  const [method, eps, steps] = text.split(":");
  const epsilon = Number(eps);
  if ((method !== "fgm" && method !== "freelb") || !(epsilon > 0)) throw new UsageError(`--adversarial must be fgm:EPSILON or freelb:EPSILON:STEPS, got "${text}"`);
  return { method, epsilon, ...(steps ? { steps: Number(steps) } : {}) };
}

/** --task OBJECTIVES=INPUT[,INPUT...], e.g. mlm=moby-dick or mlm,sop:0.5=data/mails.txt */
export function taskArg(text: string): { objectives: string; input: string[] } {
  const eq = text.indexOf("=");
  const objectives = eq < 0 ? "" : text.slice(0, eq).trim();
  const input = eq < 0 ? [] : text.slice(eq + 1).split(",").map((x) => x.trim()).filter(Boolean);
  if (!objectives || input.length === 0) throw new UsageError(`--task "${text}" must be OBJECTIVES=INPUT[,INPUT...], e.g. mlm=moby-dick or mlm,sop=data/mails.txt`);
  return { objectives, input };
}

/** --mixing proportional[:LIMIT] | temperature:T[:LIMIT] | equal | weights:W1,W2,... */
export function mixingArg(text: string): Mixing {
  const [kind, a, b] = text.split(":");
  const num = (x: string | undefined, what: string): number => {
    const n = Number(x);
    if (x === undefined || !Number.isFinite(n) || n <= 0) throw new UsageError(`--mixing ${text}: ${what} must be a number > 0`);
    return n;
  };
  switch (kind) {
    case "proportional":
      return a === undefined ? { kind } : { kind, limit: num(a, "the limit K") };
    case "temperature": {
      const temperature = num(a, "the temperature T");
      if (temperature < 1) throw new UsageError(`--mixing ${text}: the temperature must be >= 1 (1 is examples-proportional)`);
      return b === undefined ? { kind, temperature } : { kind, temperature, limit: num(b, "the limit K") };
    }
    case "equal":
      return { kind };
    case "weights":
      return { kind, weights: a === undefined ? [] : a.split(",").map((w) => num(w, "each weight")) };
    default:
      throw new UsageError(`--mixing "${text}" must be proportional[:LIMIT], temperature:T[:LIMIT], equal or weights:W1,W2,...`);
  }
}

/** --auxiliary word-boundary:0.1[,other:0.2] */
export function auxiliaryArg(text: string): { name: string; weight: number }[] {
  return text.split(",").map((part) => {
    const [name, w] = part.split(":");
    const weight = w === undefined ? 0.1 : Number(w);
    if (!name || !(weight > 0)) throw new UsageError(`--auxiliary: "${part}" must be NAME:WEIGHT, e.g. word-boundary:0.1 or sentence-reordering:0.5`);
    return { name, weight };
  });
}

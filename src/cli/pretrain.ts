// `lmforge pretrain`
import { readFileSync } from "node:fs";
import { pretrain } from "../train/index.js";
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
  const opts = {
    model: stringArg(v, "model"),
    tokenizer: stringArg(v, "tokenizer"),
    objectives: typeof v.objectives === "string" ? v.objectives : "mlm",
    masking: choiceArg(v, "masking", ["static", "dynamic"] as const, "dynamic"),
    maskStrategy: choiceArg(v, "mask-strategy", ["token", "whole-word", "span"] as const, "token"),
    maskProbability: numberArg(v, "mask-probability", { min: 0.01, max: 0.9, default: 0.15 }),
    input: (v.input as string[] | undefined) ?? [],
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

/** --auxiliary word-boundary:0.1[,other:0.2] */
export function auxiliaryArg(text: string): { name: string; weight: number }[] {
  return text.split(",").map((part) => {
    const [name, w] = part.split(":");
    const weight = w === undefined ? 0.1 : Number(w);
    if (!name || !(weight > 0)) throw new UsageError(`--auxiliary: "${part}" must be NAME:WEIGHT, e.g. word-boundary:0.1`);
    return { name, weight };
  });
}

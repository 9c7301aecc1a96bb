// Hyperparameter search: grid or random search over learning rate, batch size, dropout and
// epochs; each trial a fine-tuning run; trials sorted by the validation metric.
import { Rng } from "../data/random.js";
import { finetuneClassifier } from "./classification.js";
import type { FinetuneOptions, FinetuneResult, Classifier } from "./classification.js";

export interface SearchSpace {
  learningRate?: number[];
  batchSize?: number[];
  dropout?: number[];
  epochs?: number[];
}

export interface SearchTrial {
  params: { learningRate?: number; batchSize?: number; dropout?: number; epochs?: number };
  best: FinetuneResult["best"];
  steps: number;
  seconds: number;
}

function grid(space: SearchSpace): SearchTrial["params"][] {
  let out: SearchTrial["params"][] = [{}];
  for (const key of ["learningRate", "batchSize", "dropout", "epochs"] as const) {
    const values = space[key];
    if (!values || values.length === 0) continue;
    out = out.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  }
  return out;
}

/**
 * Runs every combination (grid), or `trials` random ones; returns the trials sorted best first
 * and the best trial's classifier (the others are freed).
 */
export async function hyperparameterSearch(
  base: FinetuneOptions,
  space: SearchSpace,
  options: { mode?: "grid" | "random"; trials?: number; seed?: number; onTrial?: (t: SearchTrial, i: number, n: number) => void } = {},
): Promise<{ trials: SearchTrial[]; best: SearchTrial; classifier: Classifier }> {
  let combos = grid(space);
  if (options.mode === "random") combos = new Rng(options.seed ?? 0, 0x5ea4c).shuffle(combos).slice(0, options.trials ?? 4);
  if (combos.length === 0) throw new Error("hyperparameter search: the space is empty");
  const metric = base.metric ?? "macro_f1";
  const trials: SearchTrial[] = [];
  let bestTrial: SearchTrial | null = null;
  let bestClassifier: Classifier | null = null;
  for (const [i, params] of combos.entries()) {
    const t0 = Date.now();
    const r = await finetuneClassifier({ ...base, ...params });
    const trial: SearchTrial = { params, best: r.best, steps: r.steps, seconds: (Date.now() - t0) / 1000 };
    trials.push(trial);
    options.onTrial?.(trial, i, combos.length);
    if (!bestTrial || trial.best[metric] > bestTrial.best[metric]) {
      bestClassifier?.model.dispose();
      bestTrial = trial;
      bestClassifier = r.classifier;
    } else {
      r.model.dispose();
    }
  }
  trials.sort((a, b) => b.best[metric] - a.best[metric]);
  return { trials, best: bestTrial!, classifier: bestClassifier! };
}

// Hyperparameter search: grid or random search over a space of options, each trial a full
// run (any task's fine-tuning), the trials ranked by their best validation metric.
import { Rng } from "../data/random.js";

/** Values to try per option key (learningRate, batchSize, dropout, epochs, weightDecay, ...). */
export type SearchSpace = Record<string, readonly number[]>;

export interface SearchTrial {
  params: Record<string, number>;
  /** The trial's best validation metric. */
  value: number;
  steps: number;
  seconds: number;
  /** Where the trial's run wrote its model. */
  out: string;
}

/** Every combination of the space's values, keys in the order given. */
export function searchGrid(space: SearchSpace): Record<string, number>[] {
  let out: Record<string, number>[] = [{}];
  for (const [key, values] of Object.entries(space)) {
    if (values.length === 0) continue;
    out = out.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  }
  return out;
}

/**
 * Runs every combination (grid) or `trials` of them drawn without repeats (random); returns
 * the trials sorted best first. `run` trains one trial and reports its best metric.
 */
export async function hyperparameterSearch(
  space: SearchSpace,
  run: (params: Record<string, number>, index: number) => Promise<{ value: number; steps: number; out: string }>,
  options: { mode?: "grid" | "random"; trials?: number; seed?: number; direction?: "max" | "min"; onTrial?: (t: SearchTrial, index: number, count: number) => void } = {},
): Promise<{ trials: SearchTrial[]; best: SearchTrial }> {
  let combos = searchGrid(space);
  if (Object.values(space).every((v) => v.length === 0)) throw new Error("hyperparameter search: the space is empty; give at least one list of values");
  if (options.mode === "random") combos = new Rng(options.seed ?? 0, 0x5ea4c).shuffle(combos).slice(0, options.trials ?? 4);
  const better = (a: number, b: number): boolean => ((options.direction ?? "max") === "max" ? a > b : a < b);
  const trials: SearchTrial[] = [];
  for (const [i, params] of combos.entries()) {
    const t0 = Date.now();
    const r = await run(params, i);
    const trial: SearchTrial = { params, value: r.value, steps: r.steps, seconds: (Date.now() - t0) / 1000, out: r.out };
    trials.push(trial);
    options.onTrial?.(trial, i, combos.length);
  }
  trials.sort((a, b) => (better(a.value, b.value) ? -1 : better(b.value, a.value) ? 1 : 0));
  return { trials, best: trials[0]! };
}

// Multi-task mixtures sampled per batch, as T5 (Raffel et al., 2020, section 3.5.2) mixes its
// tasks: each micro-batch comes from one task, drawn with a rate per task.
//   proportional: r_m = min(e_m, K) / sum_n min(e_n, K)   (examples-proportional, limit K)
//   temperature:  r_m proportional to (that rate)^(1/T)    (T = 1 is proportional; T -> inf is equal)
//   equal:        r_m = 1/M
//   weights:      r_m proportional to the weights given
// The draw for micro-batch k of step s depends on (seed, s, k) only, so a resumed run draws
// exactly as an uninterrupted one.
import { Rng } from "../data/random.js";

export type Mixing =
  | { kind: "proportional"; limit?: number }
  | { kind: "temperature"; temperature: number; limit?: number }
  | { kind: "equal" }
  | { kind: "weights"; weights: number[] };

/** The sampling rate of each task, given its number of training examples. */
export function mixingRates(sizes: readonly number[], mixing: Mixing): number[] {
  if (sizes.length === 0) throw new Error("a mixture needs at least one task");
  const normalise = (xs: number[]): number[] => {
    const total = xs.reduce((a, b) => a + b, 0);
    if (!(total > 0)) throw new Error(`mixing rates sum to ${total}: every task has no examples or zero weight`);
    return xs.map((x) => x / total);
  };
  switch (mixing.kind) {
    case "equal":
      return sizes.map(() => 1 / sizes.length);
    case "weights":
      if (mixing.weights.length !== sizes.length) throw new Error(`mixing weights: ${mixing.weights.length} given for ${sizes.length} tasks`);
      mixing.weights.forEach((w, i) => {
        if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`mixing weight of task ${i} must be a finite number >= 0, got ${w}`);
      });
      return normalise([...mixing.weights]);
    case "proportional":
    case "temperature": {
      const limit = mixing.limit ?? Infinity;
      if (!(limit > 0)) throw new RangeError(`mixing limit must be > 0, got ${limit}`);
      const proportional = normalise(sizes.map((e) => Math.min(e, limit)));
      if (mixing.kind === "proportional") return proportional;
      const t = mixing.temperature;
      if (!(t >= 1) || !Number.isFinite(t)) throw new RangeError(`mixing temperature must be a finite number >= 1 (T5's T), got ${t}`);
      return normalise(proportional.map((r) => Math.pow(r, 1 / t)));
    }
    default:
      throw new Error(`unknown mixing "${(mixing as { kind: string }).kind}"; use proportional, temperature, equal or weights`);
  }
}

/** The task of micro-batch `micro` of optimizer step `step` (0-based), drawn with the rates. */
export function pickTask(rates: readonly number[], seed: number, step: number, micro: number): number {
  if (rates.length === 1) return 0;
  const u = new Rng(seed, step, micro, 0x3a7c).next();
  let acc = 0;
  for (let i = 0; i < rates.length; i++) {
    acc += rates[i]!;
    if (u < acc) return i;
  }
  // rounding: the last task with a rate above zero
  for (let i = rates.length - 1; i >= 0; i--) if (rates[i]! > 0) return i;
  return rates.length - 1;
}

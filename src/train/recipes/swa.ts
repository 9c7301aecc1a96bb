// Stochastic weight averaging (Izmailov et al. 2018) over the last K evaluations of a
// fine-tuning run: the weights at each evaluation are kept (K copies of the parameters, in
// memory), and at the end their elementwise mean is evaluated on the validation data. The rule:
// the average replaces the run's weights (the best evaluation's, restored) only when its
// validation metric is strictly better than the best evaluation's; otherwise they stay.
// Transformers have no batch norm, so the average needs no statistics recomputed.
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { Module } from "../../nn/index.js";

/** The elementwise mean of several weight sets with the same names and shapes. */
export function averageWeights(sets: readonly ReadonlyMap<string, Tensor>[]): Map<string, Tensor> {
  const first = sets[0];
  if (!first) throw new Error("averageWeights: no weight sets to average");
  const out = new Map<string, Tensor>();
  torch.noGrad(() => {
    for (const [name, t] of first) {
      const parts = sets.map((s, i) => {
        const x = s.get(name);
        if (!x) throw new Error(`averageWeights: weight set ${i} has no ${name}`);
        if (x.shape.join() !== t.shape.join()) throw new Error(`averageWeights: ${name} is [${x.shape.join(", ")}] in set ${i}, [${t.shape.join(", ")}] in set 0`);
        return x;
      });
      out.set(name, torch.keep(torch.scope(() => torch.stack(parts, 0).mean(0))));
    }
  });
  return out;
}

/** Copies of a module's trainable parameters, by name. */
export function copyWeights(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  torch.noGrad(() => {
    for (const [name, p] of model.namedParameters()) if (p.requiresGrad) out.set(name, torch.keep(p.detach().clone()));
  });
  return out;
}

/** The last K snapshots of a model's weights, taken at each evaluation. */
export class WeightAverager {
  private readonly snapshots: Map<string, Tensor>[] = [];
  /** The training steps the kept snapshots were taken at. */
  readonly steps: number[] = [];

  constructor(readonly keep: number) {
    if (!(Number.isInteger(keep) && keep >= 1)) throw new RangeError(`--swa must be a positive integer, got ${keep}`);
  }

  /** Takes a snapshot, dropping the oldest beyond K. */
  record(model: Module, step: number): void {
    this.snapshots.push(copyWeights(model));
    this.steps.push(step);
    while (this.snapshots.length > this.keep) {
      torch.dispose([...this.snapshots.shift()!.values()]);
      this.steps.shift();
    }
  }

  get count(): number {
    return this.snapshots.length;
  }

  /** The mean of the kept snapshots (fresh tensors: the caller disposes them). */
  average(): Map<string, Tensor> {
    return averageWeights(this.snapshots);
  }

  dispose(): void {
    for (const s of this.snapshots) torch.dispose([...s.values()]);
    this.snapshots.length = 0;
  }
}

/** What the end of an SWA run decided (written to swa.json). */
export interface SwaDecision {
  steps: number[];
  metric: string;
  best: number | null;
  averaged: number;
  kept: boolean;
  metrics: Record<string, number>;
}

/**
 * Loads the average of the kept snapshots into the model, evaluates it, and keeps it when
 * its `metric` is strictly better than `best` (or there is no best); otherwise puts the model's
 * weights back as they were. `evaluate` returns validation metrics prefixed val_.
 */
export function finishAveraging(model: Module, averager: WeightAverager, o: { metric: string; mode: "max" | "min"; best: number | null; evaluate: () => Record<string, number> }): SwaDecision {
  const before = copyWeights(model);
  const avg = averager.average();
  try {
    model.loadStateDict(avg, { strict: false });
    const metrics = o.evaluate();
    const value = metrics[`val_${o.metric}`];
    if (value === undefined) throw new Error(`--swa: the evaluation reports no ${o.metric}`);
    const kept = o.best === null || (o.mode === "max" ? value > o.best : value < o.best);
    if (!kept) model.loadStateDict(before, { strict: false });
    return { steps: [...averager.steps], metric: o.metric, best: o.best, averaged: value, kept, metrics };
  } finally {
    torch.dispose([...before.values(), ...avg.values()]);
  }
}

// Learning-rate schedules as small pure functions of the step: each returns the multiplier
// of the base learning rate, as Hugging Face's get_*_schedule_with_warmup lambdas do.

export type Schedule = (step: number) => number;

function warmup(step: number, warmupSteps: number): number {
  return step / Math.max(1, warmupSteps);
}

export function constant(warmupSteps = 0): Schedule {
  return (step) => (step < warmupSteps ? warmup(step, warmupSteps) : 1);
}

/** Linear warmup to 1, then linear decay to 0 at totalSteps (BERT). */
export function linearWarmupDecay(warmupSteps: number, totalSteps: number): Schedule {
  return (step) => (step < warmupSteps ? warmup(step, warmupSteps) : Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps)));
}

/** Linear warmup, then a half cosine (cycles = 0.5) down to 0 at totalSteps. */
export function cosineWithWarmup(warmupSteps: number, totalSteps: number, cycles = 0.5): Schedule {
  return (step) => {
    if (step < warmupSteps) return warmup(step, warmupSteps);
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
  };
}

/** Linear warmup, then polynomial decay from lrInit to lrEnd (RoBERTa's fairseq schedule). */
export function polynomialDecay(warmupSteps: number, totalSteps: number, lrInit: number, lrEnd = 1e-7, power = 1): Schedule {
  if (!(lrInit > lrEnd)) throw new RangeError(`polynomialDecay: lrEnd (${lrEnd}) must be smaller than lrInit (${lrInit})`);
  return (step) => {
    if (step < warmupSteps) return warmup(step, warmupSteps);
    if (step > totalSteps) return lrEnd / lrInit;
    const remaining = 1 - (step - warmupSteps) / (totalSteps - warmupSteps);
    return ((lrInit - lrEnd) * remaining ** power + lrEnd) / lrInit;
  };
}

/** Linear warmup, then 1/sqrt(step) decay (Transformer, T5); timescale defaults to warmupSteps or 10,000. */
export function inverseSqrt(warmupSteps: number, timescale?: number): Schedule {
  const ts = timescale ?? (warmupSteps || 10_000);
  return (step) => (step < warmupSteps ? warmup(step, warmupSteps) : 1 / Math.sqrt((step + ts - warmupSteps) / ts));
}

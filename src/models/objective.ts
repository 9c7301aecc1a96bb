// The contract between the Trainer and what it trains a model for. A pretraining objective
// (masked LM, causal LM, ELECTRA) and a fine-tuning task (classification, named entities,
// question answering) both implement it: make a micro-batch from examples, compute its loss
// and the step's metrics, evaluate on held-out examples. The Trainer knows nothing else of
// them. It lives in the models layer because objectives and tasks, two folders of one layer
// that never import each other, both implement it.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { PretrainedModel } from "./registry.js";

/** A micro-batch. Objectives add their own tensors (labels, masks, span positions). */
export interface Batch {
  /** (B, T) token ids: the Trainer counts tokens from it, and adversarial training embeds it. */
  inputIds: Tensor;
  /** (B, T, E) word embeddings to use instead of looking up inputIds (adversarial training sets them). */
  inputsEmbeds?: Tensor;
  /** What the loss averages over (masked tokens, sequences, ...): accumulated micro-batches are weighted by it. */
  targets: number;
}

export interface EvalContext {
  batchSize: number;
  /** At most this many batches (all if unset). */
  maxBatches?: number;
  /** Evaluate under bfloat16 autocast. */
  precision: "fp32" | "bf16";
}

export interface EvalResult {
  /** Metrics by name, without the val_ prefix (the Trainer adds it): loss, accuracy, f1, ... */
  metrics: Record<string, number>;
  /** The additive sums the metrics were made from (a mixture of tasks adds them up). */
  sums?: Record<string, number>;
  /** Per-example predictions in the examples' order, in the task's own form. */
  predictions?: unknown[];
}

/**
 * E: what batches are made of (a pretraining sequence, an encoded window); X: the examples a
 * run is given (a labelled text, a question with its context), E unless prepare() says otherwise.
 */
export interface Objective<E = unknown, B extends Batch = Batch, X = E> {
  readonly name: string;
  /** Turns given examples into training features once, before training (tokenised, windowed, labels aligned). */
  prepare?(examples: readonly X[]): E[];
  /**
   * The micro-batch of examples[indices]. epoch >= 0 while training (masks and perturbations
   * drawn per epoch); -1 for evaluation (fixed, the same every time).
   */
  batch(examples: readonly E[], indices: number[], epoch: number): B;
  /**
   * A feature's length, in the tokens a batch pads it to (the encoder's and the decoder's for
   * sequence to sequence): what the Trainer's groupByLength groups batches by.
   */
  length?(feature: E): number;
  /** The loss (a mean over the batch's targets) and metrics of this batch, as sums. */
  loss(model: PretrainedModel, batch: B): { loss: Tensor; metrics: Record<string, number> };
  /** Scores the model on given examples. Without it, evaluateByLoss runs the loss over their features. */
  evaluate?(model: PretrainedModel, examples: readonly X[], ctx: EvalContext): EvalResult;
  /**
   * What evaluate() reports, from its parts: the examples, their predictions (in order) and the
   * sums of the parts' `sums`. Data-parallel evaluation (src/train/divided-eval.ts) evaluates
   * shares of the examples on each rank, gathers the predictions and calls this; an objective
   * with evaluate() but no score() is evaluated whole on every rank.
   */
  score?(examples: readonly X[], predictions: readonly unknown[], sums: Record<string, number>): Record<string, number>;
  /** Turns summed batch metrics into reported ones (default summariseSums). */
  summarise?(sums: Record<string, number>): Record<string, number>;
  /** Which way each reported metric improves (early stopping); loss is "min" unless said. */
  readonly metricDirections?: Readonly<Record<string, "max" | "min">>;
}

/**
 * The default summary of summed batch metrics: loss = loss_sum / targets, and X_accuracy =
 * X_correct / X_total for every pair of sums so named.
 */
export function summariseSums(sums: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = { loss: (sums.loss_sum ?? 0) / Math.max(1, sums.targets ?? 0) };
  for (const key of Object.keys(sums)) {
    const m = /^(.*)_correct$/.exec(key);
    if (m && sums[`${m[1]}_total`]) out[`${m[1]}_accuracy`] = sums[key]! / sums[`${m[1]}_total`]!;
  }
  return out;
}

/**
 * Evaluation by the loss: runs the objective's loss over the examples in order (epoch -1:
 * fixed masks), without gradients, and sums loss x targets, targets, batches and every metric.
 */
export function evaluateByLoss<E, B extends Batch, X>(objective: Objective<E, B, X>, model: PretrainedModel, given: readonly X[], ctx: EvalContext): EvalResult {
  const examples = objective.prepare ? objective.prepare(given) : (given as unknown as readonly E[]);
  const sums: Record<string, number> = { loss_sum: 0, targets: 0, batches: 0 };
  const maxBatches = ctx.maxBatches ?? Infinity;
  model.eval();
  for (let s = 0, nb = 0; s < examples.length && nb < maxBatches; s += ctx.batchSize, nb++) {
    const idx = Array.from({ length: Math.min(ctx.batchSize, examples.length - s) }, (_, i) => s + i);
    addSums(sums, batchLossSums(objective, model, examples, idx, ctx));
  }
  return { metrics: (objective.summarise ?? summariseSums)(sums), sums };
}

/**
 * One evaluation batch's sums (evaluateByLoss's unit): loss x targets, targets, batches (1)
 * and the objective's metrics, for examples[idx] (epoch -1: fixed masks), without gradients.
 */
export function batchLossSums<E, B extends Batch, X>(objective: Objective<E, B, X>, model: PretrainedModel, examples: readonly E[], idx: number[], ctx: EvalContext): Record<string, number> {
  return torch.noGrad(() =>
    torch.scope(() => {
      const batch = objective.batch(examples, idx, -1);
      const r = torch.autocast(() => objective.loss(model, batch), { enabled: ctx.precision === "bf16" });
      // a batch without targets (no masked token) weighs nothing: its mean loss would be 0/0
      return { loss_sum: batch.targets ? r.loss.item() * batch.targets : 0, targets: batch.targets, batches: 1, ...r.metrics };
    }),
  );
}

/** Adds `from`'s sums into `into`, key by key (a key new to `into` starts at 0). */
export function addSums(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

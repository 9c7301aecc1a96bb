// Evaluation under data parallelism: each rank evaluates a share of the validation data and
// every rank ends with exactly the metrics one process would report for all of it.
//
// The unit is the one-process evaluation's batch: batch k (examples k·B .. k·B+B-1) goes to
// rank k mod worldSize, whole, so that every batch is made and run exactly as one process
// makes and runs it (same examples, same padding, same fixed masks: they are keyed by the
// example's index in the whole list). The ranks then allgather their batches' results and add
// them up in batch order, the one process's order, so that even the floating-point sums are
// the same:
//   - evaluation by the loss (pretraining objectives): each batch's sums (loss x targets,
//     targets, the objective's counts), summarised as one process summarises them;
//   - an objective with its own evaluate() and score() (classification, named entities,
//     question answering): each batch's predictions and sums; metrics that need every
//     prediction (F1, exact match) are scored once on all of them, on every rank.
// An objective with evaluate() but no score() cannot be put back together from parts: every
// rank evaluates all of it, as before.
import { addSums, batchLossSums, summariseSums } from "../models/index.js";
import type { Batch, EvalContext, EvalResult, Objective, PretrainedModel } from "../models/index.js";
import type { ProcessGroup } from "../torch/distributed.js";

/** The one-process evaluation of `given`, computed in shares over the group's ranks (see the file comment). */
export function evaluateDivided<E, B extends Batch, X>(objective: Objective<E, B, X>, model: PretrainedModel, given: readonly X[], ctx: EvalContext, group: ProcessGroup): EvalResult {
  model.eval();
  if (!objective.evaluate) return byLoss(objective, model, given, ctx, group);
  if (objective.score) return byPredictions(objective, model, given, ctx, group);
  return objective.evaluate(model, given, ctx);
}

/** The batches of n examples in groups of batchSize (at most maxBatches) that `rank` evaluates, by batch number. */
export function batchesOfRank(n: number, batchSize: number, rank: number, worldSize: number, maxBatches = Infinity): number[] {
  const batches = Math.min(Math.ceil(n / batchSize), maxBatches);
  const mine: number[] = [];
  for (let k = rank; k < batches; k += worldSize) mine.push(k);
  return mine;
}

/** Every rank's per-batch results, back in batch order (rank k mod W made batch k, as its (k div W)-th). */
function inBatchOrder<T>(group: ProcessGroup, mine: T[]): T[] {
  const all = group.allGatherObject(mine);
  const total = all.reduce((n, part) => n + part.length, 0);
  return Array.from({ length: total }, (_, k) => all[k % group.worldSize]![Math.floor(k / group.worldSize)]!);
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

function byLoss<E, B extends Batch, X>(objective: Objective<E, B, X>, model: PretrainedModel, given: readonly X[], ctx: EvalContext, group: ProcessGroup): EvalResult {
  const examples = objective.prepare ? objective.prepare(given) : (given as unknown as readonly E[]);
  const bs = ctx.batchSize;
  const mine = batchesOfRank(examples.length, bs, group.rank, group.worldSize, ctx.maxBatches).map((k) =>
    batchLossSums(objective, model, examples, range(k * bs, Math.min(examples.length, (k + 1) * bs)), ctx),
  );
  const sums: Record<string, number> = { loss_sum: 0, targets: 0, batches: 0 };
  for (const part of inBatchOrder(group, mine)) addSums(sums, part);
  return { metrics: (objective.summarise ?? summariseSums)(sums), sums };
}

function byPredictions<E, B extends Batch, X>(objective: Objective<E, B, X>, model: PretrainedModel, given: readonly X[], ctx: EvalContext, group: ProcessGroup): EvalResult {
  const bs = ctx.batchSize;
  // the tasks' evaluate() runs every example (maxBatches is for evaluation by the loss)
  const mine = batchesOfRank(given.length, bs, group.rank, group.worldSize).map((k) => {
    const r = objective.evaluate!(model, given.slice(k * bs, (k + 1) * bs), ctx);
    return { sums: r.sums ?? {}, predictions: r.predictions ?? [] };
  });
  const sums: Record<string, number> = {};
  const predictions: unknown[] = [];
  for (const part of inBatchOrder(group, mine)) {
    addSums(sums, part.sums);
    predictions.push(...part.predictions);
  }
  return { metrics: objective.score!(given, predictions, sums), sums, predictions };
}

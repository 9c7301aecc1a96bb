// The Trainer: the one training loop of lmforge. Pretraining objectives and fine-tuning tasks
// are its plugins (src/models/objective.ts): it asks them for batches, losses and evaluations
// and does the rest, the same for every task: gradient accumulation (the accumulated loss
// equals the full batch's), clipping, the schedule, bfloat16 autocast, adversarial training,
// periodic evaluation, early stopping with the best weights restored, a JSONL log, atomic
// checkpoints keeping the last K (and the best), exact resume (model, optimizer, schedule,
// random state, data position, early-stopping state), a stop with a clear message on a NaN
// loss, and a checkpoint on SIGINT or SIGTERM (trainAsync). Several tasks (objective + data)
// can be mixed, one task per micro-batch, drawn with T5's mixing rates. With `privacy`, each step
// is DP-SGD's (src/train/privacy/dp-sgd.ts): Poisson-sampled examples, per-sample clipping,
// noise, and ε in the log; the run stops before its target ε would be exceeded.
//
// Signals: the loop is synchronous, and Node runs signal listeners only when the event loop
// turns, so train() cannot see one; trainAsync() yields to the event loop after every step.
// The first SIGINT or SIGTERM lets the current step finish, writes a checkpoint and returns
// (interrupted, with the signal); its listeners are removed at once, so a second signal gets
// the default action and ends the process at once, even inside a checkpoint write (which
// leaves no checkpoint-N behind, only a temporary that resume removes).
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { AdamW, LRScheduler, clipGradNorm } from "../optim/index.js";
import type { AdamWOptions, ParamGroupInput, Schedule } from "../optim/index.js";
import { readCheckpoint, saveCheckpoint, writeTextAtomic } from "../io/index.js";
import { tensorsToSave, adversarialBackward, requireCheckpointed, setGradientCheckpointing } from "../nn/index.js";
import type { AdversarialOptions } from "../nn/index.js";
import { evaluateByLoss, summariseSums, wordEmbeddingModule } from "../models/index.js";
import type { Batch, EvalResult, Objective, PretrainedModel } from "../models/index.js";
import { epochOrder } from "../data/random.js";
import { mixingRates, pickTask } from "./mixing.js";
import type { Mixing } from "./mixing.js";
import { DpSgd, planDp } from "./privacy/dp-sgd.js";
import type { DpRequest, DpSettings } from "./privacy/dp-sgd.js";
import { RunLog, checkpointSteps, lastCheckpoint, removeStaleTemporaries, resumableCheckpoint, rotateCheckpoints } from "./checkpoints.js";
import { DataParallel, commHidden, fingerprint } from "./data-parallel.js";
import { epochLength, fitToRanks, lengthGroupedOrder, rankShare } from "./sampler.js";
import { evaluateDivided } from "./divided-eval.js";
import type { DistributedOptions } from "./data-parallel.js";

export { lastCheckpoint } from "./checkpoints.js";

/** One task of a run: an objective and its data (examples as the objective takes them; it prepares its features). */
export interface TrainTask<X = unknown> {
  name: string;
  objective: Objective<unknown, Batch, X>;
  train: readonly X[];
  validation?: readonly X[];
}

/** Early stopping and best-weight restore on a validation metric. */
export interface BestOptions {
  /** The metric, as the objective reports it (loss, macro_f1, f1, exact_match, ...); val_ is added. */
  metric: string;
  /** Which way it improves (default: the objective's metricDirections, else min for loss and perplexity, max otherwise). */
  mode?: "max" | "min";
  /** Stop after this many evaluations without improvement; 0 never stops early (default 0). */
  patience?: number;
  /** Load the best checkpoint's weights at the end (default true). Its checkpoint is kept beside the last K. */
  restore?: boolean;
}

export interface TrainerOptions {
  model: PretrainedModel;
  /** One objective and its data... */
  objective?: Objective<never, Batch, never> | Objective<unknown, Batch, unknown>;
  train?: readonly unknown[];
  validation?: readonly unknown[];
  /** ...or several, mixed per micro-batch with `mixing` (default: examples-proportional). */
  tasks?: TrainTask[];
  mixing?: Mixing;
  batchSize: number;
  gradientAccumulation?: number;
  /** Optimizer steps; or give epochs (of the first task's prepared features) and the steps follow. */
  maxSteps?: number;
  epochs?: number;
  learningRate: number;
  weightDecay?: number;
  /** AdamW's parameter groups with their own peak rates (layer-wise decay); default: decayGroups at learningRate. */
  optimizerGroups?: ParamGroupInput<AdamWOptions>[];
  /** Adam's bias correction (default true; false: BERTAdam's update). */
  biasCorrection?: boolean;
  /** The learning-rate schedule; or scheduleFor, which makes it from the run's total steps (a warmup share of them). */
  schedule?: Schedule;
  scheduleFor?: (maxSteps: number) => Schedule;
  /** Clip the gradients' global norm to this (0 or unset: no clipping). */
  clipNorm?: number;
  precision?: "fp32" | "bf16";
  seed: number;
  /** Output folder: checkpoints in checkpoint-N/, the log in metrics.jsonl. */
  out: string;
  /** Checkpoint every N steps, or at the end of every epoch. */
  saveEvery?: number | "epoch";
  keepLast?: number;
  /** Evaluate every N steps, or at the end of every epoch (and after the last step). */
  evalEvery?: number | "epoch";
  /** Validation batches per evaluation (all if unset). */
  evalBatches?: number;
  best?: BestOptions;
  /** Continue from the last checkpoint in `out`. */
  resume?: boolean;
  /** Extra files for every checkpoint folder (the tokenizer's). */
  copy?: Record<string, string>;
  /** Keys merged into every checkpoint's config.json (a fine-tuned model's description). */
  config?: Record<string, unknown>;
  /** Adversarial training on the word embeddings (FGM or FreeLB). */
  adversarial?: AdversarialOptions;
  /** Gradient checkpointing per transformer layer (src/nn/checkpoint.ts). */
  gradientCheckpointing?: boolean;
  /** Batches of examples of like length (sampler.ts lengthGroupedOrder): less padding; every task's objective needs length(). */
  groupByLength?: boolean;
  /**
   * Differentially private training (DP-SGD): a target ε (the noise multiplier chosen so that
   * the run's steps end there) or a noise multiplier, δ, and the per-sample clipping norm. The
   * expected batch is batchSize × gradientAccumulation; clipNorm does not apply.
   */
  privacy?: DpRequest;
  /**
   * Data parallelism over a process group (see data-parallel.ts): batchSize is per rank, the
   * global batch worldSize x batchSize; only rank 0 writes the log and checkpoints.
   */
  distributed?: DistributedOptions;
  onStep?: (info: StepInfo) => void;
  onEval?: (metrics: Record<string, number>) => void;
  log?: (line: string) => void;
}

export interface StepInfo {
  step: number;
  maxSteps: number;
  /** The step this run began from: 0, or the checkpoint's step when resumed (a progress rate counts from here). */
  startStep: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Input tokens per second over the step: padding not counted (inputTokens). */
  tokensPerSec: number;
  /** The gradients' norm before clipping (DP-SGD: the mean of the examples' norms before clipping). */
  gradNorm: number;
  /** DP-SGD: the privacy spent so far, ε at the run's δ. */
  epsilon?: number;
  /** Data parallelism with overlap: the share of the step's gradient communication hidden behind its backward (0 to 1). */
  commHidden?: number;
}

export interface TrainResult {
  steps: number;
  lastLoss: number;
  interrupted: boolean;
  /** The signal that interrupted the run (trainAsync), if one did. */
  signal?: "SIGINT" | "SIGTERM";
  stoppedEarly: boolean;
  /** Every evaluation of the run (a resumed run's earlier ones included), with its step. */
  evals: Record<string, number>[];
  /** The best evaluation, when best was given. */
  best: { step: number; value: number; metric: string } | null;
  /** DP-SGD: the settings and the ε spent by the steps run. */
  privacy?: DpSettings & { epsilon: number; steps: number };
}

interface TrainerState {
  step: number;
  /** The first task's epoch and position (kept for checkpoints of older runs). */
  epoch: number;
  position: number;
  /** Every task's epoch and position, by name. */
  tasks?: Record<string, { epoch: number; position: number }>;
  scheduler: { stepCount: number; baseLrs: number[] };
  rng: string;
  optimizerMeta: { groups: Record<string, number | boolean>[]; steps: Record<string, number> };
  best?: { step: number; value: number; metric: string } | null;
  sinceBest?: number;
  learningRate?: number;
  /** What shapes the run's trajectory (settingsOf), compared on resume. */
  settings?: Record<string, number | string | boolean | number[]>;
}

export class NonFiniteLossError extends Error {}

/** The input tokens a batch holds: its attention mask's ones where it has one (padding is not counted), else every id. */
export function inputTokens(batch: Batch): number {
  const mask = (batch as { attentionMask?: unknown }).attentionMask;
  return mask instanceof torch.Tensor ? torch.scope(() => mask.sum().item()) : batch.inputIds.numel;
}

interface TaskState extends TrainTask {
  /** What batches are made of: the prepared training examples. */
  features: readonly unknown[];
  epoch: number;
  position: number;
  /** The seed of the task's example order (task 0 keeps the single-task order). */
  orderSeed: number;
  /** The order of the current epoch, made once per epoch. */
  order?: { epoch: number; indices: Int32Array };
  /** Each feature's length (objective.length), when batches are grouped by it. */
  lengths?: Int32Array;
}

export class Trainer {
  readonly optimizer: AdamW;
  readonly scheduler: LRScheduler;
  /** Optimizer steps of the run, and of one epoch of the first task. */
  readonly maxSteps: number;
  readonly stepsPerEpoch: number;
  private readonly evalEvery: number;
  private readonly saveEvery: number;
  step = 0;
  readonly tasks: TaskState[];
  /** Each task's sampling rate. */
  readonly rates: number[];
  private stopRequested = false;
  private stopSignal: "SIGINT" | "SIGTERM" | undefined;
  private readonly runLog: RunLog;
  private best: { step: number; value: number; metric: string } | null = null;
  private sinceBest = 0;
  private evals: Record<string, number>[] = [];
  /** DP-SGD's step, when the run is private. */
  readonly dp: DpSgd | null = null;
  /** Data parallelism, when the run has a process group. */
  readonly parallel: DataParallel | null;

  constructor(readonly o: TrainerOptions) {
    const counts: [string, number][] = [["batch size", o.batchSize], ["gradient accumulation", o.gradientAccumulation ?? 1]];
    if (o.maxSteps !== undefined) counts.push(["max steps", o.maxSteps]);
    if (o.epochs !== undefined) counts.push(["epochs", o.epochs]);
    for (const [name, v] of counts) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    if ((o.maxSteps === undefined) === (o.epochs === undefined)) throw new Error("give maxSteps or epochs (one of them)");
    if (!(o.learningRate >= 0) || !Number.isFinite(o.learningRate)) throw new RangeError(`learning rate must be a finite number >= 0, got ${o.learningRate}`);
    if (o.tasks && o.objective) throw new Error("give either tasks or one objective with its data, not both");
    const tasks: TrainTask[] = o.tasks ?? (o.objective && o.train ? [{ name: o.objective.name, objective: o.objective as Objective<unknown, Batch, unknown>, train: o.train, ...(o.validation ? { validation: o.validation } : {}) }] : []);
    if (tasks.length === 0) throw new Error("no objective: give tasks, or an objective with its training examples");
    const names = new Set<string>();
    for (const t of tasks) {
      if (t.train.length === 0) throw new Error(`task ${t.name}: no training examples`);
      if (names.has(t.name)) throw new Error(`two tasks are named "${t.name}": task names must differ`);
      names.add(t.name);
    }
    if (o.gradientCheckpointing && o.privacy) throw new Error("gradient checkpointing: DP-SGD takes per-example gradients with torch.grad, which does not go through checkpointed layers; drop one of them");
    if (o.gradientCheckpointing) setGradientCheckpointing(o.model);
    if (o.groupByLength && o.privacy) throw new Error("grouping batches by length: DP-SGD draws its batches by Poisson sampling, not from an epoch order; drop one of them");
    if (o.best && !tasks.some((t) => t.validation?.length)) throw new Error(`early stopping on ${o.best.metric} needs validation examples`);
    this.tasks = tasks.map((t, i) => {
      const features = t.objective.prepare ? t.objective.prepare(t.train) : t.train;
      if (features.length === 0) throw new Error(`task ${t.name}: its ${t.train.length} training examples make no training features`);
      let lengths: Int32Array | undefined;
      if (o.groupByLength) {
        const length = t.objective.length?.bind(t.objective);
        if (!length) throw new Error(`task ${t.name}: grouping batches by length (--group-by-length) needs the lengths of its features, and the ${t.objective.name} objective gives none (pretraining packs sequences of one length); drop the flag`);
        lengths = Int32Array.from(features, (f) => length(f));
      }
      return { ...t, features, epoch: 0, position: 0, orderSeed: o.seed + i * 0x10001, ...(lengths ? { lengths } : {}) };
    });
    this.rates = mixingRates(this.tasks.map((t) => t.features.length), o.mixing ?? { kind: "proportional" });
    const worldSize = o.distributed?.group.worldSize ?? 1;
    const tail = o.distributed?.tail ?? "uneven";
    for (const t of this.tasks) if (epochLength(t.features.length, worldSize, tail) === 0) throw new Error(`task ${t.name}: ${t.features.length} training features for ${worldSize} ranks: --ddp-tail drop leaves no example; use pad or uneven`);
    this.stepsPerEpoch = Math.max(1, Math.ceil(Math.ceil(epochLength(this.tasks[0]!.features.length, worldSize, tail) / (o.batchSize * worldSize)) / (o.gradientAccumulation ?? 1)));
    this.maxSteps = o.maxSteps ?? o.epochs! * this.stepsPerEpoch;
    this.evalEvery = o.evalEvery === "epoch" ? this.stepsPerEpoch : (o.evalEvery ?? 0);
    this.saveEvery = o.saveEvery === "epoch" ? this.stepsPerEpoch : (o.saveEvery ?? 0);
    if (o.best && !this.evalEvery) throw new Error(`early stopping on ${o.best.metric} needs evaluations: set evalEvery`);
    // DP-SGD's per-sample clipping and noise would need to be applied across ranks: not built
    if (o.privacy && o.distributed) throw new Error("differentially private training (--dp-*) runs in one process; it does not go with a launcher's process group");
    if (o.privacy) this.dp = this.makePrivate(o.privacy);
    const adam = { lr: o.learningRate, weightDecay: o.weightDecay ?? 0.01, ...(o.biasCorrection === false ? { biasCorrection: false } : {}) };
    this.optimizer = o.optimizerGroups ? new AdamW(o.optimizerGroups, adam) : AdamW.forModule(o.model, adam);
    if (this.optimizer.paramGroups.length === 0) throw new Error(`${o.model.constructor.name}: no trainable parameters (every parameter is frozen)`);
    const schedule = o.schedule ?? o.scheduleFor?.(this.maxSteps);
    if (!schedule) throw new Error("give a schedule (or scheduleFor)");
    this.scheduler = new LRScheduler(this.optimizer, schedule);
    const trainable = o.model.parameters().filter((p) => p.requiresGrad);
    // adversarial training runs several backwards per micro-batch: its buckets go after them
    this.parallel = o.distributed ? new DataParallel(o.distributed.group, trainable, o.distributed.bucketMb, o.distributed.overlap ?? !o.adversarial) : null;
    if (this.isMain) mkdirSync(o.out, { recursive: true });
    this.runLog = new RunLog(join(o.out, "metrics.jsonl"), !this.isMain);
  }

  /** Rank 0 of a distributed run, or a run of one process: the one that writes. */
  get isMain(): boolean {
    return (this.parallel?.rank ?? 0) === 0;
  }

  /** Checks that DP-SGD applies to this run and plans it (the noise multiplier for a target ε). */
  private makePrivate(request: DpRequest): DpSgd {
    const o = this.o;
    const task = this.tasks[0]!;
    if (this.tasks.length > 1) throw new Error("DP-SGD trains one task at a time; this run mixes several");
    if (o.adversarial) throw new Error("DP-SGD and adversarial training do not combine: choose one");
    if (o.precision === "bf16") throw new Error("DP-SGD runs in fp32 (per-sample gradients and norms): use --precision fp32");
    // the privacy unit is the training example: one feature each, or an example could weigh more than its clipped share
    if (task.features.length !== task.train.length) throw new Error(`DP-SGD needs one training feature per example; task ${task.name} makes ${task.features.length} from ${task.train.length} examples (windows or spans)`);
    const expectedBatch = o.batchSize * (o.gradientAccumulation ?? 1);
    const settings = planDp(request, { examples: task.features.length, expectedBatch, steps: this.maxSteps });
    const dp = new DpSgd(o.model, settings, expectedBatch);
    o.log?.(
      `DP-SGD: each of ${task.features.length} examples in a step with probability q = ${settings.sampleRate.toPrecision(4)} (expected batch ${expectedBatch}), ` +
        `gradients clipped to ${settings.maxGradNorm}, noise multiplier σ = ${settings.noiseMultiplier.toPrecision(5)}; ε = ${dp.epsilonAfter(this.maxSteps).toFixed(3)} at δ = ${settings.delta} after ${this.maxSteps} steps`,
    );
    return dp;
  }

  /** The DP settings of a private run. */
  get privacySettings(): DpSettings | null {
    return this.dp?.settings ?? null;
  }

  /** One DP-SGD step: Poisson-sampled examples in micro-batches of batchSize, clipped per example, noised once. */
  private privateStep(dp: DpSgd): { loss: number; gradNorm: number; tokens: number; taskLosses: Record<string, number> } {
    const task = this.tasks[0]!;
    const model = this.o.model;
    model.train();
    const n = task.features.length;
    const indices = dp.sample(n, this.o.seed, this.step);
    let lossSum = 0;
    let tokens = 0;
    for (let s = 0; s < indices.length; s += this.o.batchSize) {
      const chunk = indices.slice(s, s + this.o.batchSize);
      const batch = task.objective.batch(task.features, chunk, task.epoch);
      try {
        tokens += inputTokens(batch);
        const value = dp.accumulate(chunk.length, () => task.objective.loss(model, batch).loss);
        if (!Number.isFinite(value)) throw new NonFiniteLossError(`the loss became ${value} at step ${this.step + 1}; training stopped, nothing was saved for this step. Try a lower --learning-rate.`);
        lossSum += value * chunk.length;
      } finally {
        torch.dispose(batch);
      }
    }
    const r = dp.finish();
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.scheduler.step();
    this.step += 1;
    // no epochs in Poisson sampling: the expected number of passes so far
    task.epoch = Math.floor((this.step * dp.expectedBatch) / n);
    const loss = indices.length ? lossSum / indices.length : 0;
    return { loss, gradNorm: r.meanNorm, tokens, taskLosses: {} };
  }

  /** The first task's epoch (the run's, with one task). */
  get epoch(): number {
    return this.tasks[0]!.epoch;
  }

  private get precision(): "fp32" | "bf16" {
    return this.o.precision ?? "fp32";
  }

  /**
   * The next micro-batch's example indices in a task, advancing its data position. With
   * several ranks, this rank's slice of the global batch (every rank draws the same one).
   */
  private nextIndices(task: TaskState): number[] {
    if (!this.parallel) return this.nextGlobalIndices(task, this.o.batchSize);
    return rankShare(this.nextGlobalIndices(task, this.o.batchSize * this.parallel.worldSize), this.parallel.rank, this.parallel.worldSize, this.o.distributed?.tail ?? "uneven");
  }

  private nextGlobalIndices(task: TaskState, size: number): number[] {
    const n = task.features.length;
    // with ranks, the order is fitted to them (padded or cut at its tail: sampler.ts)
    if (task.order?.epoch !== task.epoch) {
      const shuffled = epochOrder(n, task.orderSeed, task.epoch);
      const order = task.lengths ? lengthGroupedOrder(shuffled, task.lengths, size) : shuffled;
      task.order = { epoch: task.epoch, indices: fitToRanks(order, this.parallel?.worldSize ?? 1, this.o.distributed?.tail ?? "uneven") };
    }
    const order = task.order.indices;
    const out: number[] = [];
    while (out.length < size) {
      if (task.position >= order.length) {
        task.epoch += 1;
        task.position = 0;
        return out.length ? out : this.nextGlobalIndices(task, size);
      }
      out.push(order[task.position++]!);
    }
    return out;
  }

  /** The loss of one micro-batch, its gradient (scaled by its share) accumulated in the parameters. */
  private backward(objective: Objective<unknown, Batch, unknown>, batch: Batch, share: number): number {
    const model = this.o.model;
    return torch.scope(() =>
      torch.autocast(
        () => {
          const adv = this.o.adversarial;
          if (adv) {
            const embed = wordEmbeddingModule(model) as unknown as { forward(ids: Tensor): Tensor };
            return adversarialBackward(() => embed.forward(batch.inputIds), (e) => objective.loss(model, { ...batch, inputsEmbeds: e }).loss, adv, share);
          }
          // only the loss leaves this scope: the logits and whatever else the objective made are
          // freed before the backward (the graph keeps what it needs), not alive through the
          // backward and its recomputation of checkpointed layers (bert-base, batch 78: 1.2 GB)
          const loss = torch.scope(() => objective.loss(model, batch).loss);
          if (this.o.gradientCheckpointing) requireCheckpointed(model, "--gradient-checkpointing");
          const v = loss.item();
          if (Number.isFinite(v)) loss.mul(share).backward();
          return v;
        },
        { enabled: this.precision === "bf16" },
      ),
    );
  }

  /** One optimizer step over gradientAccumulation micro-batches. */
  private trainStep(): { loss: number; gradNorm: number; tokens: number; taskLosses: Record<string, number> } {
    if (this.dp) return this.privateStep(this.dp);
    const accum = this.o.gradientAccumulation ?? 1;
    this.o.model.train();
    // Build every micro-batch first: the loss of each is weighted by its share of the targets,
    // so that the accumulated gradient equals that of one batch of all of them.
    const batches: { batch: Batch; task: TaskState }[] = [];
    for (let k = 0; k < accum; k++) {
      const task = this.tasks[pickTask(this.rates, this.o.seed, this.step, k)]!;
      const epoch = task.epoch;
      const idx = this.nextIndices(task);
      // a rank whose share of an epoch's tail is empty sits this micro-batch out
      if (idx.length) batches.push({ batch: task.objective.batch(task.features, idx, epoch), task });
    }
    const localTargets = batches.reduce((n, b) => n + b.batch.targets, 0);
    // every rank weighs its micro-batches by their share of all ranks' targets
    const totalTargets = this.parallel ? this.parallel.sum([localTargets])[0]! : localTargets;
    let lossSum = 0;
    let tokens = 0;
    let bad: number | null = null;
    const taskSums = new Map<string, [number, number]>(); // loss sum and micro-batches, per task
    try {
      for (const [k, { batch, task }] of batches.entries()) {
        tokens += inputTokens(batch);
        const share = batch.targets / Math.max(1, totalTargets);
        this.parallel?.beforeBackward(k === batches.length - 1);
        // a micro-batch without targets (no masked token among a rank's few short sequences)
        // weighs nothing; its mean loss would be 0/0
        if (batch.targets === 0) continue;
        const value = this.backward(task.objective, batch, share);
        if (!Number.isFinite(value)) {
          bad = value;
          if (!this.parallel) break; // with ranks, all of them learn of it below and stop together
          continue;
        }
        lossSum += value * share;
        const [sum, n] = taskSums.get(task.name) ?? [0, 0];
        taskSums.set(task.name, [sum + value, n + 1]);
      }
    } finally {
      for (const { batch } of batches) torch.dispose(batch);
    }
    if (this.parallel) {
      // the loss and tokens of the global batch, and whether any rank saw a non-finite loss or was interrupted
      const [loss, allTokens, nonFinite, stop] = this.parallel.reduceGradients([lossSum, tokens, bad === null ? 0 : 1, this.stopRequested ? 1 : 0]);
      lossSum = loss!;
      tokens = allTokens!;
      if (nonFinite! > 0 && bad === null) bad = NaN;
      if (stop! > 0) this.stopRequested = true;
    }
    if (bad !== null) {
      const last = lastCheckpoint(this.o.out);
      throw new NonFiniteLossError(
        `the loss became ${bad} at step ${this.step + 1}${this.parallel ? ` (on rank ${this.parallel.rank} or another)` : ""}; training stopped, nothing was saved for this step` +
          (last ? `; the last good checkpoint is ${last} (continue from it with --resume)` : "") +
          ". Try a lower --learning-rate, --precision fp32 or a smaller --clip-norm.",
      );
    }
    const gradNorm = this.o.clipNorm ? clipGradNorm(this.o.model.parameters(), this.o.clipNorm) : 0;
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.scheduler.step();
    this.step += 1;
    // each task's mean loss over its micro-batches of this step
    const taskLosses = Object.fromEntries([...taskSums].map(([name, [sum, n]]) => [name, sum / n]));
    return { loss: lossSum, gradNorm, tokens, taskLosses };
  }

  /** One task's evaluation: its own, or the loss over its examples. */
  private evaluateTask(task: TaskState, examples: readonly unknown[]): EvalResult {
    const ctx = { batchSize: this.o.batchSize, precision: this.precision, ...(this.o.evalBatches ? { maxBatches: this.o.evalBatches } : {}) };
    const model = this.o.model;
    model.eval();
    // with ranks, each evaluates a share of the batches and they combine to the one-process values
    if (this.parallel) return evaluateDivided(task.objective, model, examples, ctx, this.parallel.group);
    return task.objective.evaluate ? task.objective.evaluate(model, examples, ctx) : evaluateByLoss(task.objective, model, examples, ctx);
  }

  /**
   * Validation metrics, prefixed val_. With several tasks, each task's under val_<task>_...,
   * and the run's overall metrics from every task's sums, summarised by the first task's objective.
   */
  evaluate(): Record<string, number> {
    const out: Record<string, number> = {};
    const total: Record<string, number> = {};
    const withData = this.tasks.filter((t) => t.validation && t.validation.length > 0);
    if (withData.length === 0) return {};
    for (const task of withData) {
      const r = this.evaluateTask(task, task.validation!);
      if (this.tasks.length === 1) {
        for (const [k, v] of Object.entries(r.metrics)) out[`val_${k}`] = v;
        continue;
      }
      for (const [k, v] of Object.entries(r.metrics)) out[`val_${task.name}_${k}`] = v;
      for (const [k, v] of Object.entries(r.sums ?? {})) total[k] = (total[k] ?? 0) + v;
    }
    if (this.tasks.length > 1 && Object.keys(total).length) {
      const first = withData[0]!.objective;
      for (const [k, v] of Object.entries((first.summarise ?? summariseSums)(total))) out[`val_${k}`] = v;
    }
    return out;
  }

  /** Which way the best metric improves. */
  private bestMode(): "max" | "min" {
    const b = this.o.best!;
    if (b.mode) return b.mode;
    for (const t of this.tasks) {
      const d = t.objective.metricDirections?.[b.metric];
      if (d) return d;
    }
    return /(^|_)(loss|perplexity)$/.test(b.metric) ? "min" : "max";
  }

  /** Records an evaluation for early stopping; true when patience has run out. */
  private trackBest(metrics: Record<string, number>): boolean {
    const b = this.o.best;
    if (!b) return false;
    const value = metrics[`val_${b.metric}`];
    if (value === undefined) {
      const have = Object.keys(metrics).filter((k) => k.startsWith("val_")).map((k) => k.slice(4));
      throw new Error(`early stopping on "${b.metric}": the evaluation reports no such metric; it reports ${have.join(", ")}`);
    }
    const better = this.best === null || (this.bestMode() === "max" ? value > this.best.value : value < this.best.value);
    if (better) {
      this.best = { step: this.step, value, metric: b.metric };
      this.sinceBest = 0;
      if (b.restore ?? true) this.saveCheckpoint();
      return false;
    }
    this.sinceBest += 1;
    return (b.patience ?? 0) > 0 && this.sinceBest >= b.patience!;
  }

  /** Writes checkpoint-<step>/ atomically: weights, optimizer, schedule, random state, data position. */
  saveCheckpoint(): string {
    const dir = join(this.o.out, `checkpoint-${this.step}`);
    if (!this.isMain) return dir; // rank 0 writes; every rank reads it on resume
    const opt = this.optimizer.stateDict();
    const tensors = new Map<string, Tensor>();
    for (const [k, v] of tensorsToSave(this.o.model)) tensors.set(`model.${k}`, v);
    for (const [k, v] of opt.tensors) tensors.set(`optimizer.${k}`, v);
    const state: TrainerState = {
      step: this.step,
      epoch: this.tasks[0]!.epoch,
      position: this.tasks[0]!.position,
      tasks: Object.fromEntries(this.tasks.map((t) => [t.name, { epoch: t.epoch, position: t.position }])),
      scheduler: this.scheduler.stateDict(),
      rng: torch.getRngState().toString("base64"),
      optimizerMeta: opt.meta,
      best: this.best,
      sinceBest: this.sinceBest,
      learningRate: this.o.learningRate,
      settings: this.settings(),
    };
    try {
      saveCheckpoint(dir, { ...this.o.model.config, ...this.o.config }, tensors, {
        files: { "trainer_state.json": JSON.stringify(state) + "\n" },
        ...(this.o.copy ? { copy: this.o.copy } : {}),
        manifest: true,
      });
    } catch (e) {
      const last = lastCheckpoint(this.o.out);
      throw new Error(`checkpoint ${dir} not written: ${(e as Error).message}` + (last ? `; the last complete checkpoint, ${last}, is intact (continue from it with --resume)` : ""), { cause: e });
    }
    const protect = new Set(this.best && (this.o.best?.restore ?? true) ? [this.best.step] : []);
    rotateCheckpoints(this.o.out, this.o.keepLast ?? 2, protect);
    this.runLog.append({ event: "checkpoint", step: this.step, dir });
    return dir;
  }

  /** Restores everything from a checkpoint folder. */
  loadCheckpoint(dir: string): void {
    const ck = readCheckpoint(dir);
    const state = JSON.parse(readFileSync(join(ck.dir, "trainer_state.json"), "utf8")) as TrainerState;
    // the same tasks as this run, checked before anything is loaded (a checkpoint from before
    // tasks had names holds one position: the single task's)
    const saved = state.tasks ?? (this.tasks.length === 1 ? { [this.tasks[0]!.name]: { epoch: state.epoch, position: state.position } } : {});
    const have = Object.keys(saved).sort().join(", ");
    const want = this.tasks.map((t) => t.name).sort().join(", ");
    if (have !== want) throw new Error(`${dir}: the checkpoint's tasks (${have || "none named"}) are not this run's (${want}); resume with the same tasks and objectives`);
    this.loadModelWeights(dir);
    const optTensors = new Map<string, Tensor>();
    for (const name of ck.names()) if (name.startsWith("optimizer.")) optTensors.set(name.slice(10), ck.get(name));
    this.optimizer.loadStateDict({ meta: state.optimizerMeta, tensors: optTensors });
    torch.dispose([...optTensors.values()]);
    this.scheduler.loadStateDict(state.scheduler);
    torch.setRngState(Buffer.from(state.rng, "base64"));
    this.step = state.step;
    for (const t of this.tasks) {
      t.epoch = saved[t.name]!.epoch;
      t.position = saved[t.name]!.position;
    }
    // best.step names a checkpoint folder (checkpoint-<step>) at the end: an integer, nothing else
    if (state.best && !(Number.isSafeInteger(state.best.step) && state.best.step >= 0)) throw new Error(`${join(ck.dir, "trainer_state.json")}: best.step must be a non-negative integer, got ${JSON.stringify(state.best.step)}`);
    this.best = state.best ?? null;
    this.sinceBest = state.sinceBest ?? 0;
    this.checkPrivacySettings(dir, state.settings);
    this.compareSettings(dir, state.settings);
    // A new learning rate is applied: the schedule goes on from this step with the new peak.
    const before = state.learningRate ?? state.scheduler.baseLrs[0];
    if (before !== undefined && before !== this.o.learningRate) {
      // every group scaled alike: layer-wise rates keep their ratios
      this.scheduler.rebase(this.scheduler.baseLearningRates.map((lr) => (lr * this.o.learningRate) / before));
      this.o.log?.(`the learning rate is now ${this.o.learningRate} (the checkpoint's run had ${before}): the schedule continues from step ${this.step} with the new peak`);
      this.runLog.append({ event: "learning_rate_changed", step: this.step, from: before, to: this.o.learningRate });
    }
  }

  /**
   * What decides the run's trajectory besides the data: a resumed run that changes one of them
   * continues, but not as the uninterrupted run would, so each change is said and logged.
   * The schedule is compared by its multipliers at nine points of the run.
   */
  private settings(): Record<string, number | string | boolean | number[]> {
    const o = this.o;
    const at = Array.from({ length: 9 }, (_, i) => Math.round((i * this.maxSteps) / 8));
    const schedule = o.schedule ?? o.scheduleFor?.(this.maxSteps);
    return {
      batchSize: o.batchSize,
      gradientAccumulation: o.gradientAccumulation ?? 1,
      maxSteps: this.maxSteps,
      weightDecay: o.weightDecay ?? 0.01,
      clipNorm: o.clipNorm ?? 0,
      ...(o.biasCorrection === false ? { biasCorrection: false } : {}),
      // each group's rate as a share of the peak (a new --learning-rate on resume keeps them)
      ...(o.optimizerGroups ? { groupLearningRateShares: o.optimizerGroups.map((g) => Number(((g.lr ?? o.learningRate) / o.learningRate).toPrecision(6))) } : {}),
      precision: o.precision ?? "fp32",
      seed: o.seed,
      ...(o.groupByLength ? { groupByLength: true } : {}),
      schedule: schedule ? at.map((s) => Number(schedule(s).toPrecision(6))) : [],
      ...(this.dp ? { dpNoiseMultiplier: this.dp.settings.noiseMultiplier, dpMaxGradNorm: this.dp.settings.maxGradNorm, dpSampleRate: this.dp.settings.sampleRate, dpDelta: this.dp.settings.delta } : {}),
    };
  }

  /** A private run resumes only with its own DP settings: the accountant adds up steps of one (q, σ). */
  private checkPrivacySettings(dir: string, saved: TrainerState["settings"]): void {
    const keys = ["dpNoiseMultiplier", "dpMaxGradNorm", "dpSampleRate", "dpDelta"];
    const now = this.settings();
    const changed = keys.filter((k) => saved?.[k] !== now[k]);
    if (changed.length === 0) return;
    const show = (s: TrainerState["settings"]): string => keys.map((k) => `${k} ${s?.[k] ?? "none"}`).join(", ");
    throw new Error(
      `${dir}: the checkpoint's privacy settings (${show(saved)}) are not this run's (${show(now)}); a DP-SGD run resumes with the same ones ` +
        "(with a target ε the noise multiplier follows from the steps: keep --epochs/--max-steps, or give --dp-noise-multiplier as before with the target)",
    );
  }

  private compareSettings(dir: string, saved: TrainerState["settings"]): void {
    if (!saved) return;
    const now = this.settings();
    for (const [key, value] of Object.entries(now)) {
      const before = saved[key];
      if (before === undefined || JSON.stringify(before) === JSON.stringify(value)) continue;
      const what = key === "schedule" ? "the learning-rate schedule (its warmup, kind or length)" : `${key} ${JSON.stringify(value)}`;
      this.o.log?.(`resuming ${dir} with ${what} where the checkpoint's run had ${key === "schedule" ? "another" : JSON.stringify(before)}: the run goes on, but not as the uninterrupted run would`);
      this.runLog.append({ event: "setting_changed", step: this.step, setting: key, from: before, to: value });
    }
  }

  /** Loads a checkpoint folder's model weights (its model.* tensors) into the model. */
  private loadModelWeights(dir: string): void {
    const ck = readCheckpoint(dir);
    const model = new Map<string, Tensor>();
    for (const name of ck.names()) if (name.startsWith("model.")) model.set(name.slice(6), ck.get(name));
    try {
      this.o.model.loadStateDict(model, { strict: false });
    } finally {
      torch.dispose([...model.values()]);
    }
  }

  /** Stops after the current step, with a checkpoint (what SIGINT and SIGTERM do in trainAsync). */
  requestStop(): void {
    this.stopRequested = true;
  }

  private logStart(): void {
    const o = this.o;
    this.runLog.append({
      event: "start",
      maxSteps: this.maxSteps,
      batchSize: o.batchSize,
      gradientAccumulation: o.gradientAccumulation ?? 1,
      learningRate: o.learningRate,
      precision: this.precision,
      objective: this.tasks.map((t) => t.objective.name).join(" | "),
      trainExamples: this.tasks.reduce((n, t) => n + t.train.length, 0),
      validationExamples: this.tasks.reduce((n, t) => n + (t.validation?.length ?? 0), 0),
      ...(o.best ? { best: o.best } : {}),
      ...(this.dp ? { privacy: { ...this.dp.settings, epsilonAtEnd: this.dp.epsilonAfter(this.maxSteps) } } : {}),
      ...(this.tasks.length > 1 ? { tasks: this.tasks.map((t, i) => ({ name: t.name, objective: t.objective.name, trainExamples: t.train.length, validationExamples: t.validation?.length ?? 0, rate: this.rates[i] })) } : {}),
    });
  }

  private resume(): void {
    removeStaleTemporaries(this.o.out);
    const warn = (line: string): void => {
      this.o.log?.(line);
      this.runLog.append({ event: "checkpoint_skipped", message: line });
    };
    const last = resumableCheckpoint(this.o.out, warn);
    if (!last) throw new Error(`--resume: no ${checkpointSteps(this.o.out).length ? "valid " : ""}checkpoint-N folder in ${this.o.out}`);
    this.loadCheckpoint(last);
    // the log reads as one run: what came after the checkpoint is dropped, the evaluations before it kept
    this.runLog.truncateAfter(this.step);
    this.evals = this.runLog
      .read()
      .filter((r) => r.event === "eval")
      .map(({ event: _e, time: _t, ...m }) => m as Record<string, number>);
    this.o.log?.(`resumed from ${last} at step ${this.step}`);
    this.runLog.append({ event: "resume", step: this.step, from: last });
  }

  /** Runs to maxSteps (or an early stop); with best.restore, the best weights are loaded at the end. */
  train(): TrainResult {
    const steps = this.steps();
    for (let r = steps.next(); ; r = steps.next()) if (r.done) return r.value;
  }

  /**
   * train(), yielding to the event loop after every step so that SIGINT and SIGTERM stop the
   * run after the current step with a checkpoint (the result says interrupted and which
   * signal); a second signal ends the process at once (see the file comment).
   */
  async trainAsync(): Promise<TrainResult> {
    const signals = ["SIGINT", "SIGTERM"] as const;
    const detach = (): void => {
      for (const s of signals) process.off(s, onSignal);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      detach(); // the next signal takes the default action: the process ends at once
      this.stopSignal = signal as "SIGINT" | "SIGTERM";
      this.requestStop();
      this.o.log?.(`${signal}: stopping after step ${this.step} with a checkpoint (send it again to stop at once, without one)`);
    };
    for (const s of signals) process.on(s, onSignal);
    try {
      const steps = this.steps();
      for (let r = steps.next(); ; r = steps.next()) {
        if (r.done) return r.value;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      detach();
    }
  }

  /** The loop, one yield after each step (where trainAsync lets signal listeners run). */
  private *steps(): Generator<void, TrainResult, void> {
    const o = this.o;
    if (o.resume) this.resume();
    else {
      if (this.isMain) removeStaleTemporaries(o.out);
      this.logStart();
    }
    if (this.parallel) {
      // the same model on every rank, then rank 0's weights everywhere (a resumed run's included)
      this.parallel.group.checkSame("model config", JSON.stringify(o.model.config));
      this.parallel.group.checkSame("training data", fingerprint(this.tasks.map((t) => [t.name, t.features, t.validation ?? []])));
      this.parallel.group.checkSame("training settings (batch size, steps, seed, schedule, ...)", JSON.stringify({ ...this.settings(), tail: o.distributed?.tail ?? "uneven" }));
      this.parallel.broadcastFromRank0([...o.model.namedBuffers()].map(([, b]) => b));
    }
    let lastLoss = NaN;
    let stoppedEarly = false;
    const startStep = this.step;
    while (this.step < this.maxSteps && !stoppedEarly) {
      const target = this.dp?.settings.targetEpsilon;
      if (target !== undefined && this.dp!.epsilonAfter(this.step + 1) > target * (1 + 1e-9)) {
        // a resumed run with more steps than planned: the budget is spent
        o.log?.(`stopped at step ${this.step}: one more step would take ε past the target ${target} (δ = ${this.dp!.settings.delta})`);
        this.runLog.append({ event: "privacy_budget_spent", step: this.step, epsilon: this.dp!.epsilonAfter(this.step), target });
        break;
      }
      const t0 = process.hrtime.bigint();
      const r = this.trainStep();
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      lastLoss = r.loss;
      const lr = this.scheduler.lastLr[0]!;
      const epsilon = this.dp?.epsilonAfter(this.step);
      const hidden = this.parallel ? commHidden(this.parallel) : undefined;
      const info: StepInfo = { step: this.step, maxSteps: this.maxSteps, startStep, epoch: this.epoch, loss: r.loss, lr, tokensPerSec: r.tokens / secs, gradNorm: r.gradNorm, ...(epsilon !== undefined ? { epsilon } : {}), ...(hidden !== undefined ? { commHidden: hidden } : {}) };
      this.runLog.append({ event: "step", step: this.step, epoch: this.epoch, loss: r.loss, lr, grad_norm: r.gradNorm, tokens_per_sec: Math.round(info.tokensPerSec), rss_mb: Math.round(process.memoryUsage.rss() / 2 ** 20), ...(epsilon !== undefined ? { epsilon } : {}), ...(hidden !== undefined ? { comm_hidden: Number(hidden.toFixed(4)) } : {}), ...(this.tasks.length > 1 ? { task_losses: r.taskLosses } : {}) });
      o.onStep?.(info);
      const last = this.step === this.maxSteps;
      if (this.evalEvery && (this.step % this.evalEvery === 0 || last)) {
        const m = { step: this.step, ...this.evaluate() };
        this.evals.push(m);
        this.runLog.append({ event: "eval", ...m });
        o.onEval?.(m);
        stoppedEarly = this.trackBest(m);
        if (stoppedEarly) {
          o.log?.(`early stop at step ${this.step}: ${o.best!.metric} has not improved for ${this.sinceBest} evaluations (best ${this.best!.value.toFixed(4)} at step ${this.best!.step})`);
          this.runLog.append({ event: "early_stop", step: this.step, best_step: this.best!.step, best_value: this.best!.value });
        }
      }
      if (this.saveEvery && this.step % this.saveEvery === 0 && !checkpointSteps(o.out).includes(this.step)) this.saveCheckpoint();
      yield; // a signal that came during the step is seen here, before the next one starts
      // a stop after the last step changes nothing: the run is complete
      if (this.stopRequested && this.step < this.maxSteps && !stoppedEarly) {
        if (!checkpointSteps(o.out).includes(this.step)) this.saveCheckpoint();
        o.log?.(`interrupted${this.stopSignal ? ` by ${this.stopSignal}` : ""}: checkpoint saved at step ${this.step}; continue with --resume`);
        this.runLog.append({ event: "interrupted", step: this.step, ...(this.stopSignal ? { signal: this.stopSignal } : {}) });
        return { steps: this.step, lastLoss, interrupted: true, ...(this.stopSignal ? { signal: this.stopSignal } : {}), stoppedEarly: false, evals: this.evals, best: this.best };
      }
    }
    if (this.best && (o.best?.restore ?? true) && this.best.step !== this.step) {
      this.loadModelWeights(join(o.out, `checkpoint-${this.best.step}`));
      o.log?.(`restored the best weights: step ${this.best.step}, ${this.best.metric} ${this.best.value.toFixed(4)}`);
      this.runLog.append({ event: "restore_best", step: this.step, best_step: this.best.step, best_value: this.best.value });
    }
    const result: TrainResult = { steps: this.step, lastLoss, interrupted: false, stoppedEarly, evals: this.evals, best: this.best, ...(this.dp ? { privacy: { ...this.dp.settings, epsilon: this.dp.epsilonAfter(this.step), steps: this.step } } : {}) };
    if (this.isMain) writeTextAtomic(join(o.out, "train_summary.json"), JSON.stringify(result, null, 2) + "\n");
    return result;
  }
}

// The Trainer: model-agnostic. It asks an objective for batches and losses and does the rest:
// gradient accumulation (the accumulated loss equals the full batch's), clipping, the
// schedule, bfloat16 autocast, periodic evaluation, a JSONL log, atomic checkpoints that keep
// the last K, exact resume (model, optimizer, schedule, random state, data position), a stop
// with a clear message on a NaN loss, and a checkpoint on Ctrl-C. Several tasks (objective +
// data) can be mixed, one task per micro-batch, drawn with T5's mixing rates.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { AdamW, LRScheduler, clipGradNorm } from "../optim/index.js";
import type { Schedule } from "../optim/index.js";
import { readCheckpoint, saveCheckpoint, writeTextAtomic } from "../io/index.js";
import { tensorsToSave } from "../nn/index.js";
import type { PretrainedModel } from "../models/index.js";
import type { Example } from "../data/pretraining.js";
import { epochOrder } from "../data/random.js";
import type { Batch, Objective } from "../objectives/pretraining.js";
import { adversarialBackward, wordEmbeddings } from "../nn/adversarial.js";
import type { AdversarialOptions } from "../nn/adversarial.js";
import { mixingRates, pickTask } from "./mixing.js";
import type { Mixing } from "./mixing.js";

/** One task of a mixture: an objective and its data. */
export interface TrainTask {
  name: string;
  objective: Objective;
  train: Example[];
  validation?: Example[];
}

export interface TrainerOptions {
  model: PretrainedModel;
  /** One objective and its data... */
  objective?: Objective;
  train?: Example[];
  validation?: Example[];
  /** ...or several, mixed per micro-batch with `mixing` (default: examples-proportional). */
  tasks?: TrainTask[];
  mixing?: Mixing;
  batchSize: number;
  gradientAccumulation?: number;
  maxSteps: number;
  learningRate: number;
  weightDecay?: number;
  schedule: Schedule;
  clipNorm?: number;
  precision?: "fp32" | "bf16";
  seed: number;
  /** Output folder: checkpoints in checkpoint-N/, the log in metrics.jsonl. */
  out: string;
  saveEvery?: number;
  keepLast?: number;
  evalEvery?: number;
  /** Validation batches per evaluation (all if unset). */
  evalBatches?: number;
  /** Continue from the last checkpoint in `out`. */
  resume?: boolean;
  /** Extra files for every checkpoint folder (the tokenizer's). */
  copy?: Record<string, string>;
  /** Adversarial training on the word embeddings (FGM or FreeLB). */
  adversarial?: AdversarialOptions;
  onStep?: (info: StepInfo) => void;
  onEval?: (metrics: Record<string, number>) => void;
  log?: (line: string) => void;
}

export interface StepInfo {
  step: number;
  maxSteps: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  gradNorm: number;
}

interface TrainerState {
  step: number;
  /** The first task's epoch and position (the only ones of a single-task run). */
  epoch: number;
  /** Position within the epoch's order, in examples. */
  position: number;
  /** Every task's epoch and position, by name. */
  tasks?: Record<string, { epoch: number; position: number }>;
  scheduler: { stepCount: number; baseLrs: number[] };
  rng: string;
  optimizerMeta: { groups: Record<string, number | boolean>[]; steps: Record<string, number> };
}

export class NonFiniteLossError extends Error {}

/** The last checkpoint folder in out (checkpoint-N with the largest N), if any. */
export function lastCheckpoint(out: string): string | null {
  if (!existsSync(out)) return null;
  const steps = readdirSync(out)
    .map((d) => /^checkpoint-(\d+)$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  return steps.length ? join(out, `checkpoint-${steps[steps.length - 1]}`) : null;
}

interface TaskState extends TrainTask {
  epoch: number;
  position: number;
  /** The seed of the task's example order (task 0 keeps the single-task order). */
  orderSeed: number;
  /** The order of the current epoch, made once per epoch. */
  order?: { epoch: number; indices: Int32Array };
}

export class Trainer {
  readonly optimizer: AdamW;
  readonly scheduler: LRScheduler;
  step = 0;
  readonly tasks: TaskState[];
  /** Each task's sampling rate. */
  readonly rates: number[];
  private stopRequested = false;
  private readonly logPath: string;

  constructor(readonly o: TrainerOptions) {
    if (o.batchSize < 1 || !Number.isInteger(o.batchSize)) throw new RangeError(`batch size must be a positive integer, got ${o.batchSize}`);
    if (o.tasks && o.objective) throw new Error("give either tasks or one objective with its data, not both");
    const tasks = o.tasks ?? (o.objective && o.train ? [{ name: o.objective.name, objective: o.objective, train: o.train, ...(o.validation ? { validation: o.validation } : {}) }] : []);
    if (tasks.length === 0) throw new Error("no objective: give tasks, or an objective with its training examples");
    const names = new Set<string>();
    for (const t of tasks) {
      if (t.train.length === 0) throw new Error(`task ${t.name}: no training examples`);
      if (names.has(t.name)) throw new Error(`two tasks are named "${t.name}": task names must differ`);
      names.add(t.name);
    }
    this.tasks = tasks.map((t, i) => ({ ...t, epoch: 0, position: 0, orderSeed: o.seed + i * 0x10001 }));
    this.rates = mixingRates(tasks.map((t) => t.train.length), o.mixing ?? { kind: "proportional" });
    this.optimizer = AdamW.forModule(o.model, { lr: o.learningRate, weightDecay: o.weightDecay ?? 0.01 });
    this.scheduler = new LRScheduler(this.optimizer, o.schedule);
    mkdirSync(o.out, { recursive: true });
    this.logPath = join(o.out, "metrics.jsonl");
  }

  private logJson(record: Record<string, unknown>): void {
    appendFileSync(this.logPath, JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n");
  }

  /** The first task's epoch (the run's, with one task). */
  get epoch(): number {
    return this.tasks[0]!.epoch;
  }

  /** The next micro-batch's example indices in a task, advancing its data position. */
  private nextIndices(task: TaskState): number[] {
    const n = task.train.length;
    if (task.order?.epoch !== task.epoch) task.order = { epoch: task.epoch, indices: epochOrder(n, task.orderSeed, task.epoch) };
    const order = task.order.indices;
    const out: number[] = [];
    while (out.length < this.o.batchSize) {
      if (task.position >= n) {
        task.epoch += 1;
        task.position = 0;
        return out.length ? out : this.nextIndices(task);
      }
      out.push(order[task.position++]!);
    }
    return out;
  }

  /** One optimizer step over gradientAccumulation micro-batches. */
  private trainStep(): { loss: number; targets: number; gradNorm: number; tokens: number; taskLosses: Record<string, number> } {
    const accum = this.o.gradientAccumulation ?? 1;
    const model = this.o.model;
    model.train();
    // Build every micro-batch first: the loss of each is weighted by its share of the targets,
    // so that the accumulated gradient equals that of one batch of all of them.
    const batches: { batch: Batch; task: TaskState }[] = [];
    for (let k = 0; k < accum; k++) {
      const task = this.tasks[pickTask(this.rates, this.o.seed, this.step, k)]!;
      const epoch = task.epoch;
      const idx = this.nextIndices(task);
      batches.push({ batch: task.objective.batch(task.train, idx, epoch), task });
    }
    const totalTargets = batches.reduce((n, b) => n + b.batch.targets, 0);
    let lossSum = 0;
    let tokens = 0;
    const taskSums = new Map<string, [number, number]>(); // loss sum and micro-batches, per task
    try {
      for (const { batch, task } of batches) {
        const objective = task.objective;
        tokens += batch.inputIds.numel;
        const share = batch.targets / Math.max(1, totalTargets);
        const value = torch.scope(() =>
          torch.autocast(
            () => {
              const adv = this.o.adversarial;
              if (adv) {
                const embed = wordEmbeddings(model);
                return adversarialBackward(() => embed(batch.inputIds), (e) => objective.loss(model, { ...batch, inputsEmbeds: e }).loss, adv, share);
              }
              const { loss } = objective.loss(model, batch);
              const v = loss.item();
              if (Number.isFinite(v)) loss.mul(share).backward();
              return v;
            },
            { enabled: this.o.precision === "bf16" },
          ),
        );
        if (!Number.isFinite(value)) {
          throw new NonFiniteLossError(
            `the loss became ${value} at step ${this.step + 1}; training stopped, nothing was saved for this step` +
              (lastCheckpoint(this.o.out) ? `; the last good checkpoint is ${lastCheckpoint(this.o.out)}` : "") +
              ". Try a lower --learning-rate, --precision fp32 or a smaller --clip-norm.",
          );
        }
        lossSum += value * share;
        const [sum, n] = taskSums.get(task.name) ?? [0, 0];
        taskSums.set(task.name, [sum + value, n + 1]);
      }
    } finally {
      for (const { batch } of batches) torch.dispose(batch);
    }
    const gradNorm = this.o.clipNorm ? clipGradNorm(model.parameters(), this.o.clipNorm) : 0;
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.scheduler.step();
    this.step += 1;
    // each task's mean loss over its micro-batches of this step
    const taskLosses = Object.fromEntries([...taskSums].map(([name, [sum, n]]) => [name, sum / n]));
    return { loss: lossSum, targets: totalTargets, gradNorm, tokens, taskLosses };
  }

  /**
   * Mean loss and metrics over the validation set (or evalBatches of it). With several tasks,
   * each task's under val_<task>_..., and val_loss / val_perplexity over all of them.
   */
  evaluate(): Record<string, number> {
    const model = this.o.model;
    model.eval();
    const out: Record<string, number> = {};
    const all: Record<string, number> = {};
    let lossSum = 0;
    let targets = 0;
    let batches = 0;
    for (const task of this.tasks) {
      const val = task.validation;
      if (!val || val.length === 0) continue;
      const r = this.evaluateTask(task, val);
      lossSum += r.lossSum;
      targets += r.targets;
      batches += r.batches;
      for (const [k, v] of Object.entries(r.sums)) all[k] = (all[k] ?? 0) + v;
      if (this.tasks.length > 1) for (const [k, v] of Object.entries(summarise(r.lossSum, r.targets, r.sums, r.batches))) out[k.replace(/^val_/, `val_${task.name}_`)] = v;
    }
    if (batches === 0) return {};
    return { ...summarise(lossSum, targets, all, batches), ...out };
  }

  private evaluateTask(task: TaskState, val: Example[]): { lossSum: number; targets: number; sums: Record<string, number>; batches: number } {
    const model = this.o.model;
    let lossSum = 0;
    let targets = 0;
    let batches = 0;
    const sums: Record<string, number> = {};
    const bs = this.o.batchSize;
    const maxBatches = this.o.evalBatches ?? Infinity;
    torch.noGrad(() => {
      for (let s = 0, nb = 0; s < val.length && nb < maxBatches; s += bs, nb++) {
        const idx = Array.from({ length: Math.min(bs, val.length - s) }, (_, i) => s + i);
        torch.scope(() => {
          // validation masks are fixed (epoch -1: no perturbation, the same positions every time)
          const batch = task.objective.batch(val, idx, -1);
          const r = torch.autocast(() => task.objective.loss(model, batch), { enabled: this.o.precision === "bf16" });
          lossSum += r.loss.item() * batch.targets;
          targets += batch.targets;
          for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
          batches++;
        });
      }
    });
    return { lossSum, targets, sums, batches };
  }

  /** Writes checkpoint-<step>/ atomically: weights, optimizer, schedule, random state, data position. */
  saveCheckpoint(): string {
    const dir = join(this.o.out, `checkpoint-${this.step}`);
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
    };
    saveCheckpoint(dir, { ...this.o.model.config }, tensors, {
      files: { "trainer_state.json": JSON.stringify(state) + "\n" },
      ...(this.o.copy ? { copy: this.o.copy } : {}),
    });
    // keep the last K checkpoints
    const keep = this.o.keepLast ?? 2;
    const all = readdirSync(this.o.out)
      .map((d) => /^checkpoint-(\d+)$/.exec(d))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    for (const s of all.slice(keep)) rmSync(join(this.o.out, `checkpoint-${s}`), { recursive: true, force: true });
    this.logJson({ event: "checkpoint", step: this.step, dir });
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
    const model = new Map<string, Tensor>();
    const optTensors = new Map<string, Tensor>();
    for (const name of ck.names()) {
      if (name.startsWith("model.")) model.set(name.slice(6), ck.get(name));
      else if (name.startsWith("optimizer.")) optTensors.set(name.slice(10), ck.get(name));
    }
    this.o.model.loadStateDict(model, { strict: false });
    this.optimizer.loadStateDict({ meta: state.optimizerMeta, tensors: optTensors });
    torch.dispose([...model.values(), ...optTensors.values()]);
    this.scheduler.loadStateDict(state.scheduler);
    torch.setRngState(Buffer.from(state.rng, "base64"));
    this.step = state.step;
    for (const t of this.tasks) {
      t.epoch = saved[t.name]!.epoch;
      t.position = saved[t.name]!.position;
    }
  }

  /** Stops after the current step, with a checkpoint (Ctrl-C). */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** Runs to maxSteps; returns the last validation metrics. */
  train(): { steps: number; lastLoss: number; interrupted: boolean; evals: Record<string, number>[] } {
    const o = this.o;
    if (o.resume) {
      const last = lastCheckpoint(o.out);
      if (!last) throw new Error(`--resume: no checkpoint-N folder in ${o.out}`);
      this.loadCheckpoint(last);
      o.log?.(`resumed from ${last} at step ${this.step}`);
      this.logJson({ event: "resume", step: this.step, from: last });
    } else {
      this.logJson({
        event: "start",
        maxSteps: o.maxSteps,
        batchSize: o.batchSize,
        gradientAccumulation: o.gradientAccumulation ?? 1,
        precision: o.precision ?? "fp32",
        objective: this.tasks.map((t) => t.objective.name).join(" | "),
        trainExamples: this.tasks.reduce((n, t) => n + t.train.length, 0),
        validationExamples: this.tasks.reduce((n, t) => n + (t.validation?.length ?? 0), 0),
        ...(this.tasks.length > 1 ? { tasks: this.tasks.map((t, i) => ({ name: t.name, objective: t.objective.name, trainExamples: t.train.length, validationExamples: t.validation?.length ?? 0, rate: this.rates[i] })) } : {}),
      });
    }
    const onSigint = (): void => this.requestStop();
    process.on("SIGINT", onSigint);
    const evals: Record<string, number>[] = [];
    let lastLoss = NaN;
    try {
      while (this.step < o.maxSteps) {
        const t0 = process.hrtime.bigint();
        const r = this.trainStep();
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        lastLoss = r.loss;
        const lr = this.scheduler.lastLr[0]!;
        const info: StepInfo = { step: this.step, maxSteps: o.maxSteps, loss: r.loss, lr, tokensPerSec: r.tokens / secs, gradNorm: r.gradNorm };
        this.logJson({ event: "step", step: this.step, epoch: this.epoch, loss: r.loss, lr, grad_norm: r.gradNorm, tokens_per_sec: Math.round(info.tokensPerSec), ...(this.tasks.length > 1 ? { task_losses: r.taskLosses } : {}) });
        o.onStep?.(info);
        const last = this.step === o.maxSteps;
        if (o.evalEvery && (this.step % o.evalEvery === 0 || last)) {
          const m = { step: this.step, ...this.evaluate() };
          evals.push(m);
          this.logJson({ event: "eval", ...m });
          o.onEval?.(m);
        }
        if ((o.saveEvery && this.step % o.saveEvery === 0) || this.stopRequested) this.saveCheckpoint();
        if (this.stopRequested) {
          o.log?.(`interrupted: checkpoint saved at step ${this.step}; continue with --resume`);
          return { steps: this.step, lastLoss, interrupted: true, evals };
        }
      }
    } finally {
      process.off("SIGINT", onSigint);
    }
    writeTextAtomic(join(o.out, "train_summary.json"), JSON.stringify({ steps: this.step, lastLoss, evals }, null, 2) + "\n");
    return { steps: this.step, lastLoss, interrupted: false, evals };
  }
}

/** Loss, perplexity and accuracies from summed validation metrics. */
function summarise(lossSum: number, targets: number, sums: Record<string, number>, batches: number): Record<string, number> {
  const loss = lossSum / Math.max(1, targets);
  // a language-model perplexity: of the masked-LM loss alone where the objective reports it
  // (the total may add SOP, auxiliary tasks, or ELECTRA's 50 x discriminator loss)
  const lmLoss = sums.lm_loss_sum !== undefined && sums.mlm_total ? sums.lm_loss_sum / sums.mlm_total : loss;
  const out: Record<string, number> = { val_loss: loss, val_perplexity: Math.exp(lmLoss) };
  if (sums.discriminator_loss !== undefined && batches > 0) out.val_discriminator_loss = sums.discriminator_loss / batches;
  for (const key of Object.keys(sums)) {
    const m = /^(.*)_correct$/.exec(key);
    if (m && sums[`${m[1]}_total`]) out[`val_${m[1]}_accuracy`] = sums[key]! / sums[`${m[1]}_total`]!;
  }
  return out;
}

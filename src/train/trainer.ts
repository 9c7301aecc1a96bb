// The Trainer: model-agnostic. It asks an objective for batches and losses and does the rest:
// gradient accumulation (the accumulated loss equals the full batch's), clipping, the
// schedule, bfloat16 autocast, periodic evaluation, a JSONL log, atomic checkpoints that keep
// the last K, exact resume (model, optimizer, schedule, random state, data position), a stop
// with a clear message on a NaN loss, and a checkpoint on Ctrl-C.
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

export interface TrainerOptions {
  model: PretrainedModel;
  objective: Objective;
  train: Example[];
  validation?: Example[];
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
  epoch: number;
  /** Position within the epoch's order, in examples. */
  position: number;
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

export class Trainer {
  readonly optimizer: AdamW;
  readonly scheduler: LRScheduler;
  step = 0;
  epoch = 0;
  position = 0;
  private stopRequested = false;
  private readonly logPath: string;

  constructor(readonly o: TrainerOptions) {
    if (o.batchSize < 1 || !Number.isInteger(o.batchSize)) throw new RangeError(`batch size must be a positive integer, got ${o.batchSize}`);
    if (o.train.length === 0) throw new Error("no training examples");
    this.optimizer = AdamW.forModule(o.model, { lr: o.learningRate, weightDecay: o.weightDecay ?? 0.01 });
    this.scheduler = new LRScheduler(this.optimizer, o.schedule);
    mkdirSync(o.out, { recursive: true });
    this.logPath = join(o.out, "metrics.jsonl");
  }

  private logJson(record: Record<string, unknown>): void {
    appendFileSync(this.logPath, JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n");
  }

  /** The next micro-batch's example indices, advancing the data position. */
  private nextIndices(): number[] {
    const n = this.o.train.length;
    const order = epochOrder(n, this.o.seed, this.epoch);
    const out: number[] = [];
    while (out.length < this.o.batchSize) {
      if (this.position >= n) {
        this.epoch += 1;
        this.position = 0;
        return out.length ? out : this.nextIndices();
      }
      out.push(order[this.position++]!);
    }
    return out;
  }

  /** One optimizer step over gradientAccumulation micro-batches. */
  private trainStep(): { loss: number; targets: number; gradNorm: number; tokens: number } {
    const accum = this.o.gradientAccumulation ?? 1;
    const model = this.o.model;
    model.train();
    // Build every micro-batch first: the loss of each is weighted by its share of the targets,
    // so that the accumulated gradient equals that of one batch of all of them.
    const batches: { batch: Batch; epoch: number }[] = [];
    for (let k = 0; k < accum; k++) {
      const epoch = this.epoch;
      const idx = this.nextIndices();
      batches.push({ batch: this.o.objective.batch(this.o.train, idx, epoch), epoch });
    }
    const totalTargets = batches.reduce((n, b) => n + b.batch.targets, 0);
    let lossSum = 0;
    let tokens = 0;
    try {
      for (const { batch } of batches) {
        tokens += batch.inputIds.numel;
        const share = batch.targets / Math.max(1, totalTargets);
        const value = torch.scope(() =>
          torch.autocast(
            () => {
              const adv = this.o.adversarial;
              if (adv) {
                const embed = wordEmbeddings(model);
                return adversarialBackward(() => embed(batch.inputIds), (e) => this.o.objective.loss(model, { ...batch, inputsEmbeds: e }).loss, adv, share);
              }
              const { loss } = this.o.objective.loss(model, batch);
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
      }
    } finally {
      for (const { batch } of batches) torch.dispose(batch);
    }
    const gradNorm = this.o.clipNorm ? clipGradNorm(model.parameters(), this.o.clipNorm) : 0;
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.scheduler.step();
    this.step += 1;
    return { loss: lossSum, targets: totalTargets, gradNorm, tokens };
  }

  /** Mean loss and summed metrics over the validation set (or evalBatches of it). */
  evaluate(): Record<string, number> {
    const val = this.o.validation;
    if (!val || val.length === 0) return {};
    const model = this.o.model;
    model.eval();
    let lossSum = 0;
    let targets = 0;
    let batchCount = 0;
    const sums: Record<string, number> = {};
    const bs = this.o.batchSize;
    const maxBatches = this.o.evalBatches ?? Infinity;
    torch.noGrad(() => {
      for (let s = 0, nb = 0; s < val.length && nb < maxBatches; s += bs, nb++) {
        const idx = Array.from({ length: Math.min(bs, val.length - s) }, (_, i) => s + i);
        torch.scope(() => {
          // validation masks are fixed (epoch -1: no perturbation, the same positions every time)
          const batch = this.o.objective.batch(val, idx, -1);
          const r = torch.autocast(() => this.o.objective.loss(model, batch), { enabled: this.o.precision === "bf16" });
          lossSum += r.loss.item() * batch.targets;
          targets += batch.targets;
          for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
          batchCount++;
        });
      }
    });
    const loss = lossSum / Math.max(1, targets);
    // a language-model perplexity: of the masked-LM loss alone where the objective reports it
    // (the total may add SOP, auxiliary tasks, or ELECTRA's 50 x discriminator loss)
    const lmLoss = sums.lm_loss_sum !== undefined && sums.mlm_total ? sums.lm_loss_sum / sums.mlm_total : loss;
    const out: Record<string, number> = { val_loss: loss, val_perplexity: Math.exp(lmLoss) };
    if (sums.discriminator_loss !== undefined) out.val_discriminator_loss = sums.discriminator_loss / Math.max(1, batchCount);
    for (const key of Object.keys(sums)) {
      const m = /^(.*)_correct$/.exec(key);
      if (m && sums[`${m[1]}_total`]) out[`val_${m[1]}_accuracy`] = sums[key]! / sums[`${m[1]}_total`]!;
    }
    return out;
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
      epoch: this.epoch,
      position: this.position,
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
    this.epoch = state.epoch;
    this.position = state.position;
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
      this.logJson({ event: "start", maxSteps: o.maxSteps, batchSize: o.batchSize, gradientAccumulation: o.gradientAccumulation ?? 1, precision: o.precision ?? "fp32", objective: o.objective.name, trainExamples: o.train.length, validationExamples: o.validation?.length ?? 0 });
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
        this.logJson({ event: "step", step: this.step, epoch: this.epoch, loss: r.loss, lr, grad_norm: r.gradNorm, tokens_per_sec: Math.round(info.tokensPerSec) });
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

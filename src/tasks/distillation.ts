// Knowledge distillation of a classifier (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge
// in a Neural Network"): an objective that wraps the classification objective of the student and
// adds the teacher's soft targets to its loss,
//
//   loss = alpha · T² · KL(p_teacher^T || p_student^T) + (1 − alpha) · CE(student, hard label)
//
// where p^T = softmax(logits / T). The T² keeps the soft term's gradients the same size as T
// changes (they shrink as 1/T² otherwise, the paper's section 2). Several teachers are an
// ensemble: their probabilities at T are averaged. The teachers' logits are computed once per
// training example before training (src/train/distill.ts caches them) and ride in the features.
//
// Optional hidden-state matching (TinyBERT, Jiao et al. 2020; DistilBERT's idea on every layer):
// student layer m is pulled towards teacher layer g(m) = round(m · N / M) by a masked MSE, through
// a learned linear projection where the widths differ. That needs the same tokens on both sides,
// so the teacher runs on the student's batch, on the fly, under no-grad.
//
// Evaluation and prediction are the wrapped objective's: the student is scored as a classifier.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear, Module } from "../nn/index.js";
import type { EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import type { LabelledExample } from "../data/index.js";
import type { ClassBatch, EncodedText } from "./classification.js";
import { poolWindowLogits } from "./windows.js";
import type { TaskObjective } from "./registry.js";

/** The library's defaults of the distillation options (src/train/distill.ts declares the flags with them). */
export const DISTILL_DEFAULTS = { temperature: 2, alpha: 0.5, hiddenLoss: 0 } as const;

/**
 * The ensemble's soft targets: the mean over K teachers of softmax(logits / T).
 * @param teacherLogits (K, B, C) the teachers' logits
 * @returns (B, C) probabilities
 */
export function softTargets(teacherLogits: Tensor, temperature: number): Tensor {
  return teacherLogits.float().div(temperature).softmax(-1).mean(0);
}

/**
 * Hinton et al.'s loss: alpha · T² · KL(teacher^T || student^T) + (1 − alpha) · CE(student, label).
 * The KL is summed over classes and averaged over the batch (PyTorch's reduction "batchmean").
 *
 * @param student (B, C) the student's logits
 * @param teacherLogits (K, B, C) the teachers' logits (K = 1 for one teacher)
 * @param labels (B) int64 class indices
 * @returns the loss and its two terms: soft (T² · KL, before alpha) and hard (CE, before 1 − alpha)
 *
 * @example
 * const { loss } = distillationLoss(studentLogits, teacherLogits.unsqueeze(0), labels, { temperature: 2, alpha: 0.5 });
 */
export function distillationLoss(student: Tensor, teacherLogits: Tensor, labels: Tensor, o: { temperature: number; alpha: number }): { loss: Tensor; soft: Tensor; hard: Tensor } {
  const T = o.temperature;
  const s = student.float();
  const p = softTargets(teacherLogits, T); // (B, C)
  const logQ = s.div(T).logSoftmax(-1); // (B, C)
  // Σ p (log p − log q); p log p is 0 where p is 0 (the clamp only keeps log finite there)
  const kl = p.mul(p.clamp(1e-30).log().sub(logQ)).sum(-1).mean();
  const soft = kl.mul(T * T);
  const hard = torch.crossEntropy(s, labels);
  return { loss: soft.mul(o.alpha).add(hard.mul(1 - o.alpha)), soft, hard };
}

/**
 * TinyBERT's uniform layer mapping: for each student hidden state m = 0..M (0 the embeddings,
 * m the output of layer m), the teacher's g(m) = round(m · N / M); the last layer maps to the last.
 *
 * @example layerMapping(2, 4) // [0, 2, 4]
 */
export function layerMapping(studentLayers: number, teacherLayers: number): number[] {
  if (!Number.isInteger(studentLayers) || studentLayers < 1 || !Number.isInteger(teacherLayers) || teacherLayers < 1) {
    throw new RangeError(`layer counts must be positive integers, got student ${studentLayers} and teacher ${teacherLayers}`);
  }
  return Array.from({ length: studentLayers + 1 }, (_, m) => Math.round((m * teacherLayers) / studentLayers));
}

/**
 * The learned maps from the student's hidden widths to the teacher's: a Linear for each student
 * hidden state whose width differs from its teacher layer's, none (identity) where they agree.
 * Attached to the student while it trains (so the optimizer sees them), removed before saving.
 */
export class HiddenProjections extends Module {
  constructor(studentWidths: readonly number[], teacherWidths: readonly number[]) {
    super();
    if (studentWidths.length !== teacherWidths.length) throw new Error(`HiddenProjections: ${studentWidths.length} student widths but ${teacherWidths.length} teacher widths`);
    studentWidths.forEach((w, m) => {
      if (w !== teacherWidths[m]) (this as unknown as Record<string, Module>)[`layer_${m}`] = new Linear(w, teacherWidths[m]!);
    });
  }

  /** The projection of student hidden state m, or null where the widths agree. */
  at(m: number): Linear | null {
    const p = (this as unknown as Record<string, unknown>)[`layer_${m}`];
    return p instanceof Linear ? p : null;
  }
}

/** The attribute the projections live under on the student while it trains. */
export const PROJECTIONS_ATTRIBUTE = "distill_projections";

/**
 * The hidden-state loss: the mean over student hidden states m of the MSE between
 * project_m(student[m]) and teacher[m] (already the mapped teacher layer), over real tokens only.
 *
 * @param student M+1 tensors (B, T, Hs_m)
 * @param teacher M+1 tensors (B, T, Ht_m): the teacher layers layerMapping picked, in order
 * @param mask (B, T) 1 for tokens, 0 for padding
 */
export function hiddenStateLoss(student: readonly Tensor[], teacher: readonly Tensor[], mask: Tensor, projections: HiddenProjections | null): Tensor {
  if (student.length !== teacher.length) throw new Error(`hiddenStateLoss: ${student.length} student hidden states but ${teacher.length} teacher ones`);
  const m = mask.float().unsqueeze(-1); // (B, T, 1)
  const tokens = m.sum();
  let total: Tensor | null = null;
  student.forEach((s, i) => {
    const projected = projections?.at(i)?.forward(s.float()) ?? s.float();
    const t = teacher[i]!.float();
    const width = t.shape[t.shape.length - 1]!;
    // squared error summed over real tokens and units, divided by their count
    const mse = projected.sub(t).square().mul(m).sum().div(tokens.mul(width));
    total = total === null ? mse : total.add(mse);
  });
  return total!.div(student.length);
}

/** A training feature: the student's encoding with every teacher's logits for the example, (K, C). */
export interface DistillFeature extends EncodedText {
  teacherLogits: number[][];
}

export interface DistillBatch extends ClassBatch {
  /** (K, B, C) the teachers' logits. */
  teacherLogits: Tensor;
  /** With hidden-state matching: the teacher's mapped hidden states, M+1 tensors (B, T, Ht). */
  teacherHidden?: Tensor[];
}

/** Hidden-state matching: one teacher run on the student's tokens. */
export interface HiddenMatching {
  /** The loss weight W (the term added is W · hiddenStateLoss). */
  weight: number;
  teacher: PretrainedModel;
  /** For each student hidden state, the teacher's (layerMapping). */
  mapping: number[];
  projections: HiddenProjections;
}

export interface DistillationSettings {
  /** The student's classification objective: its encoding, batches, evaluation and predictions. */
  inner: TaskObjective<LabelledExample>;
  /**
   * The teachers' logits of examples, per example (K, C): called once, on the training
   * examples, when the Trainer prepares its features.
   */
  teacherLogits: (examples: readonly LabelledExample[]) => number[][][];
  temperature: number;
  alpha: number;
  hidden?: HiddenMatching;
  /** How a document's windows' logits are pooled (--window-pool; attention pooling is refused for distillation). */
  pool?: "mean" | "max";
}

/** The distillation objective: the wrapped classification objective's features, plus the teachers'. */
export class DistillationObjective implements TaskObjective<LabelledExample, DistillFeature> {
  readonly name = "distillation";
  readonly metricDirections;
  /** A feature's length: the wrapped objective's (batches grouped by length). */
  readonly length?: (f: DistillFeature) => number;

  constructor(private readonly s: DistillationSettings) {
    if (!(s.temperature > 0)) throw new RangeError(`temperature must be > 0, got ${s.temperature}`);
    if (!(s.alpha >= 0 && s.alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${s.alpha}`);
    this.metricDirections = s.inner.metricDirections;
    const inner = s.inner.length?.bind(s.inner);
    if (inner) this.length = (f) => inner(f);
  }

  prepare(examples: readonly LabelledExample[]): DistillFeature[] {
    const rows = (this.s.inner.prepare?.(examples) ?? examples) as EncodedText[];
    if (rows.length !== examples.length) throw new Error(`distillation: ${examples.length} examples made ${rows.length} features; one each is expected`);
    const logits = this.s.teacherLogits(examples);
    return rows.map((r, i) => ({ ...r, teacherLogits: logits[i]! }));
  }

  batch(features: readonly DistillFeature[], indices: number[], epoch: number): DistillBatch {
    const b = this.s.inner.batch(features, indices, epoch) as ClassBatch;
    // (B, K, C) -> (K, B, C)
    const teacherLogits = torch.tensor(indices.map((i) => features[i]!.teacherLogits)).transpose(0, 1).contiguous();
    const h = this.s.hidden;
    if (!h) return { ...b, teacherLogits };
    const teacherHidden = torch.noGrad(() =>
      torch.scope(() => {
        const hs = h.teacher.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, outputHiddenStates: true }).hiddenStates!;
        return h.mapping.map((n) => hs[n]!.detach());
      }),
    );
    return { ...b, teacherLogits, teacherHidden };
  }

  loss(model: PretrainedModel, b: DistillBatch): { loss: Tensor; metrics: Record<string, number> } {
    const h = this.s.hidden;
    const out = model.forward({
      inputIds: b.inputIds,
      ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}),
      attentionMask: b.attentionMask,
      tokenTypeIds: b.tokenTypeIds,
      ...(h ? { outputHiddenStates: true } : {}),
    });
    // a document read as several windows: its windows' logits pooled, as classification does (one window: the logits themselves)
    const logits = poolWindowLogits(out.logits, b.windowCounts, this.s.pool ?? "mean");
    const { loss } = distillationLoss(logits, b.teacherLogits, b.labels, this.s);
    if (!h) return { loss, metrics: {} };
    const hidden = hiddenStateLoss(out.hiddenStates!, b.teacherHidden!, b.attentionMask, h.projections);
    return { loss: loss.add(hidden.mul(h.weight)), metrics: {} };
  }

  evaluate(model: PretrainedModel, examples: readonly LabelledExample[], ctx: EvalContext): EvalResult {
    return this.s.inner.evaluate!(model, examples, ctx);
  }

  predict(model: PretrainedModel, examples: readonly LabelledExample[], options?: { batchSize?: number; precision?: "fp32" | "bf16" }): unknown[] {
    return this.s.inner.predict(model, examples, options);
  }
}

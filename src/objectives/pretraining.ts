// Pretraining objectives as batch builders and losses: masked LM (with any masking
// strategy), masked LM + sentence order / next sentence prediction, and causal LM.
// The trainer knows none of this: it asks an objective for a batch and a loss.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { PretrainedModel } from "../models/index.js";
import type { Example } from "../data/pretraining.js";
import { maskExample } from "./masking.js";
import { Rng } from "../data/random.js";
import { perturbExample } from "./perturb.js";
import type { PerturbOptions } from "./perturb.js";
import { auxiliaryLoss } from "./auxiliary.js";
import type { WeightedAuxiliary } from "./auxiliary.js";
import type { MaskingOptions } from "./masking.js";

export interface Batch {
  inputIds: Tensor;
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  labels: Tensor;
  nextSentenceLabel?: Tensor;
  /** Word embeddings to use instead of looking up inputIds (adversarial training sets them). */
  inputsEmbeds?: Tensor;
  /** Auxiliary tasks' labels by task name, (B, T). */
  auxLabels?: Record<string, Tensor>;
  /** Positions that count in the loss (for loss normalisation across accumulated micro-batches). */
  targets: number;
}

export interface Objective {
  readonly name: string;
  /** Builds the batch of the given examples (indices into the dataset) for an epoch. */
  batch(examples: Example[], indices: number[], epoch: number): Batch;
  /** The loss (mean over this batch's targets) and metrics. */
  loss(model: PretrainedModel, batch: Batch): { loss: Tensor; metrics: Record<string, number> };
}

function pad2d(rows: ArrayLike<number>[], value: number): Tensor {
  const T = Math.max(...rows.map((r) => r.length));
  const flat = new BigInt64Array(rows.length * T).fill(BigInt(value));
  rows.forEach((r, b) => {
    for (let i = 0; i < r.length; i++) flat[b * T + i] = BigInt(r[i]!);
  });
  return torch.tensor(flat, { shape: [rows.length, T] });
}

function countTargets(labels: ArrayLike<number>[]): number {
  let n = 0;
  for (const l of labels) for (let i = 0; i < l.length; i++) if (l[i] !== -100) n++;
  return n;
}

/** Masked LM accuracy over the target positions. */
export function mlmAccuracy(logits: Tensor, labels: Tensor): { correct: number; total: number } {
  return torch.noGrad(() =>
    torch.scope(() => {
      const mask = labels.ne(-100);
      const total = mask.sum().item();
      const correct = logits.argmax(-1).eq(labels).logicalAnd(mask).sum().item();
      return { correct, total };
    }),
  );
}

/** Masked language modelling, optionally with a sentence-pair objective (SOP or NSP). */
export class MaskedLM implements Objective {
  readonly name: string;

  constructor(
    readonly masking: MaskingOptions,
    readonly padId: number,
    readonly pairObjective: "sop" | "nsp" | null = null,
    /** Context perturbation applied before masking (training batches only: epoch >= 0). */
    readonly perturb: PerturbOptions | null = null,
    /** Auxiliary tasks trained beside the masked LM, each with its weight. */
    readonly auxiliary: WeightedAuxiliary[] = [],
    /** The sentence-pair loss's weight beside the masked LM's (1: their plain sum, as BERT and ALBERT). */
    readonly pairWeight = 1,
  ) {
    if (!(pairWeight >= 0) || !Number.isFinite(pairWeight)) throw new RangeError(`the ${pairObjective ?? "pair"} loss weight must be a finite number >= 0, got ${pairWeight}`);
    this.name = pairObjective ? `mlm+${pairObjective}${pairWeight === 1 ? "" : `:${pairWeight}`}` : "mlm";
    // tasks that rewrite the input (sentence reordering) go first, so that the others label what the model sees
    this.auxiliary = [...auxiliary].sort((a, b) => Number(b.task.level === "sequence") - Number(a.task.level === "sequence"));
  }

  private example(examples: Example[], i: number, epoch: number): Example {
    return this.perturb && epoch >= 0 ? perturbExample(examples[i]!, i, epoch, this.perturb) : examples[i]!;
  }

  batch(examples: Example[], indices: number[], epoch: number): Batch {
    let source = indices.map((i) => this.example(examples, i, epoch));
    const auxLabels: Int32Array[][] = this.auxiliary.map(() => []);
    if (this.auxiliary.length) {
      source = source.map((ex, k) => {
        this.auxiliary.forEach(({ task }, t) => {
          const r = task.apply(ex, new Rng(this.masking.seed, epoch, indices[k]!, 0xa0c5, t));
          ex = r.example;
          auxLabels[t]!.push(r.labels);
        });
        return ex;
      });
    }
    const masked = indices.map((i, k) => maskExample(source[k]!, i, epoch, this.masking));
    const labels = masked.map((m) => m.labels);
    const batch: Batch = {
      inputIds: pad2d(masked.map((m) => m.inputIds), this.padId),
      attentionMask: pad2d(source.map((e) => new Int32Array(e.ids.length).fill(1)), 0),
      tokenTypeIds: pad2d(source.map((e) => e.typeIds), 0),
      labels: pad2d(labels, -100),
      targets: countTargets(labels),
    };
    if (this.pairObjective) batch.nextSentenceLabel = torch.tensor(indices.map((i) => examples[i]!.pairLabel ?? 0), { dtype: "int64" });
    if (this.auxiliary.length) {
      batch.auxLabels = Object.fromEntries(this.auxiliary.map(({ task }, t) => [task.name, pad2d(auxLabels[t]!, -100)]));
    }
    return batch;
  }

  loss(model: PretrainedModel, b: Batch): { loss: Tensor; metrics: Record<string, number> } {
    const out = model.forward({
      inputIds: b.inputIds,
      ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}),
      attentionMask: b.attentionMask,
      tokenTypeIds: b.tokenTypeIds,
      labels: b.labels,
      maskedOnly: true,
      // the last layer at the labelled positions only, unless auxiliary heads read every position
      lastLayerAtLabels: this.auxiliary.length === 0,
      // with weight 1 the model adds the pair loss itself (Hugging Face's sum); else it is weighted here
      ...(b.nextSentenceLabel && this.pairWeight === 1 ? { nextSentenceLabel: b.nextSentenceLabel } : {}),
    });
    if (!out.loss) throw new Error(`${this.name}: the model returned no loss (is it a masked-LM model?)`);
    if (b.nextSentenceLabel && this.pairWeight !== 1) {
      if (!out.seqRelationshipLogits) throw new Error(`${this.name}: the model has no sentence-pair head (use a ...ForPreTraining model)`);
      out.loss = out.loss.add(torch.crossEntropy(out.seqRelationshipLogits.float(), b.nextSentenceLabel.view([-1])).mul(this.pairWeight));
    }
    // Accuracy and the MLM-only loss are evaluation metrics: training steps skip the extra
    // passes over the (N, V) logits. Logits are at the masked positions only, in label order.
    if (model.training) return this.withAuxiliary(model, b, out.loss, out.lastHiddenState, {});
    const { acc, lmLoss } = torch.noGrad(() =>
      torch.scope(() => {
        const flat = b.labels.reshape([-1]);
        const targets = flat.indexSelect(0, flat.ne(-100).nonzero().view([-1]));
        return { acc: mlmAccuracy(out.logits, targets), lmLoss: targets.numel ? torch.crossEntropy(out.logits.float(), targets).item() : 0 };
      }),
    );
    // lm_loss_sum: the masked-LM loss alone (the total may add SOP/NSP or auxiliary losses), for perplexity
    const metrics: Record<string, number> = { mlm_correct: acc.correct, mlm_total: acc.total, lm_loss_sum: lmLoss * acc.total };
    if (b.nextSentenceLabel && out.seqRelationshipLogits) {
      const right = torch.noGrad(() => torch.scope(() => out.seqRelationshipLogits!.argmax(-1).eq(b.nextSentenceLabel!).sum().item()));
      metrics[`${this.pairObjective}_correct`] = right;
      metrics[`${this.pairObjective}_total`] = b.nextSentenceLabel.numel;
    }
    return this.withAuxiliary(model, b, out.loss, out.lastHiddenState, metrics);
  }

  /** Adds the weighted auxiliary losses (and their metrics) to the main loss. */
  private withAuxiliary(model: PretrainedModel, b: Batch, loss: Tensor, hidden: Tensor, metrics: Record<string, number>): { loss: Tensor; metrics: Record<string, number> } {
    if (!this.auxiliary.length || !b.auxLabels) return { loss, metrics };
    const aux = auxiliaryLoss(model, hidden, b.auxLabels, this.auxiliary, { metrics: !model.training });
    return { loss: loss.add(aux.loss), metrics: { ...metrics, ...aux.metrics } };
  }
}

/** Causal language modelling: the labels are the inputs (the model shifts them); padding is ignored. */
export class CausalLM implements Objective {
  readonly name = "clm";

  constructor(readonly padId: number) {}

  batch(examples: Example[], indices: number[], _epoch = 0): Batch {
    const rows = indices.map((i) => examples[i]!.ids);
    const labels = rows.map((r) => r);
    return {
      inputIds: pad2d(rows, this.padId),
      attentionMask: pad2d(rows.map((r) => new Int32Array(r.length).fill(1)), 0),
      tokenTypeIds: pad2d(rows.map((r) => new Int32Array(r.length)), 0),
      labels: pad2d(labels, -100),
      targets: rows.reduce((n, r) => n + Math.max(0, r.length - 1), 0),
    };
  }

  loss(model: PretrainedModel, b: Batch): { loss: Tensor; metrics: Record<string, number> } {
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, labels: b.labels });
    if (!out.loss) throw new Error("clm: the model returned no loss (is it a causal LM?)");
    return { loss: out.loss, metrics: {} };
  }
}

// Masked language modelling (BERT, RoBERTa) with any masking strategy, alone or with a
// sentence-pair objective: sentence order prediction (ALBERT) or next sentence prediction
// (BERT). The Trainer knows none of this: it asks the objective for a batch and a loss.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { summariseSums } from "../models/index.js";
import type { Batch, Objective, PretrainedModel } from "../models/index.js";
import type { Example } from "../data/pretraining.js";
import { countTargets, pad2d, paddingMask } from "../data/collate.js";
import { maskExample } from "./masking.js";
import { Rng } from "../data/random.js";
import { perturbExample } from "./perturb.js";
import type { PerturbOptions } from "./perturb.js";
import { auxiliaryLoss } from "./auxiliary.js";
import type { WeightedAuxiliary } from "./auxiliary.js";
import type { MaskingOptions } from "./masking.js";
import type { ObjectiveEntry } from "./registry.js";

/** A pretraining micro-batch: masked (or causal) inputs and their labels. */
export interface PretrainBatch extends Batch {
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  /** (B, T) targets, -100 where nothing is asked. */
  labels: Tensor;
  /** The sentence-pair label (SOP, NSP), (B). */
  nextSentenceLabel?: Tensor;
  /** Auxiliary tasks' labels by task name, (B, T) or (B, 1). */
  auxLabels?: Record<string, Tensor>;
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
export class MaskedLM implements Objective<Example, PretrainBatch> {
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

  private example(examples: readonly Example[], i: number, epoch: number): Example {
    return this.perturb && epoch >= 0 ? perturbExample(examples[i]!, i, epoch, this.perturb) : examples[i]!;
  }

  batch(examples: readonly Example[], indices: number[], epoch: number): PretrainBatch {
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
    const batch: PretrainBatch = {
      inputIds: pad2d(masked.map((m) => m.inputIds), this.padId),
      attentionMask: paddingMask(source.map((e) => e.ids)),
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

  loss(model: PretrainedModel, b: PretrainBatch): { loss: Tensor; metrics: Record<string, number> } {
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

  /** Loss, accuracies, and the perplexity of the masked LM alone (the loss may add SOP, NSP or auxiliary losses). */
  summarise(sums: Record<string, number>): Record<string, number> {
    const out = summariseSums(sums);
    out.perplexity = Math.exp(sums.mlm_total ? sums.lm_loss_sum! / sums.mlm_total : out.loss!);
    return out;
  }

  /** Adds the weighted auxiliary losses (and their metrics) to the main loss. */
  private withAuxiliary(model: PretrainedModel, b: PretrainBatch, loss: Tensor, hidden: Tensor, metrics: Record<string, number>): { loss: Tensor; metrics: Record<string, number> } {
    if (!this.auxiliary.length || !b.auxLabels) return { loss, metrics };
    const aux = auxiliaryLoss(model, hidden, b.auxLabels, this.auxiliary, { metrics: !model.training });
    return { loss: loss.add(aux.loss), metrics: { ...metrics, ...aux.metrics } };
  }
}

const masked = (name: string, summary: string, head: "masked-lm" | "pretraining", sequences: "packed" | "sop" | "nsp", pair: "sop" | "nsp" | null): ObjectiveEntry => ({
  name,
  summary,
  head,
  sequences,
  needsMask: true,
  ...(pair ? { weightedPart: pair } : {}),
  supports: { perturb: true, auxiliary: true, adversarial: true, mixing: true },
  create: (c) => new MaskedLM(c.masking, c.padId, pair, c.perturb, c.auxiliary, c.weight),
});

/** mlm, mlm+sop, mlm+nsp in the objective registry. */
export const objectives: ObjectiveEntry[] = [
  masked("mlm", "masked language modelling on packed sequences (BERT, RoBERTa)", "masked-lm", "packed", null),
  masked("mlm+sop", "masked LM and sentence order prediction on segment pairs (ALBERT); sop:W weights it", "pretraining", "sop", "sop"),
  masked("mlm+nsp", "masked LM and next sentence prediction on segment pairs (BERT); nsp:W weights it", "pretraining", "nsp", "nsp"),
];

// SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts"): few-shot text
// classification in two phases.
//   1. The encoder is fine-tuned contrastively, through the Trainer: from the K labelled examples,
//      R iterations of pairs (each example with a random one of its label, target 1, and of
//      another label, target 0; src/data/contrastive-pairs.ts), sentence embedding = the mean of
//      the last hidden states over real tokens, loss = CosineSimilarityLoss (src/nn/sentence.ts).
//   2. The encoder frozen, a logistic regression (src/eval/logistic.ts, scikit-learn's
//      LogisticRegression() defaults as SetFit's head) is fitted on the training examples'
//      embeddings (afterTraining). It lives on the model as a Linear (setfit_head), so it is saved
//      in model.safetensors and loaded with the folder; predict = its probabilities.
// Every validation fits the head on the training examples first, so that early stopping and the
// best checkpoint follow the classifier's accuracy and macro F1, as classification's do. Data,
// labels, metrics, reports and prediction output are classification's.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear } from "../nn/index.js";
import { cosineSimilarityLoss, meanPool } from "../nn/sentence.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import { pad2d, paddingMask } from "../data/index.js";
import type { LabelledExample } from "../data/index.js";
import { contrastivePairs } from "../data/contrastive-pairs.js";
import { fitLogistic } from "../eval/logistic.js";
import { defineOptions } from "../io/options.js";
import { classification, scoreClassification, toPrediction } from "./classification.js";
import type { ClassPrediction } from "./classification.js";

/** A text cut to --max-length (SetFit embeds the first window only). */
interface EncodedText {
  ids: number[];
  typeIds: number[];
  label: number;
}
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";

/** The task's head (meta.head) and the attribute the fitted Linear lives under on the model. */
export const SETFIT_HEAD = "setfit-logistic";
export const SETFIT_HEAD_ATTRIBUTE = "setfit_head";

/**
 * scikit-learn's LogisticRegression() defaults (SetFit's head): C = 1, 100 L-BFGS iterations. fitLogistic
 * is multinomial; with two classes scikit-learn fits one binary weight vector w, and the two-class
 * multinomial optimum is w0 = -w/2, w1 = w/2, whose penalty (|w0|^2 + |w1|^2) / 2C' equals |w|^2 / 2C
 * when C' = C / 2: the same probabilities.
 */
const HEAD_C = 1;
const HEAD_ITERATIONS = 100;

/** A training pair: both sides encoded, and its cosine target. */
export interface PairFeature {
  first: EncodedText;
  second: EncodedText;
  target: 0 | 1;
}

/** B pairs as one (2B, T) batch: rows 0..B-1 the first sides, B..2B-1 the second. */
export interface PairBatch extends Batch {
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  /** (B) float32 cosine targets. */
  similarity: Tensor;
}

type RunOptions = { batchSize?: number; precision?: "fp32" | "bf16" };

class SetFitObjective implements TaskObjective<LabelledExample, PairFeature> {
  readonly name = "setfit";
  readonly metricDirections = { accuracy: "max", macro_f1: "max", micro_f1: "max", weighted_f1: "max", loss: "min" } as const;
  private readonly labelIndex: Map<string, number>;
  private readonly padId: number;
  /** The examples prepare() made the pairs of: every validation fits the head on them first. */
  private headExamples: readonly LabelledExample[] | null = null;

  constructor(private readonly ctx: TaskContext) {
    this.labelIndex = new Map(ctx.labels.map((l, i) => [l, i]));
    this.padId = ctx.tokenizer.tokenToId(ctx.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
  }

  private encode(examples: readonly LabelledExample[]): EncodedText[] {
    return examples.map((e) => {
      const enc = this.ctx.tokenizer.encode(e.text, e.textPair ?? null, { maxLength: this.ctx.maxLength, truncation: "longest_first" });
      return { ids: enc.ids, typeIds: enc.typeIds, label: this.labelIndex.get(e.label) ?? -1 };
    });
  }

  /** The contrastive pairs of the training examples (--pair-iterations of them per example and side, seeded by --seed). */
  prepare(examples: readonly LabelledExample[]): PairFeature[] {
    const encoded = this.encode(examples);
    const unknown = encoded.findIndex((e) => e.label < 0);
    if (unknown >= 0) throw new Error(`${examples[unknown]!.source}: label "${examples[unknown]!.label}" is not one of ${this.ctx.labels.join(", ")}`);
    this.headExamples = examples;
    const iterations = (this.ctx.options.pairIterations as number | undefined) ?? 20;
    const seed = (this.ctx.options.seed as number | undefined) ?? 42;
    return contrastivePairs(encoded.map((e) => e.label), iterations, seed).map((p) => ({ first: encoded[p.first]!, second: encoded[p.second]!, target: p.target }));
  }

  batch(rows: readonly PairFeature[], indices: number[]): PairBatch {
    const picked = indices.map((i) => rows[i]!);
    const texts = [...picked.map((p) => p.first), ...picked.map((p) => p.second)];
    return {
      inputIds: pad2d(texts.map((r) => r.ids), this.padId),
      attentionMask: paddingMask(texts.map((r) => r.ids)),
      tokenTypeIds: pad2d(texts.map((r) => r.typeIds), 0),
      similarity: torch.tensor(Float32Array.from(picked, (p) => p.target)),
      targets: picked.length,
    };
  }

  /** (N, C) sentence embeddings: mean of the last hidden states over real tokens. */
  private embedBatch(model: PretrainedModel, b: Pick<PairBatch, "inputIds" | "inputsEmbeds" | "attentionMask" | "tokenTypeIds">): Tensor {
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds });
    const hidden = out.lastHiddenState;
    if (!hidden) throw new Error(`setfit: ${model.constructor.name} returns no lastHiddenState to pool`);
    return meanPool(hidden, b.attentionMask);
  }

  loss(model: PretrainedModel, b: PairBatch): { loss: Tensor; metrics: Record<string, number> } {
    const embeddings = this.embedBatch(model, b); // (2B, C)
    const B = b.targets;
    return { loss: cosineSimilarityLoss(embeddings.slice(0, 0, B), embeddings.slice(0, B, 2 * B), b.similarity), metrics: {} };
  }

  /** (N, C) float32 embeddings of raw examples, in eval mode without gradients; the caller owns the tensor. */
  embed(model: PretrainedModel, examples: readonly LabelledExample[], o: RunOptions = {}): Tensor {
    const rows = this.encode(examples);
    const bs = o.batchSize ?? 32;
    const parts: Float32Array[] = [];
    let width = 0;
    model.eval();
    torch.noGrad(() => {
      for (let s = 0; s < rows.length; s += bs) {
        torch.scope(() => {
          const picked = rows.slice(s, s + bs);
          const b = { inputIds: pad2d(picked.map((r) => r.ids), this.padId), attentionMask: paddingMask(picked.map((r) => r.ids)), tokenTypeIds: pad2d(picked.map((r) => r.typeIds), 0) };
          const e = torch.autocast(() => this.embedBatch(model, b), { enabled: o.precision === "bf16" }).float().contiguous();
          width = e.shape[1]!;
          parts.push(Float32Array.from(e.data() as Float32Array));
        });
      }
    });
    const flat = new Float32Array(rows.length * width);
    let at = 0;
    for (const p of parts) {
      flat.set(p, at);
      at += p.length;
    }
    return torch.tensor(flat, { shape: [rows.length, width] });
  }

  /** Phase 2: fits the logistic head on the examples' embeddings and writes it into the model's setfit_head. */
  fitHead(model: PretrainedModel, examples: readonly LabelledExample[], o: RunOptions = {}): void {
    const labels = examples.map((e) => {
      const i = this.labelIndex.get(e.label);
      if (i === undefined) throw new Error(`${e.source}: label "${e.label}" is not one of ${this.ctx.labels.join(", ")}`);
      return i;
    });
    const K = this.ctx.labels.length;
    torch.scope(() => {
      const x = this.embed(model, examples, o);
      const m = fitLogistic(x, labels, K, { C: K === 2 ? HEAD_C / 2 : HEAD_C, maxIterations: HEAD_ITERATIONS });
      const head = headOf(model);
      torch.noGrad(() => {
        head.weight.copy_(m.weight.t()); // (K, C) from (C, K)
        head.bias!.copy_(m.bias);
      });
    }); // the embeddings and the fitted tensors are freed here
  }

  /** (N, K) class probabilities of the head on the examples' embeddings. */
  private probabilities(model: PretrainedModel, examples: readonly LabelledExample[], o: RunOptions): number[][] {
    if (examples.length === 0) return [];
    return torch.scope(() => torch.noGrad(() => headOf(model).forward(this.embed(model, examples, o)).softmax(-1).toArray() as number[][]));
  }

  predict(model: PretrainedModel, examples: readonly LabelledExample[], o: RunOptions = {}): ClassPrediction[] {
    return this.probabilities(model, examples, o).map((p) => toPrediction(p, this.ctx.labels));
  }

  /** The head fitted on the training examples, then classification's metrics and the head's cross-entropy (loss) on the examples. */
  evaluate(model: PretrainedModel, given: readonly LabelledExample[], ctx: EvalContext): EvalResult {
    if (this.headExamples) this.fitHead(model, this.headExamples, ctx);
    const examples = ctx.maxBatches === undefined ? given : given.slice(0, ctx.maxBatches * ctx.batchSize);
    const probs = this.probabilities(model, examples, ctx);
    const predictions = probs.map((p) => toPrediction(p, this.ctx.labels));
    const known = examples.map((e, i) => [this.labelIndex.get(e.label), i] as const).filter(([k]) => k !== undefined);
    const nll = known.reduce((s, [k, i]) => s - Math.log(Math.max(probs[i]![k!]!, 1e-12)), 0);
    const { metrics } = scoreClassification(examples, predictions, this.ctx.labels);
    return { metrics: { loss: nll / Math.max(1, known.length), ...metrics }, predictions };
  }

  afterTraining(model: PretrainedModel, train: readonly LabelledExample[], o: RunOptions): void {
    this.fitHead(model, train, o);
  }
}

/** The model's fitted head (attachHead put it there). */
function headOf(model: PretrainedModel): Linear {
  const head = (model as unknown as Record<string, unknown>)[SETFIT_HEAD_ATTRIBUTE];
  if (!(head instanceof Linear)) throw new Error(`setfit: the model has no ${SETFIT_HEAD_ATTRIBUTE} (attachHead adds it)`);
  return head;
}

const OPTIONS = defineOptions([
  { flag: "pair-iterations", key: "pairIterations", type: "int", min: 1, default: 20, help: "setfit: R, the positive and the negative pairs each training example gets (2 N R pairs)" },
]);

export const setfit: FinetuneTask<LabelledExample> = {
  ...classification,
  name: "setfit",
  summary: "few-shot classification: a contrastively tuned sentence encoder and a logistic head (SetFit)",
  head: "base",
  ownHead: SETFIT_HEAD,
  options: [...classification.options, ...OPTIONS],
  objective: (ctx) => new SetFitObjective(ctx),
  attachHead(model, head, labels) {
    if (head !== SETFIT_HEAD) throw new Error(`setfit fine-tunes the encoder itself and fits its own head; --strategy ${head.replace(/^layer-pool:/, "features:")} does not apply (use full, freeze:N or lora)`);
    const hidden = (model.config.hidden_size ?? model.config.n_embd ?? model.config.d_model) as number;
    const linear = new Linear(hidden, labels.length);
    // fitted in closed form after training, never by the optimizer
    for (const p of linear.parameters()) p.requiresGrad = false;
    (model as unknown as Record<string, Linear>)[SETFIT_HEAD_ATTRIBUTE] = linear;
  },
};

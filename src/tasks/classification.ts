// Text classification (single texts or pairs): the model's sequence head on [CLS], or, with
// the features:N strategy, a linear head on the mean [CLS] vector of the last N layers.
// Metrics: accuracy, precision / recall / F1 per class and averaged, the confusion matrix, ROC
// AUC for two classes; the errors are listed most confident first.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear } from "../nn/index.js";
import { bodyPath } from "../models/index.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import { limitParts, pad2d, paddingMask, readLabelled, sotuParty, splitIndices, stratifiedSplit } from "../data/index.js";
import type { LabelledExample } from "../data/index.js";
import { classificationReport, formatReport } from "../eval/index.js";
import type { ClassificationReport } from "../eval/index.js";
import { defineOptions } from "../io/options.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { pickSplits } from "./registry.js";
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";

/** One encoded example: its ids (with special tokens), type ids and class index. */
export interface EncodedText {
  ids: number[];
  typeIds: number[];
  label: number;
}

export interface ClassBatch extends Batch {
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  /** (B) class indices. */
  labels: Tensor;
}

/** A prediction: the label, its probability, and every label's. */
export interface ClassPrediction {
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
}

/** The pooled head of features:N: the attribute it lives under on the model. */
export const LAYER_POOL_HEAD = "layer_pool_classifier";

/** "layer-pool:4" -> 4 (how many last layers' [CLS] vectors the head averages); null for the model's own head. */
function layerPoolSize(head: string | undefined): number | null {
  const m = /^layer-pool:(\d+)$/.exec(head ?? "");
  return m ? Number(m[1]) : null;
}

function encode(tok: Tokenizer, examples: readonly LabelledExample[], labelIndex: ReadonlyMap<string, number>, maxLength: number): EncodedText[] {
  return examples.map((e) => {
    // an unknown label encodes as -1: prediction ignores it, training data was checked before
    const enc = tok.encode(e.text, e.textPair ?? null, { maxLength, truncation: "longest_first" });
    return { ids: enc.ids, typeIds: enc.typeIds, label: labelIndex.get(e.label) ?? -1 };
  });
}

class ClassificationObjective implements TaskObjective<LabelledExample, EncodedText> {
  readonly name = "classification";
  readonly metricDirections = { accuracy: "max", macro_f1: "max", micro_f1: "max", weighted_f1: "max", loss: "min" } as const;
  private readonly labelIndex: Map<string, number>;
  private readonly padId: number;
  private readonly pool: number | null;

  constructor(private readonly ctx: TaskContext) {
    this.labelIndex = new Map(ctx.labels.map((l, i) => [l, i]));
    this.padId = ctx.tokenizer.tokenToId(ctx.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
    this.pool = layerPoolSize(ctx.head);
  }

  prepare(examples: readonly LabelledExample[]): EncodedText[] {
    return encode(this.ctx.tokenizer, examples, this.labelIndex, this.ctx.maxLength);
  }

  batch(rows: readonly EncodedText[], indices: number[]): ClassBatch {
    const picked = indices.map((i) => rows[i]!);
    return {
      inputIds: pad2d(picked.map((r) => r.ids), this.padId),
      attentionMask: paddingMask(picked.map((r) => r.ids)),
      tokenTypeIds: pad2d(picked.map((r) => r.typeIds), 0),
      labels: torch.tensor(picked.map((r) => r.label), { dtype: "int64" }),
      targets: picked.length,
    };
  }

  /** (B, classes) logits: the model's head, or the pooled head over the last N layers' [CLS]. */
  private logits(model: PretrainedModel, b: ClassBatch): Tensor {
    const inputs = { inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds };
    if (this.pool === null) return model.forward(inputs).logits;
    const hs = model.forward({ ...inputs, outputHiddenStates: true }).hiddenStates!;
    const cls = hs.slice(-this.pool).map((h) => h.select(1, 0)); // N x (B, C)
    const head = (model as unknown as Record<string, Linear>)[LAYER_POOL_HEAD]!;
    return head.forward(torch.stack(cls, 0).mean(0));
  }

  loss(model: PretrainedModel, b: ClassBatch): { loss: Tensor; metrics: Record<string, number> } {
    return { loss: torch.crossEntropy(this.logits(model, b).float(), b.labels), metrics: {} };
  }

  /** Probabilities (B, classes) and the mean loss of examples with a known label, in one pass. */
  private run(model: PretrainedModel, examples: readonly LabelledExample[], ctx: { batchSize?: number; precision?: "fp32" | "bf16" }): { probs: number[][]; lossSum: number; counted: number } {
    const rows = this.prepare(examples);
    const bs = ctx.batchSize ?? 32;
    const probs: number[][] = [];
    let lossSum = 0;
    let counted = 0;
    model.eval();
    torch.noGrad(() => {
      for (let s = 0; s < rows.length; s += bs) {
        torch.scope(() => {
          const idx = Array.from({ length: Math.min(bs, rows.length - s) }, (_, i) => s + i);
          const b = this.batch(rows, idx);
          const logits = torch.autocast(() => this.logits(model, b), { enabled: ctx.precision === "bf16" }).float();
          const logp = logits.logSoftmax(-1);
          probs.push(...(logp.exp().toArray() as number[][]));
          const known = idx.filter((i) => rows[i]!.label >= 0);
          if (known.length === idx.length && idx.length > 0) {
            lossSum += torch.nllLoss(logp, b.labels, null, "sum").item();
            counted += idx.length;
          }
        });
      }
    });
    return { probs, lossSum, counted };
  }

  predict(model: PretrainedModel, examples: readonly LabelledExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): ClassPrediction[] {
    return this.run(model, examples, o).probs.map((p) => toPrediction(p, this.ctx.labels));
  }

  evaluate(model: PretrainedModel, examples: readonly LabelledExample[], ctx: EvalContext): EvalResult {
    const { probs, lossSum, counted } = this.run(model, examples, ctx);
    const predictions = probs.map((p) => toPrediction(p, this.ctx.labels));
    const { metrics } = scoreClassification(examples, predictions, this.ctx.labels);
    return { metrics: { loss: lossSum / Math.max(1, counted), ...metrics }, predictions };
  }
}

/** A row of class probabilities as a prediction: the most probable label, its confidence, every label's probability. */
export function toPrediction(p: number[], labels: readonly string[]): ClassPrediction {
  let k = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[k]!) k = i;
  return { label: labels[k]!, confidence: p[k]!, probabilities: Object.fromEntries(labels.map((l, i) => [l, p[i]!])) };
}

/** The classification report of predictions against the examples' labels. */
export function scoreClassification(examples: readonly LabelledExample[], predictions: readonly ClassPrediction[], labels: readonly string[]): { metrics: Record<string, number>; report: ClassificationReport } {
  const index = new Map(labels.map((l, i) => [l, i]));
  const truth = examples.map((e) => {
    const i = index.get(e.label);
    if (i === undefined) throw new Error(`${e.source}: unknown label "${e.label}"; the model knows ${labels.join(", ")}`);
    return i;
  });
  const predicted = predictions.map((p) => index.get(p.label)!);
  const report = classificationReport(truth, predicted, [...labels], labels.length === 2 ? predictions.map((p) => p.probabilities[labels[1]!]!) : undefined);
  const metrics: Record<string, number> = { accuracy: report.accuracy, macro_f1: report.macro_f1, micro_f1: report.micro_f1, weighted_f1: report.weighted_f1 };
  if (report.roc_auc !== undefined && Number.isFinite(report.roc_auc)) metrics.roc_auc = report.roc_auc;
  return { metrics, report };
}

const OPTIONS = defineOptions([
  { flag: "text-column", key: "textColumn", type: "string", arg: "NAME", help: "CSV/JSONL: the text column (default text, sentence, sentence1, review, ...)" },
  { flag: "text-pair-column", key: "textPairColumn", type: "string", arg: "NAME", help: "CSV/JSONL: the second text of a pair (default sentence2, question2)" },
  { flag: "label-column", key: "labelColumn", type: "string", arg: "NAME", help: "CSV/JSONL: the label column (default label, labels, class, sentiment)" },
]);

export const classification: FinetuneTask<LabelledExample> = {
  name: "classification",
  summary: "a label per text or text pair (sentiment, spam, topic, GLUE)",
  head: "sequence-classification",
  options: OPTIONS,
  metric: "macro_f1",
  needsLabels: true,
  metrics: ["macro_f1", "accuracy", "micro_f1", "weighted_f1", "loss"],
  formats: ".tsv (text<TAB>label, or two texts and a label), .csv with a header, .jsonl, a folder of label sub-folders (IMDB), or spam-assassin; built in with its own split: sotu-party",
  read(path, o) {
    return readLabelled(path, {
      ...(typeof o.textColumn === "string" ? { textColumn: o.textColumn } : {}),
      ...(typeof o.textPairColumn === "string" ? { textPairColumn: o.textPairColumn } : {}),
      ...(typeof o.labelColumn === "string" ? { labelColumn: o.labelColumn } : {}),
      skipBadRows: Boolean(o.skipBadRows),
    });
  },
  builtin(name, o) {
    if (name !== "sotu-party") return null;
    // State of the Union passages labelled with the party, split by address (src/data/sotu-party.ts)
    const d = sotuParty();
    return o.limit === undefined ? { train: d.train, validation: d.validation, test: d.test } : limitParts(d, o.limit as number, (o.seed as number | undefined) ?? 42);
  },
  split(examples, fractions, seed) {
    // stratified when every class can give each part a member, else a plain seeded split
    const counts = new Map<string, number>();
    for (const e of examples) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
    if ([...counts.values()].every((n) => n >= 3)) return stratifiedSplit(examples, fractions, seed);
    const idx = splitIndices(examples.length, fractions, seed);
    return pickSplits(examples, idx);
  },
  labels(train) {
    const labels = [...new Set(train.map((e) => e.label))].sort();
    if (labels.length < 2) throw new Error(`the training data has ${labels.length} label(s) (${labels.join(", ")}); classification needs at least 2`);
    return labels;
  },
  check(examples, labels, where) {
    const known = new Set(labels);
    for (const e of examples) if (!known.has(e.label)) throw new Error(`${e.source}: unknown label "${e.label}" in the ${where}; the model knows ${labels.join(", ")}`);
  },
  objective: (ctx) => new ClassificationObjective(ctx),
  attachHead(model, head, labels) {
    const n = layerPoolSize(head);
    if (n === null) return;
    const hidden = (model.config.hidden_size ?? model.config.n_embd) as number;
    const layers = (model.config.num_hidden_layers ?? model.config.n_layer) as number;
    if (n > layers + 1) throw new Error(`features:${n}: the model has ${layers} layers (and the embeddings), fewer than ${n} to pool`);
    (model as unknown as Record<string, Linear>)[LAYER_POOL_HEAD] = new Linear(hidden, labels.length);
    // the architecture's own head (pooler and classifier) goes unused: it stays frozen
    for (const [name, p] of model.namedParameters()) if (!bodyPath(model, name).inBody && !name.startsWith(`${LAYER_POOL_HEAD}.`)) p.requiresGrad = false;
  },
  score: (examples, predictions, labels) => scoreClassification(examples, predictions as ClassPrediction[], labels),
  formatMetrics(metrics, report) {
    return report ? formatReport(report as ClassificationReport) : `accuracy ${metrics.accuracy!.toFixed(4)}, macro F1 ${metrics.macro_f1!.toFixed(4)}`;
  },
  analysis(examples, predictions) {
    const wrong = examples
      .map((e, i) => ({ e, p: predictions[i] as ClassPrediction }))
      .filter(({ e, p }) => p.label !== e.label)
      .sort((a, b) => b.p.confidence - a.p.confidence)
      .map(({ e, p }) => JSON.stringify({ source: e.source, text: e.text.slice(0, 500), true_label: e.label, predicted_label: p.label, confidence: p.confidence }));
    return { "errors.jsonl": wrong.join("\n") + (wrong.length ? "\n" : "") };
  },
  predictInput: (texts) => texts.map((text, i) => ({ text, label: "", source: `input:${i + 1}` })),
  formatPrediction(e, p, json) {
    const c = p as ClassPrediction;
    if (json) return JSON.stringify({ text: e.text, label: c.label, confidence: c.confidence, probabilities: c.probabilities });
    return `${c.label}\t${c.confidence.toFixed(4)}\t${e.text.slice(0, 100).replace(/\s+/g, " ")}`;
  },
};

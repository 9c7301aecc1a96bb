// Text classification (single texts or pairs): the model's sequence head on [CLS], or, with
// the features:N strategy, a linear head on the mean [CLS] vector of the last N layers. A text
// longer than --max-length is truncated, or read as windows whose outputs are pooled into one
// prediction (windows.ts); a batch is then documents, each with its windows.
// Metrics: accuracy, precision / recall / F1 per class and averaged, the confusion matrix, ROC
// AUC for two classes; the errors are listed most confident first.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear, rdropLoss, smoothedCrossEntropy } from "../nn/index.js";
import type { Module } from "../nn/index.js";
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
import { STRIDE_OPTION, WINDOW_ATTENTION_HEAD, WINDOW_OPTIONS, WindowAttention, defaultStride, poolWindowLogits, textWindows, windowSettings } from "./windows.js";
import type { TextWindow, WindowSettings } from "./windows.js";

/** One encoded example: its windows (ids with special tokens, type ids; one unless a long text is windowed) and class index. */
export interface EncodedText {
  windows: TextWindow[];
  label: number;
}

/** A batch of D documents and their W windows (the rows of inputIds, document by document). */
export interface ClassBatch extends Batch {
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  /** (D) class indices. */
  labels: Tensor;
  /** Per document, how many consecutive rows (windows) it owns. */
  windowCounts: number[];
}

/** A prediction: the label, its probability, and every label's. */
export interface ClassPrediction {
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
}

/** The pooled head of features:N: the attribute it lives under on the model. */
export const LAYER_POOL_HEAD = "layer_pool_classifier";

/** The head --window-pool attention attaches (its module lives under WINDOW_ATTENTION_HEAD). */
export const WINDOW_ATTENTION = "window-attention";

/** "layer-pool:4" -> 4 (how many last layers' [CLS] vectors the head averages); null for the model's own head. */
function layerPoolSize(head: string | undefined): number | null {
  const m = /^layer-pool:(\d+)$/.exec(head ?? "");
  return m ? Number(m[1]) : null;
}

function encode(tok: Tokenizer, examples: readonly LabelledExample[], labelIndex: ReadonlyMap<string, number>, s: WindowSettings): EncodedText[] {
  return examples.map((e) => {
    // an unknown label encodes as -1: prediction ignores it, training data was checked before
    const label = labelIndex.get(e.label) ?? -1;
    // pairs stay truncated (longest first): which of two texts to window is the task's own question
    if (s.longText === "windows" && e.textPair === undefined) return { windows: textWindows(tok.encode(e.text, null), s), label };
    const enc = tok.encode(e.text, e.textPair ?? null, { maxLength: s.maxLength, truncation: "longest_first" });
    return { windows: [{ ids: enc.ids, typeIds: enc.typeIds }], label };
  });
}

class ClassificationObjective implements TaskObjective<LabelledExample, EncodedText> {
  readonly name = "classification";
  readonly metricDirections = { accuracy: "max", macro_f1: "max", micro_f1: "max", weighted_f1: "max", loss: "min" } as const;
  private readonly labelIndex: Map<string, number>;
  private readonly padId: number;
  private readonly pool: number | null;
  private readonly windows: WindowSettings;

  constructor(private readonly ctx: TaskContext) {
    this.labelIndex = new Map(ctx.labels.map((l, i) => [l, i]));
    this.padId = ctx.tokenizer.tokenToId(ctx.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
    this.pool = layerPoolSize(ctx.head);
    this.windows = windowSettings(ctx.options, ctx.maxLength);
    if ((this.windows.pool === "attention") !== (ctx.head === WINDOW_ATTENTION)) throw new Error(`--window-pool ${this.windows.pool} needs the head ${WINDOW_ATTENTION} attached, and only it (head: ${ctx.head ?? "none"})`);
  }

  prepare(examples: readonly LabelledExample[]): EncodedText[] {
    return encode(this.ctx.tokenizer, examples, this.labelIndex, this.windows);
  }

  /** A document's tokens over its windows. */
  length(row: EncodedText): number {
    return row.windows.reduce((n, w) => n + w.ids.length, 0);
  }

  batch(rows: readonly EncodedText[], indices: number[]): ClassBatch {
    const picked = indices.map((i) => rows[i]!);
    const windows = picked.flatMap((r) => r.windows);
    return {
      inputIds: pad2d(windows.map((w) => w.ids), this.padId),
      attentionMask: paddingMask(windows.map((w) => w.ids)),
      tokenTypeIds: pad2d(windows.map((w) => w.typeIds), 0),
      labels: torch.tensor(picked.map((r) => r.label), { dtype: "int64" }),
      windowCounts: picked.map((r) => r.windows.length),
      targets: picked.length,
    };
  }

  /** (D, classes) logits of the batch's documents: their windows' logits pooled, or attention over their windows. */
  private logits(model: PretrainedModel, b: ClassBatch): Tensor {
    const inputs = { inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds };
    if (this.windows.pool === "attention") {
      const cls = model.forward(inputs).lastHiddenState.select(1, 0).float(); // (W, C): each window's last-layer [CLS]
      const head = (model as unknown as Record<string, WindowAttention>)[WINDOW_ATTENTION_HEAD]!;
      return head.forward(cls, b.windowCounts).logits;
    }
    return poolWindowLogits(this.windowLogits(model, inputs).float(), b.windowCounts, this.windows.pool);
  }

  /** (W, classes) logits per window: the model's head, or the pooled head over the last N layers' [CLS]. */
  private windowLogits(model: PretrainedModel, inputs: { inputIds: Tensor; inputsEmbeds?: Tensor; attentionMask: Tensor; tokenTypeIds: Tensor }): Tensor {
    if (this.pool === null) return model.forward(inputs).logits;
    const hs = model.forward({ ...inputs, outputHiddenStates: true }).hiddenStates!;
    const cls = hs.slice(-this.pool).map((h) => h.select(1, 0)); // N x (W, C)
    const head = (model as unknown as Record<string, Linear>)[LAYER_POOL_HEAD]!;
    return head.forward(torch.stack(cls, 0).mean(0));
  }

  loss(model: PretrainedModel, b: ClassBatch): { loss: Tensor; metrics: Record<string, number> } {
    const smoothing = (this.ctx.options.labelSmoothing as number | undefined) ?? 0;
    const alpha = (this.ctx.options.rdrop as number | undefined) ?? 0;
    // R-Drop: a second pass draws other dropout masks (src/nn/rdrop.ts)
    if (alpha > 0 && model.training) return { loss: rdropLoss(this.logits(model, b).float(), this.logits(model, b).float(), b.labels, alpha, smoothing), metrics: {} };
    return { loss: smoothedCrossEntropy(this.logits(model, b).float(), b.labels, smoothing), metrics: {} };
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
    const sums = { loss_sum: lossSum, loss_count: counted };
    return { metrics: this.score(examples, predictions, sums), sums, predictions };
  }

  /** evaluate()'s metrics from the predictions and the loss sums (data-parallel evaluation puts parts together with it). */
  score(examples: readonly LabelledExample[], predictions: readonly unknown[], sums: Record<string, number>): Record<string, number> {
    const { metrics } = scoreClassification(examples, predictions as ClassPrediction[], this.ctx.labels);
    return { loss: (sums.loss_sum ?? 0) / Math.max(1, sums.loss_count ?? 0), ...metrics };
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
  ...WINDOW_OPTIONS,
  STRIDE_OPTION,
  { flag: "text-column", key: "textColumn", type: "string", arg: "NAME", help: "CSV/JSONL: the text column (default text, sentence, sentence1, review, ...)" },
  { flag: "text-pair-column", key: "textPairColumn", type: "string", arg: "NAME", help: "CSV/JSONL: the second text of a pair (default sentence2, question2)" },
  { flag: "label-column", key: "labelColumn", type: "string", arg: "NAME", help: "CSV/JSONL: the label column (default label, labels, class, sentiment)" },
  { flag: "label-smoothing", key: "labelSmoothing", type: "number", min: 0, max: 1, arg: "E", help: "train on smoothed targets (1 - E)·onehot + E/classes, as torch's CrossEntropyLoss(label_smoothing=E) (default 0)" },
  { flag: "rdrop", key: "rdrop", type: "number", min: 0, arg: "ALPHA", help: "R-Drop: two dropout passes per batch, their mean cross-entropy + ALPHA × their symmetric KL (batch mean; default 0: off)" },
]);

export const classification: FinetuneTask<LabelledExample> = {
  name: "classification",
  summary: "a label per text or text pair (sentiment, spam, topic, GLUE)",
  head: "sequence-classification",
  options: OPTIONS,
  metric: "macro_f1",
  needsLabels: true,
  labelsTexts: true,
  serves: "classify",
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
  settle(_train, o) {
    // windows are documents of several rows: DP-SGD's per-example gradients would be per window
    const dp = o.dpEpsilon !== undefined || o.dpNoiseMultiplier !== undefined;
    if (dp && o.longText === "windows") throw new Error("--long-text windows: DP-SGD clips each row's gradient and a windowed text is several rows; use --long-text truncate (DP-SGD's default)");
    return { stride: (o.stride as number | undefined) ?? defaultStride(o.maxLength as number) };
  },
  optionHead: (o) => (o.windowPool === "attention" ? WINDOW_ATTENTION : undefined),
  objective: (ctx) => new ClassificationObjective(ctx),
  attachHead(model, head, labels) {
    const n = layerPoolSize(head);
    if (n === null && head !== WINDOW_ATTENTION) return;
    const hidden = (model.config.hidden_size ?? model.config.n_embd) as number;
    const layers = (model.config.num_hidden_layers ?? model.config.n_layer) as number;
    if (n !== null && n > layers + 1) throw new Error(`features:${n}: the model has ${layers} layers (and the embeddings), fewer than ${n} to pool`);
    const name = n === null ? WINDOW_ATTENTION_HEAD : LAYER_POOL_HEAD;
    (model as unknown as Record<string, Module>)[name] = n === null ? new WindowAttention(hidden, labels.length) : new Linear(hidden, labels.length);
    // the architecture's own head (pooler and classifier) goes unused: it stays frozen
    for (const [param, p] of model.namedParameters()) if (!bodyPath(model, param).inBody && !param.startsWith(`${name}.`)) p.requiresGrad = false;
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

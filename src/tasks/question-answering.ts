// Extractive question answering (SQuAD v1.1 and v2.0): the answer is a span of the context.
// Contexts longer than the model takes are cut into windows overlapping by --doc-stride; the
// model scores each token as the answer's start and end; post-processing takes the n best
// start/end pairs of every window inside the context, at most --max-answer-length tokens, maps
// them back to the context's characters, and for v2.0 weighs them against the null answer.
// Metrics exactly as the official SQuAD script: exact match and F1 after its normalisation.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import { debianQa, pad2d, paddingMask, parseSquad, qaFeatures, readSquad, splitIndices } from "../data/index.js";
import type { QAExample, QAFeature } from "../data/index.js";
import { postprocessQa, predictionsById, squadMetrics } from "../eval/index.js";
import type { QaPrediction, SquadMetrics } from "../eval/index.js";
import { defineOptions } from "../io/options.js";
import { existsSync, readFileSync } from "node:fs";
import { pickSplits } from "./registry.js";
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";

export interface QABatch extends Batch {
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  startPositions: Tensor;
  endPositions: Tensor;
}

class QuestionAnsweringObjective implements TaskObjective<QAExample, QAFeature> {
  readonly name = "question-answering";
  readonly metricDirections = { f1: "max", exact_match: "max", loss: "min" } as const;
  private readonly padId: number;

  constructor(private readonly ctx: TaskContext) {
    this.padId = ctx.tokenizer.tokenToId(ctx.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
  }

  private get docStride(): number {
    return (this.ctx.options.docStride as number | undefined) ?? Math.min(128, Math.floor(this.ctx.maxLength / 3));
  }

  private features(examples: readonly QAExample[], forTraining: boolean): QAFeature[] {
    return qaFeatures(this.ctx.tokenizer, examples, { maxLength: this.ctx.maxLength, docStride: this.docStride, forTraining });
  }

  prepare(examples: readonly QAExample[]): QAFeature[] {
    return this.features(examples, true);
  }

  length(f: QAFeature): number {
    return f.ids.length;
  }

  batch(features: readonly QAFeature[], indices: number[]): QABatch {
    const f = indices.map((i) => features[i]!);
    return {
      inputIds: pad2d(f.map((x) => x.ids), this.padId),
      attentionMask: paddingMask(f.map((x) => x.ids)),
      tokenTypeIds: pad2d(f.map((x) => x.typeIds), 0),
      startPositions: torch.tensor(f.map((x) => x.startPosition), { dtype: "int64" }),
      endPositions: torch.tensor(f.map((x) => x.endPosition), { dtype: "int64" }),
      targets: f.length,
    };
  }

  loss(model: PretrainedModel, b: QABatch): { loss: Tensor; metrics: Record<string, number> } {
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, startPositions: b.startPositions, endPositions: b.endPositions });
    if (!out.loss) throw new Error(`${model.constructor.name} returned no span loss: is it a question-answering model?`);
    return { loss: out.loss, metrics: {} };
  }

  private versionTwo(examples: readonly QAExample[]): boolean {
    const v = this.ctx.options.squadVersion;
    return v === "2.0" || (v !== "1.1" && (Boolean(this.ctx.options.versionTwo) || examples.some((e) => e.impossible)));
  }

  /** Answers with their scores, and the mean span loss over the windows, from one pass. */
  private run(model: PretrainedModel, examples: readonly QAExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" }): { predictions: QaPrediction[]; lossSum: number; features: number } {
    const features = this.features(examples, false);
    const starts: number[][] = [];
    const ends: number[][] = [];
    const bs = o.batchSize ?? 32;
    let lossSum = 0;
    model.eval();
    torch.noGrad(() => {
      for (let s = 0; s < features.length; s += bs) {
        torch.scope(() => {
          const idx = Array.from({ length: Math.min(bs, features.length - s) }, (_, i) => s + i);
          const b = this.batch(features, idx);
          const out = torch.autocast(() => model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, startPositions: b.startPositions, endPositions: b.endPositions }), { enabled: o.precision === "bf16" });
          if (out.loss) lossSum += out.loss.item() * idx.length;
          starts.push(...(out.startLogits!.float().toArray() as number[][]));
          ends.push(...(out.endLogits!.float().toArray() as number[][]));
        });
      }
    });
    const predictions = postprocessQa(features, starts, ends, examples, {
      nBest: (this.ctx.options.nBest as number | undefined) ?? 20,
      maxAnswerLength: (this.ctx.options.maxAnswerLength as number | undefined) ?? 30,
      versionTwo: this.versionTwo(examples),
      nullThreshold: (this.ctx.options.nullThreshold as number | undefined) ?? 0,
    });
    return { predictions, lossSum, features: features.length };
  }

  predict(model: PretrainedModel, examples: readonly QAExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): QaPrediction[] {
    return this.run(model, examples, o).predictions;
  }

  evaluate(model: PretrainedModel, examples: readonly QAExample[], ctx: EvalContext): EvalResult {
    const { predictions, lossSum, features } = this.run(model, examples, ctx);
    const sums = { loss_sum: lossSum, features };
    return { metrics: this.score(examples, predictions, sums), sums, predictions };
  }

  /** evaluate()'s metrics from the predictions and the loss sums (data-parallel evaluation puts parts together with it). */
  score(examples: readonly QAExample[], predictions: readonly unknown[], sums: Record<string, number>): Record<string, number> {
    return { loss: (sums.loss_sum ?? 0) / Math.max(1, sums.features ?? 0), ...scoreQa(examples, predictions as QaPrediction[]).metrics };
  }
}

/** The official SQuAD scores (percentages) of the predictions. */
export function scoreQa(examples: readonly QAExample[], predictions: readonly QaPrediction[]): { metrics: Record<string, number>; report: SquadMetrics } {
  const report = squadMetrics(
    examples.map((e) => ({ id: e.id, answers: e.impossible ? [] : e.answers.map((a) => a.text) })),
    predictionsById(predictions),
  );
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(report)) if (typeof v === "number" && k !== "total") metrics[k] = v;
  return { metrics, report };
}

const OPTIONS = defineOptions([
  { flag: "doc-stride", key: "docStride", type: "int", min: 1, help: "tokens shared by consecutive windows of a long context (default a third of --max-length, at most 128)" },
  { flag: "max-answer-length", key: "maxAnswerLength", type: "int", min: 1, default: 30, help: "the longest answer in tokens" },
  { flag: "n-best", key: "nBest", type: "int", min: 1, default: 20, help: "start and end positions tried per window, and candidates kept" },
  { flag: "squad-version", key: "squadVersion", type: "string", choices: ["auto", "1.1", "2.0"], default: "auto", help: "2.0 allows no answer (auto: when the training data has unanswerable questions)" },
  { flag: "null-threshold", key: "nullThreshold", type: "number", default: 0, help: "v2.0: answer nothing when the null score beats the best span's by more than this" },
]);

const PREDICT_OPTIONS = defineOptions([
  { flag: "question", key: "question", type: "string", arg: "TEXT", help: "question answering: the question" },
  { flag: "context", key: "context", type: "string", arg: "TEXT|FILE", help: "question answering: the context, as text or a file" },
]);

export const questionAnswering: FinetuneTask<QAExample> = {
  name: "question-answering",
  summary: "the answer to a question as a span of its context (SQuAD v1.1 and v2.0), exact match and F1",
  head: "question-answering",
  options: OPTIONS,
  predictOptions: PREDICT_OPTIONS,
  metric: "f1",
  needsLabels: false,
  serves: "answer",
  metrics: ["f1", "exact_match", "loss"],
  formats: "SQuAD v1.1 or v2.0 JSON, or .jsonl with id, question, context and answers {text: [...], answer_start: [...]}; built in: debian-qa (silver, from apt's Translation-en)",
  read(path, o) {
    const r = readSquad(path, { skipBadRows: Boolean(o.skipBadRows) });
    return { examples: r.examples, skipped: r.skipped };
  },
  builtin(name, o) {
    if (name !== "debian-qa") return null;
    // SILVER: questions made by patterns from Debian's package descriptions (src/data/silver-qa.ts); whole packages held out
    const d = debianQa({ seed: (o.seed as number | undefined) ?? 42, ...(o.limit !== undefined ? { maxExamples: o.limit as number } : {}) });
    const read = (part: "train" | "validation" | "test") => parseSquad(JSON.stringify(d[part]), `debian-qa:${part}`).examples;
    return { train: read("train"), validation: read("validation"), test: read("test") };
  },
  split(examples, fractions, seed) {
    // questions about one context stay together: held-out contexts were never read in training
    const idx = splitIndices(examples.length, fractions, seed, (i) => examples[i]!.context);
    return pickSplits(examples, idx);
  },
  labels: () => [],
  settle: (train, o) => ({ squadVersion: o.squadVersion === "1.1" || o.squadVersion === "2.0" ? o.squadVersion : train.some((e) => e.impossible) ? "2.0" : "1.1" }),
  objective: (ctx) => new QuestionAnsweringObjective(ctx),
  score: (examples, predictions) => scoreQa(examples, predictions as QaPrediction[]),
  formatMetrics(m) {
    const has = m.HasAns_f1 !== undefined ? `\nanswerable: exact match ${m.HasAns_exact!.toFixed(2)}, F1 ${m.HasAns_f1.toFixed(2)}; unanswerable: exact match ${m.NoAns_exact!.toFixed(2)}` : "";
    return `exact match ${m.exact_match!.toFixed(2)}, F1 ${m.f1!.toFixed(2)} (percent, the official SQuAD script's)${has}`;
  },
  analysis(examples, predictions) {
    const rows = examples
      .map((e, i) => ({ e, p: predictions[i] as QaPrediction }))
      .filter(({ e, p }) => (e.impossible ? p.text !== "" : !e.answers.some((a) => a.text === p.text)))
      .sort((a, b) => b.p.score - a.p.score)
      .map(({ e, p }) => JSON.stringify({ source: e.source, id: e.id, question: e.question, gold: e.impossible ? [""] : e.answers.map((a) => a.text), predicted: p.text, score: p.score }));
    // every answer beside its gold ones, in the data's order: the report's sample answers
    const all = examples.map((e, i) => JSON.stringify({ source: e.source, id: e.id, question: e.question, gold: e.impossible ? [""] : e.answers.map((a) => a.text), predicted: (predictions[i] as QaPrediction).text, score: (predictions[i] as QaPrediction).score }));
    return { "errors.jsonl": rows.join("\n") + (rows.length ? "\n" : ""), "predictions.jsonl": all.join("\n") + (all.length ? "\n" : "") };
  },
  predictInput(_texts, o) {
    if (typeof o.question !== "string" || typeof o.context !== "string") throw new Error("question answering: give --question TEXT and --context TEXT|FILE");
    const context = existsSync(o.context) ? readFileSync(o.context, "utf8") : o.context;
    return [{ id: "input", question: o.question, context, answers: [], impossible: false, source: "input" }];
  },
  formatPrediction(e, p, json) {
    const q = p as QaPrediction;
    if (json) return JSON.stringify({ question: e.question, answer: q.text, score: q.score, offsets: q.offsets, n_best: q.nBest.slice(0, 5).map((c) => ({ text: c.text, probability: c.probability, offsets: c.offsets })), ...(q.scoreDiff !== undefined ? { null_score_diff: q.scoreDiff } : {}) });
    return q.text === "" ? `(no answer)\t${q.score.toFixed(4)}` : `${q.text}\t${q.score.toFixed(4)}\t[${q.offsets![0]}, ${q.offsets![1]})`;
  },
};

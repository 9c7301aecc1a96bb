// Prompt-based fine-tuning of a masked LM (PET; LM-BFF): the model keeps its masked-LM head,
// each text goes into a cloze pattern with one mask slot (prompts.ts), and a label's score is
// the MLM logit of its verbalizer word at the mask. Loss: cross-entropy over those scores;
// prediction: their softmax. The data, labels, metrics and reports are classification's.
//
// Several patterns make an ensemble (PET): one model per pattern (src/train/prompt-ensemble.ts
// trains them); the saved folder holds the first model with the others attached under
// `prompt_ensemble.K` (head "prompt-ensemble:N"), and a prediction averages their probabilities.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { ModuleList } from "../nn/index.js";
import type { Module } from "../nn/index.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import { pad2d, paddingMask } from "../data/index.js";
import type { LabelledExample } from "../data/index.js";
import { defineOptions } from "../io/options.js";
import { classification, scoreClassification, toPrediction } from "./classification.js";
import type { ClassPrediction } from "./classification.js";
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";
import { DEFAULT_PAIR_PATTERN, DEFAULT_PATTERN, encodePrompt, parsePattern, parseVerbalizer, readPrompts, verbalizerIds } from "./prompts.js";
import type { PatternPart, Prompt } from "./prompts.js";

/** Where the ensemble's other models live on the first one. */
export const PROMPT_ENSEMBLE = "prompt_ensemble";

/** "prompt-ensemble:3" -> 3 models in all; 1 for any other head. */
export function ensembleSize(head: string | undefined): number {
  const m = /^prompt-ensemble:(\d+)$/.exec(head ?? "");
  return m ? Number(m[1]) : 1;
}

/**
 * The prompts an options object names: --prompts (a file, or the list read from it), else each
 * --pattern with the one --verbalizer. Empty when neither is given (settle() picks the default).
 */
export function promptList(o: Record<string, unknown>): Prompt[] {
  if (typeof o.prompts === "string") return readPrompts(o.prompts);
  if (Array.isArray(o.prompts)) return o.prompts as Prompt[];
  const patterns = (o.pattern as string[] | undefined) ?? [];
  const verbalizer = o.verbalizer as Record<string, string> | undefined;
  return patterns.map((pattern) => ({ pattern, ...(verbalizer ? { verbalizer } : {}) }));
}

/** One encoded example: the filled pattern's ids, its mask position and class index (-1 unknown). */
interface PromptRow {
  ids: number[];
  maskIndex: number;
  label: number;
}

interface PromptBatch extends Batch {
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  /** (B, T) -100 but at each row's mask, so the MLM head computes the mask positions only. */
  maskLabels: Tensor;
  /** (B) class indices. */
  labels: Tensor;
}

/** A prompt made ready: its parsed pattern and the label words' vocabulary ids. */
interface ReadyPrompt {
  parts: PatternPart[];
  wordIds: number[];
}

class PromptObjective implements TaskObjective<LabelledExample, PromptRow> {
  readonly name = "prompt-classification";
  readonly metricDirections = { accuracy: "max", macro_f1: "max", micro_f1: "max", weighted_f1: "max", loss: "min" } as const;
  private readonly labelIndex: Map<string, number>;
  private readonly padId: number;
  /** One per model: the first trains (and is the folder's own); the others are the ensemble's. */
  private readonly prompts: ReadyPrompt[];

  constructor(private readonly ctx: TaskContext) {
    this.labelIndex = new Map(ctx.labels.map((l, i) => [l, i]));
    this.padId = ctx.tokenizer.tokenToId(ctx.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
    const given = promptList(ctx.options);
    const list = given.length ? given : [{ pattern: DEFAULT_PATTERN }];
    const models = ensembleSize(ctx.head);
    if (list.length !== models) throw new Error(`prompt-classification: ${list.length} patterns for ${models} model(s); several patterns train one model each (finetune does it)`);
    this.prompts = list.map((p) => ({ parts: parsePattern(p.pattern), wordIds: verbalizerIds(ctx.tokenizer, ctx.labels, p.verbalizer) }));
  }

  private rows(examples: readonly LabelledExample[], prompt: ReadyPrompt): PromptRow[] {
    return examples.map((e) => ({ ...encodePrompt(this.ctx.tokenizer, prompt.parts, e, this.ctx.maxLength), label: this.labelIndex.get(e.label) ?? -1 }));
  }

  prepare(examples: readonly LabelledExample[]): PromptRow[] {
    return this.rows(examples, this.prompts[0]!);
  }

  batch(rows: readonly PromptRow[], indices: number[]): PromptBatch {
    const picked = indices.map((i) => rows[i]!);
    const maskLabels = picked.map((r) => r.ids.map((id, t) => (t === r.maskIndex ? id : -100)));
    return {
      inputIds: pad2d(picked.map((r) => r.ids), this.padId),
      attentionMask: paddingMask(picked.map((r) => r.ids)),
      tokenTypeIds: pad2d(picked.map((r) => r.ids.map(() => 0)), 0),
      maskLabels: pad2d(maskLabels, -100),
      labels: torch.tensor(picked.map((r) => Math.max(0, r.label)), { dtype: "int64" }),
      targets: picked.length,
    };
  }

  /** (B, labels) scores: the MLM logits of the label words at each row's mask. */
  scores(model: Module, b: PromptBatch, prompt: ReadyPrompt = this.prompts[0]!): Tensor {
    const inputs = { inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds };
    // maskedOnly: the vocabulary projection runs at the B mask positions only, rows in batch order
    const logits = (model as PretrainedModel).forward({ ...inputs, labels: b.maskLabels, maskedOnly: true }).logits; // (B, V)
    return logits.indexSelect(1, torch.tensor(prompt.wordIds, { dtype: "int64" })); // (B, labels)
  }

  loss(model: PretrainedModel, b: PromptBatch): { loss: Tensor; metrics: Record<string, number> } {
    return { loss: torch.crossEntropy(this.scores(model, b).float(), b.labels), metrics: {} };
  }

  /** The models of the ensemble: this one, then those attached to it. */
  private members(model: PretrainedModel): Module[] {
    const list = (model as unknown as Record<string, ModuleList | undefined>)[PROMPT_ENSEMBLE];
    return [model, ...(list ? [...list] : [])];
  }

  /** Probabilities (examples, labels), averaged over the ensemble, and the loss of the average over examples with a known label. */
  private run(model: PretrainedModel, examples: readonly LabelledExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" }): { probs: number[][]; loss: number } {
    const members = this.members(model);
    const bs = o.batchSize ?? 32;
    const probs: number[][] = examples.map(() => this.ctx.labels.map(() => 0));
    model.eval();
    members.forEach((member, k) => {
      const prompt = this.prompts[k]!;
      const rows = this.rows(examples, prompt);
      torch.noGrad(() => {
        for (let s = 0; s < rows.length; s += bs) {
          torch.scope(() => {
            const idx = Array.from({ length: Math.min(bs, rows.length - s) }, (_, i) => s + i);
            const scores = torch.autocast(() => this.scores(member, this.batch(rows, idx), prompt), { enabled: o.precision === "bf16" }).float();
            const p = scores.softmax(-1).toArray() as number[][];
            p.forEach((row, j) => row.forEach((x, c) => (probs[s + j]![c]! += x / members.length)));
          });
        }
      });
    });
    const known = examples.map((e) => this.labelIndex.get(e.label) ?? -1).map((c, i) => (c >= 0 ? -Math.log(Math.max(probs[i]![c]!, 1e-12)) : NaN)).filter((x) => !Number.isNaN(x));
    return { probs, loss: known.reduce((a, b) => a + b, 0) / Math.max(1, known.length) };
  }

  predict(model: PretrainedModel, examples: readonly LabelledExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): ClassPrediction[] {
    return this.run(model, examples, o).probs.map((p) => toPrediction(p, this.ctx.labels));
  }

  evaluate(model: PretrainedModel, examples: readonly LabelledExample[], ctx: EvalContext): EvalResult {
    const { probs, loss } = this.run(model, examples, ctx);
    const predictions = probs.map((p) => toPrediction(p, this.ctx.labels));
    return { metrics: { loss, ...scoreClassification(examples, predictions, this.ctx.labels).metrics }, predictions };
  }
}

const OPTIONS = defineOptions([
  { flag: "pattern", key: "pattern", type: "strings", arg: "TEXT", help: `prompt-classification: the cloze pattern, {text} (or {text_a} and {text_b}) and one [MASK] (default "${DEFAULT_PATTERN}", pairs "${DEFAULT_PAIR_PATTERN}"); several: one model each, predictions averaged` },
  { flag: "verbalizer", key: "verbalizer", type: "string", arg: "LABEL=WORD,...", parse: parseVerbalizer, help: "prompt-classification: one vocabulary word per label (default: the label names)" },
  // read when the objective is made (promptList), not when the flag is parsed: the saved folder keeps the list itself
  { flag: "prompts", key: "prompts", type: "string", arg: "FILE.json", help: 'prompt-classification: a JSON list of {"pattern": ..., "verbalizer": "a=x,b=y"}, one model each, predictions averaged' },
]);

export const promptClassification: FinetuneTask<LabelledExample> = {
  ...classification,
  name: "prompt-classification",
  summary: "a label per text or pair, as a masked LM's word at a cloze pattern's mask (PET / LM-BFF; few-shot)",
  head: "masked-lm",
  heads: ["masked-lm"],
  recordOnly: true,
  options: [...classification.options, ...OPTIONS],
  settle(train, o) {
    // the default pattern fits the data: pairs get the pair pattern
    if (promptList(o).length) return {};
    return { pattern: [train.some((e) => e.textPair !== undefined) ? DEFAULT_PAIR_PATTERN : DEFAULT_PATTERN] };
  },
  objective: (ctx) => new PromptObjective(ctx),
  attachHead(model, head) {
    const n = ensembleSize(head);
    if (n < 2) return;
    // the ensemble's other models: the same architecture, their weights loaded from the folder
    const cls = model.constructor as new (config: unknown) => Module;
    (model as unknown as Record<string, ModuleList>)[PROMPT_ENSEMBLE] = new ModuleList(Array.from({ length: n - 1 }, () => new cls(model.config)));
  },
};

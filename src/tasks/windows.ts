// Long texts for sequence classification: a text longer than --max-length is cut into windows of
// max-length tokens ([CLS] body [SEP] each) that overlap by --stride tokens; every window runs
// through the model and the windows' outputs are pooled into one prediction per document:
// the mean or the max of their logits, or attention over their [CLS] vectors with a small
// trained scorer (a hierarchical attention network's word-to-sentence step, Yang et al. 2016,
// with windows for sentences). At most --max-windows windows per text: the first ones.
//
// Why these defaults: stride a quarter of the length, as token classification's windows (one
// --stride flag, one meaning: tokens shared by consecutive windows); a cut sentence keeps about
// 32 tokens of context at 128 while the windows cover 3/4 new text each, so 8 windows read
// about 790 tokens. The last window ends flush with the text (it starts earlier, overlapping
// more) so that every window is full: a 5-token tail would otherwise weigh as much as a full
// window in the mean.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear, Module } from "../nn/index.js";
import { defineOptions } from "../io/options.js";

/** One window: its ids with the special tokens, and their type ids. */
export interface TextWindow {
  ids: number[];
  typeIds: number[];
}

export type WindowPool = "mean" | "max" | "attention";
export type LongText = "truncate" | "windows";

/** How long texts are read; what a fine-tuned folder keeps in its options. */
export interface WindowSettings {
  longText: LongText;
  pool: WindowPool;
  maxLength: number;
  /** Tokens shared by consecutive windows. */
  stride: number;
  maxWindows: number;
}

/** The defaults a new fine-tuning run takes. A folder saved without these options was trained truncated (before windows existed) and is read so. */
export const WINDOW_DEFAULTS = { longText: "windows", pool: "mean", maxWindows: 8 } as const;

/** --stride's default: a quarter of the length (token classification's too). */
export const defaultStride = (maxLength: number): number => Math.floor(maxLength / 4);

export const WINDOW_OPTIONS = defineOptions([
  {
    flag: "long-text",
    key: "longText",
    type: "string",
    choices: ["truncate", "windows"],
    // DP-SGD clips each row's gradient, and a windowed text is several rows
    default: (o: Record<string, unknown>) => (o.dpEpsilon !== undefined || o.dpNoiseMultiplier !== undefined ? "truncate" : WINDOW_DEFAULTS.longText),
    defaultText: "windows; truncate with DP-SGD",
    help: "classification: a text longer than --max-length is cut to its first tokens, or read as overlapping windows whose outputs are pooled; saved with the model",
  },
  { flag: "window-pool", key: "windowPool", type: "string", choices: ["mean", "max", "attention"], default: WINDOW_DEFAULTS.pool, help: "classification windows: the mean or max of the windows' logits, or attention over their [CLS] vectors (a trained scorer)" },
  { flag: "max-windows", key: "maxWindows", type: "int", min: 1, default: WINDOW_DEFAULTS.maxWindows, help: "classification: at most N windows per text, the first N (a training batch runs up to --batch-size x N windows)" },
]);

/** The --stride flag, shared with token classification (same key and type: the command line merges them). */
export const STRIDE_OPTION = { flag: "stride", key: "stride", type: "int", min: 0, help: "tokens shared by consecutive windows of a long text or sentence (default a quarter of --max-length)" } as const;

/** The window settings of a task's options; options without longText (an older folder) mean truncate. */
export function windowSettings(options: Record<string, unknown>, maxLength: number): WindowSettings {
  return {
    longText: (options.longText as LongText | undefined) ?? "truncate",
    pool: (options.windowPool as WindowPool | undefined) ?? "mean",
    maxLength,
    stride: (options.stride as number | undefined) ?? defaultStride(maxLength),
    maxWindows: (options.maxWindows as number | undefined) ?? WINDOW_DEFAULTS.maxWindows,
  };
}

/**
 * Where windows of `body` tokens start over n tokens, consecutive ones sharing `stride`: 0,
 * step, 2 step, ... (step = body - stride), the last one moved back to end at n; at most
 * maxWindows, the first ones (then the last is a regular one, not moved).
 * windowStarts(300, 126, 31, 8) = [0, 95, 174]: [0,126), [95,221), [174,300).
 */
export function windowStarts(n: number, body: number, stride: number, maxWindows: number): number[] {
  if (body < 1) throw new RangeError(`windowStarts: a window must hold at least one token, got ${body}`);
  if (stride >= body) throw new RangeError(`--stride ${stride} must be less than the ${body} tokens a window holds between its special tokens`);
  if (n <= body) return [0];
  const step = body - stride;
  const count = 1 + Math.ceil((n - body) / step);
  const starts = Array.from({ length: Math.min(count, maxWindows) }, (_, i) => i * step);
  if (count <= maxWindows) starts[count - 1] = n - body;
  return starts;
}

/**
 * A single text's encoding (special tokens included, not truncated) as windows of at most
 * maxLength tokens, each with the encoding's leading and trailing special tokens. A text that
 * fits is one window, its encoding unchanged.
 */
export function textWindows(enc: { ids: readonly number[]; typeIds: readonly number[]; specialTokensMask: readonly number[] }, s: Pick<WindowSettings, "maxLength" | "stride" | "maxWindows">): TextWindow[] {
  const n = enc.ids.length;
  let lead = 0;
  while (lead < n && enc.specialTokensMask[lead]) lead++;
  let end = n;
  while (end > lead && enc.specialTokensMask[end - 1]) end--;
  const body = s.maxLength - lead - (n - end);
  if (n <= s.maxLength) return [{ ids: [...enc.ids], typeIds: [...enc.typeIds] }];
  const pick = (xs: readonly number[], from: number): number[] => [...xs.slice(0, lead), ...xs.slice(lead + from, lead + from + body), ...xs.slice(end)];
  return windowStarts(end - lead, body, s.stride, s.maxWindows).map((from) => ({ ids: pick(enc.ids, from), typeIds: pick(enc.typeIds, from) }));
}

/** Per document, its first window's row among the batch's windows: counts [2, 1, 3] -> [0, 2, 3]. */
function offsets(counts: readonly number[]): number[] {
  let at = 0;
  return counts.map((c) => ((at += c), at - c));
}

/**
 * The documents' logits from their windows' logits: (W, L) rows grouped by counts (document d
 * owns the next counts[d] rows) -> (D, L), the mean or the elementwise max of each group.
 */
export function poolWindowLogits(logits: Tensor, counts: readonly number[], pool: "mean" | "max"): Tensor {
  if (counts.every((c) => c === 1)) return logits.clone(); // one window each: the logits themselves
  const starts = offsets(counts);
  const rows = counts.map((c, d) => {
    const group = logits.narrow(0, starts[d]!, c); // (c, L)
    return pool === "mean" ? group.mean(0) : group.amax(0);
  });
  return torch.stack(rows, 0);
}

/** The module attention pooling adds to the model: a scorer of windows and the classifier of the pooled vector. */
export const WINDOW_ATTENTION_HEAD = "window_attention";

/**
 * Attention over a document's windows: weights softmax(scorer(v_w)) over its windows' vectors
 * v_w (C), the pooled vector Σ weight_w v_w, then a linear classifier. One scorer (C -> 1)
 * and one classifier (C -> L): 257 + 257 L parameters at C = 256.
 */
export class WindowAttention extends Module {
  scorer: Linear;
  classifier: Linear;

  constructor(hidden: number, labels: number) {
    super();
    this.scorer = new Linear(hidden, 1);
    this.classifier = new Linear(hidden, labels);
  }

  /** (W, C) window vectors grouped by counts -> { logits (D, L), weights: per document its windows' weights }. */
  forward(vectors: Tensor, counts: readonly number[]): { logits: Tensor; weights: Tensor[] } {
    const scores = this.scorer.forward(vectors); // (W, 1)
    const starts = offsets(counts);
    const weights: Tensor[] = [];
    const pooled = counts.map((c, d) => {
      const w = scores.narrow(0, starts[d]!, c).softmax(0); // (c, 1)
      weights.push(w);
      return vectors.narrow(0, starts[d]!, c).mul(w).sum(0); // (C)
    });
    return { logits: this.classifier.forward(torch.stack(pooled, 0)), weights };
  }
}

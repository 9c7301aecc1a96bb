// Token classification (named entities): a tag per word, IOB2 inside. Words are tokenised into
// pieces; the first piece of each word carries the word's label, the others -100 (or, with
// --label-all-pieces, the word's tag with B- turned into I-). A sentence longer than the model
// takes is cut into windows of pieces that overlap by --stride; a word's prediction comes from
// the window where its first piece has the most context on both sides. Metrics exactly as
// seqeval computes them (entity-level, default or strict mode), and token accuracy.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import { countTargets, pad2d, paddingMask, readTagged, sotuNer, splitIndices } from "../data/index.js";
import type { TaggedSentence } from "../data/index.js";
import { entities, formatSeqevalReport, seqevalReport } from "../eval/index.js";
import type { SeqevalMode, SeqevalReport } from "../eval/index.js";
import { defineOptions } from "../io/options.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { pickSplits } from "./registry.js";
import { STRIDE_OPTION, defaultStride } from "./windows.js";
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";

/** A sentence to tag; from free text, also the text and each word's [start, end) in it. */
export interface NerExample extends TaggedSentence {
  text?: string;
  spans?: [number, number][];
}

/** One window of a sentence: piece ids, their labels, and which word each piece starts (-1: none). */
export interface NerWindow {
  sentence: number;
  ids: number[];
  labels: number[];
  /** Per piece: the index of the word it is the first piece of, else -1. */
  firstOf: number[];
  /** The window's body: pieces [from, to) of the sentence's pieces (for choosing the most central window). */
  from: number;
  to: number;
  /** Special tokens before the body. */
  lead: number;
}

export interface NerBatch extends Batch {
  attentionMask: Tensor;
  labels: Tensor;
}

/** A sentence's predicted tags and its entities (word spans, and characters of the text when known). */
export interface NerPrediction {
  tags: string[];
  entities: { type: string; start: number; end: number; text: string; char_start?: number; char_end?: number; score: number }[];
}

/** Words of free text with their [start, end) (letters and digits together, each other symbol alone). */
export function splitWords(text: string): { tokens: string[]; spans: [number, number][] } {
  const tokens: string[] = [];
  const spans: [number, number][] = [];
  for (const m of text.matchAll(/[\p{L}\p{M}\p{N}]+(?:['’][\p{L}]+)*|[^\s\p{L}\p{M}\p{N}]/gu)) {
    tokens.push(m[0]);
    spans.push([m.index, m.index + m[0].length]);
  }
  return { tokens, spans };
}

/** The B-/I- tags of the entity types in the data, after O; sorted by type. */
export function tagSet(sentences: readonly TaggedSentence[]): string[] {
  const types = new Set<string>();
  for (const s of sentences) for (const t of s.tags) if (t !== "O") types.add(t.slice(2));
  return ["O", ...[...types].sort().flatMap((t) => [`B-${t}`, `I-${t}`])];
}

/**
 * A sentence's pieces: each word tokenised in place (the words joined by spaces, so that the
 * tokenizer sees ordinary text), the piece -> word map from character offsets, and the
 * special tokens the tokenizer puts around a sequence.
 */
function pieces(tok: Tokenizer, words: readonly string[]): { ids: number[]; word: number[]; prefix: number[]; suffix: number[] } {
  const starts: number[] = [];
  let text = "";
  for (const w of words) {
    if (text) text += " ";
    starts.push(text.length);
    text += w;
  }
  const enc = tok.encode(text, null);
  const ids: number[] = [];
  const word: number[] = [];
  const prefix: number[] = [];
  const suffix: number[] = [];
  let w = 0;
  enc.ids.forEach((id, i) => {
    if (enc.specialTokensMask[i]) {
      (ids.length ? suffix : prefix).push(id);
      return;
    }
    const e = enc.offsets[i]![1];
    // the word holding the piece's last character (a byte-level piece may start at the space before its word)
    while (w + 1 < words.length && e - 1 >= starts[w + 1]!) w++;
    ids.push(id);
    word.push(w);
  });
  return { ids, word, prefix, suffix };
}

/** Windows of a sentence's pieces, at most maxLength with the special tokens, overlapping by stride. */
export function nerWindows(tok: Tokenizer, sentence: NerExample, index: number, tagIndex: ReadonlyMap<string, number> | null, o: { maxLength: number; stride: number; labelAllPieces: boolean }): NerWindow[] {
  const p = pieces(tok, sentence.tokens);
  const body = o.maxLength - p.prefix.length - p.suffix.length;
  if (body < 2) throw new Error(`--max-length ${o.maxLength} leaves no room for words between the special tokens`);
  if (o.stride >= body) throw new Error(`--stride ${o.stride} must be less than the ${body} word pieces a window holds at --max-length ${o.maxLength}`);
  const labelOf = (k: number): number => {
    if (!tagIndex) return -100;
    const w = p.word[k]!;
    const first = k === 0 || p.word[k - 1] !== w;
    const tag = sentence.tags[w]!;
    if (first) return tagIndex.get(tag) ?? -100;
    if (!o.labelAllPieces) return -100;
    return tagIndex.get(tag.startsWith("B-") ? `I-${tag.slice(2)}` : tag) ?? -100;
  };
  const out: NerWindow[] = [];
  for (let from = 0; ; from += body - o.stride) {
    const to = Math.min(p.ids.length, from + body);
    const range = Array.from({ length: to - from }, (_, j) => from + j);
    out.push({
      sentence: index,
      ids: [...p.prefix, ...range.map((k) => p.ids[k]!), ...p.suffix],
      labels: [...p.prefix.map(() => -100), ...range.map(labelOf), ...p.suffix.map(() => -100)],
      firstOf: [...p.prefix.map(() => -1), ...range.map((k) => (k === 0 || p.word[k - 1] !== p.word[k] ? p.word[k]! : -1)), ...p.suffix.map(() => -1)],
      from,
      to,
      lead: p.prefix.length,
    });
    if (to >= p.ids.length) break;
  }
  return out;
}

/**
 * The most probable tag sequence that is valid IOB2 (an I-X only after B-X or I-X), by Viterbi
 * over the words' tag probabilities (B, the tags' log-probabilities summed): a word the model
 * tags I-X out of context ("decision of" as I-LOC) becomes O or B-X, whichever the whole
 * sentence's probability favours. Returns tag indices.
 */
export function decodeIob2(probs: readonly (readonly number[])[], labels: readonly string[]): number[] {
  const n = probs.length;
  const L = labels.length;
  if (n === 0) return [];
  const allowed = (prev: number, cur: number): boolean => !labels[cur]!.startsWith("I-") || (prev >= 0 && labels[prev]!.slice(2) === labels[cur]!.slice(2) && labels[prev] !== "O");
  const logp = (w: number, k: number): number => Math.log(Math.max(probs[w]![k]!, 1e-30));
  let score = labels.map((_, k) => (allowed(-1, k) ? logp(0, k) : -Infinity));
  const back: number[][] = [];
  for (let w = 1; w < n; w++) {
    const next = new Array<number>(L).fill(-Infinity);
    const from = new Array<number>(L).fill(0);
    for (let k = 0; k < L; k++) {
      for (let j = 0; j < L; j++) {
        if (!allowed(j, k)) continue;
        const v = score[j]! + logp(w, k);
        if (v > next[k]!) [next[k], from[k]] = [v, j];
      }
    }
    back.push(from);
    score = next;
  }
  let k = score.indexOf(Math.max(...score));
  const out = [k];
  for (let w = n - 1; w > 0; w--) out.push((k = back[w - 1]![k]!));
  return out.reverse();
}

class TokenClassificationObjective implements TaskObjective<NerExample, NerWindow> {
  readonly name = "token-classification";
  readonly metricDirections = { f1: "max", precision: "max", recall: "max", accuracy: "max", macro_f1: "max", loss: "min" } as const;
  private readonly tagIndex: Map<string, number>;
  private readonly padId: number;
  private readonly windowOptions: { maxLength: number; stride: number; labelAllPieces: boolean };

  constructor(private readonly ctx: TaskContext) {
    this.tagIndex = new Map(ctx.labels.map((l, i) => [l, i]));
    this.padId = ctx.tokenizer.tokenToId(ctx.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
    this.windowOptions = { maxLength: ctx.maxLength, stride: (ctx.options.stride as number | undefined) ?? defaultStride(ctx.maxLength), labelAllPieces: Boolean(ctx.options.labelAllPieces) };
  }

  prepare(sentences: readonly NerExample[]): NerWindow[] {
    return sentences.flatMap((s, i) => nerWindows(this.ctx.tokenizer, s, i, this.tagIndex, this.windowOptions));
  }

  length(w: NerWindow): number {
    return w.ids.length;
  }

  batch(windows: readonly NerWindow[], indices: number[]): NerBatch {
    const picked = indices.map((i) => windows[i]!);
    const labels = picked.map((w) => w.labels);
    return { inputIds: pad2d(picked.map((w) => w.ids), this.padId), attentionMask: paddingMask(picked.map((w) => w.ids)), labels: pad2d(labels, -100), targets: countTargets(labels) };
  }

  loss(model: PretrainedModel, b: NerBatch): { loss: Tensor; metrics: Record<string, number> } {
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, labels: b.labels });
    if (!out.loss) throw new Error(`${model.constructor.name} returned no loss: is it a token-classification model?`);
    return { loss: out.loss, metrics: {} };
  }

  /** Every window's log-probabilities per piece, and the summed loss over labelled pieces, in one pass. */
  private run(model: PretrainedModel, sentences: readonly NerExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" }): { predictions: NerPrediction[]; lossSum: number; targets: number } {
    const windows = sentences.flatMap((s, i) => nerWindows(this.ctx.tokenizer, s, i, s.tags.length === s.tokens.length ? this.tagIndex : null, this.windowOptions));
    // per word: the chosen window's tag probabilities, and how central that window's piece was
    const L = this.ctx.labels.length;
    const chosen = sentences.map((s) => s.tokens.map(() => ({ probs: [1, ...new Array<number>(L - 1).fill(0)], margin: -1 })));
    const bs = o.batchSize ?? 32;
    let lossSum = 0;
    let targets = 0;
    model.eval();
    torch.noGrad(() => {
      for (let s = 0; s < windows.length; s += bs) {
        torch.scope(() => {
          const idx = Array.from({ length: Math.min(bs, windows.length - s) }, (_, i) => s + i);
          const b = this.batch(windows, idx);
          const out = torch.autocast(() => model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels }), { enabled: o.precision === "bf16" });
          if (b.targets > 0 && out.loss) {
            lossSum += out.loss.item() * b.targets;
            targets += b.targets;
          }
          const probs = out.logits.float().softmax(-1).toArray() as number[][][];
          idx.forEach((wi, r) => {
            const w = windows[wi]!;
            w.firstOf.forEach((word, k) => {
              if (word < 0) return;
              const piece = w.from + k - w.lead; // the piece's index in the whole sentence
              const margin = Math.min(piece - w.from, w.to - 1 - piece);
              const c = chosen[w.sentence]![word]!;
              if (margin > c.margin) Object.assign(c, { probs: probs[r]![k]!, margin });
            });
          });
        });
      }
    });
    const constrained = (this.ctx.options.decode ?? "iob2") === "iob2";
    const predictions = sentences.map((s, i) => {
      const dist = chosen[i]!.map((c) => c.probs);
      const best = constrained ? decodeIob2(dist, this.ctx.labels) : dist.map((p) => p.indexOf(Math.max(...p)));
      const tags = best.map((k) => this.ctx.labels[k] ?? "O");
      const conf = best.map((k, w) => dist[w]![k]!);
      const ents = entities(tags).map((e) => {
        const span = s.spans;
        return {
          type: e.type,
          start: e.start,
          end: e.end,
          text: s.text && span ? s.text.slice(span[e.start]![0], span[e.end - 1]![1]) : s.tokens.slice(e.start, e.end).join(" "),
          ...(span ? { char_start: span[e.start]![0], char_end: span[e.end - 1]![1] } : {}),
          score: conf.slice(e.start, e.end).reduce((a, b) => a + b, 0) / (e.end - e.start),
        };
      });
      return { tags, entities: ents };
    });
    return { predictions, lossSum, targets };
  }

  predict(model: PretrainedModel, sentences: readonly NerExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): NerPrediction[] {
    return this.run(model, sentences, o).predictions;
  }

  evaluate(model: PretrainedModel, sentences: readonly NerExample[], ctx: EvalContext): EvalResult {
    const { predictions, lossSum, targets } = this.run(model, sentences, ctx);
    const sums = { loss_sum: lossSum, targets };
    return { metrics: this.score(sentences, predictions, sums), sums, predictions };
  }

  /** evaluate()'s metrics from the predictions and the loss sums (data-parallel evaluation puts parts together with it). */
  score(sentences: readonly NerExample[], predictions: readonly unknown[], sums: Record<string, number>): Record<string, number> {
    const { metrics } = scoreNer(sentences, predictions as NerPrediction[], (this.ctx.options.seqevalMode as SeqevalMode | undefined) ?? "default");
    return { loss: (sums.loss_sum ?? 0) / Math.max(1, sums.targets ?? 0), ...metrics };
  }
}

/** seqeval's report of predicted tags against the sentences' tags. */
export function scoreNer(sentences: readonly TaggedSentence[], predictions: readonly NerPrediction[], mode: SeqevalMode = "default"): { metrics: Record<string, number>; report: SeqevalReport } {
  const report = seqevalReport(sentences.map((s) => s.tags), predictions.map((p) => p.tags), { mode });
  return { metrics: { precision: report.precision, recall: report.recall, f1: report.f1, accuracy: report.accuracy, macro_f1: report.macro.f1, weighted_f1: report.weighted.f1 }, report };
}

const OPTIONS = defineOptions([
  { flag: "tag-column", key: "tagColumn", type: "int", help: "CoNLL: the column of the tags (default the last; negative counts from the end; the token is column 0)" },
  { flag: "tag-scheme", key: "tagScheme", type: "string", choices: ["auto", "IOB1", "IOB2", "IOBES"], default: "auto", help: "the files' tag scheme (converted to IOB2 on read)" },
  { flag: "label-all-pieces", key: "labelAllPieces", type: "boolean", default: false, help: "train on every piece of a word, not only the first (B- becomes I- after the first)" },
  STRIDE_OPTION,
  { flag: "decode", key: "decode", type: "string", choices: ["iob2", "argmax"], default: "iob2", help: "iob2: the most probable valid IOB2 sequence (Viterbi); argmax: each word's most probable tag" },
  { flag: "seqeval-mode", key: "seqevalMode", type: "string", choices: ["default", "strict"], default: "default", help: "seqeval's entity rules: default (conlleval's) or strict (well-formed IOB2 entities only)" },
]);

export const tokenClassification: FinetuneTask<NerExample> = {
  name: "token-classification",
  summary: "a tag per word: named entities (CoNLL-2003, JSONL), entity-level F1 as seqeval",
  head: "token-classification",
  options: OPTIONS,
  metric: "f1",
  needsLabels: true,
  serves: "tokens",
  metrics: ["f1", "precision", "recall", "accuracy", "macro_f1", "weighted_f1", "loss"],
  formats: "CoNLL-2003 columns (token ... tag; -DOCSTART- and blank lines between sentences) or .jsonl with tokens and tags; IOB1, IOB2 or IOBES; built in: sotu-ner (silver)",
  read(path, o) {
    const r = readTagged(path, { ...(o.tagColumn !== undefined ? { tagColumn: o.tagColumn as number } : {}), scheme: (o.tagScheme as "auto") ?? "auto", skipBadRows: Boolean(o.skipBadRows) });
    return { examples: r.sentences, skipped: r.skipped };
  },
  builtin(name, o) {
    if (name !== "sotu-ner") return null;
    // SILVER: State of the Union sentences tagged by gazetteers (src/data/silver-ner.ts); whole addresses held out
    const d = sotuNer({ seed: (o.seed as number | undefined) ?? 42, ...(o.limit !== undefined ? { maxSentences: o.limit as number } : {}) });
    return { train: d.train, validation: d.validation, test: d.test };
  },
  split(sentences, fractions, seed) {
    const idx = splitIndices(sentences.length, fractions, seed);
    return pickSplits(sentences, idx);
  },
  labels(train) {
    const tags = tagSet(train);
    if (tags.length < 3) throw new Error("the training data has no entities (every tag is O)");
    return tags;
  },
  check(sentences, labels, where) {
    const known = new Set(labels);
    for (const s of sentences) for (const t of s.tags) if (!known.has(t)) throw new Error(`${s.source}: tag "${t}" in the ${where} is not one the model knows (${labels.join(", ")})`);
  },
  settle: (_train, o) => ({ stride: (o.stride as number | undefined) ?? defaultStride(o.maxLength as number) }),
  objective: (ctx) => new TokenClassificationObjective(ctx),
  score: (sentences, predictions, _labels, o) => scoreNer(sentences, predictions as NerPrediction[], (o.seqevalMode as SeqevalMode | undefined) ?? "default"),
  formatMetrics: (m, report) => (report ? formatSeqevalReport(report as SeqevalReport, 4) : `entity F1 ${m.f1!.toFixed(4)}, precision ${m.precision!.toFixed(4)}, recall ${m.recall!.toFixed(4)}`),
  analysis(sentences, predictions) {
    const key = (e: { type: string; start: number; end: number }): string => `${e.type}:${e.start}:${e.end}`;
    const rows = sentences
      .map((s, i) => {
        const p = predictions[i] as NerPrediction;
        const gold = entities(s.tags);
        const goldKeys = new Set(gold.map(key));
        const predKeys = new Set(p.entities.map(key));
        const missed = gold.filter((e) => !predKeys.has(key(e))).map((e) => ({ type: e.type, text: s.tokens.slice(e.start, e.end).join(" ") }));
        const spurious = p.entities.filter((e) => !goldKeys.has(key(e))).map((e) => ({ type: e.type, text: e.text, score: e.score }));
        return { source: s.source, text: s.tokens.join(" ").slice(0, 500), missed, spurious, errors: missed.length + spurious.length };
      })
      .filter((r) => r.errors > 0)
      .sort((a, b) => b.errors - a.errors);
    return { "errors.jsonl": rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : "") };
  },
  predictInput: (texts) =>
    texts.map((text, i) => {
      const { tokens, spans } = splitWords(text);
      return { tokens, tags: [], spans, text, source: `input:${i + 1}` };
    }),
  formatPrediction(e, p, json) {
    const n = p as NerPrediction;
    if (json) return JSON.stringify({ text: e.text ?? e.tokens.join(" "), entities: n.entities, tags: n.tags });
    const ents = n.entities.map((x) => `${x.type} "${x.text}"${x.char_start !== undefined ? ` [${x.char_start}, ${x.char_end})` : ""} ${x.score.toFixed(3)}`);
    return `${ents.length ? ents.join("; ") : "(no entities)"}\t${(e.text ?? e.tokens.join(" ")).slice(0, 100)}`;
  },
};

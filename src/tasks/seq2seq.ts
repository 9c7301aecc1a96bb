// Translation and summarisation: text in, text out, on an encoder-decoder (T5: the source is
// the encoder's input, the target the decoder's labels, as Hugging Face's run_translation.py and
// run_summarization.py) or on a decoder-only model (GPT-2, Llama: the source as a prompt, a
// separator, then the target as its continuation, the loss on the continuation only). Training
// minimises the model's own loss; evaluation generates (greedy or beam search) and scores the
// texts: sacreBLEU's BLEU and chrF for translation, rouge-score's ROUGE for summarisation, with
// the teacher-forced loss beside them.
import { existsSync, readFileSync } from "node:fs";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel, Task } from "../models/index.js";
import { runGenerate } from "../models/generation.js";
import { pad2d, paddingMask, splitIndices } from "../data/index.js";
import { corpusBleu } from "../eval/bleu.js";
import { corpusChrf } from "../eval/chrf.js";
import { corpusRouge } from "../eval/rouge.js";
import { defineOptions } from "../io/options.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { pickSplits } from "./registry.js";
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";

/** A text and the text it should become (a translation, a summary); source names file:line. */
export interface Seq2SeqExample {
  text: string;
  target: string;
  source: string;
}

/**
 * A tokenised example. Encoder-decoders: ids is the encoder's input (prefix + text, its </s>
 * too), labels the decoder's targets (target + eos). Decoder-only models: ids is the prompt
 * (promptLength tokens: prefix + text + separator) then the target + eos, and labels are ids
 * with -100 over the prompt (the model shifts them: position i predicts ids[i + 1]).
 */
export interface Seq2SeqFeature {
  ids: number[];
  labels: number[];
  promptLength: number;
}

export interface Seq2SeqBatch extends Batch {
  attentionMask: Tensor;
  /** (B, T) -100 at the prompt (decoder-only) and at padding. */
  labels: Tensor;
}

type Kind = "translation" | "summarization";

// ISO 639-1 codes -> the English names T5's prefixes use ("translate English to German: ")
const LANGUAGES: Record<string, string> = {
  ar: "Arabic", cs: "Czech", da: "Danish", de: "German", el: "Greek", en: "English", es: "Spanish", et: "Estonian", fi: "Finnish", fr: "French",
  hi: "Hindi", hu: "Hungarian", it: "Italian", ja: "Japanese", ko: "Korean", lt: "Lithuanian", lv: "Latvian", nl: "Dutch", no: "Norwegian", pl: "Polish",
  pt: "Portuguese", ro: "Romanian", ru: "Russian", sv: "Swedish", tr: "Turkish", uk: "Ukrainian", zh: "Chinese",
};

/** T5's task prefix: "translate English to German: " from the language codes (an unknown code stands for itself), or "summarize: ". */
export function defaultPrefix(kind: Kind, o: Record<string, unknown>): string {
  if (kind === "summarization") return "summarize: ";
  const name = (code: string): string => LANGUAGES[code] ?? code;
  return `translate ${name(String(o.sourceLang ?? "en"))} to ${name(String(o.targetLang ?? "de"))}: `;
}

// --- reading --------------------------------------------------------------------------------

/** The (text, target) of one JSON row, or the reason it has none. */
function fieldsOf(kind: Kind, row: unknown, o: Record<string, unknown>): [string, string] | string {
  if (typeof row !== "object" || row === null || Array.isArray(row)) return "not a JSON object";
  const r = row as Record<string, unknown>;
  if (typeof r.source === "string" && typeof r.target === "string") return [r.source, r.target];
  if (kind === "summarization") {
    if (typeof r.document === "string" && typeof r.summary === "string") return [r.document, r.summary];
    return `expected "document" and "summary" (or "source" and "target") strings; keys present: ${Object.keys(r).join(", ") || "none"}`;
  }
  const t = r.translation;
  if (typeof t !== "object" || t === null) return `expected {"translation": {...}} (or "source" and "target" strings); keys present: ${Object.keys(r).join(", ") || "none"}`;
  const pair = t as Record<string, unknown>;
  const [src, tgt] = [String(o.sourceLang ?? "en"), String(o.targetLang ?? "de")];
  for (const lang of [src, tgt]) {
    if (typeof pair[lang] !== "string") return `no "${lang}" text in "translation" (--${lang === src ? "source" : "target"}-lang ${lang}); keys present: ${Object.keys(pair).join(", ") || "none"}`;
  }
  return [pair[src] as string, pair[tgt] as string];
}

/**
 * Reads pairs: JSONL ({"translation": {"en": ..., "de": ...}} as Hugging Face datasets, or
 * {"document", "summary"}, or {"source", "target"}), or TSV (text<TAB>target; a header line
 * naming the columns is skipped). An empty text or target is an error naming its line (or,
 * with skipBadRows, skipped and counted).
 */
export function readPairs(kind: Kind, path: string, o: Record<string, unknown> = {}): { examples: Seq2SeqExample[]; skipped: { source: string; reason: string }[] } {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const examples: Seq2SeqExample[] = [];
  const skipped: { source: string; reason: string }[] = [];
  const jsonl = /\.jsonl?$/i.test(path);
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  const bad = (source: string, reason: string): void => {
    if (!o.skipBadRows) throw new Error(`${source}: ${reason}`);
    skipped.push({ source, reason });
  };
  lines.forEach((line, i) => {
    const source = `${path}:${i + 1}`;
    if (line.trim() === "") return;
    let fields: [string, string] | string;
    if (jsonl) {
      try {
        fields = fieldsOf(kind, JSON.parse(line), o);
      } catch (e) {
        fields = `not valid JSON (${(e as Error).message})`;
      }
    } else {
      const cols = line.split("\t");
      const header = [`${String(o.sourceLang ?? "en")}\t${String(o.targetLang ?? "de")}`, "source\ttarget", "text\ttarget", "document\tsummary"];
      if (i === 0 && header.includes(line.trim())) return; // a header naming the columns
      fields = cols.length === 2 ? [cols[0]!, cols[1]!] : `expected text<TAB>target, found ${cols.length} column(s)`;
    }
    if (typeof fields === "string") return bad(source, fields);
    const [text, target] = fields;
    if (text.trim() === "") return bad(source, "empty source text");
    if (target.trim() === "") return bad(source, "empty target");
    examples.push({ text, target, source });
  });
  if (examples.length === 0 && skipped.length === 0) throw new Error(`${path}: no examples (expected ${FORMATS[kind]})`);
  return { examples, skipped };
}

const FORMATS: Record<Kind, string> = {
  translation: '.jsonl with {"translation": {"en": ..., "de": ...}} (Hugging Face datasets; keys by --source-lang/--target-lang) or {"source", "target"}, or .tsv source<TAB>target',
  summarization: '.jsonl with {"document", "summary"} or {"source", "target"}, or .tsv document<TAB>summary',
};

// --- features -------------------------------------------------------------------------------

/** Token ids of one special token the tokenizer must have. */
function specialId(tok: Tokenizer, which: "eos" | "pad"): number | null {
  const name = tok.specialTokens[which];
  return name === undefined ? null : tok.tokenToId(name) ?? null;
}

class Seq2SeqObjective implements TaskObjective<Seq2SeqExample, Seq2SeqFeature> {
  readonly name: Kind;
  readonly metricDirections: Readonly<Record<string, "max" | "min">>;
  private readonly head: Task;
  private readonly eos: number;
  private readonly pad: number;
  private readonly prefix: string;
  private readonly cached = new WeakMap<readonly Seq2SeqExample[], Seq2SeqFeature[]>();

  constructor(private readonly kind: Kind, private readonly ctx: TaskContext) {
    this.name = kind;
    this.head = ctx.modelHead ?? "seq2seq-lm";
    if (this.head !== "seq2seq-lm" && this.head !== "causal-lm") throw new Error(`${kind}: a ${this.head} model cannot generate text; use an encoder-decoder (T5) or a causal LM (GPT-2, Llama)`);
    const eos = specialId(ctx.tokenizer, "eos");
    if (eos === null) throw new Error(`${kind}: the tokenizer has no end-of-sequence token (</s>, <|endoftext|>, [SEP]); targets must end with one`);
    this.eos = eos;
    this.pad = specialId(ctx.tokenizer, "pad") ?? eos;
    const beams = this.opt("numBeams", 1);
    if (beams > ctx.tokenizer.vocabSize) throw new Error(`${kind}: --num-beams ${beams} is more than the tokenizer's ${ctx.tokenizer.vocabSize} tokens; beams are filled from the vocabulary's tokens`);
    this.prefix = typeof ctx.options.prefix === "string" ? ctx.options.prefix : defaultPrefix(kind, ctx.options);
    this.metricDirections = kind === "translation" ? { bleu: "max", chrf: "max", loss: "min" } : { rouge1: "max", rouge2: "max", rougeL: "max", rougeLsum: "max", loss: "min" };
  }

  private opt<T>(key: string, fallback: T): T {
    return (this.ctx.options[key] as T | undefined) ?? fallback;
  }

  private get maxTargetLength(): number {
    return this.opt("maxTargetLength", 128);
  }

  /** Features of examples; truncations counted and logged once per call, or refused naming the row. */
  prepare(examples: readonly Seq2SeqExample[]): Seq2SeqFeature[] {
    const hit = this.cached.get(examples);
    if (hit) return hit;
    const refuse = this.opt<string>("truncation", "truncate") === "refuse";
    const counts = { source: 0, target: 0 };
    const cut = (e: Seq2SeqExample, side: "source" | "target", n: number, limit: number): void => {
      if (n <= limit) return;
      if (refuse) throw new Error(`${e.source}: the ${side} is ${n} tokens, more than ${side === "source" ? "--max-length" : "--max-target-length"} ${limit} (--truncation refuse)`);
      counts[side]++;
    };
    const tok = this.ctx.tokenizer;
    const features = examples.map((e): Seq2SeqFeature => {
      const target = tok.encode(e.target, null, { addSpecialTokens: false }).ids;
      cut(e, "target", target.length + 1, this.maxTargetLength);
      const continuation = [...target.slice(0, this.maxTargetLength - 1), this.eos];
      const prompt = this.promptIds(e, cut);
      if (this.head === "seq2seq-lm") return { ids: prompt, labels: continuation, promptLength: prompt.length };
      return { ids: [...prompt, ...continuation], labels: [...prompt.map(() => -100), ...continuation], promptLength: prompt.length };
    });
    const log = this.ctx.options.log as ((line: string) => void) | undefined;
    if (counts.source) log?.(`${this.kind}: ${counts.source} of ${examples.length} sources truncated to --max-length ${this.ctx.maxLength} tokens`);
    if (counts.target) log?.(`${this.kind}: ${counts.target} of ${examples.length} targets truncated to --max-target-length ${this.maxTargetLength} tokens (eos included)`);
    this.cached.set(examples, features);
    return features;
  }

  /**
   * The model's input for an example's source. Encoder-decoders: the tokenizer's encoding of
   * prefix + text (its special tokens, T5's </s>) to --max-length. Decoder-only: the leading
   * special tokens (a bos), prefix + text, then the separator, whose tokens survive truncation.
   */
  private promptIds(e: Seq2SeqExample, cut: (e: Seq2SeqExample, side: "source", n: number, limit: number) => void): number[] {
    const tok = this.ctx.tokenizer;
    const L = this.ctx.maxLength;
    const full = tok.encode(this.prefix + e.text);
    if (this.head === "seq2seq-lm") {
      cut(e, "source", full.ids.length, L);
      return full.ids.length <= L ? full.ids : tok.encode(this.prefix + e.text, null, { maxLength: L, truncation: "longest_first" }).ids;
    }
    let lead = 0;
    while (lead < full.ids.length && full.specialTokensMask[lead] === 1) lead++;
    let end = full.ids.length;
    while (end > lead && full.specialTokensMask[end - 1] === 1) end--;
    const separator = tok.encode(this.opt("separator", "\n"), null, { addSpecialTokens: false }).ids;
    const room = L - lead - separator.length;
    if (room < 1) throw new Error(`${this.kind}: --max-length ${L} leaves no room for the source beside the separator`);
    cut(e, "source", end + separator.length, L);
    return [...full.ids.slice(0, lead), ...full.ids.slice(lead, Math.min(end, lead + room)), ...separator];
  }

  /** The encoder's and the decoder's tokens (a decoder-only model's one sequence). */
  length(f: Seq2SeqFeature): number {
    return this.head === "seq2seq-lm" ? f.ids.length + f.labels.length : f.ids.length;
  }

  batch(features: readonly Seq2SeqFeature[], indices: number[]): Seq2SeqBatch {
    const f = indices.map((i) => features[i]!);
    return {
      inputIds: pad2d(f.map((x) => x.ids), this.pad),
      attentionMask: paddingMask(f.map((x) => x.ids)),
      labels: pad2d(f.map((x) => x.labels), -100),
      targets: f.reduce((n, x) => n + x.labels.filter((l) => l !== -100).length, 0),
    };
  }

  loss(model: PretrainedModel, b: Seq2SeqBatch): { loss: Tensor; metrics: Record<string, number> } {
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, labels: b.labels });
    if (!out.loss) throw new Error(`${model.constructor.name} returned no loss: is it a ${this.head} model?`);
    return { loss: out.loss, metrics: {} };
  }

  /**
   * Generated texts for features, in order: greedy or beam search, --generation-max-length new
   * tokens. The batches take the features longest source first, so that each is padded to rows
   * of about its own length (on Debian's descriptions, a third of the padded tokens otherwise).
   */
  private generateTexts(model: PretrainedModel, features: readonly Seq2SeqFeature[], batchSize: number): string[] {
    const texts = new Array<string>(features.length);
    const options = { maxNewTokens: this.opt("generationMaxLength", this.maxTargetLength), numBeams: this.opt("numBeams", 1), eosTokenId: this.eos, padTokenId: this.pad };
    const order = longestFirst(features, (f) => f.promptLength);
    for (let s = 0; s < features.length; s += batchSize) {
      const picked = order.slice(s, s + batchSize);
      const rows = picked.map((i) => features[i]!.ids.slice(0, features[i]!.promptLength));
      const width = Math.max(...rows.map((r) => r.length));
      // encoder inputs padded on the right; prompts on the left, so that every row continues at the end
      const left = this.head === "causal-lm";
      const padded = rows.map((r) => (left ? [...new Array<number>(width - r.length).fill(this.pad), ...r] : [...r, ...new Array<number>(width - r.length).fill(this.pad)]));
      const masks = rows.map((r) => (left ? [...new Array<number>(width - r.length).fill(0), ...r.map(() => 1)] : [...r.map(() => 1), ...new Array<number>(width - r.length).fill(0)]));
      const out = torch.scope(() => {
        const table = (x: number[][]): Tensor => torch.tensor(x.flat(), { dtype: "int64", shape: [x.length, width] });
        return runGenerate(model, table(padded), { ...options, attentionMask: table(masks) }).toArray() as number[][];
      });
      // the generated part: after the decoder's start token, or after the prompt; cut at the first eos
      out.forEach((seq, r) => {
        const generated = seq.slice(left ? width : 1);
        const end = generated.indexOf(this.eos);
        texts[picked[r]!] = this.ctx.tokenizer.decode(end < 0 ? generated : generated.slice(0, end), { skipSpecialTokens: true }).trim();
      });
    }
    return texts;
  }

  /** The mean teacher-forced loss per target token over features. */
  private meanLoss(model: PretrainedModel, features: readonly Seq2SeqFeature[], ctx: EvalContext): number {
    let sum = 0;
    let targets = 0;
    torch.noGrad(() => {
      // longest first, as generateTexts: batches of like length
      const order = longestFirst(features, (f) => this.length(f));
      for (let s = 0; s < features.length; s += ctx.batchSize) {
        torch.scope(() => {
          const b = this.batch(features, order.slice(s, s + ctx.batchSize));
          const r = torch.autocast(() => this.loss(model, b), { enabled: ctx.precision === "bf16" });
          sum += r.loss.item() * b.targets;
          targets += b.targets;
        });
      }
    });
    return sum / Math.max(1, targets);
  }

  predict(model: PretrainedModel, examples: readonly Seq2SeqExample[], o: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): string[] {
    model.eval();
    return torch.noGrad(() => this.generateTexts(model, this.prepare(examples), o.batchSize ?? 32));
  }

  evaluate(model: PretrainedModel, given: readonly Seq2SeqExample[], ctx: EvalContext): EvalResult {
    // --eval-batches N: the first N batches of examples
    const examples = ctx.maxBatches === undefined ? given : given.slice(0, ctx.maxBatches * ctx.batchSize);
    const features = this.prepare(given).slice(0, examples.length);
    model.eval();
    const loss = this.meanLoss(model, features, ctx);
    const predictions = torch.noGrad(() => this.generateTexts(model, features, ctx.batchSize));
    return { metrics: { loss, ...scoreTexts(this.kind, examples, predictions).metrics }, predictions };
  }
}

/** The indices of features, longest first (a stable sort: ties keep their order). */
function longestFirst<F>(features: readonly F[], length: (f: F) => number): number[] {
  return features.map((_, i) => i).sort((a, b) => length(features[b]!) - length(features[a]!));
}

// --- scoring --------------------------------------------------------------------------------

/**
 * Corpus scores of generated texts against the examples' targets: translation, sacreBLEU's
 * BLEU (13a tokenisation) and chrF; summarisation, rouge-score's ROUGE-1, -2, -L and -Lsum
 * F-measures with the Porter stemmer (run_summarization.py's). All 0..100. gen_len: the mean
 * number of words generated.
 */
export function scoreTexts(kind: Kind, examples: readonly Seq2SeqExample[], predictions: readonly string[]): { metrics: Record<string, number>; report: Record<string, unknown> } {
  if (examples.length !== predictions.length) throw new Error(`${kind}: ${predictions.length} predictions for ${examples.length} examples`);
  if (examples.length === 0) throw new Error(`${kind}: no examples to score`);
  const targets = examples.map((e) => e.target);
  const genLen = predictions.reduce((n, p) => n + (p.trim() === "" ? 0 : p.trim().split(/\s+/).length), 0) / predictions.length;
  if (kind === "translation") {
    const bleu = corpusBleu(predictions, [targets]);
    return { metrics: { bleu: bleu.score, chrf: corpusChrf(predictions, [targets]).score, gen_len: genLen }, report: { bleu } };
  }
  const rouge = corpusRouge(targets, predictions, { types: ["rouge1", "rouge2", "rougeL", "rougeLsum"], stemmer: true });
  return { metrics: { rouge1: rouge.rouge1, rouge2: rouge.rouge2, rougeL: rouge.rougeL, rougeLsum: rouge.rougeLsum, gen_len: genLen }, report: {} };
}

// --- the tasks ------------------------------------------------------------------------------

const COMMON = [
  { flag: "prefix", key: "prefix", type: "string", arg: "TEXT", help: 'text put before every source (default T5\'s: "translate English to German: " from the language names, or "summarize: ")' },
  { flag: "max-target-length", key: "maxTargetLength", type: "int", min: 2, default: 128, help: "target tokens, the end-of-sequence token included (longer ones are truncated)" },
  { flag: "truncation", key: "truncation", type: "string", choices: ["truncate", "refuse"], default: "truncate", help: "a source or target beyond its length: truncate it (counted, logged) or refuse the row by name" },
  { flag: "generation-max-length", key: "generationMaxLength", type: "int", min: 1, arg: "N", help: "evaluation and predict: tokens generated at most (default --max-target-length)" },
  { flag: "num-beams", key: "numBeams", type: "int", min: 1, default: 1, arg: "N", help: "evaluation and predict: beam search with N beams (1: greedy)" },
  { flag: "separator", key: "separator", type: "string", arg: "TEXT", default: () => "\n", defaultText: "a newline", help: "decoder-only models: what separates the source from the target" },
] as const;

const TRANSLATION_OPTIONS = defineOptions([
  { flag: "source-lang", key: "sourceLang", type: "string", arg: "CODE", default: "en", help: 'translation: the source language\'s key in {"translation": {...}} rows' },
  { flag: "target-lang", key: "targetLang", type: "string", arg: "CODE", default: "de", help: "translation: the target language's key" },
  ...COMMON,
]);

const SUMMARIZATION_OPTIONS = defineOptions([...COMMON]);

function seq2seqTask(kind: Kind): FinetuneTask<Seq2SeqExample> {
  const translation = kind === "translation";
  return {
    name: kind,
    summary: translation ? "text to text in another language (T5, or a decoder-only model prompted), BLEU and chrF by generation" : "a summary of a document (T5, or a decoder-only model prompted), ROUGE by generation",
    head: "seq2seq-lm",
    heads: ["seq2seq-lm", "causal-lm"],
    options: translation ? TRANSLATION_OPTIONS : SUMMARIZATION_OPTIONS,
    metric: translation ? "bleu" : "rougeL",
    needsLabels: false,
    serves: "generate",
    metrics: translation ? ["bleu", "chrf", "loss"] : ["rougeL", "rouge1", "rouge2", "rougeLsum", "loss"],
    formats: FORMATS[kind],
    read: (path, o) => readPairs(kind, path, o),
    split(examples, fractions, seed) {
      // pairs with the same source stay together: a held-out source was never read in training
      return pickSplits(examples, splitIndices(examples.length, fractions, seed, (i) => examples[i]!.text));
    },
    labels: () => [],
    objective: (ctx) => new Seq2SeqObjective(kind, ctx),
    score: (examples, predictions) => scoreTexts(kind, examples, predictions as string[]),
    formatMetrics(m) {
      if (translation) return `BLEU ${m.bleu!.toFixed(2)}, chrF ${m.chrf!.toFixed(2)} (sacreBLEU's)`;
      return `ROUGE-1 ${m.rouge1!.toFixed(2)}, ROUGE-2 ${m.rouge2!.toFixed(2)}, ROUGE-L ${m.rougeL!.toFixed(2)}, ROUGE-Lsum ${m.rougeLsum!.toFixed(2)}`;
    },
    analysis(examples, predictions) {
      const rows = examples.map((e, i) => JSON.stringify({ source: e.source, text: e.text, target: e.target, predicted: predictions[i] }));
      return { "predictions.jsonl": rows.join("\n") + (rows.length ? "\n" : "") };
    },
    predictInput: (texts) => texts.map((text, i) => ({ text, target: "", source: `input:${i + 1}` })),
    formatPrediction: (e, p, json) => (json ? JSON.stringify({ text: e.text, generated: p }) : String(p)),
  };
}

export const translation = seq2seqTask("translation");
export const summarization = seq2seqTask("summarization");

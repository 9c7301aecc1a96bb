// Extractive question answering data: SQuAD v1.1 / v2.0 files (and Hugging Face's JSONL
// layout), checked field by field, and the windows over long contexts that a model reads,
// with the answer's token span in each, as Hugging Face's run_qa.py prepares them.
import { existsSync, readFileSync } from "node:fs";
import type { Encoding, Tokenizer } from "../tokenizers/index.js";

export interface QAAnswer {
  text: string;
  /** Where the answer starts in the context, in UTF-16 units (what String.prototype.slice takes). */
  start: number;
}

export interface QAExample {
  id: string;
  question: string;
  context: string;
  /** Gold answers; [] for an unanswerable question (SQuAD v2.0). */
  answers: QAAnswer[];
  impossible: boolean;
  title?: string;
  /** Where it came from: "file: data[i].paragraphs[j].qas[k]" or "file:line". */
  source: string;
}

export interface SquadReadResult {
  examples: QAExample[];
  /** "2.0" when the file says so or any question carries is_impossible / has no answer. */
  version: "1.1" | "2.0";
  skipped: { source: string; reason: string }[];
}

/** A malformed SQuAD entry: `source` names the file and JSON path (or line), `reason` what is wrong. */
export class SquadFormatError extends Error {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
  }
}

// SQuAD has a few answers whose answer_start is off by a character or two from where the text
// really is; such a start is corrected to the nearest place within this many UTF-16 units
// where the text occurs, and an answer found nowhere near its start is an error.
const MAX_START_DRIFT = 10;

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

/** A required field of a given kind, or a SquadFormatError naming it. */
function need<K extends "string" | "array" | "object">(obj: Obj, key: string, kind: K, where: string): K extends "string" ? string : K extends "array" ? unknown[] : Obj {
  const v = obj[key];
  if (v === undefined) throw new SquadFormatError(where, `missing field "${key}"`);
  const ok = kind === "string" ? typeof v === "string" : kind === "array" ? Array.isArray(v) : isObject(v);
  if (!ok) throw new SquadFormatError(where, `"${key}" must be ${kind === "array" ? "an array" : `a${kind === "object" ? "n" : ""} ${kind}`}, got ${describe(v)}`);
  return v as never;
}

/**
 * The UTF-16 index of a code-point index: SQuAD's answer_start counts Python characters, which
 * are code points, so each surrogate pair before it is one character there and two here.
 * Returns -1 past the end.
 */
function utf16Index(text: string, codePoint: number): number {
  if (!/[\ud800-\udfff]/.test(text)) return codePoint <= text.length ? codePoint : -1;
  let i = 0;
  for (let cp = 0; cp < codePoint; cp++) {
    if (i >= text.length) return -1;
    const c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    i += c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
  }
  return i;
}

/** Checks that an answer's text is in the context at its start (a code-point index); returns the UTF-16 start, corrected if off. */
function locateAnswer(context: string, text: unknown, start: unknown, where: string): QAAnswer {
  if (typeof text !== "string") throw new SquadFormatError(where, text === undefined ? `missing field "text"` : `"text" must be a string, got ${describe(text)}`);
  if (text.length === 0) throw new SquadFormatError(where, "empty answer text");
  if (!Number.isInteger(start) || (start as number) < 0) {
    throw new SquadFormatError(where, start === undefined ? `missing field "answer_start"` : `"answer_start" must be a non-negative integer, got ${JSON.stringify(start)}`);
  }
  const at = utf16Index(context, start as number);
  const pos = at < 0 ? context.length : at;
  if (context.startsWith(text, pos)) return { text, start: pos };
  for (let d = 1; d <= MAX_START_DRIFT; d++) {
    if (pos - d >= 0 && context.startsWith(text, pos - d)) return { text, start: pos - d };
    if (context.startsWith(text, pos + d)) return { text, start: pos + d };
  }
  const found = at < 0 ? `the context has ${context.length} characters` : `the context has ${JSON.stringify(context.slice(pos, pos + text.length))} there`;
  throw new SquadFormatError(where, `answer text ${JSON.stringify(text)} is not at answer_start ${start as number} (${found}), nor within ${MAX_START_DRIFT} characters of it`);
}

/** Collects examples; a bad unit (article, paragraph, question, line) is thrown or, with skipBadRows, skipped and recorded. */
class Collector {
  readonly examples: QAExample[] = [];
  readonly skipped: { source: string; reason: string }[] = [];
  private readonly seen = new Map<string, string>();
  sawImpossible = false;

  constructor(private readonly skip: boolean) {}

  unit(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof SquadFormatError) || !this.skip) throw e;
      this.skipped.push({ source: e.source, reason: e.reason });
    }
  }

  add(ex: QAExample): void {
    if (ex.impossible && ex.answers.length > 0) throw new SquadFormatError(ex.source, `an impossible question (is_impossible: true) has ${ex.answers.length} answer(s)`);
    if (!ex.impossible && ex.answers.length === 0) throw new SquadFormatError(ex.source, "an answerable question has no answers (mark it is_impossible: true in SQuAD v2.0)");
    const first = this.seen.get(ex.id);
    if (first !== undefined) throw new SquadFormatError(ex.source, `duplicate id ${JSON.stringify(ex.id)} (first at ${first})`);
    this.seen.set(ex.id, ex.source);
    if (ex.impossible) this.sawImpossible = true;
    this.examples.push(ex);
  }
}

function readSquadJson(file: string, text: string, c: Collector): string | undefined {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); SQuAD files are one JSON object, Hugging Face's layout is .jsonl`);
  }
  if (!isObject(root)) throw new SquadFormatError(`${file}: top level`, `expected an object {version, data}, got ${describe(root)}`);
  const data = need(root, "data", "array", `${file}: top level`);
  data.forEach((article, i) => {
    const at = `${file}: data[${i}]`;
    c.unit(() => {
      if (!isObject(article)) throw new SquadFormatError(at, `expected an object {title, paragraphs}, got ${describe(article)}`);
      const title = article.title === undefined ? undefined : need(article, "title", "string", at);
      need(article, "paragraphs", "array", at).forEach((paragraph, j) => {
        const pat = `${at}.paragraphs[${j}]`;
        c.unit(() => {
          if (!isObject(paragraph)) throw new SquadFormatError(pat, `expected an object {context, qas}, got ${describe(paragraph)}`);
          const context = need(paragraph, "context", "string", pat);
          need(paragraph, "qas", "array", pat).forEach((qa, k) => {
            const source = `${pat}.qas[${k}]`;
            c.unit(() => {
              if (!isObject(qa)) throw new SquadFormatError(source, `expected an object {id, question, answers}, got ${describe(qa)}`);
              const id = need(qa, "id", "string", source);
              const question = need(qa, "question", "string", source);
              if (qa.is_impossible !== undefined && typeof qa.is_impossible !== "boolean") {
                throw new SquadFormatError(source, `"is_impossible" must be true or false, got ${JSON.stringify(qa.is_impossible)}`);
              }
              if (qa.is_impossible !== undefined) c.sawImpossible = true;
              const answers = need(qa, "answers", "array", source).map((a, n) => {
                const aat = `${source}.answers[${n}]`;
                if (!isObject(a)) throw new SquadFormatError(aat, `expected an object {text, answer_start}, got ${describe(a)}`);
                return locateAnswer(context, a.text, a.answer_start, aat);
              });
              c.add({ id, question, context, answers, impossible: qa.is_impossible === true, ...(title !== undefined ? { title } : {}), source });
            });
          });
        });
      });
    });
  });
  return typeof root.version === "string" ? root.version : undefined;
}

/** Hugging Face datasets' layout: one {id, question, context, answers: {text: [...], answer_start: [...]}} per line. */
function readSquadJsonl(file: string, text: string, c: Collector): void {
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const source = `${file}:${i + 1}`;
    c.unit(() => {
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new SquadFormatError(source, `not valid JSON (${(e as Error).message})`);
      }
      if (!isObject(row)) throw new SquadFormatError(source, `expected an object {id, question, context, answers}, got ${describe(row)}`);
      const id = need(row, "id", "string", source);
      const question = need(row, "question", "string", source);
      const context = need(row, "context", "string", source);
      const title = row.title === undefined ? undefined : need(row, "title", "string", source);
      const answers = need(row, "answers", "object", source);
      const texts = need(answers, "text", "array", `${source} answers`);
      const starts = need(answers, "answer_start", "array", `${source} answers`);
      if (texts.length !== starts.length) throw new SquadFormatError(source, `answers has ${texts.length} texts but ${starts.length} answer_start values`);
      const located = texts.map((t, n) => locateAnswer(context, t, starts[n], `${source} answers[${n}]`));
      c.add({ id, question, context, answers: located, impossible: located.length === 0, ...(title !== undefined ? { title } : {}), source });
    });
  });
}

/**
 * Reads SQuAD v1.1 / v2.0 JSON, or Hugging Face's JSONL layout (by the .jsonl extension).
 * Every entry is checked; the first bad one is an error naming the file and JSON path (or
 * line), unless skipBadRows skips and records it. Answer starts become UTF-16 indices.
 */
export function readSquad(path: string, options: { skipBadRows?: boolean } = {}): SquadReadResult {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  return parseSquad(readFileSync(path, "utf8"), path, options);
}

/** Parses SQuAD JSON (or, for a name ending in .jsonl, Hugging Face's JSONL) given as text; `path` names it in errors. */
export function parseSquad(text: string, path: string, options: { skipBadRows?: boolean } = {}): SquadReadResult {
  if (text.trim() === "") throw new Error(`${path}: the file is empty`);
  const c = new Collector(options.skipBadRows ?? false);
  const declared = path.endsWith(".jsonl") ? readSquadJsonl(path, text, c) : readSquadJson(path, text, c);
  const version = /^v?2/.test(declared ?? "") || c.sawImpossible ? "2.0" : "1.1";
  return { examples: c.examples, version, skipped: c.skipped };
}

// --- windows over long contexts ------------------------------------------------------------------

export interface QAFeature {
  /** Index of the example this window comes from. */
  exampleIndex: number;
  ids: number[];
  typeIds: number[];
  attentionMask: number[];
  /** Per token: [start, end) in the context (UTF-16), or null for question, special and padding tokens. */
  offsets: ([number, number] | null)[];
  /** Where [CLS] (or <s>) sits: the position that means "no answer". */
  clsIndex: number;
  /** The first answer's first and last token in this window; clsIndex when it is not wholly inside, or there is none. */
  startPosition: number;
  endPosition: number;
}

export interface QAFeatureOptions {
  /** Tokens per window, special tokens included (384 in run_qa.py). */
  maxLength: number;
  /** Tokens shared by consecutive windows of a context (run_qa.py's doc_stride, 128). */
  docStride: number;
  /**
   * Pad every window to maxLength on this side (default: no padding). "left" also puts the
   * context first, as run_qa.py does for tokenizers that pad on the left.
   */
  padSide?: "right" | "left";
  /** Training: every answerable example must have an answer to point at. */
  forTraining: boolean;
}

function indexOfId(ids: readonly number[], id: number | undefined): number {
  return id === undefined ? -1 : ids.indexOf(id);
}

/**
 * Encodes each (question, context) pair into windows of at most maxLength tokens, the context
 * truncated and continued in overflowing windows that overlap by docStride tokens, and labels
 * each window with the answer's token span, as run_qa.py's prepare_train_features /
 * prepare_validation_features.
 */
export function qaFeatures(tok: Tokenizer, examples: readonly QAExample[], options: QAFeatureOptions): QAFeature[] {
  const { maxLength, docStride } = options;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`qaFeatures: maxLength must be a positive integer, got ${maxLength}`);
  if (!Number.isInteger(docStride) || docStride < 0) throw new RangeError(`qaFeatures: docStride must be a non-negative integer, got ${docStride}`);
  const contextFirst = options.padSide === "left";
  const contextSeq = contextFirst ? 0 : 1;
  const special = tok.specialTokens;
  const clsId = special.cls === undefined ? undefined : tok.tokenToId(special.cls);
  const bosId = special.bos === undefined ? undefined : tok.tokenToId(special.bos);
  const features: QAFeature[] = [];
  examples.forEach((ex, exampleIndex) => {
    if (options.forTraining && !ex.impossible && ex.answers.length === 0) throw new Error(`${ex.source}: an answerable question without answers cannot be trained on`);
    // run_qa.py strips the question's leading whitespace: long runs of it would eat the window
    const question = ex.question.trimStart();
    let enc: Encoding;
    try {
      const encodeOptions = { maxLength, stride: docStride, returnOverflowing: true } as const;
      enc = contextFirst
        ? tok.encode(ex.context, question, { ...encodeOptions, truncation: "only_first" })
        : tok.encode(question, ex.context, { ...encodeOptions, truncation: "only_second" });
      if (options.padSide) tok.pad([enc], { padding: "max_length", maxLength, paddingSide: options.padSide });
    } catch (e) {
      throw new Error(`${ex.source}: ${(e as Error).message}`);
    }
    const answer = ex.impossible ? undefined : ex.answers[0];
    for (const w of [enc, ...enc.overflowing]) {
      const offsets = w.offsets.map((o, i): [number, number] | null => (w.sequenceIds[i] === contextSeq ? [o[0], o[1]] : null));
      // as run_qa.py: the [CLS] token, else the BOS token, else position 0
      let clsIndex = indexOfId(w.ids, clsId);
      if (clsIndex < 0) clsIndex = indexOfId(w.ids, bosId);
      if (clsIndex < 0) clsIndex = 0;
      const span = answer ? answerSpan(offsets, answer.start, answer.start + answer.text.length) : null;
      features.push({
        exampleIndex,
        ids: w.ids,
        typeIds: w.typeIds,
        attentionMask: w.attentionMask,
        offsets,
        clsIndex,
        startPosition: span ? span[0] : clsIndex,
        endPosition: span ? span[1] : clsIndex,
      });
    }
  });
  return features;
}

/**
 * The tokens of a window that cover context characters [start, end): the last token starting
 * at or before `start` and the first ending at or after `end`; null unless the window's
 * context covers the whole answer. (run_qa.py's loops walk on past the context when the
 * answer starts in its last token; the search here stays inside it.)
 */
function answerSpan(offsets: readonly ([number, number] | null)[], start: number, end: number): [number, number] | null {
  const first = offsets.findIndex((o) => o !== null);
  if (first < 0) return null;
  let last = offsets.length - 1;
  while (offsets[last] === null) last--;
  if (offsets[first]![0] > start || offsets[last]![1] < end) return null;
  let s = first;
  while (s + 1 <= last && offsets[s + 1]![0] <= start) s++;
  let e = last;
  while (e - 1 >= first && offsets[e - 1]![1] >= end) e--;
  return [s, e];
}

// Tagged sentences for named entity recognition: CoNLL-2003 column files and JSONL, read into
// IOB2 (lmforge's one scheme inside), with the scheme the file used detected or declared.
//
// The three schemes mark the same spans differently ("New York is big" with a LOC span over two
// tokens, then two adjacent PER spans "Ann" "Bob"):
//   IOB1:  I-LOC I-LOC O O  I-PER B-PER   B- only where an entity directly follows one of its type
//   IOB2:  B-LOC I-LOC O O  B-PER B-PER   every entity begins with B-
//   IOBES: B-LOC E-LOC O O  S-PER S-PER   E- ends an entity, S- is a one-token entity
import { existsSync, readFileSync } from "node:fs";
import { writeTextAtomic } from "../io/index.js";

export interface TaggedSentence {
  tokens: string[];
  /** One tag per token, IOB2 once read. */
  tags: string[];
  /** "file:line" of the sentence's first token. */
  source: string;
}

export type TagScheme = "IOB1" | "IOB2" | "IOBES";

export interface ReadTaggedOptions {
  /** Default: by extension (.jsonl / .json are JSON lines, anything else CoNLL). */
  format?: "conll" | "jsonl";
  /** CoNLL only: the tag column (default -1, the last; negative counts from the end). Column 0 is the token. */
  tagColumn?: number;
  /** The scheme the file uses (default "auto": detected, see `detectScheme`). */
  scheme?: TagScheme | "auto";
  /** Skip (and count) each sentence holding a bad line instead of failing on the first. */
  skipBadRows?: boolean;
}

export interface ReadTaggedResult {
  sentences: TaggedSentence[];
  /** The scheme the file used; `sentences` hold IOB2 whatever it was. */
  scheme: TagScheme;
  skipped: { source: string; reason: string }[];
}

/** A bad line: where it is (file:line) and why, so that skipBadRows can count it. */
class BadLine extends Error {
  constructor(readonly where: string, readonly reason: string) {
    super(`${where}: ${reason}`);
  }
}

const TAG = /^(?:O|[BIES]-\S+)$/;

/** Why a tag is malformed, or undefined when it is a well-formed O / B- / I- / E- / S- tag. */
function tagProblem(tag: string, scheme: TagScheme | "auto"): string | undefined {
  if (!TAG.test(tag)) return `malformed tag "${tag}" (expected O, or B-, I-, E- or S- and a type, as in B-PER)`;
  if ((scheme === "IOB1" || scheme === "IOB2") && (tag[0] === "E" || tag[0] === "S")) return `tag "${tag}" is not valid in ${scheme} (E- and S- belong to IOBES)`;
  return undefined;
}

const typeOf = (tag: string): string => tag.slice(2);

/**
 * The scheme a collection of tag sequences uses: IOBES if any S- or E- tag; else IOB1 if some
 * entity starts with I- (an I-X at the start, after O, or after a tag of another type); else IOB2.
 */
export function detectScheme(sequences: readonly (readonly string[])[]): TagScheme {
  let iob1 = false;
  for (const tags of sequences) {
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i]!;
      if (tag.startsWith("S-") || tag.startsWith("E-")) return "IOBES";
      const prev = i > 0 ? tags[i - 1]! : "O";
      if (tag.startsWith("I-") && (prev === "O" || typeOf(prev) !== typeOf(tag))) iob1 = true;
    }
  }
  return iob1 ? "IOB1" : "IOB2";
}

/**
 * Any scheme to IOB2. Reading is lenient, like conlleval: an I-X (or E-X) that cannot continue an
 * entity of type X (at the start, after O, after another type, after E-X or S-X) begins one.
 */
function toIob2(tags: readonly string[], from: TagScheme): string[] {
  return tags.map((tag, i) => {
    const problem = tagProblem(tag, from);
    if (problem) throw new Error(`convertTags: tag ${i}: ${problem}`);
    if (tag === "O") return tag;
    const type = typeOf(tag);
    const prev = i > 0 ? tags[i - 1]! : "O";
    const continues = (prev[0] === "B" || prev[0] === "I") && typeOf(prev) === type;
    const begins = tag[0] === "B" || tag[0] === "S" || !continues;
    return `${begins ? "B" : "I"}-${type}`;
  });
}

/** Canonical IOB2 (every entity begins with B-) to any scheme. */
function fromIob2(tags: readonly string[], to: TagScheme): string[] {
  if (to === "IOB2") return [...tags];
  return tags.map((tag, i) => {
    if (tag === "O") return tag;
    const type = typeOf(tag);
    if (to === "IOB1") {
      // B- stays only where the previous token belongs to an entity of the same type
      const prev = i > 0 ? tags[i - 1]! : "O";
      return tag[0] === "B" && prev !== "O" && typeOf(prev) === type ? tag : `I-${type}`;
    }
    const last = tags[i + 1] !== `I-${type}`; // the entity goes on only through I- of its type
    if (tag[0] === "B") return `${last ? "S" : "B"}-${type}`;
    return `${last ? "E" : "I"}-${type}`;
  });
}

/**
 * Rewrites a tag sequence from one scheme to another (all six directions go through IOB2).
 * Malformed tags, and E- / S- tags read as IOB1 or IOB2, are errors naming the position.
 *
 * @example convertTags(["I-PER", "B-PER", "O"], "IOB1", "IOBES") // ["S-PER", "S-PER", "O"]
 */
export function convertTags(tags: readonly string[], from: TagScheme, to: TagScheme): string[] {
  return fromIob2(toIob2(tags, from), to);
}

/** CoNLL-2003 lines: token first, tag in tagColumn, -DOCSTART- lines and blank lines between sentences. */
function readConll(path: string, text: string, o: ReadTaggedOptions): (() => TaggedSentence)[] {
  const tagColumn = o.tagColumn ?? -1;
  if (!Number.isInteger(tagColumn) || tagColumn === 0) throw new Error(`${path}: tagColumn must be a non-zero integer (column 0 is the token), got ${tagColumn}`);
  const needed = tagColumn > 0 ? tagColumn + 1 : 1 - tagColumn; // columns a line must have
  const rows: (() => TaggedSentence)[] = [];
  let pending: { line: number; cols: string[] }[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    rows.push(() => {
      const tokens: string[] = [];
      const tags: string[] = [];
      for (const { line, cols } of lines) {
        const where = `${path}:${line}`;
        if (cols.length < needed) throw new BadLine(where, `expected at least ${needed} columns for tag column ${tagColumn}, found ${cols.length}`);
        const tag = cols[tagColumn > 0 ? tagColumn : cols.length + tagColumn]!;
        const problem = tagProblem(tag, o.scheme ?? "auto");
        if (problem) throw new BadLine(where, problem);
        tokens.push(cols[0]!);
        tags.push(tag);
      }
      return { tokens, tags, source: `${path}:${lines[0]!.line}` };
    });
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    // only spaces and tabs separate columns: a token may hold other Unicode spaces
    const cols = raw.split(/[ \t]+/).filter((c) => c !== "");
    if (cols.length === 0 || cols[0] === "-DOCSTART-") return flush(); // runs of blank lines make no empty sentences
    pending.push({ line: i + 1, cols });
  });
  flush();
  return rows;
}

/** One JSON object a line: {"tokens": [...], "tags": [...]} (or "ner_tags" holding tag names). */
function readJsonl(path: string, text: string, o: ReadTaggedOptions): (() => TaggedSentence)[] {
  if (o.tagColumn !== undefined) throw new Error(`${path}: tagColumn applies to CoNLL files only`);
  const rows: (() => TaggedSentence)[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${path}:${i + 1}`;
    rows.push(() => {
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new BadLine(where, `not valid JSON (${(e as Error).message})`);
      }
      if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new BadLine(where, "expected a JSON object with tokens and tags");
      const rec = obj as Record<string, unknown>;
      const field = "tags" in rec ? "tags" : "ner_tags";
      const tokens = rec.tokens;
      const tags = rec[field];
      if (!Array.isArray(tokens)) throw new BadLine(where, `field "tokens": expected an array of strings`);
      if (!Array.isArray(tags)) throw new BadLine(where, `field "tags" (or "ner_tags"): expected an array of tag strings`);
      if (tokens.length === 0) throw new BadLine(where, `field "tokens": a sentence with no tokens`);
      tokens.forEach((t, k) => {
        if (typeof t !== "string" || t === "") throw new BadLine(where, `field "tokens"[${k}]: expected a non-empty string, found ${JSON.stringify(t)}`);
      });
      if (tags.length !== tokens.length) throw new BadLine(where, `field "${field}": ${tags.length} tags for ${tokens.length} tokens`);
      tags.forEach((t, k) => {
        if (typeof t !== "string") throw new BadLine(where, `field "${field}"[${k}]: expected a tag name, found ${JSON.stringify(t)} (map class ids to names first)`);
        const problem = tagProblem(t, o.scheme ?? "auto");
        if (problem) throw new BadLine(where, `field "${field}"[${k}]: ${problem}`);
      });
      return { tokens: tokens as string[], tags: tags as string[], source: where };
    });
  });
  return rows;
}

/**
 * Reads tagged sentences from a CoNLL-2003 column file or JSONL and converts their tags to IOB2.
 * Bad lines are errors naming file:line; with skipBadRows their sentences are skipped and listed.
 *
 * @example readTagged("eng.train", { tagColumn: 3 }) // { sentences, scheme: "IOB1", skipped: [] }
 */
export function readTagged(path: string, options: ReadTaggedOptions = {}): ReadTaggedResult {
  if (options.scheme !== undefined && !["IOB1", "IOB2", "IOBES", "auto"].includes(options.scheme)) throw new Error(`${path}: unknown tag scheme "${String(options.scheme)}"; use IOB1, IOB2, IOBES or auto`);
  if (options.format !== undefined && options.format !== "conll" && options.format !== "jsonl") throw new Error(`${path}: unknown format "${String(options.format)}"; use conll or jsonl`);
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  const format = options.format ?? (/\.jsonl?$/i.test(path) ? "jsonl" : "conll");
  const text = readFileSync(path, "utf8");
  const rows = format === "jsonl" ? readJsonl(path, text, options) : readConll(path, text, options);
  if (rows.length === 0) throw new Error(`${path}: no sentences in the file`);
  const read: TaggedSentence[] = [];
  const skipped: { source: string; reason: string }[] = [];
  for (const make of rows) {
    try {
      read.push(make());
    } catch (e) {
      if (!(e instanceof BadLine) || !options.skipBadRows) throw e;
      skipped.push({ source: e.where, reason: e.reason });
    }
  }
  const declared = options.scheme ?? "auto";
  const scheme = declared === "auto" ? detectScheme(read.map((s) => s.tags)) : declared;
  const sentences = read.map((s) => ({ ...s, tags: convertTags(s.tags, scheme, "IOB2") }));
  return { sentences, scheme, skipped };
}

/**
 * Writes sentences as two-column CoNLL ("token tag" a line, a blank line after each sentence),
 * atomically. Tokens must be non-empty and hold no space or tab; tags are written as given.
 */
export function writeConll(path: string, sentences: readonly { tokens: readonly string[]; tags: readonly string[]; source?: string }[]): void {
  const lines: string[] = [];
  sentences.forEach((s, i) => {
    const what = `writeConll: sentence ${i}${s.source ? ` (${s.source})` : ""}`;
    if (s.tokens.length === 0) throw new Error(`${what}: a sentence with no tokens`);
    if (s.tags.length !== s.tokens.length) throw new Error(`${what}: ${s.tags.length} tags for ${s.tokens.length} tokens`);
    s.tokens.forEach((token, k) => {
      if (token === "" || /[ \t\r\n]/.test(token)) throw new Error(`${what}: token ${k} ${JSON.stringify(token)} is empty or holds whitespace, which CoNLL columns cannot`);
      if (token === "-DOCSTART-") throw new Error(`${what}: token ${k} is "-DOCSTART-", which CoNLL readers take for a document marker`);
      const problem = tagProblem(s.tags[k]!, "auto");
      if (problem) throw new Error(`${what}: token ${k}: ${problem}`);
      lines.push(`${token} ${s.tags[k]!}`);
    });
    lines.push("");
  });
  writeTextAtomic(path, lines.join("\n")); // each sentence's "" ends it with a blank line
}

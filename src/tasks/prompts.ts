// Patterns and verbalizers of prompt-based fine-tuning (PET: Schick & Schütze, EACL 2021;
// LM-BFF: Gao, Fisch & Chen, ACL 2021). A pattern turns an example into a cloze question with
// one mask slot ("{text} It was [MASK]."); a verbalizer names one vocabulary word per label
// (spam=junk, ham=fine), whose masked-LM logit at the slot is that label's score.
import { readFileSync } from "node:fs";
import type { Tokenizer } from "../tokenizers/index.js";

/** The default patterns (LM-BFF's sentiment template; its pair template for NLI-style data). */
export const DEFAULT_PATTERN = "{text} It was [MASK].";
export const DEFAULT_PAIR_PATTERN = "{text_a} ? [MASK] , {text_b}";

/** One prompt: a pattern and, when given, its verbalizer (label -> word). */
export interface Prompt {
  pattern: string;
  verbalizer?: Record<string, string>;
}

/** A piece of a parsed pattern: literal text, a text slot, or the mask slot. */
export type PatternPart = { kind: "literal"; text: string } | { kind: "slot"; slot: "a" | "b" } | { kind: "mask" };

const SLOT = /(\{[^{}]*\}|\[MASK\])/;

/**
 * Parses a pattern: "{text}" (or "{text_a}") and "{text_b}" are the example's texts, "[MASK]"
 * the one mask slot (the tokenizer's own mask token), the rest literal text.
 */
export function parsePattern(pattern: string): PatternPart[] {
  const parts: PatternPart[] = [];
  for (const piece of pattern.split(SLOT)) {
    if (piece === "") continue;
    if (piece === "[MASK]") parts.push({ kind: "mask" });
    else if (piece === "{text}" || piece === "{text_a}") parts.push({ kind: "slot", slot: "a" });
    else if (piece === "{text_b}") parts.push({ kind: "slot", slot: "b" });
    else if (/^\{.*\}$/.test(piece)) throw new Error(`pattern "${pattern}": unknown slot ${piece}; the slots are {text} (or {text_a}), {text_b} and [MASK]`);
    else parts.push({ kind: "literal", text: piece });
  }
  const count = (f: (p: PatternPart) => boolean): number => parts.filter(f).length;
  if (count((p) => p.kind === "mask") !== 1) throw new Error(`pattern "${pattern}": needs exactly one [MASK], found ${count((p) => p.kind === "mask")}`);
  const a = count((p) => p.kind === "slot" && p.slot === "a");
  const b = count((p) => p.kind === "slot" && p.slot === "b");
  if (a !== 1 || b > 1) throw new Error(`pattern "${pattern}": needs {text} (or {text_a}) once and {text_b} at most once, found ${a} and ${b}`);
  return parts;
}

/** "spam=junk,ham=fine" -> { spam: "junk", ham: "fine" }. */
export function parseVerbalizer(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = item.lastIndexOf("=");
    if (eq <= 0 || eq === item.length - 1) throw new Error(`a verbalizer is LABEL=WORD,LABEL=WORD,..., got "${item}" in "${text}"`);
    const label = item.slice(0, eq).trim();
    if (label in out) throw new Error(`verbalizer "${text}": label "${label}" is given twice`);
    out[label] = item.slice(eq + 1).trim();
  }
  if (Object.keys(out).length === 0) throw new Error(`a verbalizer is LABEL=WORD,LABEL=WORD,..., got "${text}"`);
  return out;
}

/** Reads a --prompts file: a JSON list of {pattern, verbalizer}, the verbalizer "a=x,b=y" or {"a": "x"}. */
export function readPrompts(path: string): Prompt[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new Error(`${path}: must be a non-empty JSON list of {"pattern": ..., "verbalizer": ...}`);
  return raw.map((p: unknown, i) => {
    const where = `${path}: entry ${i + 1}`;
    if (typeof p !== "object" || p === null || typeof (p as Prompt).pattern !== "string") throw new Error(`${where}: needs a "pattern" string`);
    const { pattern, verbalizer } = p as { pattern: string; verbalizer?: unknown };
    parsePattern(pattern);
    if (verbalizer === undefined) return { pattern };
    if (typeof verbalizer === "string") return { pattern, verbalizer: parseVerbalizer(verbalizer) };
    if (typeof verbalizer === "object" && verbalizer !== null && Object.values(verbalizer).every((w) => typeof w === "string")) return { pattern, verbalizer: verbalizer as Record<string, string> };
    throw new Error(`${where}: "verbalizer" must be "label=word,..." or an object of label -> word`);
  });
}

/**
 * The vocabulary id of each label's word, in label order. The word is encoded after a space,
 * as it follows one in a pattern (byte-level BPE's "Ġword"; WordPiece drops the space). A label
 * the verbalizer misses, a word of several pieces, an unknown word or one word for two labels
 * is an error naming the word and its label. Default: the label names themselves.
 */
export function verbalizerIds(tok: Tokenizer, labels: readonly string[], verbalizer?: Readonly<Record<string, string>>): number[] {
  const words = verbalizer ?? Object.fromEntries(labels.map((l) => [l, l]));
  const where = verbalizer ? "--verbalizer" : "the default verbalizer (the label names; give --verbalizer LABEL=WORD,...)";
  for (const l of Object.keys(words)) if (!labels.includes(l)) throw new Error(`${where}: label "${l}" is not one of the labels (${labels.join(", ")})`);
  const unk = tok.specialTokens.unk === undefined ? undefined : tok.tokenToId(tok.specialTokens.unk);
  const seen = new Map<number, string>();
  return labels.map((label) => {
    const word = words[label];
    if (word === undefined) throw new Error(`${where}: no word for label "${label}"`);
    const enc = tok.encode(` ${word}`, null, { addSpecialTokens: false });
    if (enc.ids.length !== 1) throw new Error(`${where}: the word "${word}" of label "${label}" is ${enc.ids.length} pieces (${enc.tokens.join(" ")}), not one vocabulary word`);
    const id = enc.ids[0]!;
    if (id === unk) throw new Error(`${where}: the word "${word}" of label "${label}" is not in the vocabulary (it encodes as ${tok.specialTokens.unk})`);
    const other = seen.get(id);
    if (other !== undefined) throw new Error(`${where}: labels "${other}" and "${label}" have the same word "${word}"`);
    seen.set(id, label);
    return id;
  });
}

/** A pattern filled in: the ids with [CLS]/[SEP] (or <s>/</s>) around them, and where the mask is. */
export interface PromptEncoding {
  ids: number[];
  maskIndex: number;
}

/** How many tokens each text keeps within `budget`, longest first (one token at a time from the longer; a tie from the second). */
export function truncateLongestFirst(a: number, b: number, budget: number): [number, number] {
  if (a + b <= budget) return [a, b];
  const short = Math.min(a, b);
  if (short <= Math.floor(budget / 2)) return a <= b ? [a, budget - a] : [budget - b, b];
  return [Math.ceil(budget / 2), Math.floor(budget / 2)];
}

/**
 * Fills a parsed pattern with an example's texts. The pattern's own tokens and the mask always
 * fit in maxLength: only the texts are cut (their ends; two texts longest first).
 */
export function encodePrompt(tok: Tokenizer, parts: readonly PatternPart[], example: { text: string; textPair?: string }, maxLength: number): PromptEncoding {
  const special = tok.specialTokens;
  const idOf = (token: string | undefined, role: string): number => {
    const id = token === undefined ? undefined : tok.tokenToId(token);
    if (id === undefined) throw new Error(`prompt-classification: the tokenizer has no ${role} token`);
    return id;
  };
  const cls = idOf(special.cls ?? special.bos, "[CLS] (or <s>)");
  const sep = idOf(special.sep ?? special.eos, "[SEP] (or </s>)");
  const mask = idOf(special.mask, "mask ([MASK] or <mask>)");
  const pieces = (text: string): number[] => tok.encode(text, null, { addSpecialTokens: false }).ids;
  const hasB = parts.some((p) => p.kind === "slot" && p.slot === "b");
  if (hasB && example.textPair === undefined) throw new Error(`the pattern has {text_b} but an example has one text: "${example.text.slice(0, 60)}"`);
  if (!hasB && example.textPair !== undefined) throw new Error(`an example is a pair of texts but the pattern has no {text_b} (e.g. "${DEFAULT_PAIR_PATTERN}")`);
  const a = pieces(example.text);
  const b = hasB ? pieces(example.textPair!) : [];
  const literal = parts.map((p) => (p.kind === "literal" ? pieces(p.text) : []));
  const own = 2 + 1 + literal.reduce((n, l) => n + l.length, 0); // [CLS] [SEP], the mask, the pattern's words
  const budget = maxLength - own;
  if (budget < (hasB ? 2 : 1)) throw new Error(`the pattern takes ${own} tokens with the special tokens and the mask, leaving no room for the text in --max-length ${maxLength}`);
  const [keepA, keepB] = hasB ? truncateLongestFirst(a.length, b.length, budget) : [Math.min(a.length, budget), 0];
  const ids = [cls];
  let maskIndex = -1;
  parts.forEach((p, i) => {
    if (p.kind === "literal") ids.push(...literal[i]!);
    else if (p.kind === "mask") {
      maskIndex = ids.length;
      ids.push(mask);
    } else ids.push(...(p.slot === "a" ? a.slice(0, keepA) : b.slice(0, keepB)));
  });
  ids.push(sep);
  return { ids, maskIndex };
}

// Pre-tokenisers: split normalised text into words, each with its span in that text.
import { BYTE_TO_CHAR } from "./unicode.js";
import { isPunctuation, isWhitespace } from "./unicode.js";

export interface Word {
  text: string;
  /** Span in the normalised text. */
  start: number;
  end: number;
  /** Metaspace: text begins with a "▁" that is not in the normalised text (start..end excludes it). */
  prefixed?: boolean;
}

// ASCII classes for the fast path: 1 whitespace, 2 punctuation, 0 other.
const ASCII_CLASS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0; c < 128; c++) t[c] = isWhitespace(c) ? 1 : isPunctuation(c) ? 2 : 0;
  return t;
})();

/** BERT: split on whitespace (dropped) and isolate every punctuation character. */
export function bertPreTokenize(text: string): Word[] {
  const words: Word[] = [];
  let wordStart = -1;
  for (let i = 0; i < text.length; ) {
    const unit = text.charCodeAt(i);
    if (unit < 128) {
      const c = ASCII_CLASS[unit]!;
      if (c === 0) {
        if (wordStart < 0) wordStart = i;
      } else {
        if (wordStart >= 0) words.push({ text: text.slice(wordStart, i), start: wordStart, end: i });
        wordStart = -1;
        if (c === 2) words.push({ text: text[i]!, start: i, end: i + 1 });
      }
      i++;
      continue;
    }
    const cp = text.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    if (isWhitespace(cp)) {
      if (wordStart >= 0) words.push({ text: text.slice(wordStart, i), start: wordStart, end: i });
      wordStart = -1;
    } else if (isPunctuation(cp)) {
      if (wordStart >= 0) words.push({ text: text.slice(wordStart, i), start: wordStart, end: i });
      wordStart = -1;
      words.push({ text: text.slice(i, i + w), start: i, end: i + w });
    } else if (wordStart < 0) {
      wordStart = i;
    }
    i += w;
  }
  if (wordStart >= 0) words.push({ text: text.slice(wordStart), start: wordStart, end: text.length });
  return words;
}

// GPT-2's pre-tokenisation pattern (contractions, letters, numbers, other, whitespace runs).
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Byte-level BPE: GPT-2's pattern; words are later mapped byte by byte to visible characters. */
export function byteLevelPreTokenize(text: string): Word[] {
  const words: Word[] = [];
  GPT2_PATTERN.lastIndex = 0;
  for (let m = GPT2_PATTERN.exec(text); m !== null; m = GPT2_PATTERN.exec(text)) {
    words.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  }
  return words;
}

const encoder = new TextEncoder();

/** A word's UTF-8 bytes as GPT-2's visible characters, with each byte's source span in the word. */
export function toByteChars(word: string): { chars: string; byteStart: Int32Array; byteEnd: Int32Array } {
  const bytes = encoder.encode(word);
  let chars = "";
  for (const b of bytes) chars += BYTE_TO_CHAR[b];
  const byteStart = new Int32Array(bytes.length);
  const byteEnd = new Int32Array(bytes.length);
  let bi = 0;
  for (let i = 0; i < word.length; ) {
    const cp = word.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < n; k++) {
      byteStart[bi] = i;
      byteEnd[bi] = i + w;
      bi++;
    }
    i += w;
  }
  return { chars, byteStart, byteEnd };
}

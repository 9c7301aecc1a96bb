// BERT's normaliser with alignment: every output UTF-16 unit remembers the span of the input
// it came from, so that token offsets point into the user's original text.

export interface BertNormalizerOptions {
  cleanText: boolean;
  handleChineseChars: boolean;
  /** null: strip accents when lowercasing (BERT's default). */
  stripAccents: boolean | null;
  lowercase: boolean;
}

export interface Normalized {
  text: string;
  /**
   * For each UTF-16 unit of text: the start and end of its source in the input; null when
   * the text maps one to one onto the input (then unit i came from base + i).
   */
  start: Int32Array | null;
  end: Int32Array | null;
  base: number;
}

import { isChinese, isControl, isMark, isWhitespace } from "./unicode.js";

/** Identity normalisation (GPT-2, RoBERTa). */
export function identity(text: string, base = 0): Normalized {
  return { text, start: null, end: null, base };
}

const PLAIN_ASCII = /^[\x20-\x7e\t\n\r]*$/;

export function bertNormalize(input: string, o: BertNormalizerOptions, base = 0): Normalized {
  if (PLAIN_ASCII.test(input)) {
    // Fast path (most text): one output unit per input unit.
    let text = o.cleanText ? input.replace(/[\t\n\r]/g, " ") : input;
    if (o.lowercase) text = text.toLowerCase();
    return { text, start: null, end: null, base };
  }
  const strip = o.stripAccents ?? o.lowercase;
  let out = "";
  const starts: number[] = [];
  const ends: number[] = [];
  const emit = (s: string, from: number, to: number): void => {
    out += s;
    for (let k = 0; k < s.length; k++) {
      starts.push(base + from);
      ends.push(base + to);
    }
  };
  for (let i = 0; i < input.length; ) {
    const cp = input.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    const from = i;
    i += w;
    if (o.cleanText) {
      if (cp === 0 || cp === 0xfffd || isControl(cp)) continue;
      if (isWhitespace(cp)) {
        emit(" ", from, i);
        continue;
      }
    }
    let ch = w === 2 ? input.slice(from, i) : input[from]!;
    if (o.handleChineseChars && isChinese(cp)) {
      emit(" ", from, i);
      emit(ch, from, i);
      emit(" ", from, i);
      continue;
    }
    if (cp < 0x80) {
      // ASCII fast path: no accents, simple case
      emit(o.lowercase && cp >= 65 && cp <= 90 ? String.fromCharCode(cp + 32) : ch, from, i);
      continue;
    }
    if (strip) {
      let kept = "";
      for (const d of ch.normalize("NFD")) if (!isMark(d.codePointAt(0)!)) kept += d;
      ch = kept;
    }
    if (o.lowercase) ch = ch.toLowerCase();
    if (ch.length > 0) emit(ch, from, i);
  }
  return { text: out, start: Int32Array.from(starts), end: Int32Array.from(ends), base };
}

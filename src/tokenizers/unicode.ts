// Character classes as BERT's tokenizer defines them, and GPT-2's byte-to-unicode table.
// Lookups for the Basic Multilingual Plane are cached in a table (this is the hot path).

const enum Cls {
  Unknown = 0,
  Other = 1,
  Whitespace = 2,
  Control = 3,
  Punctuation = 4,
  Mark = 5, // Mn: removed when stripping accents
}

const table = new Uint8Array(0x10000);
const WS = /^\p{Zs}$/u;
// BERT counts every "C" category as control (Cc, Cf, Cs, Co, Cn), as the reference does.
const CTRL = /^\p{C}$/u;
const PUNCT = /^\p{P}$/u;
const MARK = /^\p{Mn}$/u;

function classify(cp: number): Cls {
  if (cp === 0x20 || cp === 0x09 || cp === 0x0a || cp === 0x0d) return Cls.Whitespace;
  const ch = String.fromCodePoint(cp);
  if (WS.test(ch)) return Cls.Whitespace;
  if (CTRL.test(ch)) return Cls.Control;
  // BERT counts all non-alphanumeric ASCII as punctuation ($, +, ^, ` ...), not only category P.
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return Cls.Punctuation;
  if (PUNCT.test(ch)) return Cls.Punctuation;
  if (MARK.test(ch)) return Cls.Mark;
  return Cls.Other;
}

function cls(cp: number): Cls {
  if (cp < 0x10000) {
    let c = table[cp]!;
    if (c === Cls.Unknown) table[cp] = c = classify(cp);
    return c;
  }
  return classify(cp);
}

export function isWhitespace(cp: number): boolean {
  return cls(cp) === Cls.Whitespace;
}
export function isControl(cp: number): boolean {
  return cls(cp) === Cls.Control;
}
export function isPunctuation(cp: number): boolean {
  return cls(cp) === Cls.Punctuation;
}
export function isMark(cp: number): boolean {
  return cls(cp) === Cls.Mark;
}

/** CJK Unified Ideographs and their extensions, as BERT's _is_chinese_char. */
export function isChinese(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * GPT-2's reversible map from bytes to printable unicode characters: printable Latin-1 bytes
 * map to themselves, the rest to 256 + n, so that every byte has a visible character.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

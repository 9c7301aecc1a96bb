// TF-IDF features as scikit-learn's TfidfVectorizer computes them (1.2), for the settings the
// classical baseline uses: lowercase=True, token_pattern r"(?u)\b\w\w+\b", ngram_range (1, n),
// min_df (a document count), max_df 1.0, sublinear_tf, smooth_idf, norm "l2".
//
//   tf(t, d)  = 1 + ln(count of t in d)                 (sublinear; 0 when absent)
//   idf(t)    = ln((1 + n) / (1 + df(t))) + 1            (smooth; n training documents)
//   row(d)    = tf * idf / ||tf * idf||_2
//
// Tokens: Python's \w in a str pattern is a Unicode letter or number or "_", so a token is a
// maximal run of [\p{L}\p{N}_] of two code points or more (\b\w\w+\b cannot start inside a run).
// The vocabulary is sorted by code point, as Python sorts str, and n-grams join tokens with a space.
import type { CsrMatrix } from "./sparse.js";

export interface TfidfOptions {
  /** Longest n-gram (default 2: words and word pairs). */
  maxN?: number;
  /** Keep terms in at least this many training documents (default 2). */
  minDf?: number;
}

export interface TfidfVectorizer {
  /** The terms, sorted by code point: column j is vocabulary[j]. */
  vocabulary: string[];
  /** (vocabulary) the smoothed idf of each term. */
  idf: Float64Array;
  maxN: number;
  minDf: number;
}

const TOKEN = /[\p{L}\p{N}_]{2,}/gu;

/** scikit-learn's analyzer: lowercase, tokens of two word characters or more, then 1..maxN-grams in order. */
export function analyze(text: string, maxN = 2): string[] {
  const tokens = text.toLowerCase().match(TOKEN) ?? [];
  const grams: string[] = [...tokens];
  for (let n = 2; n <= maxN; n++) for (let i = 0; i + n <= tokens.length; i++) grams.push(tokens.slice(i, i + n).join(" "));
  return grams;
}

/** Python's str ordering (by code point); JavaScript's default compares UTF-16 units, which differs past U+FFFF. */
function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

/**
 * Learns the vocabulary and idf from training texts.
 * @example const v = fitTfidf(["a cat sat", "the cat ran"], { minDf: 2 }); v.vocabulary // ["cat"]
 */
export function fitTfidf(texts: readonly string[], options: TfidfOptions = {}): TfidfVectorizer {
  const maxN = options.maxN ?? 2;
  const minDf = options.minDf ?? 2;
  if (!(Number.isInteger(maxN) && maxN >= 1)) throw new RangeError(`fitTfidf: maxN must be a positive integer, got ${maxN}`);
  if (!(Number.isInteger(minDf) && minDf >= 1)) throw new RangeError(`fitTfidf: minDf must be a positive integer, got ${minDf}`);
  const df = new Map<string, number>();
  for (const text of texts) for (const term of new Set(analyze(text, maxN))) df.set(term, (df.get(term) ?? 0) + 1);
  const vocabulary = [...df].filter(([, n]) => n >= minDf).map(([t]) => t);
  if (vocabulary.length === 0) throw new Error(`fitTfidf: no term is in ${minDf} or more of the ${texts.length} training texts (lower minDf)`);
  vocabulary.sort(byCodePoint);
  const n = texts.length;
  const idf = Float64Array.from(vocabulary, (t) => Math.log((1 + n) / (1 + df.get(t)!)) + 1);
  return { vocabulary, idf, maxN, minDf };
}

/** The (texts, vocabulary) TF-IDF matrix of texts under a fitted vectorizer; unknown terms are dropped. */
export function transformTfidf(v: TfidfVectorizer, texts: readonly string[]): CsrMatrix {
  const column = new Map(v.vocabulary.map((t, j) => [t, j]));
  const rows: { cols: number[]; vals: number[] }[] = [];
  let nnz = 0;
  for (const text of texts) {
    const counts = new Map<number, number>();
    for (const term of analyze(text, v.maxN)) {
      const j = column.get(term);
      if (j !== undefined) counts.set(j, (counts.get(j) ?? 0) + 1);
    }
    const cols = [...counts.keys()].sort((a, b) => a - b);
    const vals = cols.map((j) => (1 + Math.log(counts.get(j)!)) * v.idf[j]!);
    let sq = 0;
    for (const x of vals) sq += x * x;
    const norm = Math.sqrt(sq);
    // an empty row stays zero (scikit-learn leaves a zero norm alone)
    if (norm > 0) for (let i = 0; i < vals.length; i++) vals[i]! /= norm;
    rows.push({ cols, vals });
    nnz += cols.length;
  }
  const indptr = new Int32Array(texts.length + 1);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  rows.forEach((r, i) => {
    indices.set(r.cols, indptr[i]!);
    data.set(r.vals, indptr[i]!);
    indptr[i + 1] = indptr[i]! + r.cols.length;
  });
  return { rows: texts.length, columns: v.vocabulary.length, indptr, indices, data };
}

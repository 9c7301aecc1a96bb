// chrF and chrF++ as sacreBLEU 2.x computes them (`CHRF().corpus_score(hyps, refs)`, signature
// nc:6|nw:0|space:no|eff:yes): character n-grams of orders 1..6 with whitespace removed (plus
// word n-grams 1..wordOrder for chrF++), per-sentence match statistics against the best
// reference, summed over the corpus, then one F-beta score. Pure TypeScript.
import { pythonSplit } from "./bleu.js";

export interface ChrfOptions {
  /** Character n-gram order; default 6. */
  charOrder?: number;
  /** Word n-gram order; default 0 (chrF); 2 gives chrF++. */
  wordOrder?: number;
  /** Recall weight; default 2 (chrF2). */
  beta?: number;
  /** Lower-case first; default false. */
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams; default false (sacreBLEU's default removes it). */
  whitespace?: boolean;
  /**
   * chrF++.py / NLTK / Moses epsilon smoothing: the mean of the per-order F-scores, an empty order
   * counting ~0. Default false: sacreBLEU's default instead averages precision and recall over the
   * orders where both sides have n-grams ("effective order") and takes one F-score of the averages.
   */
  epsSmoothing?: boolean;
}

export interface ChrfScore {
  /** chrF in 0..100. */
  score: number;
}

/** Python's string.punctuation, which chrF++ splits off the ends of words. */
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

type Counts = Map<string, number>;

function count(items: readonly string[]): Counts {
  const c: Counts = new Map();
  for (const x of items) c.set(x, (c.get(x) ?? 0) + 1);
  return c;
}

/** Character n-grams of orders 1..maxOrder, by code point (as Python slices strings). */
function charNgrams(line: string, maxOrder: number, whitespace: boolean): Counts[] {
  const chars = Array.from(whitespace ? line : pythonSplit(line).join(""));
  const out: Counts[] = [];
  for (let n = 1; n <= maxOrder; n++) {
    const grams: string[] = [];
    for (let i = 0; i + n <= chars.length; i++) grams.push(chars.slice(i, i + n).join(""));
    out.push(count(grams));
  }
  return out;
}

/**
 * chrF++'s words: split on whitespace, and from a word longer than one character split one
 * trailing punctuation mark, or else one leading one ("(hi)" gives "(hi" and ")", as sacreBLEU).
 */
function words(sentence: string): string[] {
  const out: string[] = [];
  for (const w of pythonSplit(sentence)) {
    const chars = Array.from(w);
    if (chars.length === 1) out.push(w);
    else if (PUNCTUATION.has(chars.at(-1)!)) out.push(chars.slice(0, -1).join(""), chars.at(-1)!);
    else if (PUNCTUATION.has(chars[0]!)) out.push(chars[0]!, chars.slice(1).join(""));
    else out.push(w);
  }
  return out;
}

function allNgrams(sentence: string, o: Required<ChrfOptions>): Counts[] {
  const grams = charNgrams(sentence, o.charOrder, o.whitespace);
  if (o.wordOrder > 0) {
    const w = words(sentence);
    for (let n = 1; n <= o.wordOrder; n++) {
      const g: string[] = [];
      for (let i = 0; i + n <= w.length; i++) g.push(w.slice(i, i + n).join(" "));
      grams.push(count(g));
    }
  }
  return grams;
}

/** Per order [hypothesis n-grams, reference n-grams, matches]; hypothesis n-grams count 0 where the reference has none. */
function matchStats(hyp: readonly Counts[], ref: readonly Counts[]): number[] {
  const stats: number[] = [];
  hyp.forEach((h, k) => {
    const r = ref[k]!;
    let hypCount = 0;
    let matches = 0;
    for (const [gram, c] of h) {
      hypCount += c;
      matches += Math.min(c, r.get(gram) ?? 0);
    }
    let refCount = 0;
    for (const c of r.values()) refCount += c;
    stats.push(r.size > 0 ? hypCount : 0, refCount, matches);
  });
  return stats;
}

/** sacreBLEU's CHRF._compute_f_score over flattened [hyp, ref, match] triples, in 0..100. */
function fScore(stats: readonly number[], o: Required<ChrfOptions>): number {
  const eps = 1e-16;
  const factor = o.beta ** 2;
  const orders = o.charOrder + o.wordOrder;
  let score = 0;
  let avgPrec = 0;
  let avgRec = 0;
  let effective = 0;
  for (let k = 0; k < orders; k++) {
    const nHyp = stats[3 * k]!;
    const nRef = stats[3 * k + 1]!;
    const nMatch = stats[3 * k + 2]!;
    const prec = nHyp > 0 ? nMatch / nHyp : eps;
    const rec = nRef > 0 ? nMatch / nRef : eps;
    const denom = factor * prec + rec;
    score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
    if (nHyp > 0 && nRef > 0) {
      avgPrec += prec;
      avgRec += rec;
      effective++;
    }
  }
  if (o.epsSmoothing) return (100 * score) / orders;
  if (effective === 0) return 0;
  avgPrec /= effective;
  avgRec /= effective;
  if (avgPrec + avgRec === 0) return 0;
  return 100 * (((1 + factor) * avgPrec * avgRec) / (factor * avgPrec + avgRec)); // sacreBLEU's rounding order
}

function resolve(options: ChrfOptions): Required<ChrfOptions> {
  const o = {
    charOrder: options.charOrder ?? 6,
    wordOrder: options.wordOrder ?? 0,
    beta: options.beta ?? 2,
    lowercase: options.lowercase ?? false,
    whitespace: options.whitespace ?? false,
    epsSmoothing: options.epsSmoothing ?? false,
  };
  for (const key of ["charOrder", "wordOrder"] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0) throw new Error(`chrF: options.${key} must be a non-negative integer, got ${o[key]}`);
  }
  if (o.charOrder + o.wordOrder === 0) throw new Error("chrF: charOrder + wordOrder must be at least 1");
  if (!(o.beta > 0)) throw new Error(`chrF: options.beta must be positive, got ${o.beta}`);
  return o;
}

/** One sentence's statistics against the reference with the highest chrF (the first on ties). */
function segmentStats(hyp: string, refs: readonly string[], o: Required<ChrfOptions>): number[] {
  const h = allNgrams(hyp, o);
  let best: number[] = [];
  let bestF = -1;
  for (const ref of refs) {
    const stats = matchStats(h, allNgrams(ref, o));
    const f = fScore(stats, o);
    if (f > bestF) {
      bestF = f;
      best = stats;
    }
  }
  return best;
}

/**
 * Corpus chrF exactly as sacreBLEU 2.x `CHRF(char_order, word_order, beta).corpus_score(hypotheses,
 * references)`. `references[k][i]` is the k-th reference of sentence i; `null` = no k-th
 * reference for that sentence.
 *
 * @example corpusChrf(["a b c"], [["abc"]]).score === 100  // whitespace is removed
 */
export function corpusChrf(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null)[])[],
  options: ChrfOptions = {},
): ChrfScore {
  const o = resolve(options);
  if (references.length === 0) throw new Error("corpusChrf: no reference streams (references[k][i] is the k-th reference of sentence i)");
  references.forEach((stream, k) => {
    if (stream.length !== hypotheses.length) {
      throw new Error(`corpusChrf: references[${k}] has ${stream.length} sentences but there are ${hypotheses.length} hypotheses`);
    }
  });
  const prep = (s: string): string => (o.lowercase ? s.toLowerCase() : s);
  const sums = new Array<number>(3 * (o.charOrder + o.wordOrder)).fill(0);
  hypotheses.forEach((hyp, i) => {
    const refs = references.map((stream) => stream[i]).filter((r): r is string => r !== null && r !== undefined);
    if (refs.length === 0) throw new Error(`corpusChrf: sentence ${i} has no reference in any stream`);
    segmentStats(prep(hyp), refs.map(prep), o).forEach((v, j) => (sums[j]! += v));
  });
  return { score: fScore(sums, o) };
}

/** chrF of one sentence as `sacrebleu.sentence_chrf(hypothesis, references)`: the corpus score of a corpus of one. */
export function sentenceChrf(hypothesis: string, references: readonly string[], options: ChrfOptions = {}): ChrfScore {
  return corpusChrf([hypothesis], references.map((r) => [r]), options);
}

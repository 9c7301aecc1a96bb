// Corpus BLEU as sacreBLEU 2.x computes it with its defaults (`BLEU().corpus_score(hyps, refs)`,
// signature nrefs:N|case:mixed|eff:no|tok:13a|smooth:exp): the mteval-v13a tokeniser, clipped
// n-gram counts up to order 4 summed over the corpus, the brevity penalty against the sum of the
// per-sentence closest reference lengths, and NIST ("exp") smoothing of zero counts. Pure TypeScript.

/** Python's str.split() separators (str.isspace): \x1c-\x1f and \x85 are in, \ufeff is out (JS's \s differs). */
const PY_WHITESPACE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;
const PY_TRAILING_WHITESPACE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/u;

/** Python's `s.split()`: split on whitespace runs, no empty pieces. */
export function pythonSplit(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((t) => t.length > 0);
}

export type BleuTokenize = "13a" | "none";

export interface BleuOptions {
  /** "13a" (sacreBLEU's default, mteval-v13a) or "none" (split on whitespace only). */
  tokenize?: BleuTokenize;
  /** Lower-case hypotheses and references first (sacreBLEU -lc). */
  lowercase?: boolean;
}

export interface BleuScore {
  /** BLEU in 0..100, as sacreBLEU prints it. */
  score: number;
  /** Clipped n-gram matches for n = 1..4, summed over the corpus. */
  counts: number[];
  /** Hypothesis n-grams for n = 1..4, summed over the corpus. */
  totals: number[];
  /** Per-order precisions in 0..100 (smoothed where a count is zero). */
  precisions: number[];
  /** Brevity penalty: 1 when sysLen >= refLen, else exp(1 - refLen / sysLen) (0 when sysLen is 0). */
  bp: number;
  /** Hypothesis tokens in the corpus. */
  sysLen: number;
  /** Sum over sentences of the reference length closest to the hypothesis length (ties: the shorter). */
  refLen: number;
}

const MAX_ORDER = 4;

// mteval-v13a's language-dependent rules, in order (sacreBLEU's TokenizerRegexp):
const V13A_RULES: readonly (readonly [RegExp, string])[] = [
  // every ASCII symbol except ' - . , is set apart: {|}~  [\]^_`  space!"#$%&  ()*+  :;<=>?@  /
  [/([\x7b-\x7e\x5b-\x60\x20-\x26\x28-\x2b\x3a-\x40\x2f])/gu, " $1 "],
  // a period or comma is set apart unless it is between digits (1,000.5 stays one token)
  [/([^0-9])([.,])/gu, "$1 $2 "],
  [/([.,])([^0-9])/gu, " $1 $2"],
  // a dash after a digit is set apart
  [/([0-9])(-)/gu, "$1 $2 "],
];

/**
 * The mteval-v13a tokeniser as sacreBLEU's "13a": drop "<skipped>", join "-\n" hyphenations, newlines
 * to spaces, unescape &quot; &amp; &lt; &gt;, then split off punctuation; tokens joined by one space.
 *
 * @example tokenize13a("It wasn't 1,000.5 $-worth.") === "It wasn't 1,000.5 $ -worth ."
 */
export function tokenize13a(line: string): string {
  let s = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  if (s.includes("&")) s = s.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  s = ` ${s} `;
  for (const [pattern, replacement] of V13A_RULES) s = s.replace(pattern, replacement);
  return pythonSplit(s).join(" ");
}

/** sacreBLEU's _preprocess_segment: lower-case (optional), strip trailing whitespace, tokenise. */
function preprocess(line: string, options: BleuOptions): string {
  let s = options.lowercase ? line.toLowerCase() : line;
  s = s.replace(PY_TRAILING_WHITESPACE, "");
  const tokenize = options.tokenize ?? "13a";
  if (tokenize === "13a") return tokenize13a(s);
  if (tokenize === "none") return s;
  throw new Error(`BLEU: unknown tokenize ${JSON.stringify(tokenize)} (known: "13a", "none")`);
}

/** All n-grams of orders 1..MAX_ORDER with counts; a key is the n tokens joined by one space (tokens hold none). */
function ngramCounts(tokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= MAX_ORDER; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = tokens.slice(i, i + n).join(" ");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** The reference length closest to the hypothesis length; on a tie the shorter one. */
function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let best = -1;
  let bestDiff = -1;
  for (const len of refLens) {
    const diff = Math.abs(hypLen - len);
    if (bestDiff === -1 || diff < bestDiff || (diff === bestDiff && len < best)) {
      best = len;
      bestDiff = diff;
    }
  }
  return best;
}

/** One sentence's sufficient statistics: [hypLen, refLen, correct_1..4, total_1..4]. */
function segmentStats(hyp: string, refs: readonly string[]): number[] {
  // the references' n-gram counts merged by maximum: a hypothesis n-gram is clipped to the most
  // times any one reference holds it
  const refMax = new Map<string, number>();
  const refLens: number[] = [];
  for (const ref of refs) {
    const tokens = pythonSplit(ref);
    refLens.push(tokens.length);
    for (const [gram, c] of ngramCounts(tokens)) refMax.set(gram, Math.max(refMax.get(gram) ?? 0, c));
  }
  const hypTokens = pythonSplit(hyp);
  const correct = new Array<number>(MAX_ORDER).fill(0);
  const total = new Array<number>(MAX_ORDER).fill(0);
  for (const [gram, c] of ngramCounts(hypTokens)) {
    const order = gram.split(" ").length - 1;
    total[order]! += c;
    correct[order]! += Math.min(c, refMax.get(gram) ?? 0);
  }
  return [hypTokens.length, closestRefLen(hypTokens.length, refLens), ...correct, ...total];
}

/** sacreBLEU's my_log: log with log(0) floored to -9999999999 (so a zero precision zeroes the score). */
function flooredLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/**
 * BLEU from summed statistics with "exp" smoothing (sacreBLEU's compute_bleu): the k-th order with
 * no match gets precision 100 / (2^k × total); an order with no hypothesis n-grams stops the loop
 * and leaves its precision 0 (so the score is 0 unless `effectiveOrder`, which then averages only
 * the orders before it); no match at any order gives 0.
 */
function computeBleu(stats: readonly number[], effectiveOrder: boolean): BleuScore {
  const sysLen = stats[0]!;
  const refLen = stats[1]!;
  const counts = stats.slice(2, 2 + MAX_ORDER);
  const totals = stats.slice(2 + MAX_ORDER, 2 + 2 * MAX_ORDER);
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(MAX_ORDER).fill(0);
  if (counts.every((c) => c === 0)) return { score: 0, counts, totals, precisions, bp, sysLen, refLen };
  let smooth = 1;
  let order = MAX_ORDER;
  for (let n = 0; n < MAX_ORDER; n++) {
    if (totals[n] === 0) break;
    if (effectiveOrder) order = n + 1;
    if (counts[n] === 0) {
      smooth *= 2;
      precisions[n] = 100 / (smooth * totals[n]!);
    } else {
      precisions[n] = (100 * counts[n]!) / totals[n]!;
    }
  }
  let logSum = 0;
  for (let n = 0; n < order; n++) logSum += flooredLog(precisions[n]!);
  return { score: bp * Math.exp(logSum / order), counts, totals, precisions, bp, sysLen, refLen };
}

function checkCorpus(hypotheses: readonly string[], references: readonly (readonly (string | null)[])[]): void {
  if (references.length === 0) throw new Error("corpusBleu: no reference streams (references[k][i] is the k-th reference of sentence i)");
  references.forEach((stream, k) => {
    if (stream.length !== hypotheses.length) {
      throw new Error(`corpusBleu: references[${k}] has ${stream.length} sentences but there are ${hypotheses.length} hypotheses`);
    }
  });
}

/** The references of sentence i: column i of the streams, nulls (no reference there) dropped. */
function referencesOf(references: readonly (readonly (string | null)[])[], i: number, where: string): string[] {
  const refs = references.map((stream) => stream[i]).filter((r): r is string => r !== null && r !== undefined);
  if (refs.length === 0) throw new Error(`${where}: sentence ${i} has no reference in any stream`);
  return refs;
}

/**
 * Corpus BLEU exactly as sacreBLEU 2.x `BLEU(tokenize, lowercase).corpus_score(hypotheses, references)`.
 * `references[k][i]` is the k-th reference of sentence i (sacreBLEU's layout: one stream per
 * reference set); a `null` entry means sentence i has no k-th reference, while "" is a real,
 * empty reference (length 0), as in sacreBLEU.
 *
 * @example corpusBleu(["The dog bit the man."], [["The dog bit the man."]]).score === 100
 */
export function corpusBleu(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null)[])[],
  options: BleuOptions = {},
): BleuScore {
  checkCorpus(hypotheses, references);
  const sums = new Array<number>(2 + 2 * MAX_ORDER).fill(0);
  hypotheses.forEach((hyp, i) => {
    const refs = referencesOf(references, i, "corpusBleu").map((r) => preprocess(r, options));
    segmentStats(preprocess(hyp, options), refs).forEach((v, j) => (sums[j]! += v));
  });
  return computeBleu(sums, false);
}

export interface SentenceBleuOptions extends BleuOptions {
  /** Average only over the orders the hypothesis is long enough to have; default true, as sacrebleu.sentence_bleu. */
  effectiveOrder?: boolean;
}

/**
 * Sentence BLEU as `sacrebleu.sentence_bleu(hypothesis, references)` (effective order on, "exp"
 * smoothing): scores of single sentences are noisy; prefer corpusBleu for a system score.
 */
export function sentenceBleu(hypothesis: string, references: readonly string[], options: SentenceBleuOptions = {}): BleuScore {
  if (references.length === 0) throw new Error("sentenceBleu: no references");
  const stats = segmentStats(preprocess(hypothesis, options), references.map((r) => preprocess(r, options)));
  return computeBleu(stats, options.effectiveOrder ?? true);
}

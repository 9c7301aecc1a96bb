// ROUGE as Google's rouge-score package computes it (rouge_scorer.RougeScorer with its
// DefaultTokenizer): rougeN from clipped n-gram overlap, rougeL from the longest common
// subsequence of the whole texts, rougeLsum from the summary-level union LCS over newline-split
// sentences (ROUGE-1.5.5's variant, which stops a token being counted twice). Pure TypeScript.
import { porterStem } from "./porter.js";

/** "rouge1" ... "rouge9" (n-gram overlap), "rougeL" (LCS), "rougeLsum" (summary-level LCS). */
export type RougeType = `rouge${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}` | "rougeL" | "rougeLsum";

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export interface RougeOptions {
  /** Which scores to compute; default ["rouge1", "rouge2", "rougeL", "rougeLsum"]. */
  types?: readonly RougeType[];
  /** Porter-stem tokens longer than 3 characters (RougeScorer's use_stemmer); default false. */
  stemmer?: boolean;
}

const DEFAULT_TYPES: readonly RougeType[] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];
const ZERO: RougeScore = { precision: 0, recall: 0, fmeasure: 0 };

/**
 * rouge-score's tokenize.tokenize: lower case, every run of characters outside [a-z0-9] becomes
 * a space (so "don't" is "don t" and "café" is "caf"), split; with `stem`, tokens longer than
 * 3 characters are Porter-stemmed.
 */
export function rougeTokenize(text: string, stem = false): string[] {
  const tokens = text.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(" ").filter((t) => t.length > 0);
  return stem ? tokens.map((t) => (t.length > 3 ? porterStem(t) : t)) : tokens;
}

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  // tokens hold no spaces, so a space-joined key names one n-gram
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(" ");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** rougeN: clipped overlap over the n-gram totals; an empty side counts as 1 in the denominator. */
function scoreNgrams(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const t = ngramCounts(target, n);
  const p = ngramCounts(prediction, n);
  let overlap = 0;
  for (const [gram, count] of t) overlap += Math.min(count, p.get(gram) ?? 0);
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const precision = overlap / Math.max(total(p), 1);
  const recall = overlap / Math.max(total(t), 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** table[i][j] = LCS length of ref[:i] and can[:j]; shape (ref.length + 1, can.length + 1). */
function lcsTable(ref: readonly string[], can: readonly string[]): number[][] {
  const table = Array.from({ length: ref.length + 1 }, () => new Array<number>(can.length + 1).fill(0));
  for (let i = 1; i <= ref.length; i++) {
    const row = table[i]!;
    const above = table[i - 1]!;
    for (let j = 1; j <= can.length; j++) {
      row[j] = ref[i - 1] === can[j - 1] ? above[j - 1]! + 1 : Math.max(above[j]!, row[j - 1]!);
    }
  }
  return table;
}

function scoreLcs(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return ZERO;
  const lcs = lcsTable(target, prediction)[target.length]![prediction.length]!;
  const precision = lcs / prediction.length;
  const recall = lcs / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/**
 * Indices into `ref` of one LCS with `can`, read back from the end as rouge-score does: on a
 * match take it, else step along `can` only when that keeps a strictly longer LCS, else along
 * `ref`. Which LCS is picked matters for the union.
 */
function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const t = lcsTable(ref, can);
  const out: number[] = [];
  let i = ref.length;
  let j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i]![j - 1]! > t[i - 1]![j]!) j--;
    else i--;
  }
  return out.reverse();
}

/**
 * Summary-level LCS (Lin 2004, section 3.2): for each reference sentence, the union of its LCS
 * with every candidate sentence; a token scores a hit only while both summaries still have an
 * unused copy of it (ROUGE-1.5.5's guard against double counting).
 */
function summaryLevelLcs(refSents: readonly string[][], canSents: readonly string[][]): RougeScore {
  if (refSents.length === 0 || canSents.length === 0) return ZERO;
  const m = refSents.reduce((a, s) => a + s.length, 0);
  const n = canSents.reduce((a, s) => a + s.length, 0);
  if (m === 0 || n === 0) return ZERO;
  const countTokens = (sents: readonly string[][]): Map<string, number> => {
    const c = new Map<string, number>();
    for (const s of sents) for (const tok of s) c.set(tok, (c.get(tok) ?? 0) + 1);
    return c;
  };
  const refLeft = countTokens(refSents);
  const canLeft = countTokens(canSents);
  let hits = 0;
  for (const ref of refSents) {
    const union = new Set<number>();
    for (const can of canSents) for (const i of lcsIndices(ref, can)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const tok = ref[i]!;
      if ((canLeft.get(tok) ?? 0) > 0 && (refLeft.get(tok) ?? 0) > 0) {
        hits++;
        canLeft.set(tok, canLeft.get(tok)! - 1);
        refLeft.set(tok, refLeft.get(tok)! - 1);
      }
    }
  }
  const recall = hits / m;
  const precision = hits / n;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** rougeLsum's sentences: the text split on "\n", empty pieces dropped (before tokenising). */
function sentences(text: string, stem: boolean): string[][] {
  return text.split("\n").filter((s) => s.length > 0).map((s) => rougeTokenize(s, stem));
}

/**
 * ROUGE of one prediction against one target, as `RougeScorer(types, use_stemmer).score(target,
 * prediction)`. Note the argument order: target (reference) first.
 *
 * @example rougeScore("the cat sat", "the cat ran", { types: ["rouge1"] }).rouge1.fmeasure  // 2/3
 */
export function rougeScore(target: string, prediction: string, options: RougeOptions = {}): Record<RougeType, RougeScore> {
  const types = options.types ?? DEFAULT_TYPES;
  const stem = options.stemmer ?? false;
  const targetTokens = rougeTokenize(target, stem);
  const predictionTokens = rougeTokenize(prediction, stem);
  const result = {} as Record<RougeType, RougeScore>;
  for (const type of types) {
    if (type === "rougeL") result[type] = scoreLcs(targetTokens, predictionTokens);
    else if (type === "rougeLsum") result[type] = summaryLevelLcs(sentences(target, stem), sentences(prediction, stem));
    else if (/^rouge[1-9]$/.test(type)) result[type] = scoreNgrams(targetTokens, predictionTokens, Number(type.slice(5)));
    else throw new Error(`rougeScore: unknown ROUGE type ${JSON.stringify(type)} (known: rouge1 ... rouge9, rougeL, rougeLsum)`);
  }
  return result;
}

/**
 * Corpus ROUGE: the mean F-measure over the pairs, × 100, per type.
 *
 * Hugging Face `evaluate`'s "rouge" reports the median of 1000 bootstrap means of the same
 * per-example F-measures (rouge-score's BootstrapAggregator, "mid"), which for a large corpus is
 * within noise of the mean; we report the mean itself, which is deterministic. An empty corpus
 * is an error.
 */
export function corpusRouge(targets: readonly string[], predictions: readonly string[], options: RougeOptions = {}): Record<RougeType, number> {
  if (targets.length !== predictions.length) {
    throw new Error(`corpusRouge: ${targets.length} targets but ${predictions.length} predictions; they pair up one to one`);
  }
  if (targets.length === 0) throw new Error("corpusRouge: no examples to score");
  const types = options.types ?? DEFAULT_TYPES;
  const sums = new Map<RougeType, number>(types.map((t) => [t, 0]));
  targets.forEach((target, i) => {
    const scores = rougeScore(target, predictions[i]!, { ...options, types });
    for (const t of types) sums.set(t, sums.get(t)! + scores[t].fmeasure);
  });
  const out = {} as Record<RougeType, number>;
  for (const t of types) out[t] = (100 * sums.get(t)!) / targets.length;
  return out;
}

// Extractive question answering: the official SQuAD evaluation (v1.1 and v2.0's
// evaluate-v2.0.py: normalisation, exact match, bag-of-tokens F1, the HasAns / NoAns split,
// the best no-answer threshold) and the post-processing of start / end logits into answer
// text, as Hugging Face's utils_qa.postprocess_qa_predictions. Pure TypeScript.

// --- normalisation and the per-answer scores ---------------------------------------------------

/** Python's string.punctuation: the 32 printable ASCII symbols. */
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

/** Python's str.split() separators (str.isspace), which differ from JS's \s: \x1c-\x1f and \x85 are in, \ufeff is out. */
const PY_WHITESPACE = /[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/**
 * Articles as whole words. Python's \b is Unicode-aware (word characters are letters, numbers
 * and "_"), JS's is ASCII-only, so the boundary is spelled out: "thé" keeps its "th".
 */
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/** The official normalisation: lower case, drop punctuation, drop articles, collapse whitespace. */
export function normalizeAnswer(s: string): string {
  let out = "";
  for (const ch of s.toLowerCase()) if (!PUNCTUATION.has(ch)) out += ch;
  return splitTokens(out.replace(ARTICLES, " ")).join(" ");
}

function splitTokens(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((t) => t.length > 0);
}

/**
 * The gold list as evaluate-v2.0.py builds it: answers that normalise to nothing are dropped,
 * and an unanswerable question (no answers) has the gold list [""].
 */
function goldList(gold: string | readonly string[]): string[] {
  const list = (typeof gold === "string" ? [gold] : gold).filter((a) => normalizeAnswer(a) !== "");
  return list.length ? list : [""];
}

function exactOne(prediction: string, gold: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(gold) ? 1 : 0;
}

function f1One(prediction: string, gold: string): number {
  const p = splitTokens(normalizeAnswer(prediction));
  const g = splitTokens(normalizeAnswer(gold));
  // v2.0: when either side is no-answer, F1 is 1 if both are, else 0 (that is, F1 = EM)
  if (p.length === 0 || g.length === 0) return p.length === g.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0; // the size of the multiset intersection (Counter & Counter)
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** 1 when the prediction normalises to a gold answer (max over the golds; [] = unanswerable, whose gold is ""), else 0. */
export function exactMatch(prediction: string, gold: string | readonly string[]): number {
  return Math.max(...goldList(gold).map((g) => exactOne(prediction, g)));
}

/** Token-level F1 of the normalised answers (bag-of-tokens overlap), max over the golds. */
export function f1Score(prediction: string, gold: string | readonly string[]): number {
  return Math.max(...goldList(gold).map((g) => f1One(prediction, g)));
}

// --- dataset scores ------------------------------------------------------------------------------

export interface SquadGold {
  id: string;
  /** Gold answer texts; [] for an unanswerable (v2.0) question. */
  answers: readonly string[];
}

export interface SquadMetrics {
  /** Percentages 0..100, as the official scripts print them. */
  exact_match: number;
  f1: number;
  total: number;
  HasAns_exact?: number;
  HasAns_f1?: number;
  HasAns_total?: number;
  NoAns_exact?: number;
  NoAns_f1?: number;
  NoAns_total?: number;
  best_exact?: number;
  best_exact_thresh?: number;
  best_f1?: number;
  best_f1_thresh?: number;
}

export interface SquadMetricsOptions {
  /** Each question's probability (or score) of having no answer: adds best_exact / best_f1 and their thresholds. */
  noAnswerProbs?: Record<string, number>;
  /** With noAnswerProbs: a question whose probability is above this counts as predicted "no answer" (default 1.0, the script's). */
  noAnswerThreshold?: number;
}

/**
 * The official SQuAD scores of predictions (question id to answer text; "" means no answer).
 * A question without a prediction scores 0 (v1.1's rule; v2.0's script fails). HasAns_* and
 * NoAns_* are reported when the set has unanswerable questions (a v2.0 set).
 */
export function squadMetrics(examples: readonly SquadGold[], predictions: Readonly<Record<string, string>>, options: SquadMetricsOptions = {}): SquadMetrics {
  const has = (p: Record<string, unknown>, id: string): boolean => Object.prototype.hasOwnProperty.call(p, id);
  const probs = options.noAnswerProbs;
  const threshold = options.noAnswerThreshold ?? 1.0;
  const rawExact: number[] = [];
  const rawF1: number[] = [];
  const exact: number[] = [];
  const f1: number[] = [];
  for (const ex of examples) {
    if (probs && !(has(probs, ex.id) && Number.isFinite(probs[ex.id]))) throw new Error(`squadMetrics: noAnswerProbs has no finite value for question "${ex.id}"`);
    const pred = has(predictions, ex.id) ? predictions[ex.id] : undefined;
    const e = pred === undefined ? 0 : exactMatch(pred, ex.answers);
    const f = pred === undefined ? 0 : f1Score(pred, ex.answers);
    rawExact.push(e);
    rawF1.push(f);
    // apply_no_ans_threshold: a confident "no answer" scores 1 exactly when the question has none
    const predictedNoAnswer = probs !== undefined && probs[ex.id]! > threshold;
    exact.push(predictedNoAnswer ? Number(ex.answers.length === 0) : e);
    f1.push(predictedNoAnswer ? Number(ex.answers.length === 0) : f);
  }
  const percent = (xs: number[], idx: number[]): number => (idx.length === 0 ? 0 : (100 * idx.reduce((s, i) => s + xs[i]!, 0)) / idx.length);
  const all = examples.map((_, i) => i);
  const out: SquadMetrics = { exact_match: percent(exact, all), f1: percent(f1, all), total: examples.length };
  const hasAns = all.filter((i) => examples[i]!.answers.length > 0);
  const noAns = all.filter((i) => examples[i]!.answers.length === 0);
  if (noAns.length > 0) {
    if (hasAns.length > 0) Object.assign(out, { HasAns_exact: percent(exact, hasAns), HasAns_f1: percent(f1, hasAns), HasAns_total: hasAns.length });
    Object.assign(out, { NoAns_exact: percent(exact, noAns), NoAns_f1: percent(f1, noAns), NoAns_total: noAns.length });
  }
  if (probs) {
    const e = bestThreshold(examples, predictions, rawExact, probs);
    const f = bestThreshold(examples, predictions, rawF1, probs);
    Object.assign(out, { best_exact: e.score, best_exact_thresh: e.threshold, best_f1: f.score, best_f1_thresh: f.threshold });
  }
  return out;
}

/**
 * evaluate-v2.0.py's find_best_thresh: start with every question answered "no answer" (the
 * unanswerable ones score 1), then admit answers in increasing no-answer probability; the
 * best running total gives the threshold (predict "" when the probability is above it).
 * A missing prediction counts as a wrong answer.
 */
function bestThreshold(examples: readonly SquadGold[], predictions: Readonly<Record<string, string>>, raw: number[], probs: Record<string, number>): { score: number; threshold: number } {
  let current = examples.filter((e) => e.answers.length === 0).length;
  let best = current;
  let threshold = 0;
  // a stable sort: ties keep the examples' order, as Python's sorted over the probabilities file
  const order = examples.map((_, i) => i).sort((a, b) => probs[examples[a]!.id]! - probs[examples[b]!.id]!);
  for (const i of order) {
    const ex = examples[i]!;
    if (ex.answers.length > 0) current += raw[i]!;
    else current += predictions[ex.id] === "" ? 0 : -1;
    if (current > best) {
      best = current;
      threshold = probs[ex.id]!;
    }
  }
  return { score: examples.length ? (100 * best) / examples.length : 0, threshold };
}

// --- post-processing: logits to answer text ------------------------------------------------------

/** What post-processing needs of a feature (a window of one example's context). */
export interface QaFeatureOffsets {
  exampleIndex: number;
  /** Per token: [start, end) in the context, or null outside the context (question, special, padding). */
  offsets: readonly (readonly [number, number] | null)[];
  /** Where [CLS] sits (the no-answer position); default 0. */
  clsIndex?: number;
}

export interface QaCandidate {
  text: string;
  /** startLogit + endLogit. */
  score: number;
  startLogit: number;
  endLogit: number;
  /** Softmax of the scores over the n-best list. */
  probability: number;
  /** [start, end) in the context; null for the no-answer candidate (and the "empty" filler). */
  offsets: [number, number] | null;
}

export interface QaPrediction {
  id: string;
  /** The answer; "" predicts no answer (v2.0). */
  text: string;
  score: number;
  offsets: [number, number] | null;
  nBest: QaCandidate[];
  /** v2.0: the no-answer score, the minimum over the example's windows of start[CLS] + end[CLS]. */
  nullScore?: number;
  /** v2.0: null score minus the best non-null score; above the threshold the answer is "". */
  scoreDiff?: number;
}

export interface PostprocessOptions {
  /** Candidates kept, and start / end indices tried per window (default 20). */
  nBest?: number;
  /** Longest answer in tokens (default 30). */
  maxAnswerLength?: number;
  /** SQuAD v2.0: allow "no answer". */
  versionTwo: boolean;
  /** Predict "" when nullScore - best non-null score > this (default 0). */
  nullThreshold?: number;
}

/** Indices of the k largest values, largest first; ties go to the lower index. */
function topIndices(xs: readonly number[], k: number): number[] {
  return xs
    .map((_, i) => i)
    .sort((a, b) => xs[b]! - xs[a]! || a - b)
    .slice(0, k);
}

/**
 * Turns per-window start / end logits (features x tokens) into each example's answer, as
 * Hugging Face's postprocess_qa_predictions: every pair of the top-nBest starts and ends of a
 * window that lies inside the context, with end >= start and at most maxAnswerLength tokens,
 * is a candidate scored start + end; the best nBest over all windows are kept.
 */
export function postprocessQa(
  features: readonly QaFeatureOffsets[],
  startLogits: readonly (readonly number[])[],
  endLogits: readonly (readonly number[])[],
  examples: readonly { id: string; context: string }[],
  options: PostprocessOptions,
): QaPrediction[] {
  const nBest = options.nBest ?? 20;
  const maxLen = options.maxAnswerLength ?? 30;
  const threshold = options.nullThreshold ?? 0;
  if (startLogits.length !== features.length || endLogits.length !== features.length) {
    throw new Error(`postprocessQa: ${features.length} features but ${startLogits.length} start and ${endLogits.length} end logit rows`);
  }
  const byExample = examples.map((): number[] => []);
  features.forEach((f, i) => {
    const list = byExample[f.exampleIndex];
    if (list === undefined) throw new Error(`postprocessQa: feature ${i} points at example ${f.exampleIndex}, but there are ${examples.length}`);
    list.push(i);
  });

  return examples.map((example, e) => {
    if (byExample[e]!.length === 0) throw new Error(`postprocessQa: example "${example.id}" (index ${e}) has no features`);
    type Raw = Omit<QaCandidate, "text" | "probability">;
    const candidates: Raw[] = [];
    let nullCandidate: Raw | null = null;
    for (const fi of byExample[e]!) {
      const { offsets, clsIndex = 0 } = features[fi]!;
      const start = startLogits[fi]!;
      const end = endLogits[fi]!;
      const nullScore = start[clsIndex]! + end[clsIndex]!;
      if (nullCandidate === null || nullCandidate.score > nullScore) {
        nullCandidate = { score: nullScore, startLogit: start[clsIndex]!, endLogit: end[clsIndex]!, offsets: null };
      }
      for (const s of topIndices(start, nBest)) {
        for (const t of topIndices(end, nBest)) {
          const a = offsets[s];
          const b = offsets[t];
          if (!a || !b || t < s || t - s + 1 > maxLen) continue; // outside the context, reversed or too long
          candidates.push({ score: start[s]! + end[t]!, startLogit: start[s]!, endLogit: end[t]!, offsets: [a[0], b[1]] });
        }
      }
    }
    if (options.versionTwo && nullCandidate) candidates.push(nullCandidate);
    // a stable sort: equal scores keep window, then start, then end order
    let kept = [...candidates].sort((x, y) => y.score - x.score).slice(0, nBest);
    if (options.versionTwo && nullCandidate && !kept.includes(nullCandidate)) kept.push(nullCandidate);
    let texts = kept.map((c) => (c.offsets ? example.context.slice(c.offsets[0], c.offsets[1]) : ""));
    // as the reference: with no non-null candidate at all, a filler "empty" answer scored 0
    if (kept.length === 0 || (kept.length === 1 && texts[0] === "")) {
      kept = [{ score: 0, startLogit: 0, endLogit: 0, offsets: null }, ...kept];
      texts = ["empty", ...texts];
    }
    const top = Math.max(...kept.map((c) => c.score));
    const exps = kept.map((c) => Math.exp(c.score - top));
    const sum = exps.reduce((x, y) => x + y, 0);
    const nBestList: QaCandidate[] = kept.map((c, i) => ({ text: texts[i]!, ...c, probability: exps[i]! / sum }));

    if (!options.versionTwo) {
      const best = nBestList[0]!;
      return { id: example.id, text: best.text, score: best.score, offsets: best.offsets, nBest: nBestList };
    }
    // the best non-null candidate (the filler when only zero-width spans remain)
    const best = nBestList.find((c) => c.text !== "") ?? { text: "empty", score: 0, startLogit: 0, endLogit: 0, probability: 0, offsets: null };
    const nullScore = nullCandidate!.score;
    const scoreDiff = nullScore - best.startLogit - best.endLogit;
    const noAnswer = scoreDiff > threshold;
    return {
      id: example.id,
      text: noAnswer ? "" : best.text,
      score: noAnswer ? nullScore : best.score,
      offsets: noAnswer ? null : best.offsets,
      nBest: nBestList,
      nullScore,
      scoreDiff,
    };
  });
}

/** The id-to-answer map that squadMetrics takes. */
export function predictionsById(predictions: readonly QaPrediction[]): Record<string, string> {
  return Object.fromEntries(predictions.map((p) => [p.id, p.text]));
}

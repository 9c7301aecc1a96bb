// Training a Unigram vocabulary, as sentencepiece's trainer and Hugging Face's UnigramTrainer:
//   1. seed pieces: every character, then the substrings that occur at least twice and branch
//      (the internal nodes of the suffix tree of the words, each word once), scored by
//      frequency x length, the best `seedSize` of them;
//   2. EM: the E step takes each piece's expected count over every segmentation of every word
//      (forward-backward), the M step sets log p = digamma(count) - digamma(total), dropping
//      pieces expected less than half a time (the Bayesian EM of sentencepiece: a sparse prior);
//   3. pruning: each piece's loss is how much the corpus likelihood falls if its occurrences are
//      re-segmented by its second-best segmentation; the pieces of least loss go, a quarter per
//      round, until 1.1 x the target size; then EM again;
//   4. the vocabulary: every character of the corpus (kept whatever its score), then the best
//      pieces up to the target size, sorted by score, after the special tokens.
import { Unigram } from "./unigram.js";

export interface UnigramTrainOptions {
  vocabSize: number;
  /** Special tokens first, in order; `unkToken` must be one of them. */
  specialTokens: string[];
  unkToken: string;
  /** Default 16 (sentencepiece's max_sentencepiece_length). */
  maxPieceLength?: number;
  /** Pieces kept per pruning round (default 0.75). */
  shrinkingFactor?: number;
  /** EM iterations between prunings (default 2). */
  subIterations?: number;
  /** Seed pieces (default 1,000,000). */
  seedSize?: number;
  /** Called after each round of EM and pruning: the pieces left and the size pruning stops at. */
  onRound?: (pieces: number, target: number) => void;
}

/** digamma(x) by recurrence to x >= 7 and the asymptotic series (as Hugging Face's trainer). */
export function digamma(x: number): number {
  let r = 0;
  while (x < 7) {
    r -= 1 / x;
    x += 1;
  }
  x -= 0.5;
  const xx = 1 / x;
  const xx2 = xx * xx;
  const xx4 = xx2 * xx2;
  return r + Math.log(x) + xx2 / 24 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
}

/** Suffix array of code points by prefix doubling (O(n log n) with radix sort by ranks). */
function suffixArray(s: Int32Array): Int32Array {
  const n = s.length;
  let sa: Int32Array = Int32Array.from({ length: n }, (_, i) => i);
  let rank: Int32Array = Int32Array.from(s);
  let tmp: Int32Array = new Int32Array(n);
  for (let k = 1; ; k <<= 1) {
    const key = (i: number): number => (i + k < n ? rank[i + k]! + 1 : 0);
    // sort by (rank[i], rank[i + k]) with two stable counting passes
    const maxRank = Math.max(n, 0x110000) + 2;
    const sortBy = (input: Int32Array, f: (i: number) => number): Int32Array => {
      const count = new Int32Array(maxRank + 1);
      for (const i of input) count[f(i) + 1]!++;
      for (let r = 1; r <= maxRank; r++) count[r]! += count[r - 1]!;
      const out = new Int32Array(n);
      for (const i of input) out[count[f(i)]!++] = i;
      return out;
    };
    sa = sortBy(sortBy(sa, key), (i) => rank[i]!);
    tmp[sa[0]!] = 0;
    for (let j = 1; j < n; j++) {
      const a = sa[j - 1]!;
      const b = sa[j]!;
      tmp[b] = tmp[a]! + (rank[a] !== rank[b] || key(a) !== key(b) ? 1 : 0);
    }
    [rank, tmp] = [tmp, rank];
    if (rank[sa[n - 1]!] === n - 1) break;
  }
  return sa;
}

/** Seed pieces with their log probabilities: characters by count, then branching substrings by count x length. */
export function seedPieces(words: Map<string, number>, maxPieceLength: number, seedSize: number): [string, number][] {
  const chars = new Map<string, number>();
  const codes: number[] = [];
  for (const [w, c] of words) {
    if (w.length === 0) continue;
    for (const ch of w) {
      chars.set(ch, (chars.get(ch) ?? 0) + c);
      codes.push(ch.codePointAt(0)! + 1); // 0 is the word boundary
    }
    codes.push(0);
  }
  const s = Int32Array.from(codes);
  const sa = suffixArray(s);
  // Kasai's LCP: lcp[j] = common prefix of suffixes sa[j - 1] and sa[j]
  const n = s.length;
  const rank = new Int32Array(n);
  for (let j = 0; j < n; j++) rank[sa[j]!] = j;
  const lcp = new Int32Array(n + 1);
  for (let i = 0, h = 0; i < n; i++) {
    if (rank[i]! > 0) {
      const j = sa[rank[i]! - 1]!;
      while (i + h < n && j + h < n && s[i + h] === s[j + h] && s[i + h] !== 0) h++;
      lcp[rank[i]!] = h;
      if (h > 0) h--;
    } else h = 0;
  }
  // LCP intervals (the suffix tree's internal nodes): depth d, occurring (right - left) times
  const substrings: { score: number; text: string }[] = [];
  const stack: [number, number][] = [[0, 0]]; // [depth, left]
  for (let j = 1; j <= n; j++) {
    const h = j < n ? lcp[j]! : 0;
    let left = j - 1;
    while (h < stack[stack.length - 1]![0]) {
      const [d, l] = stack.pop()!;
      left = l;
      if (d > 1 && d <= maxPieceLength) {
        const start = sa[l]!;
        substrings.push({ score: (j - l) * d, text: String.fromCodePoint(...Array.from(s.subarray(start, start + d), (x) => x - 1)) });
      }
    }
    if (h > stack[stack.length - 1]![0]) stack.push([h, left]);
  }
  const seeds: [string, number][] = [...chars].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? 1 : -1));
  substrings.sort((a, b) => b.score - a.score || (a.text < b.text ? 1 : a.text > b.text ? -1 : 0));
  for (const { score, text } of substrings) {
    if (seeds.length >= seedSize) break;
    seeds.push([text, score]);
  }
  const logTotal = Math.log(seeds.reduce((t, [, c]) => t + c, 0));
  return seeds.map(([p, c]) => [p, Math.log(c) - logTotal]);
}

/** E step: expected counts of every piece over all words. */
function expectedCounts(model: Unigram, words: [string, number][]): Float64Array {
  const expected = new Float64Array(model.config.pieces.length);
  for (const [w, c] of words) {
    const z = model.marginal(w, c, expected);
    if (Number.isNaN(z)) throw new Error(`unigram training: the likelihood of "${w.slice(0, 40)}" is NaN`);
  }
  return expected;
}

/** M step: Bayesian EM's digamma update; pieces expected under half a time are dropped (piece 0, the unknown, stays). */
function maximise(pieces: [string, number][], expected: Float64Array): [string, number][] {
  const kept: [string, number][] = [pieces[0]!];
  let total = 0;
  for (let i = 1; i < pieces.length; i++) {
    if (expected[i]! < 0.5) continue;
    kept.push([pieces[i]![0], expected[i]!]);
    total += expected[i]!;
  }
  const logTotal = digamma(total);
  return kept.map(([p, c], i) => [p, i === 0 ? NaN : digamma(c) - logTotal]);
}

/** One pruning round: drops the pieces whose loss of likelihood, re-segmented by their second best, is least. */
function prune(model: Unigram, pieces: [string, number][], words: [string, number][], target: number, shrinking: number): [string, number][] {
  const alwaysKeep = new Array<boolean>(pieces.length).fill(true);
  const alternatives: number[][] = pieces.map(() => []);
  for (let id = 1; id < pieces.length; id++) {
    const nbest = model.twoBest(pieces[id]![0]);
    if (nbest.length === 1) continue;
    if (nbest[0]!.length >= 2) alwaysKeep[id] = false; // the piece is not its own best segmentation
    else alternatives[id] = nbest[1]!;
  }
  // freq: how often each piece is on a word's best path (word counts included)
  const freq = new Float64Array(pieces.length);
  let vsum = 0;
  for (const [w, c] of words) {
    vsum += c;
    for (const e of model.viterbi(w)) freq[e.id]! += c;
  }
  const sum = freq.reduce((a, b) => a + b, 0);
  const logSum = Math.log(sum);
  const kept: [string, number][] = [pieces[0]!];
  const candidates: [number, number][] = [];
  for (let id = 1; id < pieces.length; id++) {
    if (freq[id] === 0 && !alwaysKeep[id]) continue; // never used: removable at no cost
    if (alternatives[id]!.length === 0) {
      kept.push(pieces[id]!);
      continue;
    }
    const f = freq[id]! / vsum; // the share of words (by occurrence) the piece is in
    if (!(f > 0)) continue;
    const logProb = Math.log(freq[id]!) - logSum;
    // its count moves to its alternatives (sentencepiece's count: alternatives of this piece)
    const logSumAlt = Math.log(sum + freq[id]! * (alternatives[id]!.length - 1));
    let logProbAlt = 0;
    for (const a of alternatives[id]!) logProbAlt += Math.log(freq[a]! + freq[id]!) - logSumAlt;
    candidates.push([id, f * (logProb - logProbAlt)]);
  }
  const size = Math.max(target, Math.floor(pieces.length * shrinking));
  candidates.sort((a, b) => b[1] - a[1]);
  for (const [id] of candidates) {
    if (kept.length >= size) break;
    kept.push(pieces[id]!);
  }
  return kept;
}

/**
 * Learns [piece, log probability] in id order (special tokens first, score 0) from word counts
 * (words as the Metaspace pre-tokeniser gives them, "▁" first).
 */
export function learnUnigram(counts: Map<string, number>, o: UnigramTrainOptions): [string, number][] {
  const maxLen = o.maxPieceLength ?? 16;
  const shrinking = o.shrinkingFactor ?? 0.75;
  const subIterations = o.subIterations ?? 2;
  const words = [...counts].filter(([w]) => w.length > 0);
  const required = new Set<string>();
  for (const [w] of words) for (const ch of w) required.add(ch);
  const room = o.vocabSize - o.specialTokens.length;
  if (required.size > room) {
    throw new Error(`vocabulary size ${o.vocabSize} is smaller than the ${required.size} characters of the corpus + ${o.specialTokens.length} special tokens; raise --vocab-size`);
  }
  // piece 0 is the unknown piece while training, whatever the tokenizer's unknown token
  let pieces: [string, number][] = [["<UNK>", NaN], ...seedPieces(counts, maxLen, o.seedSize ?? 1_000_000)];
  const target = Math.floor((o.vocabSize * 11) / 10);
  let model = new Unigram({ pieces, unkId: 0, byteFallback: false });
  o.onRound?.(pieces.length - 1, target);
  for (;;) {
    for (let k = 0; k < subIterations; k++) {
      pieces = maximise(pieces, expectedCounts(model, words));
      model = new Unigram({ pieces, unkId: 0, byteFallback: false });
    }
    if (pieces.length <= target) break;
    pieces = prune(model, pieces, words, target, shrinking);
    model = new Unigram({ pieces, unkId: 0, byteFallback: false });
    o.onRound?.(pieces.length - 1, target);
  }
  // every character stays (unseen ones just above the lowest score), then the best pieces
  const scores = new Map(pieces.slice(1));
  const out: [string, number][] = [];
  const inserted = new Set<string>(["<UNK>", ...o.specialTokens]);
  let penalty = 0;
  for (const ch of [...required].sort()) {
    const s = scores.get(ch);
    out.push([ch, s ?? model.minScore + penalty]);
    if (s === undefined) penalty += 0.0001;
    inserted.add(ch);
  }
  for (const [p, s] of pieces.slice(1)) {
    if (out.length >= room) break;
    if (inserted.has(p)) continue;
    inserted.add(p);
    out.push([p, s]);
  }
  out.sort((a, b) => b[1] - a[1]);
  return [...o.specialTokens.map((t): [string, number] => [t, 0]), ...out];
}

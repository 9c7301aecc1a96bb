// The Unigram language model of SentencePiece (Kudo 2018), as Hugging Face's tokenizer.json
// holds it: pieces with log probabilities; a word is segmented by Viterbi over the lattice of
// every piece that matches at every position. A character no piece covers is the unknown piece
// (score: the lowest score - 10), consecutive unknowns fused into one; with byte fallback an
// unknown run becomes its UTF-8 bytes as "<0xXX>" pieces. The lattice's forward-backward
// marginals and 2-best paths serve the trainer (unigram-trainer.ts).
import { cached } from "./models.js";
import type { Piece } from "./models.js";

/** Hugging Face's K_UNK_PENALTY: an unknown character scores this far below the rarest piece. */
export const UNK_PENALTY = 10;

export interface UnigramConfig {
  /** [piece, log probability] in id order. */
  pieces: [string, number][];
  unkId: number | null;
  byteFallback: boolean;
}

/** A lattice edge: the piece `id` covers word[start, end). */
export interface Edge {
  start: number;
  end: number;
  id: number;
  score: number;
}

/** log(exp(x) + exp(y)), as sentencepiece's LogSumExp (exp of a gap over 50 is dropped). */
function logSumExp(x: number, y: number): number {
  if (x === -Infinity) return y;
  const [lo, hi] = x > y ? [y, x] : [x, y];
  return hi > lo + 50 ? hi : hi + Math.log(Math.exp(lo - hi) + 1);
}

export class Unigram {
  /** Hugging Face's shape of a model's config: the vocabulary as token -> id. */
  readonly config: UnigramConfig & { vocab: Map<string, number> };
  readonly minScore: number;
  readonly unkScore: number;
  /** The longest piece in UTF-16 units: matches are looked up by length, up to this. */
  private readonly maxLength: number;
  private readonly cache = new Map<string, Piece[]>();

  constructor(config: UnigramConfig) {
    const vocab = new Map<string, number>();
    config.pieces.forEach(([p], i) => {
      if (!vocab.has(p)) vocab.set(p, i);
    });
    if (config.unkId !== null && (config.unkId < 0 || config.unkId >= config.pieces.length)) {
      throw new Error(`Unigram: unk_id ${config.unkId} is outside the vocabulary of ${config.pieces.length} pieces`);
    }
    this.config = { ...config, vocab };
    let min = Infinity;
    let longest = 1;
    for (const [p, s] of config.pieces) {
      if (s < min) min = s; // NaN (the trainer's unknown piece) never compares lower
      if (p.length > longest) longest = p.length;
    }
    this.minScore = min === Infinity ? 0 : min;
    this.unkScore = this.minScore - UNK_PENALTY;
    this.maxLength = longest;
  }

  /**
   * Every piece matching at every code point of a word, shortest first per start, plus the
   * unknown piece where no single-character piece matches (Hugging Face's populate_nodes).
   */
  edges(word: string): Edge[] {
    const { vocab, pieces, unkId } = this.config;
    const out: Edge[] = [];
    for (let s = 0; s < word.length; ) {
      const w = word.codePointAt(s)! > 0xffff ? 2 : 1;
      let single = false;
      const limit = Math.min(word.length - s, this.maxLength);
      for (let n = 1; n <= limit; n++) {
        const id = vocab.get(word.slice(s, s + n));
        if (id === undefined) continue;
        out.push({ start: s, end: s + n, id, score: pieces[id]![1] });
        if (n === w) single = true;
      }
      if (!single && unkId !== null) out.push({ start: s, end: s + w, id: unkId, score: this.unkScore });
      s += w;
    }
    return out;
  }

  /** The best segmentation: edges in order. Ties keep the path found first (the earlier start, the shorter piece). */
  viterbi(word: string, edges = this.edges(word)): Edge[] {
    const n = word.length;
    const score = new Float64Array(n + 1).fill(-Infinity);
    const back: (Edge | null)[] = new Array<Edge | null>(n + 1).fill(null);
    score[0] = 0;
    for (const e of edges) {
      if (e.start > 0 && back[e.start] === null) continue; // unreachable (no unknown piece)
      const cand = score[e.start]! + e.score;
      if (back[e.end] === null || cand > score[e.end]!) {
        score[e.end] = cand;
        back[e.end] = e;
      }
    }
    const path: Edge[] = [];
    for (let at = n; at > 0; ) {
      const e = back[at];
      if (!e) return []; // no segmentation (no unknown piece to cover a character)
      path.push(e);
      at = e.start;
    }
    return path.reverse();
  }

  /**
   * Adds freq x the expected count of every piece under the lattice's posterior (forward-
   * backward) to `expected`; returns freq x log Z.
   */
  marginal(word: string, freq: number, expected: Float64Array): number {
    const edges = this.edges(word);
    const n = word.length;
    const alpha = new Float64Array(n + 1).fill(-Infinity);
    const beta = new Float64Array(n + 1).fill(-Infinity);
    alpha[0] = 0;
    beta[n] = 0;
    for (const e of edges) alpha[e.end] = logSumExp(alpha[e.end]!, alpha[e.start]! + e.score);
    for (let i = edges.length - 1; i >= 0; i--) {
      const e = edges[i]!;
      beta[e.start] = logSumExp(beta[e.start]!, e.score + beta[e.end]!);
    }
    const z = alpha[n]!;
    for (const e of edges) {
      const p = Math.exp(alpha[e.start]! + e.score + beta[e.end]! - z);
      if (p > 0) expected[e.id] = expected[e.id]! + freq * p;
    }
    return freq * z;
  }

  /** The two best segmentations (one where there is only one), as piece ids. */
  twoBest(word: string): number[][] {
    const edges = this.edges(word);
    const n = word.length;
    // per position, up to two partial paths: [score, edge, rank of the path before the edge]
    const best: [number, Edge | null, number][][] = Array.from({ length: n + 1 }, () => []);
    best[0]!.push([0, null, 0]);
    for (const e of edges) {
      for (let r = 0; r < best[e.start]!.length; r++) {
        const cand: [number, Edge | null, number] = [best[e.start]![r]![0] + e.score, e, r];
        const at = best[e.end]!;
        if (at.length < 2 || cand[0] > at[1]![0]) {
          at.push(cand);
          at.sort((a, b) => b[0] - a[0]);
          if (at.length > 2) at.pop();
        }
      }
    }
    return best[n]!.map((_, rank) => {
      const ids: number[] = [];
      for (let at = n, r = rank; at > 0; ) {
        const [, e, prev] = best[at]![r]!;
        ids.push(e!.id);
        at = e!.start;
        r = prev;
      }
      return ids.reverse();
    });
  }

  /** A word's pieces with their spans; unknown runs fused (or as bytes with byte fallback). */
  encodeWord(word: string): Piece[] {
    return cached(this.cache, word, (w) => this.compute(w));
  }

  private compute(word: string): Piece[] {
    const { pieces, unkId, byteFallback, vocab } = this.config;
    const out: Piece[] = [];
    const path = this.viterbi(word);
    if (path.length === 0 && word.length > 0) throw new Error(`Unigram: "${word}" has a character no piece covers and the model has no unknown piece`);
    for (let i = 0; i < path.length; i++) {
      const e = path[i]!;
      if (e.id !== unkId) {
        out.push({ id: e.id, token: pieces[e.id]![0], start: e.start, end: e.end });
        continue;
      }
      // Hugging Face fuses a run of unknown characters into one piece, its text the run's
      let end = e.end;
      while (i + 1 < path.length && path[i + 1]!.id === unkId) end = path[++i]!.end;
      const text = word.slice(e.start, end);
      const bytes = byteFallback ? [...Buffer.from(text, "utf8")].map((b) => vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)) : [];
      if (byteFallback && bytes.every((id) => id !== undefined)) {
        for (const id of bytes) out.push({ id: id!, token: pieces[id!]![0], start: e.start, end });
      } else {
        out.push({ id: unkId!, token: text, start: e.start, end });
      }
    }
    return out;
  }
}

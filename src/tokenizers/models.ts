// Subword models: WordPiece (greedy longest match) and BPE (merges by rank).

export interface Piece {
  id: number;
  token: string;
  /** Span within the word (in the word's own units: characters, or bytes for byte-level). */
  start: number;
  end: number;
}

export interface WordPieceConfig {
  vocab: Map<string, number>;
  unkToken: string;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
}

const CACHE_LIMIT = 100_000;

/** A word cache: most text repeats its words; a full cache starts over (bounded memory). */
export function cached<T>(cache: Map<string, T>, key: string, compute: (key: string) => T): T {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const value = compute(key);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

export class WordPiece {
  private readonly cache = new Map<string, Piece[]>();
  readonly unkId: number;

  constructor(readonly config: WordPieceConfig) {
    const unk = config.vocab.get(config.unkToken);
    if (unk === undefined) throw new Error(`WordPiece: the unknown token "${config.unkToken}" is not in the vocabulary`);
    this.unkId = unk;
  }

  /** Greedy longest-match-first, as BERT; a word with no full cover (or too long) is one [UNK]. */
  encodeWord(word: string): Piece[] {
    return cached(this.cache, word, (w) => this.compute(w));
  }

  private compute(word: string): Piece[] {
    const { vocab, continuingSubwordPrefix: prefix, maxInputCharsPerWord, unkToken } = this.config;
    const unk = [{ id: this.unkId, token: unkToken, start: 0, end: word.length }];
    // the limit counts characters (code points), as the reference implementation
    let chars = word.length;
    if (chars > maxInputCharsPerWord) chars = [...word].length;
    if (chars > maxInputCharsPerWord) return unk;
    const out: Piece[] = [];
    let start = 0;
    while (start < word.length) {
      let end = word.length;
      let found: Piece | null = null;
      while (start < end) {
        let sub = word.slice(start, end);
        if (start > 0) sub = prefix + sub;
        const id = vocab.get(sub);
        if (id !== undefined) {
          found = { id, token: sub, start, end };
          break;
        }
        end--;
        // never split a surrogate pair
        const c = word.charCodeAt(end);
        if (c >= 0xdc00 && c <= 0xdfff && end > start) end--;
      }
      if (found === null) return unk;
      out.push(found);
      start = found.end;
    }
    return out;
  }
}

export interface BPEConfig {
  vocab: Map<string, number>;
  /** Merges in rank order, each "a b". */
  merges: [string, string][];
  unkToken: string | null;
}

export class BPE {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, Piece[]>();

  constructor(readonly config: BPEConfig) {
    config.merges.forEach(([a, b], i) => {
      this.ranks.set(`${a} ${b}`, i);
    });
  }

  /** Applies the merges by rank to a word given as symbols (byte characters for byte-level BPE). */
  encodeWord(word: string): Piece[] {
    return cached(this.cache, word, (w) => this.compute(w));
  }

  private compute(word: string): Piece[] {
    const symbols = [...word];
    const starts: number[] = [];
    let pos = 0;
    for (const s of symbols) {
      starts.push(pos);
      pos += s.length;
    }
    // Repeatedly merge the adjacent pair of lowest rank (the reference algorithm).
    while (symbols.length > 1) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i < symbols.length - 1; i++) {
        const r = this.ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      const a = symbols[at]!;
      const b = symbols[at + 1]!;
      // merge every occurrence of this pair, left to right
      for (let i = 0; i < symbols.length - 1; i++) {
        if (symbols[i] === a && symbols[i + 1] === b) {
          symbols.splice(i, 2, a + b);
          starts.splice(i + 1, 1);
        }
      }
    }
    const out: Piece[] = [];
    const { vocab, unkToken } = this.config;
    for (let i = 0; i < symbols.length; i++) {
      const tok = symbols[i]!;
      const start = starts[i]!;
      const end = i + 1 < symbols.length ? starts[i + 1]! : word.length;
      const id = vocab.get(tok);
      if (id !== undefined) out.push({ id, token: tok, start, end });
      else if (unkToken !== null && vocab.has(unkToken)) out.push({ id: vocab.get(unkToken)!, token: unkToken, start, end });
      else throw new Error(`BPE: symbol "${tok}" is not in the vocabulary and there is no unknown token`);
    }
    return out;
  }
}

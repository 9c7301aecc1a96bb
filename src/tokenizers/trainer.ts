// Training WordPiece, byte-level BPE and Unigram vocabularies. WordPiece and BPE learn merges
// the BPE way (Sennrich et al. 2016), as Hugging Face's trainers do: WordPiece keeps the merged
// pieces ("##" marks a piece that continues a word) and drops the merges. Unigram (T5's kind:
// NFKC, words split on whitespace with "▁" prepended) learns by EM and pruning
// (unigram-trainer.ts). Input is streamed line by line, so only the word counts live in
// memory; the same corpus and settings give the same file.
import { createReadStream, existsSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { bertNormalize, identity } from "./normalizer.js";
import { bertPreTokenize, byteLevelPreTokenize, toByteChars } from "./pretokenizers.js";
import { BPE, WordPiece } from "./models.js";
import { Tokenizer } from "./tokenizer.js";
import type { AddedToken, PostProcessor } from "./tokenizer.js";
import { BYTE_TO_CHAR } from "./unicode.js";
import { Unigram } from "./unigram.js";
import { learnUnigram } from "./unigram-trainer.js";
import { metaspacePreTokenize, spmNormalize } from "./spm.js";
import type { MetaspaceOptions, SpmNormalizerStep } from "./spm.js";
import { applyClassicOptions } from "./classic.js";
import type { ClassicTextOptions } from "./classic.js";

export interface TrainOptions {
  kind: "wordpiece" | "bpe" | "unigram";
  vocabSize: number;
  /** WordPiece and BPE: merges of pairs seen fewer times than this are not learned (default 2). */
  minFrequency?: number;
  /** WordPiece: lowercase and strip accents (default false: cased, as `--lowercase` is opt-in). */
  lowercase?: boolean;
  /** Default: [PAD] [UNK] [CLS] [SEP] [MASK] for WordPiece, <s> <pad> </s> <unk> <mask> for BPE, <pad> </s> <unk> (T5's) for Unigram. */
  specialTokens?: string[];
  /** WordPiece: keep only the N most frequent characters in the alphabet. */
  limitAlphabet?: number;
  /**
   * Unigram: T5's sentinels for span corruption, <extra_id_0> ... <extra_id_{N-1}>, added as
   * special tokens after the learned vocabulary (beyond vocabSize, as T5's 32000 + 100), in
   * T5's order: <extra_id_0> has the highest id. Default 0.
   */
  sentinels?: number;
  classic?: ClassicTextOptions;
  /** Called as input is read: bytes done and total (for a progress bar). */
  onProgress?: (done: number, total: number) => void;
  /** Unigram: called after each round of EM and pruning with the pieces left and the size it prunes to. */
  onRound?: (pieces: number, target: number) => void;
}

/** The defaults of a tokenizer training run (the CLI's too). */
export const TOKENIZER_TRAIN_DEFAULTS = { minFrequency: 2, lowercase: false } as const;

export class TrainError extends Error {}

const WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
const UNIGRAM_SPECIALS = ["<pad>", "</s>", "<unk>"];

/** T5's text handling, which a trained Unigram tokenizer gets: NFKC, whitespace split, "▁" before every word. */
const UNIGRAM_NORMALIZER: SpmNormalizerStep[] = [{ type: "NFKC" }];
const UNIGRAM_METASPACE: MetaspaceOptions = { replacement: "\u2581", prependScheme: "always", split: true, whitespaceSplit: true };

function specialsOf(o: TrainOptions): string[] {
  const specials = o.specialTokens ?? (o.kind === "wordpiece" ? WORDPIECE_SPECIALS : o.kind === "unigram" ? UNIGRAM_SPECIALS : BPE_SPECIALS);
  const seen = new Set<string>();
  for (const s of specials) {
    if (s.length === 0) throw new TrainError("special tokens: an empty special token");
    if (/\s/.test(s)) throw new TrainError(`special tokens: "${s}" contains whitespace`);
    if (seen.has(s)) throw new TrainError(`special tokens: "${s}" is given twice`);
    seen.add(s);
  }
  if (o.kind === "wordpiece" && !seen.has("[UNK]")) throw new TrainError('special tokens: WordPiece needs "[UNK]" for words it cannot cover');
  if (o.kind === "unigram" && !seen.has("<unk>")) throw new TrainError('special tokens: Unigram needs "<unk>" for characters it cannot cover');
  const n = o.sentinels ?? 0;
  if (!Number.isInteger(n) || n < 0) throw new TrainError(`sentinels: must be an integer >= 0, got ${n}`);
  if (n > 0 && o.kind !== "unigram") throw new TrainError(`sentinels: T5's <extra_id_N> tokens go with a Unigram tokenizer (--kind unigram), not ${o.kind}`);
  for (const t of sentinelTokens(n)) if (seen.has(t)) throw new TrainError(`special tokens: "${t}" is also a sentinel (--sentinels adds <extra_id_0> ... <extra_id_${n - 1}>)`);
  return specials;
}

/** T5's sentinels in id order: <extra_id_{n-1}> first, <extra_id_0> last (the highest id). */
function sentinelTokens(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `<extra_id_${n - 1 - i}>`);
}

/** Splits text into the words that training counts (the same path that encoding takes). */
export function wordsForTraining(text: string, o: TrainOptions): string[] {
  if (o.kind === "wordpiece") {
    const lower = o.lowercase ?? false;
    const norm = bertNormalize(text, { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: lower });
    let words = bertPreTokenize(norm.text);
    if (o.classic) words = applyClassicOptions(words, o.classic);
    return words.map((w) => w.text);
  }
  if (o.kind === "unigram") return metaspacePreTokenize(spmNormalize(text, UNIGRAM_NORMALIZER, [null]).text, UNIGRAM_METASPACE, true).map((w) => w.text);
  let words = byteLevelPreTokenize(identity(text).text);
  if (o.classic) words = applyClassicOptions(words, o.classic);
  return words.map((w) => toByteChars(w.text).chars);
}

/** Counts the words of texts. */
export function countWords(texts: Iterable<string>, o: TrainOptions, counts = new Map<string, number>()): Map<string, number> {
  for (const t of texts) for (const w of wordsForTraining(t, o)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

/** Streams files line by line into word counts. */
export async function countWordsInFiles(files: string[], o: TrainOptions): Promise<Map<string, number>> {
  if (files.length === 0) throw new TrainError("no input files");
  let total = 0;
  for (const f of files) {
    if (!existsSync(f)) throw new TrainError(`${f}: no such file`);
    const st = statSync(f);
    if (st.isDirectory()) throw new TrainError(`${f}: is a folder, not a text file`);
    if (st.size === 0) throw new TrainError(`${f}: the file is empty`);
    total += st.size;
  }
  const counts = new Map<string, number>();
  let done = 0;
  for (const f of files) {
    const rl = createInterface({ input: createReadStream(f, { encoding: "utf8" }), crlfDelay: Infinity });
    for await (const line of rl) {
      done += Buffer.byteLength(line) + 1;
      for (const w of wordsForTraining(line, o)) counts.set(w, (counts.get(w) ?? 0) + 1);
      o.onProgress?.(Math.min(done, total), total);
    }
  }
  o.onProgress?.(total, total);
  return counts;
}

/** A max-heap of [count, pair key]: higher count first, then the smaller pair (earlier ids). */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.above(l, m)) m = l;
        if (r < this.keys.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const SHIFT = 2 ** 21;

/**
 * Learns merges from word counts until the vocabulary has vocabSize entries (special tokens
 * included) or no pair is frequent enough. Returns the vocabulary in id order and the merges.
 */
export function learnVocabulary(counts: Map<string, number>, o: TrainOptions): { tokens: string[]; merges: [string, string][] } {
  const specials = specialsOf(o);
  const prefix = o.kind === "wordpiece" ? "##" : "";
  const minFreq = o.minFrequency ?? TOKENIZER_TRAIN_DEFAULTS.minFrequency;
  // The alphabet: every byte for byte-level BPE; the characters seen for WordPiece.
  let alphabet: string[];
  if (o.kind === "bpe") {
    alphabet = [...BYTE_TO_CHAR].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  } else {
    const freq = new Map<string, number>();
    for (const [w, c] of counts) for (const ch of w) freq.set(ch, (freq.get(ch) ?? 0) + c);
    let chars = [...freq.entries()];
    if (o.limitAlphabet !== undefined && chars.length > o.limitAlphabet) {
      chars = chars.sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!).slice(0, o.limitAlphabet);
    }
    alphabet = chars.map(([c]) => c).sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  }
  const symbols: string[] = [...specials];
  const ids = new Map<string, number>(symbols.map((s, i) => [s, i]));
  const intern = (s: string): number => {
    let id = ids.get(s);
    if (id === undefined) {
      id = symbols.length;
      symbols.push(s);
      ids.set(s, id);
    }
    return id;
  };
  for (const c of alphabet) intern(c);
  if (prefix) for (const c of alphabet) intern(prefix + c);
  if (o.vocabSize < symbols.length) {
    throw new TrainError(
      `vocabulary size ${o.vocabSize} is smaller than the alphabet: ${alphabet.length} ${o.kind === "bpe" ? "bytes" : "characters"}` +
        `${prefix ? ` (and their ${prefix} forms)` : ""} + ${specials.length} special tokens = ${symbols.length}` +
        (o.kind === "wordpiece" ? "; raise --vocab-size or set --limit-alphabet" : ""),
    );
  }
  // Words as symbol id sequences (characters outside a limited alphabet drop the word).
  const words: Int32Array[] = [];
  const wordCounts: number[] = [];
  for (const [w, c] of counts) {
    const chars = [...w];
    const seq = new Int32Array(chars.length);
    let ok = true;
    chars.forEach((ch, i) => {
      const id = ids.get(i === 0 ? ch : prefix + ch);
      if (id === undefined) ok = false;
      else seq[i] = id;
    });
    if (ok && seq.length > 0) {
      words.push(seq);
      wordCounts.push(c);
    }
  }
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (wi: number, seq: Int32Array, sign: number): void => {
    const c = wordCounts[wi]! * sign;
    for (let i = 0; i + 1 < seq.length; i++) {
      const key = seq[i]! * SHIFT + seq[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + c);
      if (sign > 0) {
        let s = where.get(key);
        if (!s) where.set(key, (s = new Set()));
        s.add(wi);
      }
    }
  };
  words.forEach((seq, wi) => addPairs(wi, seq, 1));
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);
  const merges: [string, string][] = [];
  while (symbols.length < o.vocabSize && heap.size > 0) {
    const [c, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (c !== current) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (c < minFreq || c <= 0) break;
    const a = Math.floor(key / SHIFT);
    const b = key % SHIFT;
    const sa = symbols[a]!;
    const sb = symbols[b]!;
    const merged = intern(sa + (prefix && sb.startsWith(prefix) ? sb.slice(prefix.length) : sb));
    merges.push([sa, sb]);
    const touched = new Set<number>();
    for (const wi of where.get(key) ?? []) {
      const seq = words[wi]!;
      let found = false;
      for (let i = 0; i + 1 < seq.length; i++) if (seq[i] === a && seq[i + 1] === b) found = true;
      if (!found) continue;
      addPairs(wi, seq, -1);
      const next: number[] = [];
      for (let i = 0; i < seq.length; i++) {
        if (i + 1 < seq.length && seq[i] === a && seq[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(seq[i]!);
      }
      const ns = Int32Array.from(next);
      words[wi] = ns;
      addPairs(wi, ns, 1);
      for (let i = 0; i + 1 < ns.length; i++) touched.add(ns[i]! * SHIFT + ns[i + 1]!);
    }
    pairCount.delete(key);
    where.delete(key);
    for (const k of touched) {
      const n = pairCount.get(k) ?? 0;
      if (n > 0) heap.push(n, k);
    }
  }
  return { tokens: symbols, merges };
}

/** Builds the tokenizer from a learned vocabulary. */
export function buildTokenizer(learned: { tokens: string[]; merges: [string, string][] }, o: TrainOptions): Tokenizer {
  const specials = specialsOf(o);
  const vocab = new Map(learned.tokens.map((t, i) => [t, i]));
  const added: AddedToken[] = specials.map((s) => ({ id: vocab.get(s)!, content: s, special: true, lstrip: s === "<mask>", rstrip: false, singleWord: false, normalized: false }));
  const has = (s: string): boolean => specials.includes(s);
  let post: PostProcessor = { type: "none", single: [], pair: [] };
  if (o.kind === "wordpiece" && has("[CLS]") && has("[SEP]")) {
    post = {
      type: "template",
      single: [{ special: "[CLS]", typeId: 0 }, { sequence: "A", typeId: 0 }, { special: "[SEP]", typeId: 0 }],
      pair: [{ special: "[CLS]", typeId: 0 }, { sequence: "A", typeId: 0 }, { special: "[SEP]", typeId: 0 }, { sequence: "B", typeId: 1 }, { special: "[SEP]", typeId: 1 }],
    };
  } else if (o.kind === "bpe" && has("<s>") && has("</s>")) {
    post = {
      type: "roberta",
      single: [{ special: "<s>", typeId: 0 }, { sequence: "A", typeId: 0 }, { special: "</s>", typeId: 0 }],
      pair: [{ special: "<s>", typeId: 0 }, { sequence: "A", typeId: 0 }, { special: "</s>", typeId: 0 }, { special: "</s>", typeId: 0 }, { sequence: "B", typeId: 0 }, { special: "</s>", typeId: 0 }],
    };
  }
  const lower = o.lowercase ?? false;
  return new Tokenizer({
    normalizer: o.kind === "wordpiece" ? { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: lower } : null,
    preTokenizer: o.kind === "wordpiece" ? "bert" : "byte-level",
    addPrefixSpace: false,
    trimOffsets: true,
    model:
      o.kind === "wordpiece"
        ? new WordPiece({ vocab, unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 })
        : new BPE({ vocab, merges: learned.merges, unkToken: has("<unk>") ? "<unk>" : null }),
    postProcessor: post,
    addedTokens: added,
    ...(o.classic ? { classic: o.classic } : {}),
  });
}

/** A Unigram tokenizer, T5's way: the learned pieces, "</s>" appended to each sequence where it is a special token. */
export function buildUnigramTokenizer(learned: [string, number][], o: TrainOptions): Tokenizer {
  const specials = specialsOf(o);
  // sentinels go after the learned pieces, score 0, as in T5's tokenizer.json
  const sentinels = sentinelTokens(o.sentinels ?? 0);
  const pieces: [string, number][] = [...learned, ...sentinels.map((t): [string, number] => [t, 0])];
  const special = (s: string, id: number): AddedToken => ({ id, content: s, special: true, lstrip: false, rstrip: false, singleWord: false, normalized: false });
  const added: AddedToken[] = [...specials.map((s, id) => special(s, id)), ...sentinels.map((s, i) => special(s, learned.length + i))];
  const eos = specials.includes("</s>");
  return new Tokenizer({
    normalizer: UNIGRAM_NORMALIZER,
    preTokenizer: "metaspace",
    metaspace: UNIGRAM_METASPACE,
    addPrefixSpace: false,
    trimOffsets: false,
    model: new Unigram({ pieces, unkId: specials.indexOf("<unk>"), byteFallback: false }),
    postProcessor: eos
      ? {
          type: "template",
          single: [{ sequence: "A", typeId: 0 }, { special: "</s>", typeId: 0 }],
          pair: [{ sequence: "A", typeId: 0 }, { special: "</s>", typeId: 0 }, { sequence: "B", typeId: 0 }, { special: "</s>", typeId: 0 }],
        }
      : { type: "none", single: [], pair: [] },
    addedTokens: added,
  });
}

/** Learns the vocabulary of the chosen kind from word counts and builds the tokenizer. */
function fromCounts(counts: Map<string, number>, o: TrainOptions): Tokenizer {
  if (o.kind !== "unigram") return buildTokenizer(learnVocabulary(counts, o), o);
  try {
    return buildUnigramTokenizer(learnUnigram(counts, { vocabSize: o.vocabSize, specialTokens: specialsOf(o), unkToken: "<unk>", ...(o.onRound ? { onRound: o.onRound } : {}) }), o);
  } catch (e) {
    throw new TrainError((e as Error).message);
  }
}

/** Trains a tokenizer on in-memory texts. */
export function trainTokenizerFromTexts(texts: Iterable<string>, o: TrainOptions): Tokenizer {
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < 1) throw new TrainError(`vocabulary size must be a positive integer, got ${o.vocabSize}`);
  specialsOf(o);
  return fromCounts(countWords(texts, o), o);
}

/** Trains a tokenizer on text files, streaming them. */
export async function trainTokenizer(files: string[], o: TrainOptions): Promise<Tokenizer> {
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < 1) throw new TrainError(`vocabulary size must be a positive integer, got ${o.vocabSize}`);
  specialsOf(o);
  const counts = await countWordsInFiles(files, o);
  if (counts.size === 0) throw new TrainError(`${files.join(", ")}: no words found in the input`);
  return fromCounts(counts, o);
}

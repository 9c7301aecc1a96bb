// Pretraining data: documents tokenised once (cached on disk, so that a second run starts at
// once), then cut into fixed-length training sequences, either packed (masked and causal LM)
// or as sentence pairs (next sentence / sentence order prediction), with a held-out
// validation set of whole documents.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Tokenizer } from "../tokenizers/index.js";
import { Rng } from "./random.js";
import { writeFileAtomic } from "../io/atomic.js";

/** A tokenised corpus: documents -> sentences -> tokens, in flat arrays. */
export interface TokenizedCorpus {
  ids: Int32Array;
  /** 1 where a token starts a word (whole-word and span masking use it). */
  wordStart: Uint8Array;
  /** Token offset of each sentence, plus a final end. */
  sentStart: Int32Array;
  /** Sentence index of each document, plus a final end. */
  docStart: Int32Array;
}

const SENTENCE_END = /(?<=[.!?。！？])\s+(?=\S)/u;

/** Splits a document into sentences (a simple rule: end punctuation then whitespace). */
export function splitSentences(doc: string): string[] {
  return doc
    .split(SENTENCE_END)
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter((s) => s.length > 0);
}

function cacheDir(): string {
  return process.env.LMFORGE_CACHE ?? join(homedir(), ".cache", "lmforge", "data");
}

/**
 * Tokenises documents (without special tokens), or reads the result from the cache when the
 * same documents were tokenised with the same tokenizer before.
 */
export function tokenizeCorpus(docs: string[], tok: Tokenizer, options: { cache?: boolean; onProgress?: (done: number, total: number) => void } = {}): TokenizedCorpus {
  const h = createHash("sha256");
  h.update(JSON.stringify([...tok.vocab.entries()].slice(0, 2000)));
  h.update(String(tok.vocabSize));
  h.update(JSON.stringify(tok.spec.normalizer));
  for (const d of docs) {
    h.update(d);
    h.update("\u0000");
  }
  const key = h.digest("hex").slice(0, 32);
  const file = join(cacheDir(), `${key}.bin`);
  if (options.cache !== false && existsSync(file)) {
    try {
      return decode(readFileSync(file));
    } catch {
      // a damaged cache file is rebuilt
    }
  }
  const ids: number[] = [];
  const wordStart: number[] = [];
  const sentStart: number[] = [];
  const docStart: number[] = [];
  docs.forEach((doc, di) => {
    docStart.push(sentStart.length);
    for (const s of splitSentences(doc)) {
      const e = tok.encode(s, null, { addSpecialTokens: false });
      if (e.ids.length === 0) continue;
      sentStart.push(ids.length);
      e.ids.forEach((id, i) => {
        ids.push(id);
        // a word starts where the word id changes (WordPiece: no "##"; BPE: a new pre-token)
        wordStart.push(i === 0 || e.wordIds[i] !== e.wordIds[i - 1] ? 1 : 0);
      });
    }
    options.onProgress?.(di + 1, docs.length);
  });
  sentStart.push(ids.length);
  docStart.push(sentStart.length - 1);
  const corpus: TokenizedCorpus = { ids: Int32Array.from(ids), wordStart: Uint8Array.from(wordStart), sentStart: Int32Array.from(sentStart), docStart: Int32Array.from(docStart) };
  if (options.cache !== false) {
    try {
      mkdirSync(cacheDir(), { recursive: true });
      writeFileAtomic(file, encode(corpus));
    } catch {
      // no cache where the folder is not writable
    }
  }
  return corpus;
}

function encode(c: TokenizedCorpus): Buffer {
  const parts = [c.ids, c.wordStart, c.sentStart, c.docStart];
  const header = Buffer.alloc(4 * 4 + 4);
  header.writeUInt32LE(0x4c4d4631, 0);
  parts.forEach((p, i) => header.writeUInt32LE(p.length, 4 + 4 * i));
  return Buffer.concat([header, ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)), Buffer.alloc((4 - (c.wordStart.length % 4)) % 4)]);
}

function decode(b: Buffer): TokenizedCorpus {
  if (b.readUInt32LE(0) !== 0x4c4d4631) throw new Error("not a corpus cache");
  const n = [b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt32LE(16)] as const;
  let off = 20;
  const take = <T>(make: (buf: ArrayBuffer, o: number, len: number) => T, len: number, size: number): T => {
    const copy = new Uint8Array(len * size);
    copy.set(b.subarray(off, off + len * size));
    off += len * size;
    return make(copy.buffer, 0, len);
  };
  const ids = take((x, o, l) => new Int32Array(x, o, l), n[0], 4);
  const wordStart = take((x, o, l) => new Uint8Array(x, o, l), n[1], 1);
  const sentStart = take((x, o, l) => new Int32Array(x, o, l), n[2], 4);
  const docStart = take((x, o, l) => new Int32Array(x, o, l), n[3], 4);
  return { ids, wordStart, sentStart, docStart };
}

/** One training sequence before masking. */
export interface Example {
  /** Token ids including the special tokens. */
  ids: Int32Array;
  /** 1 for special tokens ([CLS], [SEP]): never masked. */
  special: Uint8Array;
  wordStart: Uint8Array;
  /** 1 where a sentence of the source text starts (sentence permutation and reordering use it). */
  sentStart?: Uint8Array;
  typeIds: Int32Array;
  /** Sentence-pair objectives: 0 = in order / is next, 1 = swapped / random. */
  pairLabel?: number;
}

export interface SpecialIds {
  cls: number;
  sep: number;
  pad: number;
  mask?: number;
}

/** The documents of the corpus split into training and validation sets (whole documents, seeded). */
export function splitDocs(c: TokenizedCorpus, valFraction: number, seed: number): { train: number[]; validation: number[] } {
  return splitDocIndices(c.docStart.length - 1, valFraction, seed);
}

/** splitDocs for n documents known by their count alone (a token file's). */
export function splitDocIndices(n: number, valFraction: number, seed: number): { train: number[]; validation: number[] } {
  const order = new Rng(seed, 0x5917).shuffle(Array.from({ length: n }, (_, i) => i));
  const nVal = valFraction > 0 ? Math.max(1, Math.round(n * valFraction)) : 0;
  if (n - nVal < 1) throw new Error(`the corpus has ${n} documents: too few to hold out ${nVal} for validation`);
  return { validation: order.slice(0, nVal).sort((a, b) => a - b), train: order.slice(nVal).sort((a, b) => a - b) };
}

function docTokens(c: TokenizedCorpus, d: number): [number, number] {
  return [c.sentStart[c.docStart[d]!]!, c.sentStart[c.docStart[d + 1]!]!];
}

/**
 * Packed sequences: the documents' tokens concatenated, separated by [SEP], cut into blocks of
 * seqLen - 2, each wrapped as [CLS] block [SEP] (or, with causal, blocks of seqLen).
 */
export function packedExamples(c: TokenizedCorpus, docs: number[], seqLen: number, sp: SpecialIds, options: { causal?: boolean } = {}): Example[] {
  const body = options.causal ? seqLen : seqLen - 2;
  if (body < 2) throw new Error(`seq-len ${seqLen} is too short`);
  const stream: number[] = [];
  const starts: number[] = [];
  const sentences: number[] = [];
  for (const d of docs) {
    for (let s = c.docStart[d]!; s < c.docStart[d + 1]!; s++) {
      for (let i = c.sentStart[s]!; i < c.sentStart[s + 1]!; i++) {
        stream.push(c.ids[i]!);
        starts.push(c.wordStart[i]!);
        sentences.push(i === c.sentStart[s] ? 1 : 0);
      }
    }
    stream.push(sp.sep);
    starts.push(1);
    sentences.push(0);
  }
  const out: Example[] = [];
  for (let s = 0; s + body <= stream.length || (s < stream.length && out.length === 0); s += body) {
    const chunk = stream.slice(s, s + body);
    const ws = starts.slice(s, s + body);
    const ss = sentences.slice(s, s + body);
    if (options.causal) {
      out.push({ ids: Int32Array.from(chunk), special: new Uint8Array(chunk.length), wordStart: Uint8Array.from(ws), sentStart: Uint8Array.from(ss), typeIds: new Int32Array(chunk.length) });
    } else {
      const ids = Int32Array.from([sp.cls, ...chunk, sp.sep]);
      const special = new Uint8Array(ids.length);
      special[0] = 1;
      special[ids.length - 1] = 1;
      chunk.forEach((t, i) => {
        if (t === sp.sep) special[i + 1] = 1;
      });
      out.push({ ids, special, wordStart: Uint8Array.from([1, ...ws, 1]), sentStart: Uint8Array.from([0, ...ss, 0]), typeIds: new Int32Array(ids.length) });
    }
  }
  return out;
}

/**
 * Sentence pairs, as BERT's create_instances_from_document: sentences gathered into a chunk up
 * to the target length, cut at a random sentence boundary into A and B. "sop" (ALBERT): B
 * follows A (label 0) or the two are swapped (label 1); a document with one segment pairs
 * with a random document's segment. "nsp" (BERT): B follows A (0) or comes from a random document (1).
 */
export function pairExamples(c: TokenizedCorpus, docs: number[], seqLen: number, sp: SpecialIds, kind: "sop" | "nsp", seed: number): Example[] {
  const budget = seqLen - 3;
  const out: Example[] = [];
  const sentencesOf = (d: number): [number, number][] => {
    const r: [number, number][] = [];
    for (let s = c.docStart[d]!; s < c.docStart[d + 1]!; s++) r.push([c.sentStart[s]!, c.sentStart[s + 1]!]);
    return r;
  };
  const randomSegment = (rng: Rng, not: number, len: number): [number, number] => {
    const d = docs.length > 1 ? docs.filter((x) => x !== not)[rng.int(docs.length - 1)]! : not;
    const [a, b] = docTokens(c, d);
    const start = a + rng.int(Math.max(1, b - a - len));
    return [start, Math.min(b, start + len)];
  };
  for (const d of docs) {
    const rng = new Rng(seed, d, 0x9a125);
    const sents = sentencesOf(d);
    let chunk: [number, number][] = [];
    let len = 0;
    const flush = (): void => {
      if (chunk.length === 0) return;
      const cut = chunk.length >= 2 ? 1 + rng.int(chunk.length - 1) : 1;
      let A: [number, number][] = chunk.slice(0, cut);
      let B: [number, number][] = chunk.slice(cut);
      let label = 0;
      if (kind === "nsp" && (B.length === 0 || rng.next() < 0.5)) {
        const aLen = A.reduce((s, [x, y]) => s + y - x, 0);
        B = [randomSegment(rng, d, Math.max(1, budget - aLen))];
        label = 1;
      } else if (kind === "sop") {
        if (B.length === 0) {
          const aLen = A.reduce((s, [x, y]) => s + y - x, 0);
          B = [randomSegment(rng, d, Math.max(1, budget - aLen))];
        }
        if (rng.next() < 0.5) {
          [A, B] = [B, A];
          label = 1;
        }
      }
      const flat = (segs: [number, number][]): number[] => segs.flatMap(([x, y]) => Array.from(c.ids.subarray(x, y)));
      const flatW = (segs: [number, number][]): number[] => segs.flatMap(([x, y]) => Array.from(c.wordStart.subarray(x, y)));
      // a segment from randomSegment may start mid-sentence: it is marked as a start all the same
      const flatS = (segs: [number, number][]): number[] => segs.flatMap(([x, y]) => Array.from({ length: y - x }, (_, i) => (i === 0 ? 1 : 0)));
      let a = flat(A);
      let b = flat(B);
      let wa = flatW(A);
      let wb = flatW(B);
      let sa = flatS(A);
      let sb = flatS(B);
      // truncate the longer side until the pair fits (from the end, as BERT does at random ends)
      while (a.length + b.length > budget) {
        if (a.length >= b.length) {
          a = a.slice(0, -1);
          wa = wa.slice(0, -1);
          sa = sa.slice(0, -1);
        } else {
          b = b.slice(0, -1);
          wb = wb.slice(0, -1);
          sb = sb.slice(0, -1);
        }
      }
      if (a.length === 0 || b.length === 0) return;
      const ids = Int32Array.from([sp.cls, ...a, sp.sep, ...b, sp.sep]);
      const special = new Uint8Array(ids.length);
      special[0] = 1;
      special[a.length + 1] = 1;
      special[ids.length - 1] = 1;
      const typeIds = new Int32Array(ids.length);
      typeIds.fill(1, a.length + 2);
      out.push({ ids, special, wordStart: Uint8Array.from([1, ...wa, 1, ...wb, 1]), sentStart: Uint8Array.from([0, ...sa, 0, ...sb, 0]), typeIds, pairLabel: label });
      chunk = [];
      len = 0;
    };
    for (const s of sents) {
      chunk.push(s);
      len += s[1] - s[0];
      if (len >= budget) flush();
    }
    flush();
  }
  return out;
}

// Training sequences as windows into a token file (token-file.ts), made when asked for: the
// same sequences packedExamples makes from the in-memory corpus (documents' tokens
// concatenated, each followed by [SEP], cut into blocks), without the corpus in memory. The
// list is an array-like whose elements are read from the file on access, so the Trainer's
// shuffle stays what it is: a permutation of indices, not of the data.
import type { Example, SpecialIds } from "./pretraining.js";
import type { TokenFile } from "./token-file.js";
import { SENTENCE_START, WORD_START } from "./token-file.js";

/**
 * A read-only array of `length` elements made by `at(i)` on access (index, length, slice,
 * map, for..of, spread all work; nothing is cached).
 */
export function lazyArray<T>(length: number, at: (i: number) => T): readonly T[] {
  const isIndex = (p: string | symbol): number => {
    if (typeof p !== "string") return -1;
    const i = Number(p);
    return Number.isInteger(i) && i >= 0 && i < length && String(i) === p ? i : -1;
  };
  return new Proxy([] as T[], {
    get(target, prop, receiver) {
      if (prop === "length") return length;
      const i = isIndex(prop);
      return i >= 0 ? at(i) : Reflect.get(target, prop, receiver);
    },
    has(target, prop) {
      return isIndex(prop) >= 0 || Reflect.has(target, prop);
    },
    set() {
      throw new Error("windows of a token file are read-only");
    },
  });
}

/** A sub-range [start, end) of an array-like, itself lazy. */
export function lazySlice<T>(items: readonly T[], start: number, end: number): readonly T[] {
  return lazyArray(Math.max(0, end - start), (i) => items[start + i]!);
}

/**
 * packedExamples over a token file: the documents `docs` (ascending indices) packed and cut
 * into blocks of seqLen - 2 wrapped as [CLS] block [SEP] (causal: blocks of seqLen).
 */
export function packedWindows(file: TokenFile, docs: readonly number[], seqLen: number, sp: SpecialIds, options: { causal?: boolean } = {}): readonly Example[] {
  const causal = options.causal ?? false;
  const body = causal ? seqLen : seqLen - 2;
  if (body < 2) throw new Error(`seq-len ${seqLen} is too short`);
  for (let i = 1; i < docs.length; i++) if (docs[i]! <= docs[i - 1]!) throw new Error("packedWindows: documents must be in ascending order");
  // the virtual stream: document i's tokens then [SEP], starting at segStart[i]  (docs.length + 1)
  const segStart = new Float64Array(docs.length + 1);
  docs.forEach((d, i) => {
    const [a, b] = file.docRange(d);
    segStart[i + 1] = segStart[i]! + (b - a) + 1;
  });
  const total = segStart[docs.length]!;
  // as packedExamples: every full block, or one short block when the stream is shorter than one
  const count = total >= body ? Math.floor(total / body) : total > 0 ? 1 : 0;
  const segmentAt = (v: number): number => {
    let lo = 0;
    let hi = docs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segStart[mid]! <= v) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  return lazyArray(count, (k) => {
    const vStart = k * body;
    const vEnd = Math.min(total, vStart + body);
    const first = segmentAt(vStart);
    const last = segmentAt(vEnd - 1);
    // one read covers the file span of the window's documents (they are ascending)
    const fileStart = file.docRange(docs[first]!)[0];
    const fileEnd = file.docRange(docs[last]!)[1];
    const ids = file.ids(fileStart, fileEnd);
    const flags = file.flags(fileStart, fileEnd);
    const n = vEnd - vStart;
    const chunk = new Int32Array(n);
    const ws = new Uint8Array(n);
    const ss = new Uint8Array(n);
    for (let v = vStart, seg = first; v < vEnd; v++) {
      while (v >= segStart[seg + 1]!) seg++;
      const [a, b] = file.docRange(docs[seg]!);
      const t = a + (v - segStart[seg]!);
      const j = v - vStart;
      if (t < b) {
        chunk[j] = ids[t - fileStart]!;
        ws[j] = flags[t - fileStart]! & WORD_START ? 1 : 0;
        ss[j] = flags[t - fileStart]! & SENTENCE_START ? 1 : 0;
      } else {
        chunk[j] = sp.sep; // the document's separator
        ws[j] = 1;
      }
    }
    if (causal) return { ids: chunk, special: new Uint8Array(n), wordStart: ws, sentStart: ss, typeIds: new Int32Array(n) };
    const ids2 = new Int32Array(n + 2);
    ids2[0] = sp.cls;
    ids2.set(chunk, 1);
    ids2[n + 1] = sp.sep;
    const special = new Uint8Array(n + 2);
    special[0] = 1;
    special[n + 1] = 1;
    chunk.forEach((t, i) => {
      if (t === sp.sep) special[i + 1] = 1;
    });
    const wordStart = new Uint8Array(n + 2);
    wordStart[0] = 1;
    wordStart.set(ws, 1);
    wordStart[n + 1] = 1;
    const sentStart = new Uint8Array(n + 2);
    sentStart.set(ss, 1);
    return { ids: ids2, special, wordStart, sentStart, typeIds: new Int32Array(n + 2) };
  });
}

// Pretraining data from a token file (src/data/token-file.ts), for corpora larger than
// memory: the inputs tokenised once by streaming, then training and validation sequences
// as windows into the file, split as taskData splits the in-memory corpus (whole documents
// held out, seeded; the last sequences when the corpus has too few documents).
import type { Tokenizer } from "../tokenizers/index.js";
import { corpusBytes, corpusSources, lazySlice, packedWindows, splitDocIndices, streamTokenize } from "../data/index.js";
import type { Example, SpecialIds, StreamTokenizeResult, TokenFile } from "../data/index.js";
import type { ObjectiveEntry } from "../objectives/index.js";

/** Inputs above this many bytes are tokenised by streaming (--stream forces it below). */
export const STREAM_THRESHOLD_MB_DEFAULT = 256;

/**
 * Why a task's text is not streamed, or null when it is: only files (not documents given
 * in memory), of objectives that pack sequences, above the threshold or with --stream.
 */
export function streamRefusal(spec: { input?: string[]; documents?: string[] }, entry: ObjectiveEntry, o: { stream: boolean; streamThresholdMb: number }): string | null {
  if (spec.documents) return "documents given in memory";
  if (entry.sequences === "sop" || entry.sequences === "nsp") return `${entry.name} pairs sentences of a document (read in memory)`;
  if (o.stream) return null;
  const bytes = corpusBytes(corpusSources(spec.input ?? []));
  return bytes > o.streamThresholdMb * 1e6 ? null : "small";
}

/** The token file of a task's inputs: reused when whole, else tokenised on `threads` workers. */
export async function tokenFileFor(input: string[], tok: Tokenizer, tokenizerPath: string, o: { threads?: number; onProgress?: (done: number, total: number) => void; log?: (line: string) => void }): Promise<StreamTokenizeResult> {
  const r = await streamTokenize(input, tok, tokenizerPath, { ...(o.threads !== undefined ? { threads: o.threads } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  const h = r.file.header;
  const mb = r.bytes / 1e6;
  o.log?.(`token file ${r.key} (${h.dtype}, ${h.tokens} tokens, ${h.documents} documents): ${r.reused ? "reused" : `tokenised ${mb.toFixed(1)} MB in ${r.seconds.toFixed(1)} s (${(mb / Math.max(r.seconds, 1e-3)).toFixed(2)} MB/s)`}`);
  return r;
}

/** Training and validation windows of a token file, split as taskData splits an in-memory corpus. */
export function streamTaskData(file: TokenFile, entry: ObjectiveEntry, o: { seqLen: number; valFraction: number; seed: number }, sp: SpecialIds): { train: readonly Example[]; validation: readonly Example[]; note: string } {
  const causal = entry.sequences === "causal" || entry.sequences === "spans";
  const n = file.documents;
  if (o.valFraction === 0 || n * o.valFraction >= 1) {
    const split = splitDocIndices(n, o.valFraction, o.seed);
    return { train: packedWindows(file, split.train, o.seqLen, sp, { causal }), validation: packedWindows(file, split.validation, o.seqLen, sp, { causal }), note: `${split.validation.length} whole documents held out; windows read from the token file` };
  }
  const all = packedWindows(file, Array.from({ length: n }, (_, i) => i), o.seqLen, sp, { causal });
  const nVal = Math.max(1, Math.round(all.length * o.valFraction));
  if (all.length - nVal < 1) throw new Error(`the corpus makes ${all.length} sequence(s) of ${o.seqLen} tokens: too few to hold out ${nVal} for validation (lower --val-fraction or --seq-len, or give more text)`);
  return { train: lazySlice(all, 0, all.length - nVal), validation: lazySlice(all, all.length - nVal, all.length), note: `the corpus has ${n} document(s), too few to hold out whole ones: the last ${nVal} of its ${all.length} sequences are held out instead` };
}

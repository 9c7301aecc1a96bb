// A tokenised corpus on disk, for corpora larger than memory: the token ids written once
// (uint16 where the vocabulary fits, else uint32), a flag byte per token (word start, sentence
// start, as TokenizedCorpus has them) and each document's token offset, beside a small JSON
// header. Training reads windows of it with positioned reads (fs.readSync at an offset): the
// page cache keeps the hot part in memory as a memory map would, without a native binding,
// and the process holds only the windows it is reading.
//
// Files, for a key K (a hash of the inputs' paths, sizes, mtimes and the tokenizer):
//   K.ids    tokens x uint16|uint32 (little-endian)
//   K.flags  tokens x uint8: bit 0 a word starts, bit 1 a sentence starts
//   K.docs   (documents + 1) x float64: token offset of each document, then the total
//   K.json   the header, written last: its presence means the three files are whole
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { Tokenizer } from "../tokenizers/index.js";

export const TOKEN_FILE_FORMAT = "lmforge-tokens";
export const TOKEN_FILE_VERSION = 1;
export const WORD_START = 1;
export const SENTENCE_START = 2;

export type TokenDType = "uint16" | "uint32";

/** The JSON header of a token file. */
export interface TokenFileHeader {
  format: typeof TOKEN_FILE_FORMAT;
  version: number;
  key: string;
  dtype: TokenDType;
  tokens: number;
  documents: number;
  vocabSize: number;
  /** The inputs as they were when tokenised (the key is made from these). */
  sources: { path: string; size: number; mtimeMs: number }[];
}

/** The folder of token files: $LMFORGE_CACHE, else ~/.cache/lmforge/data (as the in-memory cache). */
export function tokenCacheDir(): string {
  return process.env.LMFORGE_CACHE ?? join(homedir(), ".cache", "lmforge", "data");
}

/** The narrowest id type that holds every id of a vocabulary. */
export function tokenDType(vocabSize: number): TokenDType {
  return vocabSize <= 0x10000 ? "uint16" : "uint32";
}

export function bytesPerToken(dtype: TokenDType): number {
  return dtype === "uint16" ? 2 : 4;
}

/** A tokenizer's identity, as the in-memory cache makes it (vocabulary head, size, normalizer). */
export function tokenizerHash(tok: Tokenizer): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([...tok.vocab.entries()].slice(0, 2000)));
  h.update(String(tok.vocabSize));
  h.update(JSON.stringify(tok.spec.normalizer));
  h.update(JSON.stringify(tok.spec.preTokenizer));
  return h.digest("hex");
}

/** The inputs' identity without reading them: absolute path, size and mtime of each file. */
export function sourceStats(files: string[]): TokenFileHeader["sources"] {
  return files.map((f) => {
    const st = statSync(f);
    return { path: resolve(f), size: st.size, mtimeMs: st.mtimeMs };
  });
}

/** The key of a token file: the sources, the tokenizer and the format version. */
export function tokenFileKey(sources: TokenFileHeader["sources"], tok: Tokenizer, textField = "text"): string {
  const h = createHash("sha256");
  h.update(`${TOKEN_FILE_FORMAT}/${TOKEN_FILE_VERSION}\u0000${textField}\u0000`);
  h.update(JSON.stringify(sources));
  h.update(tokenizerHash(tok));
  return h.digest("hex").slice(0, 32);
}

/** The paths of a token file's parts. */
export function tokenFilePaths(dir: string, key: string): { header: string; ids: string; flags: string; docs: string } {
  return { header: join(dir, `${key}.json`), ids: join(dir, `${key}.ids`), flags: join(dir, `${key}.flags`), docs: join(dir, `${key}.docs`) };
}

/**
 * A token file opened for positioned reads. Only the document offsets live in memory
 * (8 bytes a document); ids and flags are read on demand.
 */
export class TokenFile {
  readonly header: TokenFileHeader;
  /** Token offset of each document, plus the total: (documents + 1). */
  readonly docOffsets: Float64Array;
  private readonly idsFd: number;
  private readonly flagsFd: number;
  private readonly width: number;

  private constructor(header: TokenFileHeader, docOffsets: Float64Array, idsFd: number, flagsFd: number) {
    this.header = header;
    this.docOffsets = docOffsets;
    this.idsFd = idsFd;
    this.flagsFd = flagsFd;
    this.width = bytesPerToken(header.dtype);
  }

  /**
   * Opens the token file of `key` in `dir`, checking that its parts are whole (sizes agree with
   * the header, offsets rise to the token count). Throws, naming the part at fault, if not.
   */
  static open(dir: string, key: string): TokenFile {
    const p = tokenFilePaths(dir, key);
    const header = JSON.parse(readFileSync(p.header, "utf8")) as TokenFileHeader;
    if (header.format !== TOKEN_FILE_FORMAT || header.version !== TOKEN_FILE_VERSION || header.key !== key) throw new Error(`${p.header}: not a ${TOKEN_FILE_FORMAT} v${TOKEN_FILE_VERSION} header for ${key}`);
    if (header.dtype !== "uint16" && header.dtype !== "uint32") throw new Error(`${p.header}: dtype ${String(header.dtype)}`);
    const want = (path: string, bytes: number): void => {
      const have = statSync(path).size;
      if (have !== bytes) throw new Error(`${path}: ${have} bytes, the header says ${bytes}`);
    };
    want(p.ids, header.tokens * bytesPerToken(header.dtype));
    want(p.flags, header.tokens);
    want(p.docs, (header.documents + 1) * 8);
    const raw = readFileSync(p.docs);
    const docOffsets = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    for (let d = 0; d < header.documents; d++) if (!(docOffsets[d + 1]! >= docOffsets[d]!)) throw new Error(`${p.docs}: document ${d} ends before it starts`);
    if (docOffsets[0] !== 0 || docOffsets[header.documents] !== header.tokens) throw new Error(`${p.docs}: offsets do not run from 0 to ${header.tokens}`);
    const idsFd = openSync(p.ids, "r");
    const flagsFd = openSync(p.flags, "r");
    return new TokenFile(header, docOffsets, idsFd, flagsFd);
  }

  /** Whether a whole token file for `key` is in `dir` (open() succeeds). */
  static isWhole(dir: string, key: string): boolean {
    if (!existsSync(tokenFilePaths(dir, key).header)) return false;
    try {
      TokenFile.open(dir, key).close();
      return true;
    } catch {
      return false;
    }
  }

  get documents(): number {
    return this.header.documents;
  }

  get tokens(): number {
    return this.header.tokens;
  }

  /** Token range [start, end) of document d. */
  docRange(d: number): [number, number] {
    return [this.docOffsets[d]!, this.docOffsets[d + 1]!];
  }

  /** Ids of tokens [start, end), as int32. */
  ids(start: number, end: number): Int32Array {
    const n = end - start;
    const buf = Buffer.allocUnsafe(n * this.width);
    readFully(this.idsFd, buf, start * this.width);
    const out = new Int32Array(n);
    if (this.width === 2) for (let i = 0; i < n; i++) out[i] = buf.readUInt16LE(2 * i);
    else for (let i = 0; i < n; i++) out[i] = buf.readUInt32LE(4 * i);
    return out;
  }

  /** Flag bytes of tokens [start, end) (WORD_START | SENTENCE_START). */
  flags(start: number, end: number): Uint8Array {
    const buf = new Uint8Array(end - start);
    readFully(this.flagsFd, buf, start);
    return buf;
  }

  close(): void {
    closeSync(this.idsFd);
    closeSync(this.flagsFd);
  }

  /** The byte size of the ids part (for logs). */
  idsBytes(): number {
    return fstatSync(this.idsFd).size;
  }
}

function readFully(fd: number, buf: Uint8Array, position: number): void {
  let off = 0;
  while (off < buf.byteLength) {
    const n = readSync(fd, buf, off, buf.byteLength - off, position + off);
    if (n === 0) throw new Error(`token file: read past its end at byte ${position + off}`);
    off += n;
  }
}

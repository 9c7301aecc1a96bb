// Streaming tokenisation of corpora larger than memory: the input files are read as a stream
// of documents (blank-line separated paragraphs of text files, lines of JSONL, as
// readDocuments splits them), cut into chunks, tokenised on worker threads (each loading the
// tokenizer from its files), and written in chunk order (so the result does not depend on the
// thread count) to a token file (token-file.ts) under temporary names, renamed into place at
// the end: an interrupted run leaves no half file. Memory holds a few chunks per thread.
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { extname, join } from "node:path";
import { Worker } from "node:worker_threads";
import type { Tokenizer } from "../tokenizers/index.js";
import { fsyncDir, tempPathFor, writeAll, writeFileAtomic } from "../io/atomic.js";
import { EMBEDDED_CORPORA, embeddedCorpus } from "./corpora.js";
import type { CorpusName } from "./corpora.js";
import { tokenizeDocuments } from "./doc-tokens.js";
import type { DocTokens } from "./doc-tokens.js";
import { TOKEN_FILE_FORMAT, TOKEN_FILE_VERSION, TokenFile, sourceStats, tokenCacheDir, tokenDType, tokenFileKey, tokenFilePaths } from "./token-file.js";
import type { TokenFileHeader } from "./token-file.js";

/** One input: a file on disk or an embedded corpus (by name). */
export type CorpusSource = { file: string } | { embedded: CorpusName };

/** The inputs as readDocuments resolves them: embedded names, folders (their .txt/.jsonl files, sorted), files. */
export function corpusSources(inputs: string[]): CorpusSource[] {
  if (inputs.length === 0) return [{ embedded: "moby-dick" }, { embedded: "sotu" }];
  const out: CorpusSource[] = [];
  for (const input of inputs) {
    if ((EMBEDDED_CORPORA as readonly string[]).includes(input) && !existsSync(input)) {
      out.push({ embedded: input as CorpusName });
      continue;
    }
    if (!existsSync(input)) throw new Error(`${input}: no such file or folder (embedded corpora: ${EMBEDDED_CORPORA.join(", ")})`);
    if (!statSync(input).isDirectory()) {
      out.push({ file: input });
      continue;
    }
    for (const f of readdirSync(input).filter((f) => [".txt", ".jsonl", ".text", ""].includes(extname(f))).sort()) {
      if (statSync(join(input, f)).isFile()) out.push({ file: join(input, f) });
    }
  }
  return out;
}

/** The total byte size of the sources' files (embedded corpora count 0: they are small). */
export function corpusBytes(sources: CorpusSource[]): number {
  return sources.reduce((n, s) => n + ("file" in s ? statSync(s.file).size : 0), 0);
}

/**
 * The documents of the sources, one at a time, with the bytes read so far (for progress):
 * the same documents, in the same order, as readDocuments gives, without holding a file.
 */
export async function* streamDocuments(sources: CorpusSource[], options: { textField?: string } = {}): AsyncGenerator<{ doc: string; bytes: number }> {
  let bytes = 0;
  for (const s of sources) {
    if ("embedded" in s) {
      for (const doc of embeddedCorpus(s.embedded)) yield { doc, bytes };
      continue;
    }
    const jsonl = s.file.endsWith(".jsonl");
    let lineNo = 0;
    let para: string[] = [];
    let rest = "";
    const onLine = (line: string): string | null => {
      lineNo++;
      if (jsonl) {
        if (line.trim() === "") return null;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch (e) {
          throw new Error(`${s.file}:${lineNo}: not valid JSON (${(e as Error).message})`);
        }
        const field = options.textField ?? "text";
        const t = (obj as Record<string, unknown>)[field];
        if (typeof t !== "string") throw new Error(`${s.file}:${lineNo}: no string field "${field}"`);
        return t.trim() ? t : null;
      }
      // a whitespace-only line ends a paragraph (splitDocuments splits at \n\s*\n)
      if (/^\s*$/.test(line)) {
        const doc = para.join("\n").trim();
        para = [];
        return doc || null;
      }
      para.push(line);
      return null;
    };
    for await (const chunk of createReadStream(s.file, { encoding: "utf8", highWaterMark: 1 << 20 })) {
      const text = rest + (chunk as string);
      bytes += Buffer.byteLength(chunk as string);
      const lines = text.split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        const doc = onLine(line);
        if (doc !== null) yield { doc, bytes };
      }
    }
    for (const line of [rest, ""]) {
      const doc = onLine(line);
      if (doc !== null) yield { doc, bytes };
    }
  }
}

export interface StreamTokenizeOptions {
  /** Worker threads (default: the cores); 0 tokenises on this thread. */
  threads?: number;
  /** JSONL: the field that holds the text (default "text"). */
  textField?: string;
  /** Where token files live (default tokenCacheDir()). */
  dir?: string;
  /** Characters of text per chunk sent to a worker (default 256 K). */
  chunkChars?: number;
  /** Called as bytes of input are read: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface StreamTokenizeResult {
  file: TokenFile;
  key: string;
  /** Whether a whole token file was found and reused (nothing tokenised). */
  reused: boolean;
  seconds: number;
  /** Bytes of input. */
  bytes: number;
}

/**
 * The token file of the inputs under this tokenizer: reused when a whole one exists for the
 * same files (paths, sizes, mtimes) and tokenizer, else built by streaming tokenisation.
 *
 * @example const { file } = await streamTokenize(["big.txt"], tok, "tokenizer/");
 */
export async function streamTokenize(inputs: string[], tok: Tokenizer, tokenizerPath: string, options: StreamTokenizeOptions = {}): Promise<StreamTokenizeResult> {
  const started = Date.now();
  const sources = corpusSources(inputs);
  const stats: TokenFileHeader["sources"] = sources.map((s) => ("file" in s ? sourceStats([s.file])[0]! : { path: `embedded:${s.embedded}`, size: 0, mtimeMs: 0 }));
  const key = tokenFileKey(stats, tok, options.textField);
  const dir = options.dir ?? tokenCacheDir();
  const total = corpusBytes(sources);
  if (TokenFile.isWhole(dir, key)) return { file: TokenFile.open(dir, key), key, reused: true, seconds: (Date.now() - started) / 1000, bytes: total };
  mkdirSync(dir, { recursive: true });
  removeStaleParts(dir, key);
  const paths = tokenFilePaths(dir, key);
  const dtype = tokenDType(tok.vocabSize);
  const parts = { ids: tempPathFor(paths.ids), flags: tempPathFor(paths.flags), docs: tempPathFor(paths.docs) };
  const fds = { ids: openSync(parts.ids, "w"), flags: openSync(parts.flags, "w"), docs: openSync(parts.docs, "w") };
  let tokens = 0;
  let documents = 0;
  const write = (r: DocTokens): void => {
    writeAll(fds.ids, dtype === "uint16" ? new Uint8Array(Uint16Array.from(r.ids).buffer) : new Uint8Array(Uint32Array.from(r.ids).buffer));
    writeAll(fds.flags, r.flags);
    const ends = new Float64Array(r.docLengths.length);
    r.docLengths.forEach((n, i) => {
      tokens += n;
      ends[i] = tokens;
    });
    writeAll(fds.docs, new Uint8Array(ends.buffer));
    documents += r.docLengths.length;
  };
  let closed = false;
  const closeAll = (): void => {
    if (closed) return;
    closed = true;
    for (const fd of Object.values(fds)) {
      fsyncSync(fd);
      closeSync(fd);
    }
  };
  try {
    writeAll(fds.docs, new Uint8Array(new Float64Array([0]).buffer));
    await tokenizeChunks(sources, tok, tokenizerPath, { ...options, total }, write);
    closeAll();
    if (documents === 0) throw new Error(`${inputs.join(", ")}: no text found`);
    for (const part of ["ids", "flags", "docs"] as const) renameSync(parts[part], paths[part]);
    fsyncDir(dir);
    const header: TokenFileHeader = { format: TOKEN_FILE_FORMAT, version: TOKEN_FILE_VERSION, key, dtype, tokens, documents, vocabSize: tok.vocabSize, sources: stats };
    // the header goes last: until it is there, the parts are not a token file
    writeFileAtomic(paths.header, JSON.stringify(header, null, 1) + "\n");
  } catch (e) {
    try {
      closeAll();
    } catch {
      // already closed or failing: the files are removed below
    }
    for (const p of Object.values(parts)) rmSync(p, { force: true });
    throw e;
  }
  return { file: TokenFile.open(dir, key), key, reused: false, seconds: (Date.now() - started) / 1000, bytes: total };
}

/**
 * Removes the temporary parts that a killed tokenisation of `key` left (named by
 * tempPathFor: ".KEY.ids.tmp-PID-RANDOM"), when their process is gone.
 */
function removeStaleParts(dir: string, key: string): void {
  for (const name of readdirSync(dir)) {
    const m = name.startsWith(`.${key}.`) ? /\.tmp-(\d+)-[0-9a-f]+$/.exec(name) : null;
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === "EPERM";
    }
    if (!alive) rmSync(join(dir, name), { force: true });
  }
}

/** Reads, chunks and tokenises the sources, handing each chunk's tokens to `write` in order. */
async function tokenizeChunks(sources: CorpusSource[], tok: Tokenizer, tokenizerPath: string, o: StreamTokenizeOptions & { total: number }, write: (r: DocTokens) => void): Promise<void> {
  const threads = o.threads ?? availableParallelism();
  const chunkChars = o.chunkChars ?? 1 << 18;
  const chunks = chunked(streamDocuments(sources, o.textField === undefined ? {} : { textField: o.textField }), chunkChars);
  if (threads === 0) {
    for await (const { docs, bytes } of chunks) {
      write(tokenizeDocuments(docs, tok));
      o.onProgress?.(bytes, o.total);
    }
    return;
  }
  const url = new URL("./tokenize-worker.js", import.meta.url);
  const workers = Array.from({ length: threads }, () => new Worker(url, { workerData: { tokenizer: tokenizerPath } }));
  const idle = [...workers];
  const done = new Map<number, DocTokens>();
  const bytesAt = new Map<number, number>();
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const signal = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  let nextWrite = 0;
  const flush = (): void => {
    for (let r = done.get(nextWrite); r; r = done.get(nextWrite)) {
      done.delete(nextWrite);
      write(r);
      o.onProgress?.(bytesAt.get(nextWrite) ?? 0, o.total);
      bytesAt.delete(nextWrite);
      nextWrite++;
    }
  };
  for (const w of workers) {
    w.on("message", (m: DocTokens & { id: number; error?: string }) => {
      idle.push(w);
      if (m.error !== undefined) failure ??= new Error(`tokenising: ${m.error}`);
      else done.set(m.id, m);
      signal();
    });
    w.on("error", (e) => {
      failure ??= e;
      signal();
    });
  }
  const waitForWork = (): Promise<void> => new Promise((res) => (wake = res));
  try {
    let id = 0;
    for await (const { docs, bytes } of chunks) {
      // bounded memory: at most one chunk per worker in flight, finished chunks written as they come in order
      // (and at most 2 finished chunks per worker waiting behind a slow one)
      for (;;) {
        flush();
        if (failure) throw failure;
        if (idle.length > 0 && done.size < 2 * threads) break;
        await waitForWork();
      }
      bytesAt.set(id, bytes);
      idle.pop()!.postMessage({ id, docs });
      id++;
    }
    while (nextWrite < id) {
      if (failure) throw failure;
      flush();
      if (nextWrite < id) await waitForWork();
    }
    if (failure) throw failure;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Documents grouped into chunks of about `chars` characters. */
async function* chunked(docs: AsyncGenerator<{ doc: string; bytes: number }>, chars: number): AsyncGenerator<{ docs: string[]; bytes: number }> {
  let batch: string[] = [];
  let size = 0;
  let bytes = 0;
  for await (const d of docs) {
    batch.push(d.doc);
    size += d.doc.length;
    bytes = d.bytes;
    if (size >= chars) {
      yield { docs: batch, bytes };
      batch = [];
      size = 0;
    }
  }
  if (batch.length) yield { docs: batch, bytes };
}

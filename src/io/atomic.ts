// Atomic writes, the one way lmforge writes a file it must not half-write (checkpoints,
// safetensors, tokenizer files, data caches, logs rewritten in place): write to a temporary
// name beside the target, fsync the file, rename it over the target, fsync the folder. A
// crash at any moment leaves either the old file or the new one, never a torn one; after the
// folder's fsync the new one survives a power cut too.
import { closeSync, copyFileSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** What an atomic write puts in the file: text (UTF-8), bytes, or a function that streams through the descriptor. */
export type AtomicContent = string | Uint8Array | ((fd: number) => void);

/** A fresh hidden temporary name beside path (same folder, so the rename stays on one filesystem). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Flushes a folder's entries (a rename or a new file in it) to disk. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // some filesystems refuse to fsync a folder; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * An error of a write, with the path it was writing and, for a full disk or quota, a sentence
 * saying so: `${path}: no space left on device (ENOSPC)...`. The original error is its cause.
 */
export function writeError(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || err.syscall === undefined) return e as Error; // not a system call's error: as it was
  const code = err.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    const what = code === "ENOSPC" ? "no space left on device" : "disk quota exceeded";
    return Object.assign(new Error(`${path}: ${what} (${code}); the partial file was removed`, { cause: e }), { code });
  }
  return Object.assign(new Error(`${path}: ${err.message}`, { cause: e }), { code });
}

/** Writes content to path and fsyncs it; on failure removes what it wrote and rethrows the raw error. */
function writeSynced(path: string, content: AtomicContent): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, "w", 0o644);
    if (typeof content === "function") content(fd);
    else writeAll(fd, content);
    fsyncSync(fd);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
}

/**
 * Writes a file atomically (see the file comment): `content` is text, bytes, or a function
 * that writes through the descriptor it is given (a streamed write of many tensors).
 * Errors name the path; a full disk says "no space left on device".
 *
 * @example writeFileAtomic("out/config.json", JSON.stringify(config))
 */
export function writeFileAtomic(path: string, content: AtomicContent): void {
  const tmp = tempPathFor(path);
  try {
    writeSynced(tmp, content);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeError(path, e);
  }
  fsyncDir(dirname(path));
}

/**
 * Writes a file in place and fsyncs it, without the rename: for the files of a folder that is
 * built under a temporary name and renamed into place as a whole (a checkpoint), whose own
 * fsync and rename make its files appear together. A failed write removes the file.
 */
export function writeFileSynced(path: string, content: AtomicContent): void {
  try {
    writeSynced(path, content);
  } catch (e) {
    throw writeError(path, e);
  }
}

/** Writes text (UTF-8) atomically: writeFileAtomic for a string. */
export function writeTextAtomic(path: string, text: string): void {
  writeFileAtomic(path, text);
}

/** Copies src to dest and fsyncs the copy; with `atomic` (default) under a temporary name renamed to dest. */
export function copyFileAtomic(src: string, dest: string, options: { atomic?: boolean } = {}): void {
  const atomic = options.atomic ?? true;
  const tmp = atomic ? tempPathFor(dest) : dest;
  try {
    copyFileSync(src, tmp);
    const fd = openSync(tmp, "r+");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (atomic) renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeError(dest, e);
  }
  if (atomic) fsyncDir(dirname(dest));
}

/** Writes a whole buffer or string through a descriptor (writeSync may write less than asked). */
export function writeAll(fd: number, data: Uint8Array | string): void {
  const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let off = 0;
  while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
}

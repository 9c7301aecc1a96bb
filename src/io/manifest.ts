// A checkpoint folder's manifest.json: every file's size and SHA-256, written last (just before
// the folder's final rename) and checked before a run resumes from the folder. A folder whose
// files disagree with it (truncated by a full disk, altered, one missing) is never resumed from.
//
// SHA-256 because it is the fastest hash node:crypto offers where the CPU has SHA extensions
// (1.28 GB/s on a 100 MB file here: sha1 1.23, md5 0.54, blake2b512 0.59 GB/s), about what reading
// the file back costs; a checkpoint of a 100 MB model is verified in a tenth of a second.
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { writeFileSynced } from "./atomic.js";

export const MANIFEST_NAME = "manifest.json";

/** manifest.json: `{ "format": "lmforge-manifest", "version": 1, "files": { name: { size, sha256 } } }`. */
export interface Manifest {
  format: "lmforge-manifest";
  version: 1;
  files: Record<string, { size: number; sha256: string }>;
}

/** A checkpoint folder that fails its manifest: `file` is the one at fault (manifest.json itself when unreadable). */
export class CheckpointVerificationError extends Error {
  constructor(readonly dir: string, readonly file: string, reason: string) {
    super(`${join(dir, file)}: ${reason}`);
    this.name = "CheckpointVerificationError";
  }
}

/** One read buffer for every hash: a fresh 1 MiB per file would be malloc'd and freed per checkpoint, which fragments the heap of a long run. */
let readBuffer: Buffer | null = null;

/** The SHA-256 of a file, hex, read in 1 MiB pieces (a large shard is never held whole). */
export function sha256File(path: string): string {
  const hash = createHash("sha256");
  const buf = (readBuffer ??= Buffer.allocUnsafe(1024 * 1024));
  const fd = openSync(path, "r");
  try {
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/** Writes dir/manifest.json (fsynced, in place: the folder is renamed into place after it) for every file in dir but hidden temporaries and the manifest. */
export function writeManifest(dir: string): Manifest {
  const files: Manifest["files"] = {};
  for (const name of readdirSync(dir).sort()) {
    if (name === MANIFEST_NAME || name.startsWith(".")) continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    files[name] = { size: st.size, sha256: sha256File(path) };
  }
  const manifest: Manifest = { format: "lmforge-manifest", version: 1, files };
  writeFileSynced(join(dir, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/**
 * Checks a folder against its manifest.json: every file listed is there with its size and
 * hash (files not listed are ignored). Returns false when the folder has no manifest (written
 * before manifests, or not a training checkpoint); throws CheckpointVerificationError naming
 * the file at fault otherwise.
 */
export function verifyManifest(dir: string): boolean {
  const path = join(dir, MANIFEST_NAME);
  if (!existsSync(path)) return false;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  } catch (e) {
    throw new CheckpointVerificationError(dir, MANIFEST_NAME, `not valid JSON (${(e as Error).message})`);
  }
  if (manifest?.format !== "lmforge-manifest" || manifest.version !== 1 || typeof manifest.files !== "object" || manifest.files === null) {
    throw new CheckpointVerificationError(dir, MANIFEST_NAME, 'not an lmforge manifest (format "lmforge-manifest", version 1, files)');
  }
  for (const [name, want] of Object.entries(manifest.files)) {
    if (name.includes("/") || name.includes("\\") || name.startsWith(".")) throw new CheckpointVerificationError(dir, MANIFEST_NAME, `lists "${name}", which is not a file name in the folder`);
    const file = join(dir, name);
    if (!existsSync(file)) throw new CheckpointVerificationError(dir, name, "missing (the manifest lists it)");
    const size = statSync(file).size;
    if (size !== want.size) throw new CheckpointVerificationError(dir, name, `${size} bytes where the manifest says ${want.size}`);
    const sha = sha256File(file);
    if (sha !== want.sha256) throw new CheckpointVerificationError(dir, name, `SHA-256 ${sha.slice(0, 12)}... where the manifest says ${String(want.sha256).slice(0, 12)}...`);
  }
  return true;
}

// Names read from files (shard names in model.safetensors.index.json, file references in a
// config) become paths only through resolveInside, which keeps them inside the folder the
// user gave: no "..", no absolute paths, no symlink that resolves outside it.
//
// One exception, so that Hugging Face's own cache loads: in its layout a snapshot folder
// (models--org--name/snapshots/<revision>/) holds symlinks into the repository's blobs/
// folder (../../blobs/<hash>); inside such a snapshot, targets in that blobs/ folder count as
// inside.
import { existsSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/** A file or field names a path outside its folder (or no usable path at all). */
export class PathEscapeError extends Error {
  constructor(
    /** The file holding the name (an index, a config). */
    readonly file: string,
    /** The field the name was read from, e.g. weight_map["bert.pooler.dense.weight"]. */
    readonly field: string,
    /** The name as the file gives it. */
    readonly value: string,
    reason: string,
  ) {
    super(`${file}: ${field} ${JSON.stringify(value)} ${reason}`);
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/** The folders a snapshot of Hugging Face's cache may link into (see the file comment). */
function allowedRoots(realDir: string): string[] {
  const snapshots = dirname(realDir);
  const repo = dirname(snapshots);
  const hfCache = basename(snapshots) === "snapshots" && /^(models|datasets|spaces)--/.test(basename(repo));
  return hfCache ? [realDir, join(repo, "blobs")] : [realDir];
}

/**
 * The path of `name` (read from `what.file`, field `what.field`) inside `dir`, or a
 * PathEscapeError: names that are empty, hold a NUL, are absolute (/x, C:\x, \\server),
 * climb with "..", or lead (through symlinks, when they exist) outside `dir`. A name that
 * does not exist yet passes the symlink check; opening it later fails on its own.
 *
 * @example resolveInside("ckpt", "model-00001-of-00002.safetensors", { file: "ckpt/model.safetensors.index.json", field: "weight_map[\"w\"]" })
 */
export function resolveInside(dir: string, name: unknown, what: { file: string; field: string }): string {
  const refuse = (reason: string): never => {
    throw new PathEscapeError(what.file, what.field, String(name), reason);
  };
  if (typeof name !== "string") return refuse(`must be a file name (a string), got ${name === null ? "null" : typeof name}`);
  if (name.length === 0) refuse("is empty; a file name is expected");
  if (name.includes("\0")) refuse("holds a NUL character");
  if (isAbsolute(name) || /^[A-Za-z]:/.test(name) || name.startsWith("\\")) refuse("is an absolute path; only names inside the folder are allowed");
  if (name.split(/[\\/]/).includes("..")) refuse("climbs out of the folder with '..'");
  const root = resolve(dir);
  const path = resolve(root, name);
  if (!isInside(root, path)) refuse("lies outside the folder");
  if (existsSync(path)) {
    let realPath: string;
    let realRoot: string;
    try {
      realRoot = realpathSync(root);
      realPath = realpathSync(path);
    } catch (e) {
      return refuse(`cannot be resolved (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (!allowedRoots(realRoot).some((r) => isInside(r, realPath))) refuse(`is a symlink to ${realPath}, outside the folder ${realRoot}`);
  }
  return path;
}

// Checkpoint folders in the Hugging Face layout: config.json, model.safetensors (or shards
// with model.safetensors.index.json), and the tokenizer files when present; a training run's
// checkpoints also hold manifest.json (src/io/manifest.ts), every file's size and hash.
//
// A folder is replaced atomically: the new one is written and fsynced beside it (every file
// fsynced, the manifest last), the old one is renamed aside, the new one renamed into place,
// and the old one removed. A crash leaves either the old folder or the new one readable;
// readCheckpoint recovers the old one from its aside name if the crash fell between the two
// renames. A failed write (a full disk) removes the new folder and leaves the old one as it was.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { DTYPES } from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { copyFileAtomic, fsyncDir, writeError, writeFileSynced, writeTextAtomic } from "./atomic.js";
import { verifyManifest, writeManifest } from "./manifest.js";
import { SafetensorsFile, saveSafetensors } from "./safetensors.js";
import { PathEscapeError, resolveInside } from "./paths.js";

export const WEIGHTS_NAME = "model.safetensors";
export const WEIGHTS_INDEX_NAME = "model.safetensors.index.json";
/** Hugging Face's default shard limit for save_pretrained. */
export const DEFAULT_MAX_SHARD_BYTES = 5 * 1024 ** 3;

/** Why pickle weights are refused, and how to convert them. */
const PICKLE_REFUSAL =
  "which lmforge never reads: unpickling can run arbitrary code. " +
  "Convert them once with Python: `from transformers import AutoModel; AutoModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`";

export interface SaveCheckpointOptions {
  /** Shard the weights above this many bytes (default 5 GB, as Hugging Face). */
  maxShardBytes?: number;
  /** Extra text files to write (generation_config.json, ...). */
  files?: Record<string, string>;
  /** Files to copy into the folder (tokenizer.json, vocab.txt, ...), by name -> source path. */
  copy?: Record<string, string>;
  metadata?: Record<string, string>;
  /**
   * "swap" (default) replaces the whole folder atomically; "files" writes each file atomically
   * into the folder and keeps whatever else it holds (a training run's logs and checkpoints).
   */
  mode?: "swap" | "files";
  /** Write manifest.json (every file's size and SHA-256) last, for verifyManifest (swap mode only; default false). */
  manifest?: boolean;
}

function asideName(dir: string): string {
  return join(dirname(dir), `.${basename(dir)}.old`);
}

/**
 * For tests only: LMFORGE_TEST_PAUSE_IN_WRITE=MS makes the checkpoint writer stop for MS
 * milliseconds once half of a folder's files are written, after saying so on stderr
 * ("lmforge test pause: writing DIR"), so that a crash test can kill the process inside a
 * write. Nothing else reads the variable; it blocks the thread (Atomics.wait), as a slow disk would.
 */
function pauseForTests(dir: string): void {
  const ms = Number(process.env.LMFORGE_TEST_PAUSE_IN_WRITE ?? 0);
  if (!(ms > 0)) return;
  process.stderr.write(`lmforge test pause: writing ${dir}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs a folder's writes in order, pausing (for tests) once half of them are done. */
function writeAllFiles(dir: string, writes: (() => void)[]): void {
  writes.forEach((write, i) => {
    if (i === Math.floor(writes.length / 2)) pauseForTests(dir);
    write();
  });
}

/** Writes a checkpoint folder atomically (see the file comment). */
export function saveCheckpoint(dir: string, config: object, tensors: Map<string, Tensor>, options: SaveCheckpointOptions = {}): void {
  const target = resolve(dir);
  for (const [name, t] of tensors) if (t.isDisposed) throw new Error(`${dir}: tensor "${name}" was disposed`);
  const maxShard = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const metadata = { format: "pt", ...options.metadata };
  const configText = JSON.stringify(config, null, 2) + "\n";
  // in swap mode the files are written in place in the temporary folder (fsynced), whose
  // rename makes them appear together; in files mode each one is atomic on its own
  const atomic = options.mode === "files";
  const writeText = atomic ? writeTextAtomic : writeFileSynced;
  const rest = (into: string): (() => void)[] => [
    ...Object.entries(options.files ?? {}).map(([name, text]) => () => writeText(join(into, name), text)),
    ...Object.entries(options.copy ?? {}).map(([name, src]) => () => copyFileAtomic(src, join(into, name), { atomic })),
  ];
  if (options.mode === "files") {
    if (options.manifest) throw new Error(`${dir}: a manifest describes a whole folder; it needs mode "swap"`);
    mkdirSync(target, { recursive: true });
    // config.json last: a folder with a config has its weights
    writeAllFiles(target, [() => writeWeights(target, tensors, maxShard, metadata, true), ...rest(target), () => writeTextAtomic(join(target, "config.json"), configText)]);
    return;
  }
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    mkdirSync(tmp);
    writeAllFiles(tmp, [() => writeText(join(tmp, "config.json"), configText), () => writeWeights(tmp, tensors, maxShard, metadata, false), ...rest(tmp)]);
    if (options.manifest) writeManifest(tmp);
    fsyncDir(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeError(tmp, e);
  }
  const aside = asideName(target);
  rmSync(aside, { recursive: true, force: true });
  if (existsSync(target)) renameSync(target, aside);
  renameSync(tmp, target);
  fsyncDir(dirname(target));
  rmSync(aside, { recursive: true, force: true });
}

function writeWeights(dir: string, tensors: Map<string, Tensor>, maxShardBytes: number, metadata: Record<string, string>, atomic: boolean): void {
  const sizeOf = (t: Tensor): number => t.numel * DTYPES[t.dtype].itemSize;
  const total = [...tensors.values()].reduce((a, t) => a + sizeOf(t), 0);
  if (total <= maxShardBytes) {
    saveSafetensors(join(dir, WEIGHTS_NAME), tensors, metadata, { atomic });
    return;
  }
  // Greedy sharding in name order, as Hugging Face's shard_checkpoint.
  const shards: Map<string, Tensor>[] = [new Map()];
  let current = 0;
  for (const [name, t] of tensors) {
    const s = sizeOf(t);
    if (current + s > maxShardBytes && shards[shards.length - 1]!.size > 0) {
      shards.push(new Map());
      current = 0;
    }
    shards[shards.length - 1]!.set(name, t);
    current += s;
  }
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
    saveSafetensors(join(dir, file), shard, metadata, { atomic });
    for (const name of shard.keys()) weightMap[name] = file;
  });
  (atomic ? writeTextAtomic : writeFileSynced)(join(dir, WEIGHTS_INDEX_NAME), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n");
}

export interface Checkpoint {
  dir: string;
  config: Record<string, unknown>;
  /** Every tensor name, with the file that holds it. */
  weightFiles: Map<string, SafetensorsFile>;
  /** Reads one tensor. */
  get(name: string): Tensor;
  names(): string[];
}

/** A JSON file that must hold an object; errors name the file. */
function readJsonObject(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${path}: must hold a JSON object, found ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`);
  return value as Record<string, unknown>;
}

/**
 * Opens a checkpoint folder: config.json and the weights' headers (tensors load on request).
 * With `verify`, a folder holding manifest.json is first checked against it (a
 * CheckpointVerificationError names the file at fault); folders without one (Hugging Face's)
 * open as they are.
 */
export function readCheckpoint(dir: string, options: { verify?: boolean } = {}): Checkpoint {
  let folder = resolve(dir);
  if (!existsSync(folder) && existsSync(asideName(folder))) folder = asideName(folder); // a crash mid-swap
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`${dir}: no such checkpoint folder`);
  if (options.verify) verifyManifest(folder);
  const configPath = join(folder, "config.json");
  if (!existsSync(configPath)) throw new Error(`${dir}: config.json is missing`);
  const config = readJsonObject(configPath);
  const weightFiles = new Map<string, SafetensorsFile>();
  const indexPath = join(folder, WEIGHTS_INDEX_NAME);
  if (existsSync(indexPath)) {
    const weightMap = readJsonObject(indexPath).weight_map;
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) throw new Error(`${indexPath}: weight_map must be an object of tensor name -> shard file name`);
    const opened = new Map<string, SafetensorsFile>();
    for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
      const field = `weight_map[${JSON.stringify(name)}]`;
      const shard = resolveInside(folder, file, { file: indexPath, field });
      if ((file as string).includes("/") || (file as string).includes("\\")) throw new PathEscapeError(indexPath, field, file as string, "must be a file name in the folder");
      // a shard is never opened unless it is a safetensors file: a pickle is not even opened
      if (!(file as string).endsWith(".safetensors")) throw new PathEscapeError(indexPath, field, file as string, `must name a .safetensors file; other weights may be pickles (.bin, .pt, .pth, .ckpt, .pkl), ${PICKLE_REFUSAL}`);
      let f = opened.get(shard);
      if (!f) opened.set(shard, (f = SafetensorsFile.open(shard)));
      if (!f.header.tensors.has(name)) throw new Error(`${indexPath}: "${name}" is mapped to ${file as string}, which does not hold it`);
      weightFiles.set(name, f);
    }
  } else if (existsSync(join(folder, WEIGHTS_NAME))) {
    const f = SafetensorsFile.open(join(folder, WEIGHTS_NAME));
    for (const name of f.names()) weightFiles.set(name, f);
  } else {
    const pickles = readdirSync(folder).filter((f) => /\.(bin|pt|pth|ckpt|pkl|pickle)$/.test(f));
    if (pickles.length > 0) {
      throw new Error(`${dir}: holds only pickle weights (${pickles.join(", ")}), ${PICKLE_REFUSAL}`);
    }
    throw new Error(`${dir}: no ${WEIGHTS_NAME} or ${WEIGHTS_INDEX_NAME}`);
  }
  return {
    dir: folder,
    config,
    weightFiles,
    names: () => [...weightFiles.keys()],
    get(name: string): Tensor {
      const f = weightFiles.get(name);
      if (!f) throw new Error(`${dir}: no tensor named "${name}"`);
      return f.get(name);
    },
  };
}

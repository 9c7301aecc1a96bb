// Saving a module to, and loading it from, a Hugging Face checkpoint folder.
import type { Tensor } from "../torch/index.js";
import { readCheckpoint, saveCheckpoint } from "../io/index.js";
import type { SaveCheckpointOptions } from "../io/index.js";
import type { LoadResult, Module } from "./module.js";

/**
 * The tensors to save: each parameter and buffer once. A tied tensor keeps its first name
 * (the input embedding) and its other names are left out, as Hugging Face saves them.
 */
export function tensorsToSave(module: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const seen = new Set<Tensor>();
  for (const [name, t] of module.stateDict()) {
    if (seen.has(t)) continue;
    seen.add(t);
    out.set(name, t);
  }
  return out;
}

/** Writes config.json and the weights, atomically. */
export function savePretrained(module: Module, dir: string, config: object, options: SaveCheckpointOptions = {}): void {
  saveCheckpoint(dir, config, tensorsToSave(module), options);
}

export interface LoadPretrainedOptions {
  /** Throw on missing or unexpected weights (default false: report them). */
  strict?: boolean;
  /** Maps a file's tensor name to the module's (older names, prefixes). Return null to skip. */
  rename?: (name: string) => string | null;
}

/**
 * Loads weights from a checkpoint folder into a module, one tensor at a time (so peak memory
 * is the model plus its largest tensor), and reports what was missing or unexpected.
 */
export function loadPretrained(module: Module, dir: string, options: LoadPretrainedOptions = {}): LoadResult & { config: Record<string, unknown> } {
  const ckpt = readCheckpoint(dir);
  const own = module.stateDict();
  const result: LoadResult = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
  const loaded = new Set<string>();
  const loadedTensors = new Set<Tensor>();
  for (const fileName of ckpt.names()) {
    const name = options.rename ? options.rename(fileName) : fileName;
    if (name === null) continue;
    const target = own.get(name);
    if (!target) {
      result.unexpectedKeys.push(fileName);
      continue;
    }
    const info = ckpt.weightFiles.get(fileName)!.info(fileName);
    if (info.shape.length !== target.shape.length || info.shape.some((d, i) => d !== target.shape[i])) {
      result.mismatchedKeys.push(`${name}: expected [${target.shape.join(", ")}], got [${info.shape.join(", ")}]`);
      continue;
    }
    const t = ckpt.get(fileName);
    try {
      module.loadStateDict(new Map([[name, t]]), { strict: false });
    } finally {
      t.dispose();
    }
    loaded.add(name);
    loadedTensors.add(target);
  }
  // A name missing from the file is not missing if its tensor is tied to one that was loaded.
  for (const [name, t] of own) if (!loaded.has(name) && !loadedTensors.has(t)) result.missingKeys.push(name);
  if (options.strict && (result.missingKeys.length || result.unexpectedKeys.length || result.mismatchedKeys.length)) {
    throw new Error(
      `${dir}: weights do not match the model: missing ${JSON.stringify(result.missingKeys)}, unexpected ${JSON.stringify(result.unexpectedKeys)}, mismatched ${JSON.stringify(result.mismatchedKeys)}`,
    );
  }
  return { ...result, config: ckpt.config };
}

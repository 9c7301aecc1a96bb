// Common model sizes by name, from the architecture registry (each model file lists its own).
import { presets } from "./registry.js";
import "./architectures.js";

/** Every preset by name: its model_type and sizes (vocab_size follows the tokenizer). */
export const PRESETS: Readonly<Record<string, Record<string, unknown>>> = presets();

/** A preset's config keys, with overrides (vocab_size from the tokenizer, typically). */
export function presetConfig(name: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset "${name}"; presets: ${Object.keys(PRESETS).join(", ")}`);
  return { ...p, ...overrides };
}

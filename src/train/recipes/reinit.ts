// Re-initialising the top layers before fine-tuning (Zhang et al. 2021, "Revisiting few-sample
// BERT fine-tuning", §5): the top layers of a pretrained encoder are specialised to the
// pretraining task and transfer worst; drawing them afresh, with the model's own initialisation
// (normal(0, initializer_range) weights, zero biases, unit norms), helps small data. The pooler
// is re-initialised too, as in the paper.
import type { Module } from "../../nn/index.js";
import { init, initTransformerWeights } from "../../nn/index.js";

/** "bert.encoder.layer.3" -> 3 for a numbered layer module itself; null otherwise. */
function layerModuleIndex(name: string): number | null {
  const m = /(?:^|\.)(?:layer|layers|h|block)\.(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Re-initialises the top `k` numbered layers (and any module named pooler) of a model with its
 * config's initializer_range, in place; returns the names of the parameters drawn afresh.
 * Throws when the model has fewer than k layers, no numbered layers (ALBERT shares one layer
 * across depths) or no initializer_range.
 */
export function reinitTopLayers(model: Module & { config: Record<string, unknown> }, k: number): string[] {
  if (!(Number.isInteger(k) && k >= 0)) throw new RangeError(`--reinit-layers must be a non-negative integer, got ${k}`);
  if (k === 0) return [];
  const std = model.config.initializer_range;
  if (typeof std !== "number") throw new Error(`--reinit-layers: ${String(model.config.model_type)} has no initializer_range in its config; its initialisation is not the normal(0, σ) this recipe draws`);
  const mods = [...model.namedModules()];
  const numbered = mods.flatMap(([name, m]) => {
    const i = layerModuleIndex(name);
    return i === null ? [] : [{ name, m, i }];
  });
  const layers = numbered.length;
  if (layers === 0) throw new Error(`--reinit-layers: ${model.constructor.name} has no numbered layers (encoder.layer.N, h.N, layers.N); ALBERT shares one layer across depths, which cannot be re-drawn alone`);
  if (k > layers) throw new Error(`--reinit-layers ${k}: ${model.constructor.name} has only ${layers} layers`);
  const chosen = numbered.filter((l) => l.i >= layers - k).map(({ name, m }) => [name, m] as const);
  const poolers = mods.filter(([name]) => /(?:^|\.)pooler$/.test(name));
  const names: string[] = [];
  for (const [prefix, m] of [...chosen, ...poolers]) {
    initTransformerWeights(m, std);
    for (const [n, p] of m.namedParameters()) {
      // GPT-2 scales its residual projections by 1/√(2·n_layer) (its own initialisation)
      if (model.config.model_type === "gpt2" && /c_proj\.weight$/.test(n)) init.normal_(p, 0, std / Math.sqrt(2 * Number(model.config.n_layer)));
      names.push(`${prefix}.${n}`);
    }
  }
  return names;
}

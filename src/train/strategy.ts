// Transfer strategies: which parameters of a pretrained model a fine-tuning run trains. The
// model's layout comes from the architecture registry (its body, embeddings, layers, LoRA
// targets), so that a strategy works for every registered model or says why it cannot.
import { applyLoRA } from "../nn/index.js";
import { architectureOf, bodyPath } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";

export type Strategy = "full" | "features" | `features:${number}` | `freeze:${number}` | "lora";

/** "full", "features", "features:N", "freeze:N", "lora" (checked by pattern; the model decides what N may be). */
export function parseStrategy(text: string): Strategy {
  if (!/^(full|features|features:[1-9]\d*|freeze:\d+|lora)$/.test(text)) throw new Error(`must be full, features, features:N, freeze:N or lora, got "${text}"`);
  return text as Strategy;
}

/** The task head a strategy adds of its own: features:N (N > 1) pools the last N layers' [CLS]. */
export function strategyHead(strategy: Strategy): string | undefined {
  const m = /^features:(\d+)$/.exec(strategy);
  return m && Number(m[1]) > 1 ? `layer-pool:${m[1]}` : undefined;
}

/**
 * Sets which parameters train: full (all); features (the body frozen, the head trains) and
 * features:N (likewise, the head reading the last N layers); freeze:N (the embeddings and
 * layers 0..N-1 frozen); lora (LoRA on the registry's targets, the head trains too).
 */
export function applyStrategy(model: PretrainedModel, strategy: Strategy, options: { loraRank?: number; loraAlpha?: number; loraDropout?: number } = {}): { trainable: number; total: number } {
  const entry = architectureOf(model);
  const inBody = (name: string): boolean => bodyPath(model, name).inBody;
  if (strategy === "full") {
    model.unfreeze();
  } else if (strategy === "features" || strategy.startsWith("features:")) {
    for (const [name, p] of model.namedParameters()) p.requiresGrad = !inBody(name);
  } else if (strategy.startsWith("freeze:")) {
    const n = Number(strategy.slice(7));
    if (n > 0 && !entry.layers) throw new Error(`freeze:${n}: ${entry.modelType} shares its layers across depth, so there are no first ${n} layers to freeze; only freeze:0 (the embeddings) applies`);
    const layers = (model.config.num_hidden_layers ?? model.config.n_layer) as number | undefined;
    if (layers !== undefined && n > layers) throw new Error(`freeze:${n}: the model has ${layers} layers`);
    for (const [name, p] of model.namedParameters()) {
      const { inBody: body, local } = bodyPath(model, name);
      const layer = entry.layers ? entry.layers.exec(local) : null;
      const frozen = body && (entry.embeddings.test(local) || (layer !== null && Number(layer[1]) < n));
      p.requiresGrad = !frozen;
    }
  } else if (strategy === "lora") {
    if (!entry.loraTargets) throw new Error(`lora: ${entry.modelType} has no linear layers LoRA wraps here (its registry entry names none)`);
    const r = options.loraRank ?? 8;
    applyLoRA(model, entry.loraTargets, { r, alpha: options.loraAlpha ?? 2 * r, dropout: options.loraDropout ?? 0.1 });
    for (const [name, p] of model.namedParameters()) if (!inBody(name)) p.requiresGrad = true; // the head trains too
  } else {
    throw new Error(`unknown strategy "${strategy}"; use full, features, features:N, freeze:N or lora`);
  }
  let trainable = 0;
  let total = 0;
  for (const [, p] of model.namedParameters()) {
    total += p.numel;
    if (p.requiresGrad) trainable += p.numel;
  }
  return { trainable, total };
}

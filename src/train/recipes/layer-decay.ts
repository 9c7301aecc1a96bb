// Layer-wise learning-rate decay (LLRD; Howard & Ruder 2018's discriminative fine-tuning, as
// ELECTRA and Zhang et al. 2021 use it): the head learns at lr, encoder layer l (0-based, of L)
// at lr·D^(L−l), the embeddings at lr·D^(L+1). The lower a layer, the more general its features
// and the less it should move. Depth is read from parameter names, so every family works:
// encoder.layer.N (BERT, RoBERTa, ELECTRA), h.N (GPT-2), layers.N (Llama), block.N (T5).
import type { Tensor } from "../../torch/index.js";

/** "bert.encoder.layer.3.output.dense.weight" -> 3; null outside the numbered layers. */
export function layerIndexOf(name: string): number | null {
  const m = /(?:^|\.)(?:layer|layers|h|block)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** Word, position and type embeddings and their projections (ELECTRA's, ALBERT's) sit below layer 0. */
export function isEmbedding(name: string): boolean {
  return /(?:^|\.)(?:embeddings|embeddings_project|embedding_hidden_mapping_in|wte|wpe|embed_tokens|shared)\./.test(name);
}

/** One optimizer group of layerwiseGroups: its parameters' names too, to show and test. */
export interface LayerGroup {
  params: Tensor[];
  names: string[];
  lr: number;
  weightDecay: number;
}

/**
 * AdamW groups with layer-wise learning rates: the exponent of D is 0 for the head (and for
 * everything neither embedding nor numbered layer: pooler, final norm, ALBERT's shared layer),
 * L − l for layer l, L + 1 for the embeddings, with L = the highest layer index + 1. Each depth
 * is split as decayGroups does: no weight decay on biases and norms. Frozen parameters are left out.
 *
 * `layerwiseGroups(model.namedParameters(), { lr: 1e-4, decay: 0.9, weightDecay: 0.01 })`
 */
export function layerwiseGroups(named: Iterable<[string, Tensor]>, o: { lr: number; decay: number; weightDecay: number }): LayerGroup[] {
  if (!(o.decay > 0 && o.decay <= 1)) throw new RangeError(`layer-wise lr decay must be in (0, 1], got ${o.decay}`);
  const all = [...named].filter(([, p]) => p.requiresGrad);
  const layers = Math.max(-1, ...all.map(([n]) => layerIndexOf(n) ?? -1)) + 1;
  if (layers === 0) throw new Error(`layer-wise lr decay: no parameter name has a layer index (encoder.layer.N, h.N, layers.N, block.N); names start ${all.slice(0, 3).map(([n]) => n).join(", ")}`);
  const groups = new Map<string, LayerGroup & { power: number }>();
  for (const [name, p] of all) {
    const l = layerIndexOf(name);
    const power = l !== null ? layers - l : isEmbedding(name) ? layers + 1 : 0;
    const decayed = !(name.endsWith("bias") || p.ndim < 2 || /norm/i.test(name));
    const key = `${power}:${decayed}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { params: [], names: [], lr: o.lr * o.decay ** power, weightDecay: decayed ? o.weightDecay : 0, power }));
    g.params.push(p);
    g.names.push(name);
  }
  // the head's groups first: the Trainer logs group 0's rate as the run's
  return [...groups.values()].sort((a, b) => a.power - b.power).map(({ power: _p, ...g }) => g);
}

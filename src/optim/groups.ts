// Parameter groups for weight decay: biases and normalisation weights get none (BERT's recipe).
import type { Tensor } from "../torch/index.js";

/**
 * Splits named parameters into a decayed group and a no-decay group: biases, 1-D tensors
 * (norm weights) and names with "norm" (LayerNorm, ln_f, ...) are not decayed.
 * Frozen parameters are left out.
 */
export function decayGroups(named: Iterable<[string, Tensor]>, weightDecay: number): { params: Tensor[]; weightDecay: number }[] {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, p] of named) {
    if (!p.requiresGrad) continue;
    if (name.endsWith("bias") || p.ndim < 2 || /norm/i.test(name)) noDecay.push(p);
    else decay.push(p);
  }
  return [
    { params: decay, weightDecay },
    { params: noDecay, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}

// Random state: seeding and saving/restoring the generator, so that a resumed run draws the
// very same numbers.
import { native } from "./native.js";
import { scope } from "./scope.js";
import type { Tensor } from "./tensor.js";
import * as ops from "./generated/ops.js";

/** Seeds the CPU generator (and every CUDA device's, where present). */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}

/** The CPU generator's complete state, as bytes to store in a checkpoint. */
export function getRngState(): Buffer {
  return native.getRngState();
}

/** Restores a state from getRngState(): the next draws repeat those that followed it. */
export function setRngState(state: Uint8Array): void {
  native.setRngState(state);
}

/**
 * Dropout in training: each element zeroed with probability p, the rest scaled by 1/(1-p).
 * On the CPU the mask comes from torch.dropoutMask (a counter-based generator run in
 * parallel, seeded from the CPU generator) instead of libtorch's bernoulli_, which draws one
 * number at a time on one thread (a fifth of a bert-mini training step); the gradient is the
 * mask times the incoming gradient, through mul.
 */
export function dropout(x: Tensor, p = 0.5, train = true): Tensor {
  if (!train || p === 0) return x;
  if (p < 1 && x.device === "cpu" && (x.dtype === "float32" || x.dtype === "bfloat16" || x.dtype === "float64")) {
    return scope(() => x.mul(ops.dropoutMask(x, p)));
  }
  return ops.dropout(x, p, train);
}

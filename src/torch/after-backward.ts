// Work that finishes a backward pass outside the autograd graph. Gradient checkpointing
// (src/nn/checkpoint.ts) cuts the graph at the checkpointed layers; the part of the backward
// that goes through them is run from here, right after Tensor.backward's own pass, so every
// caller of backward() (the trainer, adversarial training, a user's loop) gets whole gradients.

const hooks: (() => void)[] = [];

/** Registers fn to run after every Tensor.backward() (once per registration). */
export function onAfterBackward(fn: () => void): void {
  if (!hooks.includes(fn)) hooks.push(fn);
}

/** @internal Called by Tensor.backward once libtorch's pass is done. */
export function runAfterBackward(): void {
  for (const fn of hooks) fn();
}

// Grad mode scopes and gradients of chosen outputs with respect to chosen inputs.
import { native } from "./native.js";
import { Tensor, wrap } from "./tensor.js";

/** Runs fn with gradient recording off (PyTorch's torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording on, even inside noGrad (torch.enable_grad()). */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  /** Weights for each output (required for non-scalar outputs). */
  gradOutputs?: readonly Tensor[];
  /** Keep the graph for another backward pass (default: createGraph). */
  retainGraph?: boolean;
  /** Record the gradient computation itself, for higher-order gradients. */
  createGraph?: boolean;
  /** Give undefined for inputs the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

/**
 * Gradients of outputs with respect to inputs, leaving every .grad untouched
 * (torch.autograd.grad). Adversarial training takes the gradient of the loss with respect
 * to the embeddings this way.
 */
export function grad(
  outputs: Tensor | readonly Tensor[],
  inputs: Tensor | readonly Tensor[],
  options: GradOptions = {},
): (Tensor | undefined)[] {
  const outs = outputs instanceof Tensor ? [outputs] : outputs;
  const ins = inputs instanceof Tensor ? [inputs] : inputs;
  const create = options.createGraph ?? false;
  const grads = native.autogradGrad(
    outs.map((t) => t._h),
    ins.map((t) => t._h),
    options.gradOutputs ? options.gradOutputs.map((t) => t._h) : null,
    options.retainGraph ?? create,
    create,
    options.allowUnused ?? false,
  );
  return grads.map((g) => (g === undefined ? undefined : wrap(g)));
}

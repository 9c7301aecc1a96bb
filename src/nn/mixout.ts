// Mixout (Lee, Cho & Kang 2020, "Mixout: effective regularization to finetune large-scale
// pretrained language models"): in training, each element of a linear layer's weight is
// replaced by its pretrained value with probability p, and the result rescaled so that its
// expectation is the current weight:
//   W' = (M·W + (1 − M)·W0 − p·W0) / (1 − p),  M ~ Bernoulli(1 − p) elementwise
// which is W0 + M/(1 − p)·(W − W0): dropout applied to W − W0, then W0 added back, which is how
// it runs here (the fast dropout mask of torch.dropout). In evaluation the weight is W itself.
// It pulls fine-tuned weights towards the pretrained ones, as dropout pulls them towards zero.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear } from "./layers.js";
import type { Module } from "./module.js";

/**
 * The formula of Lee et al. with an explicit keep mask M (1: keep W, 0: take W0), elementwise:
 * (M·W + (1 − M)·W0 − p·W0) / (1 − p). For tests and for reading; training uses the dropout form.
 */
export function mixoutWithMask(weight: Tensor, pretrained: Tensor, keep: Tensor, p: number): Tensor {
  const drop = torch.onesLike(keep).sub(keep);
  return keep.mul(weight).add(drop.mul(pretrained)).sub(pretrained.mul(p)).div(1 - p);
}

/** One draw of the mixed weight: W0 + dropout(W − W0, p). */
export function mixoutWeight(weight: Tensor, pretrained: Tensor, p: number): Tensor {
  return pretrained.add(torch.dropout(weight.sub(pretrained), p, true));
}

/**
 * Turns mixout on for every Linear layer of a module (LoRA-wrapped ones excepted): each keeps
 * a copy of its weight now as W0 and, in training mode, runs with a fresh mixout draw of its
 * weight; in evaluation it is the plain layer. Returns how many layers took it and a function
 * that undoes it (frees the copies, restores the plain forward). p = 0 changes nothing.
 */
export function applyMixout(module: Module, p: number): { layers: string[]; remove: () => void } {
  if (!(p >= 0 && p < 1)) throw new RangeError(`mixout probability must be in [0, 1), got ${p}`);
  const layers: string[] = [];
  const kept: Tensor[] = [];
  const patched: Linear[] = [];
  if (p === 0) return { layers, remove: () => {} };
  for (const [name, m] of module.namedModules()) {
    if (!(m instanceof Linear) || m.constructor !== Linear || !m.weight.requiresGrad) continue;
    if (Object.hasOwn(m, "forward")) throw new Error(`mixout: ${name} already has a forward of its own (DP-SGD's recording?); they do not combine`);
    const w0 = torch.keep(torch.noGrad(() => m.weight.detach().clone()));
    kept.push(w0);
    const plain = Linear.prototype.forward;
    (m as { forward: (x: Tensor) => Tensor }).forward = function (this: Linear, x: Tensor): Tensor {
      if (!this.training) return plain.call(this, x);
      return torch.linear(x, mixoutWeight(this.weight, w0, p), this.bias);
    };
    patched.push(m);
    layers.push(name);
  }
  return {
    layers,
    remove: () => {
      for (const m of patched) delete (m as { forward?: unknown }).forward;
      torch.dispose(kept);
    },
  };
}

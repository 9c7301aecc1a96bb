// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
import type { Tensor } from "../torch/index.js";
import * as torch from "../torch/index.js";

/** Scales all gradients so that their joint norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  return torch.noGrad(() =>
    torch.scope(() => {
      const grads = [...params].map((p) => p.grad).filter((g): g is Tensor => g !== undefined);
      if (grads.length === 0) return 0;
      const norms = grads.map((g) => g.norm(normType, null, false, "float32"));
      const total = normType === Infinity ? torch.stack(norms).max() : torch.stack(norms).norm(normType);
      const totalNorm = total.item();
      const coef = maxNorm / (totalNorm + 1e-6);
      if (coef < 1) for (const g of grads) g.mul_(coef);
      return totalNorm;
    }),
  );
}

// The norm switch: which normalisation (LayerNorm or RMSNorm) and where it sits around a
// sublayer f (norm=post | pre | sandwich). The block calls `residual` for each sublayer.
import type { Tensor } from "../../torch/index.js";
import { LayerNorm, RMSNorm } from "../../nn/index.js";
import type { LmforgeConfig } from "./config.js";

export type Norm = LayerNorm | RMSNorm;

/** A norm of the config's type over the hidden size (or `size`). */
export function makeNorm(config: Pick<LmforgeConfig, "norm_type" | "hidden_size" | "layer_norm_eps">, size = config.hidden_size): Norm {
  return config.norm_type === "rmsnorm" ? new RMSNorm(size, config.layer_norm_eps) : new LayerNorm(size, config.layer_norm_eps);
}

/**
 * One residual sublayer under each placement, with f the sublayer (dropout included):
 * - post (Vaswani et al. 2017, BERT): norm(x + f(x));
 * - pre (Xiong et al. 2020, GPT-2, Llama): x + f(norm(x));
 * - sandwich (Ding et al. 2021, CogView): x + after(f(norm(x))), a second norm on the branch's output.
 * `after` is the sandwich's second norm (null otherwise).
 */
export function residual(placement: LmforgeConfig["norm"], x: Tensor, norm: Norm, after: Norm | null, f: (h: Tensor) => Tensor): Tensor {
  if (placement === "post") return norm.forward(x.add(f(x)));
  const branch = f(norm.forward(x));
  return x.add(placement === "sandwich" ? after!.forward(branch) : branch);
}

/** Whether the embeddings end in a norm (post: BERT's embedding LayerNorm) and the stack in a final one (pre, sandwich). */
export function normsAround(placement: LmforgeConfig["norm"]): { embeddings: boolean; final: boolean } {
  return placement === "post" ? { embeddings: true, final: false } : { embeddings: false, final: true };
}

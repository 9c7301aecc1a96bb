// Sentence embeddings from an encoder's token states, and the loss that trains them on pairs:
// sentence-transformers' mean pooling and CosineSimilarityLoss (Reimers & Gurevych 2019), which
// SetFit (Tunstall et al. 2022) fine-tunes its encoder with.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/**
 * The mean of the token states over non-padding tokens: sum_t h[b,t] m[b,t] / max(sum_t m[b,t], 1e-9).
 * Padding positions count for nothing, whatever their states hold.
 * @param hidden (B, T, C) the last hidden states
 * @param attentionMask (B, T) 1 for tokens, 0 for padding (any integer or float dtype)
 * @returns (B, C) float32
 */
export function meanPool(hidden: Tensor, attentionMask: Tensor): Tensor {
  const mask = attentionMask.float().unsqueeze(-1); // (B, T, 1)
  const summed = hidden.float().mul(mask).sum(1); // (B, C)
  const counts = mask.sum(1).clamp(1e-9); // (B, 1): an all-padding row divides by 1e-9, not 0
  return summed.div(counts);
}

/**
 * Row-wise cosine similarity u·v / (max(|u|, eps) max(|v|, eps)), as torch.nn.functional.cosine_similarity
 * (recent releases clamp each norm by eps = 1e-8).
 * @param u (B, C)
 * @param v (B, C)
 * @returns (B)
 */
export function cosineSimilarity(u: Tensor, v: Tensor, eps = 1e-8): Tensor {
  const dot = u.mul(v).sum(-1);
  return dot.div(u.norm(2, -1).clamp(eps).mul(v.norm(2, -1).clamp(eps)));
}

/**
 * sentence-transformers' CosineSimilarityLoss: mean over pairs of (cos(u_i, v_i) - target_i)^2.
 * @param u (B, C) first sentences' embeddings
 * @param v (B, C) second sentences' embeddings
 * @param target (B) float32: 1 for a similar pair, 0 for a dissimilar one (any score in [-1, 1])
 * @returns a scalar
 */
export function cosineSimilarityLoss(u: Tensor, v: Tensor, target: Tensor): Tensor {
  return torch.mseLoss(cosineSimilarity(u.float(), v.float()), target.float());
}

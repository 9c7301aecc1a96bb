// Fine-tuning losses against overconfidence on small data: label smoothing (Szegedy et al. 2016)
// and R-Drop (Liang et al. 2021, "R-Drop: regularized dropout for neural networks").
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/**
 * Cross-entropy of (B, C) logits against (B) class indices with smoothed targets, as torch's
 * CrossEntropyLoss(label_smoothing=ε): the target is (1 − ε)·onehot + ε/C, so the loss is
 * (1 − ε)·NLL + ε·mean over classes of −log p. Mean over the batch.
 */
export function smoothedCrossEntropy(logits: Tensor, labels: Tensor, smoothing = 0): Tensor {
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`label smoothing must be in [0, 1], got ${smoothing}`);
  return torch.crossEntropy(logits, labels, null, "mean", -100, smoothing);
}

/**
 * R-Drop's consistency term between two forward passes' (B, C) logits: the symmetric KL
 * ½·(KL(P1‖P2) + KL(P2‖P1)) = ½·Σ_c (p1 − p2)(log p1 − log p2), per example, averaged over the
 * batch. (The authors' code sums it over the batch instead: their α is this one's over B.)
 */
export function symmetricKl(logitsA: Tensor, logitsB: Tensor): Tensor {
  const la = logitsA.logSoftmax(-1);
  const lb = logitsB.logSoftmax(-1);
  const terms = la.exp().sub(lb.exp()).mul(la.sub(lb)); // (B, C)
  return terms.sum(-1).mean().mul(0.5);
}

/**
 * R-Drop's loss from the logits of two passes with different dropout masks: the mean of the
 * two cross-entropies plus α times their symmetric KL.
 */
export function rdropLoss(logitsA: Tensor, logitsB: Tensor, labels: Tensor, alpha: number, smoothing = 0): Tensor {
  const ce = smoothedCrossEntropy(logitsA, labels, smoothing).add(smoothedCrossEntropy(logitsB, labels, smoothing)).mul(0.5);
  return ce.add(symmetricKl(logitsA, logitsB).mul(alpha));
}

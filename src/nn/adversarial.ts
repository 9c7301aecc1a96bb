// Adversarial training on the word embeddings, for pretraining and fine-tuning alike:
// - FGM (Miyato et al. 2017): one step of size epsilon along the normalised gradient of the
//   loss with respect to the embeddings; the clean and the adversarial losses both train.
// - FreeLB (Zhu et al. 2020; PGD with K ascent steps): a perturbation grows over K steps,
//   each along the normalised gradient and projected back into the epsilon ball; the
//   parameters accumulate the gradients of all K steps (each loss divided by K). The dropout
//   masks are the same in every step (the random state is replayed).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

export interface AdversarialOptions {
  method: "fgm" | "freelb";
  /** The perturbation's maximum L2 norm (per sequence for FreeLB, per batch for FGM). */
  epsilon: number;
  /** FreeLB: ascent steps and step size. */
  steps?: number;
  alpha?: number;
}

/**
 * Runs forward and backward with adversarial perturbation of the embeddings. embedOf looks
 * the embeddings up (again for each pass, so that each backward has its own graph); lossOf
 * maps input embeddings (B, T, E) to the loss. Gradients accumulate in the parameters'
 * .grad (the embedding table's too); returns the clean loss.
 */
export function adversarialBackward(embedOf: () => Tensor, lossOf: (embeds: Tensor) => Tensor, o: AdversarialOptions, scale = 1): number {
  if (!(o.epsilon > 0)) throw new RangeError(`adversarial training: epsilon must be > 0, got ${o.epsilon}`);
  if (o.method === "fgm") {
    const rng = torch.getRngState();
    const embed = embedOf();
    const clean = lossOf(embed);
    const [g] = torch.grad(clean, embed, { retainGraph: true });
    clean.mul(scale).backward();
    const delta = torch.noGrad(() => g!.mul(o.epsilon / (g!.norm().item() + 1e-12)));
    torch.setRngState(rng); // the same dropout masks for the adversarial pass
    lossOf(embedOf().add(delta)).mul(scale).backward();
    return clean.item();
  }
  const embed0 = torch.noGrad(() => embedOf());
  const K = o.steps ?? 3;
  const alpha = o.alpha ?? o.epsilon / K;
  const rng = torch.getRngState();
  const [B] = embed0.shape as [number];
  // start inside the ball: uniform noise scaled to epsilon / sqrt(dim)
  let delta = torch.noGrad(() => torch.randLike(embed0).mul(2).sub(1).mul(o.epsilon / Math.sqrt(embed0.numel / B)));
  let clean = NaN;
  for (let k = 0; k < K; k++) {
    torch.setRngState(rng);
    const d = delta.detach().requiresGrad_(true);
    const loss = lossOf(embedOf().add(d));
    if (k === 0) clean = loss.item();
    const [g] = torch.grad(loss, d, { retainGraph: true });
    loss.mul(scale / K).backward();
    delta = torch.noGrad(() => {
      // ascend along the normalised gradient, then project each sequence into the epsilon ball
      const gn = g!.reshape([B, -1]).norm(2, 1, true).add(1e-12);
      const step = d.reshape([B, -1]).add(g!.reshape([B, -1]).div(gn).mul(alpha));
      const n = step.norm(2, 1, true);
      return step.mul(n.clamp(o.epsilon, null).reciprocal().mul(o.epsilon)).reshape(embed0.shape as number[]);
    });
  }
  return clean;
}

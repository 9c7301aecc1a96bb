// AdamW (Loshchilov & Hutter 2019), numerically as torch.optim.AdamW: decoupled weight decay,
// bias correction (or none: BERTAdam's update, biasCorrection false). The update runs in one
// fused native pass per parameter (native/optim.cc).
import type { Tensor } from "../torch/index.js";
import * as torch from "../torch/index.js";
import { native } from "../torch/native.js";
import { Optimizer } from "./optimizer.js";
import type { ParamGroupInput } from "./optimizer.js";
import { decayGroups } from "./groups.js";

export interface AdamWOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /**
   * Divide the moments by 1 - β^t (Adam's bias correction; default true). false is the original
   * BERT's optimizer (BERTAdam), which Zhang et al. 2021 and Mosbach et al. 2021 find unstable on
   * small data: p -= lr · m / (√v + eps).
   */
  biasCorrection: boolean;
}

export const ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, biasCorrection: true };

/**
 * The step the native kernel is given for an update without bias correction: it computes
 * lr / (1 - β1^t) and √(1 - β2^t), and at t = 2^53 - 1 both powers underflow to exactly 0 for
 * every β ≤ 1 - 1e-12, so the kernel's arithmetic is BERTAdam's, with no second kernel.
 */
const NO_BIAS_CORRECTION_STEP = Number.MAX_SAFE_INTEGER;

export class AdamW extends Optimizer<AdamWOptions> {
  constructor(params: Tensor[] | ParamGroupInput<AdamWOptions>[], options: Partial<AdamWOptions> = {}) {
    const o = { ...ADAMW_DEFAULTS, ...options };
    if (!(o.lr >= 0)) throw new RangeError(`AdamW: lr must be >= 0, got ${o.lr}`);
    if (!(o.betas[0] >= 0 && o.betas[0] < 1 && o.betas[1] >= 0 && o.betas[1] < 1)) throw new RangeError(`AdamW: betas must be in [0, 1), got [${o.betas}]`);
    if (!(o.eps >= 0)) throw new RangeError(`AdamW: eps must be >= 0, got ${o.eps}`);
    if (!o.biasCorrection && Math.max(...o.betas) > 1 - 1e-12) throw new RangeError(`AdamW: without bias correction the betas must be <= 1 - 1e-12, got [${o.betas}]`);
    super(params, o);
  }

  /**
   * AdamW over a module's trainable parameters, with no weight decay on biases and norm
   * weights (BERT's recipe): `AdamW.forModule(model, { lr: 1e-4, weightDecay: 0.01 })`.
   */
  static forModule(module: { namedParameters(): Iterable<[string, Tensor]> }, options: Partial<AdamWOptions> = {}): AdamW {
    return new AdamW(decayGroups(module.namedParameters(), options.weightDecay ?? ADAMW_DEFAULTS.weightDecay), options);
  }

  step(): void {
    torch.scope(() => {
      for (const group of this.paramGroups) {
        const { lr, betas, eps, weightDecay, biasCorrection } = group.options;
        // Parameters that share a step count are updated in one native call.
        const byStep = new Map<number, { p: Tensor[]; g: Tensor[]; m: Tensor[]; v: Tensor[] }>();
        for (const p of group.params) {
          const g = p.grad;
          if (g === undefined) continue;
          const s = this.stateOf(p, () => ({ exp_avg: torch.zerosLike(p), exp_avg_sq: torch.zerosLike(p) }));
          s.step += 1;
          let batch = byStep.get(s.step);
          if (!batch) byStep.set(s.step, (batch = { p: [], g: [], m: [], v: [] }));
          batch.p.push(p);
          batch.g.push(g.isContiguous ? g : g.contiguous());
          batch.m.push(s.buffers.exp_avg!);
          batch.v.push(s.buffers.exp_avg_sq!);
        }
        for (const [step, b] of byStep) {
          native.adamwStep(
            b.p.map((t) => t._h),
            b.g.map((t) => t._h),
            b.m.map((t) => t._h),
            b.v.map((t) => t._h),
            lr,
            betas[0],
            betas[1],
            eps,
            weightDecay,
            biasCorrection === false ? NO_BIAS_CORRECTION_STEP : step,
          );
        }
      }
    });
  }
}

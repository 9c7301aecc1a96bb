// Multinomial logistic regression fitted to convergence: the classical model beside the
// networks (linear probes on hidden states). The objective is scikit-learn's
// LogisticRegression(C) with the L2 penalty on the weights only:
//
//   sum_i CE(softmax(x_i W + b), y_i) + ||W||^2 / (2 C)
//
// convex, so it is solved, not trained: L-BFGS (Nocedal & Wright, algorithm 7.4, memory m) on
// the exact gradient X^T (P - Y) + W / C, with a backtracking Armijo line search (lbfgs.ts). No learning
// rate, no autograd, the same answer on every run.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { minimiseLbfgs } from "./lbfgs.js";

export interface LogisticOptions {
  /** Inverse regularisation strength, scikit-learn's C (default 1). */
  C?: number;
  /** L-BFGS iterations at most (default 200). */
  maxIterations?: number;
  /** Stop when the gradient's largest entry is below this (default 1e-4, scikit-learn's tol). */
  tolerance?: number;
  /** Correction pairs kept (default 10). */
  memory?: number;
}

export interface LogisticModel {
  /** (D, K) weights and (K) biases, float32 tensors the caller owns. */
  weight: Tensor;
  bias: Tensor;
  /** The objective at the solution, its gradient's largest entry, and the iterations taken. */
  loss: number;
  gradientMax: number;
  iterations: number;
}

/**
 * Fits the model to x (N, D) float32 and labels y (N) in 0..classes-1.
 * @example const m = fitLogistic(features, labels, 3, { C: 1 }); predictLogistic(m, test)
 */
export function fitLogistic(x: Tensor, y: readonly number[], classes: number, options: LogisticOptions = {}): LogisticModel {
  const [N, D] = x.shape as [number, number];
  if (x.ndim !== 2 || y.length !== N) throw new RangeError(`fitLogistic: x must be (N, D) with one label per row, got [${x.shape.join(", ")}] and ${y.length} labels`);
  const bad = y.findIndex((c) => !Number.isInteger(c) || c < 0 || c >= classes);
  if (bad >= 0) throw new RangeError(`fitLogistic: label ${y[bad]} of row ${bad} is not a class in 0..${classes - 1}`);
  const C = options.C ?? 1;
  const tolerance = options.tolerance ?? 1e-4;
  const memory = options.memory ?? 10;
  const K = classes;
  const size = D * K + K;
  const hot = new Float32Array(N * K);
  y.forEach((c, i) => (hot[i * K + c] = 1));
  const onehot = torch.keep(torch.tensor(hot, { shape: [N, K] }));
  const xs = torch.keep(x.float());

  /** The objective and its gradient at the flat parameters (W row-major, then b). */
  const evaluate = (p: Float64Array): { f: number; g: Float64Array } =>
    torch.scope(() => {
      const W = torch.tensor(Float32Array.from(p.subarray(0, D * K)), { shape: [D, K] });
      const b = torch.tensor(Float32Array.from(p.subarray(D * K)), { shape: [K] });
      const logits = xs.mm(W).add(b); // (N, K)
      const logp = logits.logSoftmax(1);
      const ce = -(logp.mul(onehot).sum().item() as number);
      const residual = logp.exp().sub(onehot); // P - Y
      const gW = xs.transpose(0, 1).mm(residual).add(W.div(C)).contiguous().data() as Float32Array;
      const gb = residual.sum(0).contiguous().data() as Float32Array;
      let penalty = 0;
      for (let i = 0; i < D * K; i++) penalty += p[i]! * p[i]!;
      const g = new Float64Array(size);
      g.set(gW, 0);
      g.set(gb, D * K);
      return { f: ce + penalty / (2 * C), g };
    });

  try {
    const r = minimiseLbfgs(evaluate, size, { maxIterations: options.maxIterations ?? 200, tolerance, memory });
    return {
      weight: torch.tensor(Float32Array.from(r.x.subarray(0, D * K)), { shape: [D, K] }),
      bias: torch.tensor(Float32Array.from(r.x.subarray(D * K)), { shape: [K] }),
      loss: r.f,
      gradientMax: r.gradientMax,
      iterations: r.iterations,
    };
  } finally {
    torch.dispose([onehot, xs]);
  }
}

/** The most probable class of each row of x (N, D). */
export function predictLogistic(m: Pick<LogisticModel, "weight" | "bias">, x: Tensor): number[] {
  return torch.scope(() => x.float().mm(m.weight).add(m.bias).argmax(1).toArray() as number[]);
}

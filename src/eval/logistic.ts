// Multinomial logistic regression fitted to convergence: the classical model beside the
// networks (linear probes on hidden states). The objective is scikit-learn's
// LogisticRegression(C) with the L2 penalty on the weights only:
//
//   sum_i CE(softmax(x_i W + b), y_i) + ||W||^2 / (2 C)
//
// convex, so it is solved, not trained: L-BFGS (Nocedal & Wright, algorithm 7.4, memory m) on
// the exact gradient X^T (P - Y) + W / C, with a backtracking Armijo line search. No learning
// rate, no autograd, the same answer on every run.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

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

  const dot = (a: Float64Array, b: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };
  const maxAbs = (a: Float64Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  try {
    let p = new Float64Array(size);
    let { f, g } = evaluate(p);
    const pairs: { s: Float64Array; y: Float64Array; rho: number }[] = [];
    let iterations = 0;
    while (iterations < (options.maxIterations ?? 200) && maxAbs(g) > tolerance) {
      iterations++;
      // two-loop recursion: d = -H g
      const q = Float64Array.from(g);
      const alphas: number[] = [];
      for (let i = pairs.length - 1; i >= 0; i--) {
        const { s, y: yy, rho } = pairs[i]!;
        const a = rho * dot(s, q);
        alphas[i] = a;
        for (let j = 0; j < size; j++) q[j]! -= a * yy[j]!;
      }
      const last = pairs[pairs.length - 1];
      const gamma = last ? dot(last.s, last.y) / dot(last.y, last.y) : 1 / Math.max(1, maxAbs(g));
      for (let j = 0; j < size; j++) q[j]! *= gamma;
      for (let i = 0; i < pairs.length; i++) {
        const { s, y: yy, rho } = pairs[i]!;
        const beta = rho * dot(yy, q);
        for (let j = 0; j < size; j++) q[j]! += s[j]! * (alphas[i]! - beta);
      }
      const d = q.map((v) => -v);
      let slope = dot(g, d);
      if (slope >= 0) {
        // not a descent direction (numerical trouble): restart from steepest descent
        pairs.length = 0;
        for (let j = 0; j < size; j++) d[j] = -g[j]!;
        slope = dot(g, d);
      }
      // backtracking line search, Armijo condition
      let step = 1;
      let next = p.map((v, j) => v + step * d[j]!);
      let r = evaluate(next);
      while (r.f > f + 1e-4 * step * slope && step > 1e-10) {
        step /= 2;
        next = p.map((v, j) => v + step * d[j]!);
        r = evaluate(next);
      }
      const s = next.map((v, j) => v - p[j]!);
      const yv = r.g.map((v, j) => v - g[j]!);
      const sy = dot(s, yv);
      if (sy > 1e-12) {
        pairs.push({ s, y: yv, rho: 1 / sy });
        if (pairs.length > memory) pairs.shift();
      }
      const progress = f - r.f;
      p = next;
      f = r.f;
      g = r.g;
      if (step <= 1e-10 || Math.abs(progress) <= 1e-12 * Math.max(1, Math.abs(f))) break;
    }
    return {
      weight: torch.tensor(Float32Array.from(p.subarray(0, D * K)), { shape: [D, K] }),
      bias: torch.tensor(Float32Array.from(p.subarray(D * K)), { shape: [K] }),
      loss: f,
      gradientMax: maxAbs(g),
      iterations,
    };
  } finally {
    torch.dispose([onehot, xs]);
  }
}

/** The most probable class of each row of x (N, D). */
export function predictLogistic(m: Pick<LogisticModel, "weight" | "bias">, x: Tensor): number[] {
  return torch.scope(() => x.float().mm(m.weight).add(m.bias).argmax(1).toArray() as number[]);
}

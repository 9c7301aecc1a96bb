// Multinomial logistic regression on sparse inputs (TF-IDF rows): the objective of
// logistic.ts, scikit-learn's LogisticRegression(C, solver="lbfgs", multi_class="multinomial"),
//
//   sum_i CE(softmax(x_i W + b), y_i) + ||W||^2 / (2 C)
//
// in float64 and plain TypeScript: the logits X W + b and the gradient X^T (P - Y) + W / C cost
// O(nnz K) each, where a dense (N, D) copy of a TF-IDF matrix would not fit. Solved by the same
// L-BFGS (lbfgs.ts) from zeros (or from a fit at another C, whose biases sum to zero too), so
// the biases keep summing to zero, as scikit-learn's do (every gradient of b sums to zero over
// the classes), and two classes give b0 = -b1, W0 = -W1.
import { minimiseLbfgs } from "./lbfgs.js";
import type { LbfgsOptions } from "./lbfgs.js";
import { csrAddTransposeMatmul, csrMatmul } from "./sparse.js";
import type { CsrMatrix } from "./sparse.js";

export interface SparseLogisticOptions extends LbfgsOptions {
  /** Inverse regularisation strength, scikit-learn's C (default 1). */
  C?: number;
  /** Start from this model (a fit at a nearby C: a regularisation path) instead of zeros. */
  start?: Pick<SparseLogisticModel, "weight" | "bias">;
}

export interface SparseLogisticModel {
  /** (D, K) weights, row-major: W[d * K + k]. scikit-learn's coef_ is its transpose. */
  weight: Float64Array;
  /** (K) biases, scikit-learn's intercept_. */
  bias: Float64Array;
  classes: number;
  /** The objective at the solution, its gradient's largest entry, and the iterations taken. */
  loss: number;
  gradientMax: number;
  iterations: number;
}

/** In place: each row of z (N, K) becomes its softmax; returns the sum of log-sum-exps. */
function softmaxRows(z: Float64Array, k: number): number {
  let lseSum = 0;
  for (let o = 0; o < z.length; o += k) {
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, z[o + c]!);
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.exp(z[o + c]! - m);
    const lse = m + Math.log(s);
    for (let c = 0; c < k; c++) z[o + c] = Math.exp(z[o + c]! - lse);
    lseSum += lse;
  }
  return lseSum;
}

/**
 * Fits the model to x (N, D) sparse and labels y (N) in 0..classes-1.
 * @example const m = fitSparseLogistic(features, labels, 2, { C: 10 }); predictSparseLogistic(m, test)
 */
export function fitSparseLogistic(x: CsrMatrix, y: readonly number[], classes: number, options: SparseLogisticOptions = {}): SparseLogisticModel {
  if (y.length !== x.rows) throw new RangeError(`fitSparseLogistic: ${x.rows} rows but ${y.length} labels`);
  const bad = y.findIndex((c) => !Number.isInteger(c) || c < 0 || c >= classes);
  if (bad >= 0) throw new RangeError(`fitSparseLogistic: label ${y[bad]} of row ${bad} is not a class in 0..${classes - 1}`);
  const C = options.C ?? 1;
  if (!(C > 0)) throw new RangeError(`fitSparseLogistic: C must be positive, got ${C}`);
  const K = classes;
  const D = x.columns;
  const evaluate = (p: Float64Array): { f: number; g: Float64Array } => {
    const W = p.subarray(0, D * K);
    const b = p.subarray(D * K);
    const z = csrMatmul(x, W, K, b); // (N, K) logits
    let picked = 0;
    for (let i = 0; i < y.length; i++) picked += z[i * K + y[i]!]!;
    const ce = softmaxRows(z, K) - picked; // z now holds P
    for (let i = 0; i < y.length; i++) z[i * K + y[i]!]! -= 1; // P - Y
    const g = new Float64Array(D * K + K);
    let penalty = 0;
    for (let j = 0; j < D * K; j++) {
      g[j] = W[j]! / C;
      penalty += W[j]! * W[j]!;
    }
    csrAddTransposeMatmul(x, z, K, g);
    for (let o = 0; o < z.length; o += K) for (let c = 0; c < K; c++) g[D * K + c]! += z[o + c]!;
    return { f: ce + penalty / (2 * C), g };
  };
  let x0: Float64Array | undefined;
  if (options.start) {
    if (options.start.weight.length !== D * K || options.start.bias.length !== K) throw new RangeError(`fitSparseLogistic: the start model has ${options.start.weight.length} weights and ${options.start.bias.length} biases, not ${D} x ${K} and ${K}`);
    x0 = new Float64Array(D * K + K);
    x0.set(options.start.weight);
    x0.set(options.start.bias, D * K);
  }
  const r = minimiseLbfgs(evaluate, D * K + K, options, x0);
  return { weight: r.x.slice(0, D * K), bias: r.x.slice(D * K), classes: K, loss: r.f, gradientMax: r.gradientMax, iterations: r.iterations };
}

/** Each row's class probabilities, (N) rows of K. */
export function sparseLogisticProba(m: Pick<SparseLogisticModel, "weight" | "bias" | "classes">, x: CsrMatrix): number[][] {
  const z = csrMatmul(x, m.weight, m.classes, m.bias);
  softmaxRows(z, m.classes);
  return Array.from({ length: x.rows }, (_, i) => Array.from(z.subarray(i * m.classes, (i + 1) * m.classes)));
}

/** The most probable class of each row (the first on a tie, as numpy's argmax). */
export function predictSparseLogistic(m: Pick<SparseLogisticModel, "weight" | "bias" | "classes">, x: CsrMatrix): number[] {
  return sparseLogisticProba(m, x).map((p) => p.indexOf(Math.max(...p)));
}

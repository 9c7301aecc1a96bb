// L-BFGS (Nocedal & Wright, algorithm 7.4, memory m) with a backtracking Armijo line search: the
// minimiser of the convex objectives solved here (logistic regression, dense in logistic.ts and
// sparse in sparse-logistic.ts). No learning rate: the same answer on every run.

export interface LbfgsOptions {
  /** Iterations at most (default 200). */
  maxIterations?: number;
  /** Stop when the gradient's largest entry is below this (default 1e-4, scikit-learn's tol). */
  tolerance?: number;
  /** Correction pairs kept (default 10). */
  memory?: number;
}

export interface LbfgsResult {
  /** The parameters at the solution (a fresh array). */
  x: Float64Array;
  /** The objective there, its gradient's largest entry, and the iterations taken. */
  f: number;
  gradientMax: number;
  iterations: number;
}

/** An objective: its value and gradient at x. */
export type Objective = (x: Float64Array) => { f: number; g: Float64Array };

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * Minimises a smooth objective from x0 (zeros of `size` by default). Stops at the gradient
 * tolerance, after maxIterations, or when a step no longer lowers the objective (relative 1e-12).
 * @example minimiseLbfgs((x) => ({ f: (x[0]! - 3) ** 2, g: Float64Array.of(2 * (x[0]! - 3)) }), 1).x // [3]
 */
export function minimiseLbfgs(evaluate: Objective, size: number, options: LbfgsOptions = {}, x0?: Float64Array): LbfgsResult {
  const tolerance = options.tolerance ?? 1e-4;
  const memory = options.memory ?? 10;
  let p = x0 ? Float64Array.from(x0) : new Float64Array(size);
  let { f, g } = evaluate(p);
  const pairs: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  let scratch: { s: Float64Array; y: Float64Array } = { s: new Float64Array(size), y: new Float64Array(size) };
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
    const d = q; // the direction, in place of q
    for (let j = 0; j < size; j++) d[j] = -d[j]!;
    let slope = dot(g, d);
    if (slope >= 0) {
      // not a descent direction (numerical trouble): restart from steepest descent
      pairs.length = 0;
      for (let j = 0; j < size; j++) d[j] = -g[j]!;
      slope = dot(g, d);
    }
    // backtracking line search, Armijo condition
    let step = 1;
    const next = new Float64Array(size);
    const moveTo = (t: number): void => {
      for (let j = 0; j < size; j++) next[j] = p[j]! + t * d[j]!;
    };
    moveTo(step);
    let r = evaluate(next);
    while (r.f > f + 1e-4 * step * slope && step > 1e-10) {
      step /= 2;
      moveTo(step);
      r = evaluate(next);
    }
    const s = scratch.s;
    const yv = scratch.y;
    for (let j = 0; j < size; j++) {
      s[j] = next[j]! - p[j]!;
      yv[j] = r.g[j]! - g[j]!;
    }
    const sy = dot(s, yv);
    if (sy > 1e-12) {
      pairs.push({ s, y: yv, rho: 1 / sy });
      // the dropped pair's arrays hold the next one (no garbage per iteration)
      scratch = pairs.length > memory ? pairs.shift()! : { s: new Float64Array(size), y: new Float64Array(size) };
    }
    const progress = f - r.f;
    p = next;
    f = r.f;
    g = r.g;
    if (step <= 1e-10 || Math.abs(progress) <= 1e-12 * Math.max(1, Math.abs(f))) break;
  }
  return { x: p, f, gradientMax: maxAbs(g), iterations };
}

// Quadrature rules on [0, 1] for the path integral of integrated gradients: the points α at
// which the gradient is taken and their weights (Σ weights = 1). Pure TypeScript.

/** How the integral over α in [0, 1] is approximated. */
export type IntegrationRule = "gauss-legendre" | "trapezoid";

export const INTEGRATION_RULES: readonly IntegrationRule[] = ["gauss-legendre", "trapezoid"];

export interface Quadrature {
  points: number[];
  weights: number[];
}

/**
 * Gauss–Legendre with n points, mapped from [-1, 1] to [0, 1]: exact for polynomials of degree
 * 2n - 1, so for a smooth integrand the error falls much faster than the trapezoid's 1/n².
 * Roots by Newton's method on P_n from Chebyshev-like starting guesses (Numerical Recipes' gauleg).
 */
export function gaussLegendre(n: number): Quadrature {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`gaussLegendre: n must be an integer >= 1, got ${n}`);
  const points = new Array<number>(n);
  const weights = new Array<number>(n);
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      // P_n(x) by the three-term recurrence, P_{n-1} kept for the derivative
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      // p1 = P_n(x), p0 = P_{n-1}(x); P_n'(x) = n (x P_n - P_{n-1}) / (x² - 1)
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    const w = 2 / ((1 - x * x) * dp * dp);
    // symmetric pair ±x on [-1, 1] -> (1 ± x) / 2 on [0, 1], weights halved
    points[i] = (1 - x) / 2;
    points[n - 1 - i] = (1 + x) / 2;
    weights[i] = w / 2;
    weights[n - 1 - i] = w / 2;
  }
  return { points, weights };
}

/** The trapezoid rule with n intervals: n + 1 points k/n, weights 1/n (1/2n at the ends). */
export function trapezoid(n: number): Quadrature {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`trapezoid: n must be an integer >= 1, got ${n}`);
  const points = Array.from({ length: n + 1 }, (_, k) => k / n);
  const weights = points.map((_, k) => (k === 0 || k === n ? 0.5 / n : 1 / n));
  return { points, weights };
}

/** The rule's points and weights for n steps. */
export function quadrature(rule: IntegrationRule, n: number): Quadrature {
  if (rule === "gauss-legendre") return gaussLegendre(n);
  if (rule === "trapezoid") return trapezoid(n);
  throw new Error(`unknown integration rule "${String(rule)}"; use ${INTEGRATION_RULES.join(" or ")}`);
}

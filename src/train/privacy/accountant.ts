// The Rényi DP accountant of the Poisson-subsampled Gaussian mechanism, which DP-SGD is: each
// step includes every example with probability q and adds N(0, σ²C²) noise to the sum of
// gradients clipped to norm C.
//
// RDP at order α of one step is log(A_α) / (α − 1) (Mironov, Talwar, Zhang 2019, "Rényi
// Differential Privacy of the Sampled Gaussian Mechanism", Sec. 3.3): for integer α the binomial
// sum A_α = Σᵢ C(α,i) qⁱ (1−q)^(α−i) exp((i²−i)/(2σ²)); for fractional α the two-sided series
// with erfc terms, summed with the binomials' signs until both terms fall below e⁻³⁰. Everything
// is in log space. Steps compose by adding RDP; (ε, δ) comes from the best order with the
// conversion of Balle et al. 2020 (Theorem 21), as Opacus's get_privacy_spent does:
//
//   ε = rdp − (log δ + log α) / (α − 1) + log((α − 1) / α)
//
// which is tighter than the classic ε = rdp − log δ / (α − 1) (Mironov 2017, Proposition 3).
// This is pure TypeScript; the values are checked against Opacus's and TensorFlow Privacy's
// published test values (test/privacy-accountant.test.ts).

/** Opacus's default orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63. */
export const DEFAULT_ORDERS: readonly number[] = [...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10), ...Array.from({ length: 52 }, (_, x) => 12 + x)];

// ---------------------------------------------------------------- special functions

/** log(eˣ + eʸ). */
function logAdd(x: number, y: number): number {
  const [a, b] = x < y ? [x, y] : [y, x];
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(eˣ − eʸ) for x ≥ y (−∞ when they are equal). */
function logSub(x: number, y: number): number {
  if (y === -Infinity) return x;
  if (x <= y) return -Infinity; // the series' partial sums never go negative; equal is zero
  const d = x - y;
  return d > 700 ? x : Math.log(Math.expm1(d)) + y;
}

const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];

/** log |Γ(x)| (Lanczos, g = 7; reflection for x < 0.5), as scipy's gammaln. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI) - Math.log(Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** log |C(n, k)| and the sign of C(n, k), for real n and integer k ≥ 0. */
function logBinomial(n: number, k: number): [number, number] {
  // C(n, k) = n (n−1) ... (n−k+1) / k!: negative when an odd number of the factors are
  let sign = 1;
  for (let j = 0; j < k; j++) if (n - j < 0) sign = -sign;
  if (Number.isInteger(n) && k > n) return [-Infinity, 0];
  return [logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1), sign];
}

/** erf(x) by its Taylor series, for |x| < 2.5 (absolute error ~1e-15). */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** log erfc(x), accurate for large x (where erfc underflows): the continued fraction beyond 2.5. */
export function logErfc(x: number): number {
  if (x < -2.5) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2.5) return Math.log(1 - erfSeries(x));
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated bottom-up
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(f);
}

// ---------------------------------------------------------------- RDP of the sampled Gaussian

function logAInteger(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  const logQ = Math.log(q);
  const log1mq = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    const [logCoef] = logBinomial(alpha, i);
    logA = logAdd(logA, logCoef + i * logQ + (alpha - i) * log1mq + (i * i - i) / (2 * sigma * sigma));
  }
  return logA;
}

function logAFractional(q: number, sigma: number, alpha: number): number {
  // the integrals over (−∞, z0] and [z0, ∞), each a signed series
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mq = Math.log1p(-q);
  for (let i = 0; i < 10000; i++) {
    const [logCoef, sign] = logBinomial(alpha, i);
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mq;
    const logT1 = logCoef + j * logQ + i * log1mq;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the sampled Gaussian mechanism at order α (∞ without noise). */
export function rdpOfStep(q: number, sigma: number, alpha: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sampling rate must be in [0, 1], got ${q}`);
  if (!(sigma >= 0)) throw new RangeError(`noise multiplier must be >= 0, got ${sigma}`);
  if (!(alpha > 1)) throw new RangeError(`RDP orders must be > 1, got ${alpha}`);
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP after `steps` steps, at each order (Opacus's compute_rdp). */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  return orders.map((a) => rdpOfStep(q, sigma, a) * steps);
}

/** (ε, best order) for δ from RDP values at orders (Balle et al. 2020's conversion, Opacus's get_privacy_spent). */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (orders.length !== rdp.length) throw new Error(`${orders.length} orders but ${rdp.length} RDP values`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: NaN };
  orders.forEach((a, i) => {
    const eps = rdp[i]! - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  });
  return best;
}

/** ε after `steps` steps of rate q and noise multiplier σ, at δ. */
export function epsilonFor(q: number, sigma: number, steps: number, delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  return rdpToEpsilon(orders, computeRdp(q, sigma, steps, orders), delta).epsilon;
}

/**
 * The noise multiplier with which `steps` steps of rate q land at or just under ε (within
 * `tolerance`), by Opacus's search (get_noise_multiplier): double σ from 20 until under the
 * target, then bisect from [0, σ]. Throws when even σ = 10⁶ is not enough.
 */
export function noiseMultiplierFor(o: { targetEpsilon: number; delta: number; sampleRate: number; steps: number; tolerance?: number; orders?: readonly number[] }): number {
  const { targetEpsilon, delta, sampleRate, steps } = o;
  if (!(targetEpsilon > 0)) throw new RangeError(`target epsilon must be > 0, got ${targetEpsilon}`);
  const eps = (sigma: number): number => epsilonFor(sampleRate, sigma, steps, delta, o.orders ?? DEFAULT_ORDERS);
  let low = 0;
  let high = 10;
  let epsHigh = Infinity;
  while (epsHigh > targetEpsilon) {
    high *= 2;
    epsHigh = eps(high);
    if (high > 1e6) throw new Error(`the privacy budget ε = ${targetEpsilon} at δ = ${delta} is too low for ${steps} steps at sampling rate ${sampleRate}`);
  }
  while (targetEpsilon - epsHigh > (o.tolerance ?? 0.01)) {
    const mid = (low + high) / 2;
    const e = eps(mid);
    if (e < targetEpsilon) {
      high = mid;
      epsHigh = e;
    } else low = mid;
  }
  return high;
}

/**
 * Tracks the privacy spent by a run of DP-SGD steps (Opacus's RDPAccountant): steps of the
 * same (q, σ) are grouped, RDP adds up over the groups.
 */
export class RdpAccountant {
  private history: { sampleRate: number; noiseMultiplier: number; steps: number }[] = [];

  constructor(readonly orders: readonly number[] = DEFAULT_ORDERS) {}

  /** Records `count` steps of rate q and noise multiplier σ. */
  step(noiseMultiplier: number, sampleRate: number, count = 1): void {
    const last = this.history.at(-1);
    if (last && last.noiseMultiplier === noiseMultiplier && last.sampleRate === sampleRate) last.steps += count;
    else this.history.push({ noiseMultiplier, sampleRate, steps: count });
  }

  get steps(): number {
    return this.history.reduce((n, h) => n + h.steps, 0);
  }

  /** ε at δ of the steps so far (0 before any). */
  getEpsilon(delta: number): number {
    if (this.history.length === 0) return 0;
    const rdp = this.orders.map(() => 0);
    for (const h of this.history) computeRdp(h.sampleRate, h.noiseMultiplier, h.steps, this.orders).forEach((r, i) => (rdp[i]! += r));
    return rdpToEpsilon(this.orders, rdp, delta).epsilon;
  }

  /** The history, for a checkpoint; and back. */
  stateDict(): { sampleRate: number; noiseMultiplier: number; steps: number }[] {
    return this.history.map((h) => ({ ...h }));
  }

  loadStateDict(history: readonly { sampleRate: number; noiseMultiplier: number; steps: number }[]): void {
    this.history = history.map((h) => ({ ...h }));
  }
}

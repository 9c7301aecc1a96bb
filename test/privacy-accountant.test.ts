// The RDP accountant against the values published in the DP-SGD libraries' own tests:
//   Opacus, opacus/tests/accountants_test.py (pytorch/opacus): RDPAccountant with σ = 1.5,
//     q = 0.04, int(90 / 0.04) = 2250 steps, δ = 1e-5 → ε = 7.32911117143 (assertAlmostEqual, 7
//     places); get_noise_multiplier for ε = 8, δ = 1e-5, q = 0.04: 90 epochs → 1.416 and 2000
//     steps → 1.3562 (4 places).
//   TensorFlow Privacy, tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py:
//     compute_dp_sgd_privacy(n, batch, σ, epochs, δ) with its orders [1.25, ..., 4.5, 5..63, 128,
//     256, 512] and steps = ceil(epochs n / batch): (60000, 150, 1.3, 15, 1e-5) → ε =
//     0.7242234026109595 at order 19; (100000, 100, 1.0, 30, 1e-7) → 1.4154988495444842 at 13;
//     (1e8, 1024, 0.1, 10, 1e-7) → 5907982.3113978775 at 1.25 (assertAlmostEqual, 7 places).
//   Google's dp_accounting, rdp/rdp_privacy_accountant_test.py: q = 0.01, σ = 2.5, 50 steps at
//     integer orders 5, 50, 100 → 2.18075656e-03, 2.38460375e-02, 1.67416308e02 (rtol 1e-4); a
//     constant RDP of 1.1 at orders 2..32, δ = 1e-5 → ε = 1.32783806176 at order 32; q = 1,
//     σ = 4.530877117 → exactly (1, 1e-6)-DP over orders 1.001 ... 99.999.
// Fractional orders are summed with the binomials' signs, as Opacus does (dp_accounting sums
// magnitudes, an upper bound: its 6.7058e-4 at α = 1.5 above): they are checked against A_α
// integrated numerically, as dp_accounting's test does with mpmath.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RdpAccountant, computeRdp, epsilonFor, logErfc, logGamma, noiseMultiplierFor, rdpOfStep, rdpToEpsilon } from "../src/train/privacy/accountant.js";

const close = (actual: number, expected: number, tol: number, what = ""): void => assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected} (tolerance ${tol})`);
const TF_ORDERS = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...Array.from({ length: 59 }, (_, i) => 5 + i), 128, 256, 512];

test("special functions: log Γ and log erfc against known values", () => {
  close(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-13);
  close(logGamma(10), Math.log(362880), 1e-12);
  close(logGamma(-0.5), Math.log(2 * Math.sqrt(Math.PI)), 1e-13); // |Γ(−1/2)| = 2√π
  close(Math.exp(logErfc(0.5)), 0.4795001221869535, 1e-15);
  close(Math.exp(logErfc(3)), 2.209049699858544e-5, 1e-18);
  // erfc(30) underflows, its log does not: the asymptotic series e^(−x²)/(x√π) (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶))
  close(logErfc(30), -900 - 0.5 * Math.log(Math.PI) - Math.log(30) + Math.log(1 - 1 / 1800 + 3 / (4 * 810000) - 15 / (8 * 729000000)), 1e-10);
});

test("Opacus: RDPAccountant ε and get_noise_multiplier", () => {
  const acc = new RdpAccountant();
  for (let i = 0; i < 2250; i++) acc.step(1.5, 0.04);
  assert.equal(acc.steps, 2250);
  close(acc.getEpsilon(1e-5), 7.32911117143, 5e-8, "ε");
  close(noiseMultiplierFor({ targetEpsilon: 8, delta: 1e-5, sampleRate: 0.04, steps: Math.trunc(90 / 0.04) }), 1.416, 5e-5, "σ (90 epochs)");
  close(noiseMultiplierFor({ targetEpsilon: 8, delta: 1e-5, sampleRate: 0.04, steps: 2000 }), 1.3562, 5e-5, "σ (2000 steps)");
  assert.throws(() => noiseMultiplierFor({ targetEpsilon: 1e-9, delta: 1e-5, sampleRate: 1, steps: 1e9 }), /too low/);
});

test("TensorFlow Privacy: compute_dp_sgd_privacy's test cases", () => {
  for (const [n, batch, sigma, epochs, delta, eps, order] of [
    [60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19],
    [100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13],
    [100000000, 1024, 0.1, 10, 1e-7, 5907982.3113978775, 1.25],
  ] as const) {
    const steps = Math.ceil((epochs * n) / batch);
    const r = rdpToEpsilon(TF_ORDERS, computeRdp(batch / n, sigma, steps, TF_ORDERS), delta);
    close(r.epsilon, eps, Math.max(5e-8, eps * 1e-11), `n=${n}`);
    assert.equal(r.order, order);
  }
});

test("dp_accounting: RDP at integer orders, the conversion, the Gaussian without sampling", () => {
  const rdp = computeRdp(0.01, 2.5, 50, [5, 50, 100, Infinity]);
  [2.18075656e-3, 2.38460375e-2, 1.67416308e2].forEach((v, i) => close(rdp[i]!, v, v * 1e-4, `order ${[5, 50, 100][i]}`));
  assert.equal(rdp[3], Infinity);
  const orders = Array.from({ length: 31 }, (_, i) => i + 2);
  const r = rdpToEpsilon(orders, orders.map(() => 1.1), 1e-5);
  close(r.epsilon, 1.32783806176, 5e-8);
  assert.equal(r.order, 32);
  const fine = Array.from({ length: 98999 }, (_, i) => 0.001 * (i + 1001)).filter((a) => a > 1.01);
  close(epsilonFor(1, 4.530877117, 1, 1e-6, fine), 1, 5e-8);
  assert.equal(rdpOfStep(0, 1, 2), 0);
  assert.equal(rdpOfStep(0.1, 0, 2), Infinity);
});

/** A_α = ∫ N(z; 0, σ²) ((1 − q) + q exp((2z − 1) / (2σ²)))^α dz by Simpson's rule: the definition (Mironov et al. 2019, Sec. 3.3). */
function integratedLogA(q: number, sigma: number, alpha: number): number {
  const lo = -40 * sigma;
  const hi = 40 * sigma + 40;
  const n = 200000;
  const h = (hi - lo) / n;
  const f = (z: number): number => Math.exp(-(z * z) / (2 * sigma * sigma)) / (sigma * Math.sqrt(2 * Math.PI)) * Math.pow(1 - q + q * Math.exp((2 * z - 1) / (2 * sigma * sigma)), alpha);
  let s = f(lo) + f(hi);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(lo + i * h);
  return Math.log((s * h) / 3);
}

test("fractional orders: the signed series equals the integral that defines A_α", () => {
  for (const [q, sigma, alpha] of [[0.01, 2.5, 1.5], [0.01, 2.5, 2.5], [0.04, 1.5, 7.3], [0.1, 1, 3.7]] as const) {
    const expected = integratedLogA(q, sigma, alpha) / (alpha - 1);
    close(rdpOfStep(q, sigma, alpha), expected, Math.abs(expected) * 1e-6, `q=${q} σ=${sigma} α=${alpha}`);
  }
  // the integer series agrees with the integral too
  close(rdpOfStep(0.04, 1.5, 8), integratedLogA(0.04, 1.5, 8) / 7, 1e-9);
});

test("accountant: steps of one setting group, different settings add their RDP, state round-trips", () => {
  const a = new RdpAccountant();
  a.step(1.2, 0.01, 100);
  a.step(1.2, 0.01, 50);
  a.step(2.0, 0.02, 10);
  assert.deepEqual(a.stateDict(), [{ noiseMultiplier: 1.2, sampleRate: 0.01, steps: 150 }, { noiseMultiplier: 2.0, sampleRate: 0.02, steps: 10 }]);
  const orders = a.orders;
  const rdp = computeRdp(0.01, 1.2, 150, orders).map((r, i) => r + computeRdp(0.02, 2.0, 10, orders)[i]!);
  assert.equal(a.getEpsilon(1e-5), rdpToEpsilon(orders, rdp, 1e-5).epsilon);
  const b = new RdpAccountant();
  b.loadStateDict(a.stateDict());
  assert.equal(b.getEpsilon(1e-5), a.getEpsilon(1e-5));
  assert.equal(new RdpAccountant().getEpsilon(1e-5), 0);
});

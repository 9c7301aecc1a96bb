// Multinomial logistic regression (src/eval/logistic.ts) against scikit-learn 1.2's
// LogisticRegression (lbfgs, tol 1e-12) on a committed seeded dataset, at two strengths.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as torch from "../src/torch/index.js";
import { fitLogistic, predictLogistic } from "../src/eval/logistic.js";

const fixture = JSON.parse(readFileSync(new URL("../../test/fixtures/logistic.json", import.meta.url), "utf8")) as {
  X: number[][];
  y: number[];
  classes: number;
  fits: { C: number; coef: number[][]; intercept: number[]; proba: number[][] }[];
};

for (const fit of fixture.fits) {
  test(`logistic regression at C = ${fit.C} finds scikit-learn's weights, biases and probabilities`, () => {
    torch.scope(() => {
      const x = torch.tensor(fixture.X);
      const m = fitLogistic(x, fixture.y, fixture.classes, { C: fit.C, tolerance: 1e-5, maxIterations: 500 });
      const W = m.weight.toArray() as number[][]; // (D, K); scikit-learn's coef_ is (K, D)
      let worst = 0;
      fit.coef.forEach((row, k) => row.forEach((v, d) => (worst = Math.max(worst, Math.abs(W[d]![k]! - v)))));
      (m.bias.toArray() as number[]).forEach((v, k) => (worst = Math.max(worst, Math.abs(v - fit.intercept[k]!))));
      assert.ok(worst < 2e-3, `largest parameter difference ${worst} (after ${m.iterations} iterations, gradient ${m.gradientMax})`);
      const p = x.narrow(0, 0, 5).mm(m.weight).add(m.bias).softmax(1).toArray() as number[][];
      p.forEach((row, i) => row.forEach((v, k) => assert.ok(Math.abs(v - fit.proba[i]![k]!) < 1e-3, `p[${i}][${k}] ${v} vs ${fit.proba[i]![k]}`)));
      // predictions are the argmax of those probabilities
      assert.deepEqual(predictLogistic(m, x.narrow(0, 0, 5)), fit.proba.map((row) => row.indexOf(Math.max(...row))));
      torch.dispose([m.weight, m.bias]);
    });
  });
}

test("logistic regression refuses labels outside the classes and mismatched shapes, naming the row", () => {
  torch.scope(() => {
    const x = torch.zeros([3, 2]);
    assert.throws(() => fitLogistic(x, [0, 3, 1], 3), /label 3 of row 1 is not a class in 0\.\.2/);
    assert.throws(() => fitLogistic(x, [0, 1], 3), /one label per row, got \[3, 2\] and 2 labels/);
  });
});

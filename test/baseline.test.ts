// The classical baseline (src/eval/tfidf.ts, src/eval/sparse-logistic.ts, src/train/baseline.ts)
// against hand-worked cases and against scikit-learn 1.2.1 on 300 SpamAssassin mails
// (test/fixtures/baseline: make-texts.mjs wrote the texts, make-expected.py the expected values).
//
// Tolerances: TF-IDF is the same arithmetic in float64 on both sides (a log, a product, a norm),
// so 1e-12. The logistic regressions are two L-BFGS runs to one convex optimum that stop at
// different points (scipy's L-BFGS-B stops on a relative objective change of 2.2e-9 even with
// tol 1e-10; ours runs to a gradient of 1e-8): probabilities agree to ~1e-5, held to 1e-4, and
// the predictions and the validation scores that pick C must be equal.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { analyze, classificationReport, csrFromRows, csrRow, fitSparseLogistic, fitTfidf, formatReport, minimiseLbfgs, sparseLogisticProba, transformTfidf } from "../src/eval/index.js";
import { runBaseline } from "../src/train/baseline.js";
import type { LabelledExample } from "../src/data/index.js";

const dir = new URL("../../test/fixtures/baseline/", import.meta.url);
type Row = { text: string; label: string; part: string; source: string };
const rows = readFileSync(new URL("texts.jsonl", dir), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Row);
interface Fit { classes: string[]; validation_macro_f1: number[]; C: number; coef: number[][]; intercept: number[]; test_proba: number[][]; test_predictions: number[] }
const expected = JSON.parse(readFileSync(new URL("expected.json", dir), "utf8")) as {
  grid: number[];
  vocabulary: string[];
  idf: number[];
  train_rows: Record<string, { indices: number[]; values: number[] }>;
  test_rows: Record<string, { indices: number[]; values: number[] }>;
  multiclass: Fit;
  binary: Fit;
};
const part = (name: string): Row[] => rows.filter((r) => r.part === name);

test("the analyzer lowercases, keeps runs of two or more Unicode word characters, then adds word pairs", () => {
  // "a" and "x" are one character; "b_c" keeps its underscore; "École" is letters; "42nd" letters and digits
  assert.deepEqual(analyze("Hello, World! a b_c École x 42nd"), ["hello", "world", "b_c", "école", "42nd", "hello world", "world b_c", "b_c école", "école 42nd"]);
  assert.deepEqual(analyze("one two three", 1), ["one", "two", "three"]);
});

test("TF-IDF on a hand-worked case: smoothed idf, 1 + ln(tf), rows of unit length", () => {
  // df: cat 2, the 2, ran 2, sat 1, "the cat" 2 ... with minDf 2 the vocabulary is [cat, ran, the, the cat]
  const v = fitTfidf(["the cat sat the cat", "the cat ran", "dogs ran"], { minDf: 2 });
  assert.deepEqual(v.vocabulary, ["cat", "ran", "the", "the cat"]);
  const idf2 = Math.log(4 / 3) + 1; // n = 3, df = 2
  for (const x of v.idf) assert.ok(Math.abs(x - idf2) < 1e-15);
  // document 0: cat 2, the 2, "the cat" 2, ran 0 -> each (1 + ln 2) idf2, normalised: 1/sqrt(3)
  const m = transformTfidf(v, ["the cat sat the cat", "nothing known here"]);
  const row = csrRow(m, 0);
  [1 / Math.sqrt(3), 0, 1 / Math.sqrt(3), 1 / Math.sqrt(3)].forEach((x, j) => assert.ok(Math.abs(row[j]! - x) < 1e-15, `column ${j}: ${row[j]}`));
  assert.equal(m.indptr[2]! - m.indptr[1]!, 0, "a text of unknown words is an empty row");
  assert.throws(() => fitTfidf(["a b", "c d"], { minDf: 2 }), /no term is in 2 or more of the 2 training texts/);
});

test("TF-IDF equals scikit-learn's TfidfVectorizer on 200 SpamAssassin mails: vocabulary, idf and rows", () => {
  const train = part("train");
  const v = fitTfidf(train.map((r) => r.text), { maxN: 2, minDf: 2 });
  assert.equal(v.vocabulary.length, expected.vocabulary.length);
  assert.deepEqual(v.vocabulary, expected.vocabulary);
  let worst = 0;
  expected.idf.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - v.idf[j]!))));
  assert.ok(worst < 1e-12, `idf differs by ${worst}`);
  const check = (texts: Row[], want: Record<string, { indices: number[]; values: number[] }>): void => {
    const m = transformTfidf(v, texts.map((r) => r.text));
    for (const [i, r] of Object.entries(want)) {
      const a = m.indptr[Number(i)]!;
      const b = m.indptr[Number(i) + 1]!;
      assert.deepEqual([...m.indices.subarray(a, b)], r.indices, `row ${i}: columns`);
      r.values.forEach((x, j) => assert.ok(Math.abs(m.data[a + j]! - x) < 1e-12, `row ${i}, column ${r.indices[j]}: ${m.data[a + j]} vs ${x}`));
    }
  };
  check(train, expected.train_rows);
  check(part("test"), expected.test_rows);
});

for (const [name, labelOf] of [["multiclass", (r: Row) => r.label], ["binary", (r: Row) => (r.label === "spam" ? "spam" : "ham")]] as const) {
  const fit = expected[name];
  const examples = (p: string): LabelledExample[] => part(p).map((r) => ({ text: r.text, label: labelOf(r), source: r.source }));

  test(`the ${name} baseline picks scikit-learn's C on validation and predicts its test labels (C grid ${expected.grid.join(", ")})`, () => {
    const r = runBaseline({ train: examples("train"), validation: examples("validation"), test: examples("test") }, fit.classes, { cGrid: expected.grid, tolerance: 1e-8, maxIter: 5000 });
    r.grid.forEach((g, i) => assert.ok(Math.abs(g.macro_f1 - fit.validation_macro_f1[i]!) < 1e-12, `C ${g.C}: validation macro-F1 ${g.macro_f1} vs ${fit.validation_macro_f1[i]}`));
    assert.equal(r.C, fit.C);
    assert.deepEqual(r.test!.predictions.map((p) => fit.classes.indexOf(p.label)), fit.test_predictions);
    let worst = 0;
    r.test!.predictions.forEach((p, i) => fit.classes.forEach((c, k) => (worst = Math.max(worst, Math.abs(p.probabilities[c]! - fit.test_proba[i]![k]!)))));
    assert.ok(worst < 1e-4, `test probabilities differ by ${worst}`);
  });

  test(`the ${name} logistic regression at C = ${fit.C} finds scikit-learn's coefficients`, () => {
    const train = part("train");
    const v = fitTfidf(train.map((r) => r.text), { minDf: 2 });
    const y = train.map((r) => fit.classes.indexOf(labelOf(r)));
    const m = fitSparseLogistic(transformTfidf(v, train.map((r) => r.text)), y, fit.classes.length, { C: fit.C, tolerance: 1e-8, maxIterations: 5000 });
    const K = fit.classes.length;
    // scikit-learn keeps one row for two classes: class 1's (class 0's is its negative)
    const rowsOf = K === 2 ? [1] : fit.classes.map((_, k) => k);
    let worst = 0;
    let largest = 0;
    rowsOf.forEach((k, r) => fit.coef[r]!.forEach((x, d) => ((worst = Math.max(worst, Math.abs(m.weight[d * K + k]! - x))), (largest = Math.max(largest, Math.abs(x))))));
    rowsOf.forEach((k, r) => (worst = Math.max(worst, Math.abs(m.bias[k]! - fit.intercept[r]!))));
    assert.ok(worst < 1e-3 * largest, `coefficients differ by ${worst} (largest ${largest}; ${m.iterations} iterations, gradient ${m.gradientMax})`);
    if (K === 2) assert.ok(Math.abs(m.bias[0]! + m.bias[1]!) < 1e-9, "two classes: b0 = -b1, as scikit-learn's single row assumes");
  });
}

test("sparse logistic regression on a hand-worked case: one feature, two classes, the optimum's closed form", () => {
  // x = +1 for class 1 and -1 for class 0 (one row each): by symmetry b = 0 and W1 = -W0 = w / 2,
  // the objective is 2 ln(1 + e^-w) + w^2 / (4 C), stationary where 2 sigmoid(-w) = w / (2 C)
  const x = csrFromRows([[[0, 1]], [[0, -1]]], 1);
  const m = fitSparseLogistic(x, [1, 0], 2, { C: 1, tolerance: 1e-12 });
  const w = m.weight[1]! - m.weight[0]!;
  assert.ok(Math.abs((2 * 1) / (1 + Math.exp(w)) - w / 2) < 1e-9, `w = ${w}`);
  assert.ok(Math.abs(m.bias[0]!) < 1e-12 && Math.abs(m.bias[1]!) < 1e-12);
  const p = sparseLogisticProba(m, x);
  assert.ok(Math.abs(p[0]![1]! - 1 / (1 + Math.exp(-w))) < 1e-12);
  assert.throws(() => fitSparseLogistic(x, [1, 2], 2), /label 2 of row 1 is not a class in 0\.\.1/);
});

test("L-BFGS finds the minimum of a convex quadratic", () => {
  // f = (x0 - 3)^2 + 10 (x1 + 1)^2 + x0 x1: the minimum solves 2(x0 - 3) + x1 = 0, 20(x1 + 1) + x0 = 0
  const r = minimiseLbfgs((x) => ({ f: (x[0]! - 3) ** 2 + 10 * (x[1]! + 1) ** 2 + x[0]! * x[1]!, g: Float64Array.of(2 * (x[0]! - 3) + x[1]!, 20 * (x[1]! + 1) + x[0]!) }), 2, { tolerance: 1e-10 });
  // x1 = -(20 + x0) / 20 -> 2 x0 - 6 - 1 - x0 / 20 = 0 -> x0 = 7 / 1.95
  assert.ok(Math.abs(r.x[0]! - 7 / 1.95) < 1e-8 && Math.abs(r.x[1]! + (20 + 7 / 1.95) / 20) < 1e-8, `x = ${[...r.x]}`);
});

test("the report's confusion matrix keeps long labels apart (sotu-party's Democratic and Republican ran together)", () => {
  const text = formatReport(classificationReport([0, 0, 1], [0, 1, 1], ["Democratic", "Republican"]));
  const lines = text.split("\n");
  const header = lines[lines.indexOf("confusion matrix (rows: true, columns: predicted)") + 1]!;
  assert.equal(header, `${" ".repeat(12)} Democratic Republican`);
  assert.ok(lines.includes("Democratic            1          1"), text);
});

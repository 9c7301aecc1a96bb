// src/eval/drift.ts: bins, histograms, PSI on hand-computed cases, the features of an encoding,
// the sliding window, and the checks of a saved reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DriftWindow, NUMERIC_BINS, binIndex, histogram, parseReferenceStats, psi, psiLevel, referenceStats, textFeatures } from "../src/eval/drift.js";
import type { Bins } from "../src/eval/drift.js";
import { trainTokenizerFromTexts } from "../src/tokenizers/index.js";

const near = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("bins: a value on a cut goes to the bin above; below the first and past the last cut go to the ends", () => {
  const b: Bins = { kind: "numeric", cuts: [1, 2, 4] };
  assert.deepEqual([-5, 0.99, 1, 1.5, 2, 3.9, 4, 100].map((x) => binIndex(b, x)), [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.deepEqual(histogram(b, [0, 1, 1, 5, 9]), [1, 2, 0, 2]);
  const c: Bins = { kind: "categorical", categories: ["neg", "pos"] };
  assert.equal(binIndex(c, "pos"), 1);
  assert.equal(binIndex(c, "other"), -1);
  assert.deepEqual(histogram(c, ["pos", "neg", "pos", "other"]), [1, 2], "an unknown category is left out");
  // the rate features' first bin holds exactly 0
  assert.equal(binIndex({ kind: "numeric", cuts: NUMERIC_BINS.oov_rate }, 0), 0);
  assert.equal(binIndex({ kind: "numeric", cuts: NUMERIC_BINS.oov_rate }, 0.01), 1);
});

test("PSI = Σ (a − e) ln(a / e), by hand", () => {
  // (0.9 − 0.5) ln(0.9/0.5) + (0.1 − 0.5) ln(0.1/0.5) = 0.4 ln 1.8 + 0.4 ln 5
  near(psi([50, 50], [90, 10]), 0.4 * Math.log(1.8) + 0.4 * Math.log(5));
  near(psi([50, 50], [90, 10]), 0.8788898309344878);
  // counts, not proportions: the totals differ. (0.1 − 0.25) ln 0.4 + (0.4 − 0.25) ln 1.6 + 0
  near(psi([25, 25, 50], [10, 40, 50]), 0.20794415416798362);
  // symmetric swap: 2 · 0.5 · ln 3
  near(psi([1, 3], [3, 1]), Math.log(3));
  near(psi([3, 7, 0], [30, 70, 0]), 0, 1e-12);
  // an empty reference bin counts as 1e-4: (0.5 − 1) ln(0.5) + (0.5 − 1e-4) ln(0.5 / 1e-4)
  near(psi([100, 0], [50, 50]), 4.60431846666895);
  assert.throws(() => psi([1, 2], [1]), /2 expected bins but 1 actual/);
  assert.throws(() => psi([0, 0], [1, 1]), /both histograms need counts/);
  assert.deepEqual([0.05, 0.1, 0.2, 0.25, 1].map(psiLevel), ["stable", "moderate", "moderate", "major", "major"]);
});

test("text features: tokens without specials, words split into pieces or unknown, unknown tokens", () => {
  // [CLS] the whale ##s [UNK] [SEP]: words 0 (1 token), 1 (2 tokens), 2 (unknown)
  const e = { ids: [2, 10, 11, 12, 1, 3], specialTokensMask: [1, 0, 0, 0, 0, 1], wordIds: [null, 0, 1, 1, 2, null], sequenceIds: [null, 0, 0, 0, 0, null] };
  assert.deepEqual(textFeatures(e, 1), { length: 4, oov_rate: 2 / 3, unk_rate: 1 / 4 });
  assert.deepEqual(textFeatures(e, undefined), { length: 4, oov_rate: 1 / 3, unk_rate: 0 }, "no unknown token: only the split word counts");
  // a pair: word 0 of each sequence is a word of its own
  const pair = { ids: [2, 10, 3, 10, 3], specialTokensMask: [1, 0, 1, 0, 1], wordIds: [null, 0, null, 0, null], sequenceIds: [null, 0, null, 1, null] };
  assert.deepEqual(textFeatures(pair, 1), { length: 2, oov_rate: 0, unk_rate: 0 });
  assert.deepEqual(textFeatures({ ids: [], specialTokensMask: [], wordIds: [], sequenceIds: [] }, 1), { length: 0, oov_rate: 0, unk_rate: 0 });
  // a real WordPiece tokenizer: known words are one token each; a word of unseen characters is [UNK]
  const tok = trainTokenizerFromTexts(Array.from({ length: 20 }, () => "the whale ship sailed the sea"), { kind: "wordpiece", vocabSize: 60, minFrequency: 1 });
  const unk = tok.tokenToId("[UNK]");
  assert.deepEqual(textFeatures(tok.encode("the whale ship"), unk), { length: 3, oov_rate: 0, unk_rate: 0 });
  assert.deepEqual(textFeatures(tok.encode("the ωωω"), unk), { length: 2, oov_rate: 0.5, unk_rate: 0.5 });
});

test("reference statistics: input histograms over the training texts, label and confidence over the predictions", () => {
  const inputs = [{ length: 3, oov_rate: 0, unk_rate: 0 }, { length: 10, oov_rate: 0.25, unk_rate: 0.1 }];
  const r = referenceStats(inputs, [{ label: "b", confidence: 0.95 }, { label: "b", confidence: 0.55 }, { label: "a", confidence: 0.7 }], ["a", "b"], "test");
  // length cuts 2, 4, 6, 8, 12, ...: 3 is bin 1, 10 is bin 4
  assert.deepEqual(r.features.length!.counts.slice(0, 6), [0, 1, 0, 0, 1, 0]);
  assert.deepEqual(r.features.oov_rate!.counts, [1, 0, 0, 0, 1, 0, 0, 0]);
  assert.deepEqual(r.features.unk_rate!.counts, [1, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(r.features.label, { bins: { kind: "categorical", categories: ["a", "b"] }, counts: [1, 2] });
  // confidence cuts 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99: 0.55 -> 1, 0.7 -> 3, 0.95 -> 6
  assert.deepEqual(r.features.confidence!.counts, [0, 1, 0, 1, 0, 0, 1, 0]);
  assert.equal(referenceStats(inputs).features.label, undefined, "no predictions: input features only");
  // a round trip through JSON is accepted as is
  assert.deepEqual(parseReferenceStats(JSON.parse(JSON.stringify(r)), "x"), r);
});

test("a saved reference is checked, naming the file and field", () => {
  const ok = { version: 1, features: { length: { bins: { kind: "numeric", cuts: [1, 2] }, counts: [1, 0, 2] } } };
  assert.equal(parseReferenceStats(ok, "m/input_stats.json").features.length!.counts.length, 3);
  assert.throws(() => parseReferenceStats({ ...ok, version: 2 }, "m/input_stats.json"), /m\/input_stats.json: version must be 1, got 2/);
  assert.throws(() => parseReferenceStats({ version: 1, features: { size: ok.features.length } }, "f"), /f: features.size is no drift feature/);
  assert.throws(() => parseReferenceStats({ version: 1, features: { length: { bins: { kind: "numeric", cuts: [2, 1] }, counts: [1, 1, 1] } } }, "f"), /features.length.bins must be/);
  assert.throws(() => parseReferenceStats({ version: 1, features: { length: { bins: { kind: "numeric", cuts: [1, 2] }, counts: [1, 1] } } }, "f"), /features.length.counts must be 3 counts/);
  const empty = parseReferenceStats({ version: 1, features: { length: { bins: { kind: "numeric", cuts: [1] }, counts: [0, 0] } } }, "f");
  assert.deepEqual(Object.keys(empty.features), [], "a feature without counts is dropped");
});

test("the window keeps the last N observations; PSI once it is full", () => {
  const reference = { version: 1 as const, source: "", features: { length: { bins: { kind: "numeric" as const, cuts: [10] }, counts: [50, 50] }, label: { bins: { kind: "categorical" as const, categories: ["a", "b"] }, counts: [1, 1] } } };
  const w = new DriftWindow(reference, 4);
  const obs = (length: number, label?: string) => ({ length, oov_rate: 0, unk_rate: 0, ...(label ? { label } : {}) });
  for (const x of [1, 1, 20]) w.add(obs(x, "a"));
  assert.deepEqual(w.psi(), {}, "3 of 4: nothing yet");
  w.add(obs(20, "b"));
  assert.deepEqual(w.counts("length"), [2, 2]);
  near(w.psi().length!, 0);
  near(w.psi().label!, psi([1, 1], [3, 1]));
  // two more long texts push the two short ones out: [20, 20, 20, 20]
  w.add(obs(20));
  w.add(obs(20));
  assert.deepEqual(w.counts("length"), [0, 4]);
  assert.deepEqual(w.counts("label"), [3, 1], "observations without a label leave the label window alone");
  near(w.psi().length!, psi([50, 50], [0, 4]));
  assert.equal(w.filled("length"), 4);
  assert.throws(() => new DriftWindow(reference, 0), /size must be an integer >= 1/);
});

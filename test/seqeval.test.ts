// Entity-level NER metrics against seqeval 1.2.x's documented behaviour: its README example,
// conlleval-style (default) versus strict chunking, IOBES, the three averages worked by hand,
// zero division, token accuracy and the classification_report table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { entities, formatSeqevalReport, seqevalReport } from "../src/eval/seqeval.js";
import type { SeqevalScores } from "../src/eval/seqeval.js";

const close = (actual: number, expected: number, what: string): void => assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual}, expected ${expected}`);
const scores = (s: SeqevalScores, p: number, r: number, f: number, what: string): void => {
  close(s.precision, p, `${what} precision`);
  close(s.recall, r, `${what} recall`);
  close(s.f1, f, `${what} f1`);
};
const spans = (tags: string[], o = {}): [string, number, number][] => entities(tags, o).map((e) => [e.type, e.start, e.end]);

test("seqeval's README example: one MISC entity starts a token early, PER matches; F1 0.5, accuracy 0.8", () => {
  const truth = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];
  const predicted = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];
  const r = seqevalReport(truth, predicted);
  scores(r, 0.5, 0.5, 0.5, "micro");
  scores(r.macro, 0.5, 0.5, 0.5, "macro");
  scores(r.weighted, 0.5, 0.5, 0.5, "weighted");
  assert.deepEqual(r.per_type, { MISC: { precision: 0, recall: 0, f1: 0, support: 1 }, PER: { precision: 1, recall: 1, f1: 1, support: 1 } });
  assert.equal(r.support, 2);
  close(r.accuracy, 8 / 10, "accuracy"); // the two MISC tokens at 2 and 3 differ
  // seqeval's classification_report, character for character, then the accuracy line
  const table = [
    "              precision    recall  f1-score   support",
    "",
    "        MISC       0.00      0.00      0.00         1",
    "         PER       1.00      1.00      1.00         1",
    "",
    "   micro avg       0.50      0.50      0.50         2",
    "   macro avg       0.50      0.50      0.50         2",
    "weighted avg       0.50      0.50      0.50         2",
    "",
    "    accuracy       0.80",
    "",
  ].join("\n");
  assert.equal(formatSeqevalReport(r), table);
  assert.match(formatSeqevalReport(r, 4), /\n {9}PER {5}1\.0000 {4}1\.0000 {4}1\.0000 {9}1\n/);
});

test("an I- tag after O begins an entity in default mode, nothing in strict mode", () => {
  assert.deepEqual(spans(["O", "I-PER", "I-PER", "O"]), [["PER", 1, 3]]);
  assert.deepEqual(spans(["O", "I-PER", "I-PER", "O"], { mode: "strict" }), []);
  assert.deepEqual(spans(["I-LOC", "B-PER", "I-PER"], { mode: "strict", scheme: "IOB2" }), [["PER", 1, 3]]);
  const truth = [["B-PER", "I-PER", "O", "B-LOC"]];
  const predicted = [["I-PER", "I-PER", "O", "I-LOC"]];
  const lenient = seqevalReport(truth, predicted);
  scores(lenient, 1, 1, 1, "default");
  close(lenient.accuracy, 2 / 4, "accuracy"); // I-PER != B-PER and I-LOC != B-LOC token by token
  const strict = seqevalReport(truth, predicted, { mode: "strict", scheme: "IOB2" });
  scores(strict, 0, 0, 0, "strict"); // no predicted entity: precision 0/0 -> 0
  assert.deepEqual(strict.per_type.PER, { precision: 0, recall: 0, f1: 0, support: 1 });
  assert.equal(strict.support, 2);
});

test("a type change inside a chunk ends one entity and, in default mode only, begins another", () => {
  assert.deepEqual(spans(["B-PER", "I-LOC", "I-LOC", "O"]), [["PER", 0, 1], ["LOC", 1, 3]]);
  assert.deepEqual(spans(["B-PER", "I-LOC", "I-LOC", "O"], { mode: "strict" }), [["PER", 0, 1]]);
  // B- always begins, so adjacent entities of one type stay two
  assert.deepEqual(spans(["B-PER", "I-PER", "B-PER"]), [["PER", 0, 2], ["PER", 2, 3]]);
  assert.deepEqual(spans(["B-PER", "I-PER", "B-PER"], { mode: "strict" }), [["PER", 0, 2], ["PER", 2, 3]]);
  assert.deepEqual(spans(["I-PER", "I-ORG"]), [["PER", 0, 1], ["ORG", 1, 2]]);
});

test("IOBES: default mode understands E- and S- leniently; strict mode needs B-..E- or S-", () => {
  const tags = ["S-PER", "B-LOC", "I-LOC", "E-LOC", "O", "B-ORG", "O", "E-MISC"];
  assert.deepEqual(spans(tags), [["PER", 0, 1], ["LOC", 1, 4], ["ORG", 5, 6], ["MISC", 7, 8]]);
  assert.deepEqual(spans(tags, { mode: "strict", scheme: "IOBES" }), [["PER", 0, 1], ["LOC", 1, 4]]);
  assert.deepEqual(spans(["B-PER", "E-PER", "E-PER"]), [["PER", 0, 2], ["PER", 2, 3]]);
  assert.deepEqual(spans(["B-PER", "I-PER", "E-LOC"], { mode: "strict", scheme: "IOBES" }), []);

  const truth = [["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"]];
  const predicted = [["S-PER", "B-LOC", "I-LOC", "I-LOC", "O"]]; // LOC never closed by E-
  scores(seqevalReport(truth, predicted), 1, 1, 1, "default");
  for (const options of [{ mode: "strict", scheme: "IOBES" }, { mode: "strict" }] as const) {
    const r = seqevalReport(truth, predicted, options); // the second detects IOBES from the truth's S- / E-
    scores(r, 1, 0.5, 2 / 3, "strict micro"); // PER found, LOC missed
    scores(r.macro, 0.5, 0.5, 0.5, "strict macro");
    assert.deepEqual(r.per_type.LOC, { precision: 0, recall: 0, f1: 0, support: 1 });
    close(r.accuracy, 4 / 5, "accuracy");
  }
  assert.throws(() => seqevalReport(truth, predicted, { mode: "strict", scheme: "IOB2" }), /sentence 0, tag 0 "S-PER" is not valid in IOB2/);
  assert.throws(() => entities(["B-PER", "X-PER"], { mode: "strict", scheme: "IOBES" }), /tag 1 "X-PER" is not valid in IOBES/);
});

test("micro, macro and weighted averages worked by hand, with a type only predicted", () => {
  const truth = [["B-PER", "I-PER", "O", "B-PER", "O", "B-PER"], ["B-LOC", "O", "B-LOC", "I-LOC", "O"]];
  const predicted = [["B-PER", "I-PER", "O", "B-PER", "O", "O"], ["B-LOC", "O", "B-LOC", "O", "B-MISC"]];
  const r = seqevalReport(truth, predicted);
  // LOC: 1 of 2 predicted right, 1 of 2 found; MISC: 1 predicted, none true; PER: 2 of 2 right, 2 of 3 found
  assert.deepEqual(Object.keys(r.per_type), ["LOC", "MISC", "PER"]);
  scores(r.per_type.LOC!, 0.5, 0.5, 0.5, "LOC");
  assert.deepEqual(r.per_type.MISC, { precision: 0, recall: 0, f1: 0, support: 0 });
  scores(r.per_type.PER!, 1, 2 / 3, 0.8, "PER"); // 2 * 1 * 2/3 / (5/3)
  scores(r, 3 / 5, 3 / 5, 3 / 5, "micro"); // 3 right of 5 predicted, of 5 true
  scores(r.macro, (0.5 + 0 + 1) / 3, (0.5 + 0 + 2 / 3) / 3, (0.5 + 0 + 0.8) / 3, "macro");
  scores(r.weighted, (0.5 * 2 + 1 * 3) / 5, (0.5 * 2 + (2 / 3) * 3) / 5, (0.5 * 2 + 0.8 * 3) / 5, "weighted");
  assert.equal(r.support, 5);
  close(r.accuracy, 8 / 11, "accuracy");
  assert.equal(
    formatSeqevalReport(r).split("\n").slice(2, 9).join("\n"),
    [
      "         LOC       0.50      0.50      0.50         2",
      "        MISC       0.00      0.00      0.00         0",
      "         PER       1.00      0.67      0.80         3",
      "",
      "   micro avg       0.60      0.60      0.60         5",
      "   macro avg       0.50      0.39      0.43         5",
      "weighted avg       0.80      0.60      0.68         5",
    ].join("\n"),
  );
});

test("entities never span sentences; the same span in two sentences is two entities", () => {
  const r = seqevalReport([["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["B-PER", "O"]]);
  scores(r, 1, 1, 1, "split at the sentence end"); // truth: PER at the end of one and the start of the next
  close(r.accuracy, 3 / 4, "accuracy");
  const twice = seqevalReport([["B-PER"], ["B-PER"]], [["B-PER"], ["O"]]);
  scores(twice, 1, 0.5, 2 / 3, "two sentences");
  const strict = seqevalReport([["B-PER"], ["B-PER"]], [["B-PER"], ["O"]], { mode: "strict" });
  scores(strict, 1, 0.5, 2 / 3, "two sentences, strict");
});

test("zero division gives 0: nothing predicted, nothing true, nothing at all", () => {
  const missed = seqevalReport([["B-PER", "O"]], [["O", "O"]]);
  scores(missed, 0, 0, 0, "nothing predicted");
  assert.deepEqual(missed.per_type, { PER: { precision: 0, recall: 0, f1: 0, support: 1 } });
  const invented = seqevalReport([["O", "O"]], [["B-PER", "O"]]);
  scores(invented, 0, 0, 0, "nothing true");
  scores(invented.weighted, 0, 0, 0, "weighted with no support"); // every weight 0
  assert.equal(invented.support, 0);
  const empty = seqevalReport([["O", "O"]], [["O", "O"]]);
  scores(empty, 0, 0, 0, "no entities");
  scores(empty.macro, 0, 0, 0, "macro over no types"); // seqeval gives NaN here
  assert.deepEqual(empty.per_type, {});
  assert.equal(empty.accuracy, 1);
  assert.equal(seqevalReport([], []).accuracy, 0);
});

test("token accuracy counts every tag, O included", () => {
  const r = seqevalReport([["O", "B-PER", "I-PER"], ["B-LOC", "O"]], [["O", "B-PER", "O"], ["B-ORG", "O"]]);
  close(r.accuracy, 3 / 5, "accuracy");
  scores(r, 0, 0, 0, "entities"); // PER cut short, LOC typed ORG
});

test("the table rounds an exact tie to even, as Python's format does (0.125 -> 0.12)", () => {
  const truth = [["B-X"], ...Array.from({ length: 7 }, () => ["O"])];
  const predicted = Array.from({ length: 8 }, () => ["B-X"]);
  const r = seqevalReport(truth, predicted);
  scores(r, 1 / 8, 1, 2 / 9, "micro"); // 2 * 0.125 / 1.125
  assert.match(formatSeqevalReport(r), /\n {11}X {7}0\.12 {6}1\.00 {6}0\.22 {9}1\n/);
  // 0.375 is a tie too; its even neighbour is 0.38
  const three = seqevalReport([["B-X"], ["B-X"], ["B-X"], ["O"], ["O"], ["O"], ["O"], ["O"]], Array.from({ length: 8 }, () => ["B-X"]));
  close(three.precision, 0.375, "precision");
  assert.match(formatSeqevalReport(three), /\n {11}X {7}0\.38 /);
});

test("mismatched lengths are errors naming the sentence", () => {
  assert.throws(() => seqevalReport([["O"], ["O"]], [["O"]]), /2 true sentences but 1 predicted/);
  assert.throws(() => seqevalReport([["O"], ["B-PER", "O"]], [["O"], ["B-PER"]]), /sentence 1 has 2 true tags but 1 predicted/);
  assert.throws(() => entities(["B-PER", ""]), /empty tag at position 1/);
});

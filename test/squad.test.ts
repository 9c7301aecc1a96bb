// Extractive question answering: the SQuAD reader (v1.1, v2.0, JSONL, every bad input named
// by its JSON path), windows over long contexts, the official metrics on hand-worked cases,
// and the post-processing of hand-made logits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { qaFeatures, readSquad, SquadFormatError } from "../src/data/squad.js";
import type { QAExample, QAFeature } from "../src/data/squad.js";
import { exactMatch, f1Score, normalizeAnswer, postprocessQa, predictionsById, squadMetrics } from "../src/eval/squad.js";
import { tokenizerFromVocabTxt, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers.js";

const fixtures = new URL("../../test/fixtures/squad/", import.meta.url).pathname;
const v11 = join(fixtures, "v1.1.json");
const v20 = join(fixtures, "v2.0.json");
const jsonl = join(fixtures, "train.jsonl");
const dir = await tempDir();

// --- the reader ------------------------------------------------------------------------------------

test("SQuAD v1.1: examples with every gold answer, titles, sources; a start off by one is corrected", () => {
  const r = readSquad(v11);
  assert.equal(r.version, "1.1");
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.examples.map((e) => e.id), ["sb-1", "sb-2", "sb-3", "bm-1", "bm-2"]);
  const sb1 = r.examples[0]!;
  assert.equal(sb1.title, "Super_Bowl_50");
  assert.equal(sb1.impossible, false);
  assert.equal(sb1.source, `${v11}: data[0].paragraphs[0].qas[0]`);
  assert.deepEqual(sb1.answers.map((a) => a.text), ["Denver Broncos", "Denver Broncos", "The American Football Conference (AFC) champion Denver Broncos"]);
  assert.deepEqual(sb1.answers.map((a) => a.start), [177, 177, 129]);
  for (const e of r.examples) for (const a of e.answers) assert.equal(e.context.slice(a.start, a.start + a.text.length), a.text);
  // the file says 268 for "24–10"; the text is at 267
  assert.match(readFileSync(v11, "utf8"), /"text": "24–10",\s*"answer_start": 268/);
  assert.deepEqual(r.examples[2]!.answers, [{ text: "24–10", start: 267 }]);
  // answer_start counts code points (Python characters): the two emoji before "1934" are two
  // UTF-16 units each, so the file's 40 is 42 here
  assert.match(readFileSync(v11, "utf8"), /"text": "1934",\s*"answer_start": 40/);
  assert.deepEqual(r.examples[3]!.answers, [{ text: "1934", start: 42 }]);
  assert.equal(r.examples[3]!.source, `${v11}: data[1].paragraphs[0].qas[0]`);
});

test("SQuAD v2.0: impossible questions have no answers; Hugging Face's JSONL layout reads too", () => {
  const r = readSquad(v20);
  assert.equal(r.version, "2.0");
  assert.deepEqual(r.examples.map((e) => [e.id, e.impossible, e.answers.length]), [["ox-1", false, 2], ["ox-2", false, 2], ["ox-3", true, 0], ["ox-4", false, 1]]);
  const j = readSquad(jsonl);
  assert.equal(j.version, "2.0"); // hf-3 has no answers
  assert.deepEqual(j.examples.map((e) => [e.id, e.title, e.impossible, e.source]), [["hf-1", "Oxygen", false, `${jsonl}:1`], ["hf-2", "Blue_Moon", false, `${jsonl}:2`], ["hf-3", "Oxygen", true, `${jsonl}:3`]]);
  assert.deepEqual(j.examples[0]!.answers, [{ text: "O", start: 41 }]);
  // after "🎵" and "🎶" (one code point, two UTF-16 units each): 48 and 56 become 50 and 58
  assert.deepEqual(j.examples[1]!.answers, [{ text: "Richard Rodgers", start: 50 }, { text: "Rodgers", start: 58 }]);
  // twelve emoji: code point 13 is UTF-16 unit 25, too far for the off-by-a-few correction to mask
  const emoji = join(dir, "emoji.jsonl");
  writeFileSync(emoji, JSON.stringify({ id: "e", question: "which moon?", context: "🎵".repeat(12) + " blue moon", answers: { text: ["blue moon"], answer_start: [13] } }) + "\n");
  assert.deepEqual(readSquad(emoji).examples[0]!.answers, [{ text: "blue moon", start: 25 }]);
});

/** Writes the v2.0 fixture after an edit, and returns the path. */
function editedV20(name: string, edit: (j: { data: { paragraphs: { context?: unknown; qas: Record<string, unknown>[] }[] }[] }) => void): string {
  const j = JSON.parse(readFileSync(v20, "utf8"));
  edit(j);
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(j));
  return path;
}

test("bad SQuAD input is an error naming the file and the JSON path at fault", () => {
  type Edit = Parameters<typeof editedV20>[1];
  const qas = "data[0].paragraphs[0].qas";
  const cases: [string, Edit, (path: string) => string][] = [
    ["no-context", (j) => delete j.data[0]!.paragraphs[0]!.context, () => `data[0].paragraphs[0]: missing field "context"`],
    ["number-question", (j) => (j.data[0]!.paragraphs[0]!.qas[1]!.question = 7), () => `${qas}[1]: "question" must be a string, got number`],
    ["no-answers", (j) => delete j.data[0]!.paragraphs[0]!.qas[0]!.answers, () => `${qas}[0]: missing field "answers"`],
    [
      "far-start",
      (j) => ((j.data[0]!.paragraphs[0]!.qas[0]!.answers as { answer_start: number }[])[1]!.answer_start = 3),
      () => `${qas}[0].answers[1]: answer text "atomic number 8" is not at answer_start 3 (the context has "gen is a chemic" there), nor within 10 characters of it`,
    ],
    ["string-start", (j) => ((j.data[0]!.paragraphs[0]!.qas[3]!.answers as { answer_start: unknown }[])[0]!.answer_start = "198"), () => `${qas}[3].answers[0]: "answer_start" must be a non-negative integer, got "198"`],
    ["impossible-with-answer", (j) => (j.data[0]!.paragraphs[0]!.qas[2]!.answers = [{ text: "8", answer_start: 61 }]), () => `${qas}[2]: an impossible question (is_impossible: true) has 1 answer(s)`],
    ["answerable-without", (j) => (j.data[0]!.paragraphs[0]!.qas[3]!.answers = []), () => `${qas}[3]: an answerable question has no answers (mark it is_impossible: true in SQuAD v2.0)`],
    ["duplicate-id", (j) => (j.data[0]!.paragraphs[0]!.qas[3]!.id = "ox-1"), (path) => `${qas}[3]: duplicate id "ox-1" (first at ${path}: ${qas}[0])`],
    ["string-impossible", (j) => (j.data[0]!.paragraphs[0]!.qas[2]!.is_impossible = "yes"), () => `${qas}[2]: "is_impossible" must be true or false, got "yes"`],
  ];
  for (const [name, edit, message] of cases) {
    const path = editedV20(`${name}.json`, edit);
    assert.throws(() => readSquad(path), (e: Error) => e instanceof SquadFormatError && e.message === `${path}: ${message(path)}`, name);
  }
  const notArray = join(dir, "not-array.json");
  writeFileSync(notArray, '{"version": "1.1", "data": {}}');
  assert.throws(() => readSquad(notArray), new RegExp(`${notArray}: top level: "data" must be an array, got object`));
  const badJsonl = join(dir, "bad.jsonl");
  writeFileSync(badJsonl, ['{"id":"a","question":"q?","context":"red fox","answers":{"text":["fox"],"answer_start":[4]}}', "{oops", '{"id":"b","question":"q?","context":"red fox","answers":{"text":["fox","red"],"answer_start":[4]}}', '{"id":"c","question":"q?","context":"red fox","answers":{"text":["dog"],"answer_start":[4]}}'].join("\n"));
  assert.throws(() => readSquad(badJsonl), new RegExp(`${badJsonl}:2: not valid JSON`));
  const r = readSquad(badJsonl, { skipBadRows: true });
  assert.deepEqual(r.examples.map((e) => e.id), ["a"]);
  assert.deepEqual(r.skipped.map((s) => s.source), [`${badJsonl}:2`, `${badJsonl}:3`, `${badJsonl}:4 answers[0]`]);
  assert.equal(r.skipped[1]!.reason, "answers has 2 texts but 1 answer_start values");
  assert.match(r.skipped[2]!.reason, /^answer text "dog" is not at answer_start 4 \(the context has "fox" there\)/);
  // skipping a bad question keeps the rest of its paragraph
  const dup = editedV20("dup-skip.json", (j) => (j.data[0]!.paragraphs[0]!.qas[3]!.id = "ox-1"));
  const s = readSquad(dup, { skipBadRows: true });
  assert.deepEqual(s.examples.map((e) => e.id), ["ox-1", "ox-2", "ox-3"]);
  assert.equal(s.skipped[0]!.source, `${dup}: data[0].paragraphs[0].qas[3]`);
  assert.throws(() => readSquad(join(dir, "none.json")), /none\.json: no such file/);
});

// --- windows ---------------------------------------------------------------------------------------

// One token per word: the fixture's vocabulary holds every word of the v2.0 file, lower-cased.
const wordTok = tokenizerFromVocabTxt(join(fixtures, "vocab.txt"));
const oxygen = readSquad(v20).examples;
// ox-4's context is 50 tokens; its answer "hydrogen and helium" is tokens 46..48 of it, and
// the question "which elements are more abundant than oxygen ?" is 8, so a window is
// [CLS] + 8 + [SEP] + context + [SEP]; context token k of a window starting at c sits at 10 + k - c.

test("windows: the answer cut by a window's end points at [CLS]; the next window holds its span", () => {
  const ex = oxygen[3]!;
  assert.deepEqual(wordTok.tokenize(ex.context).slice(46, 49), ["hydrogen", "and", "helium"]);
  assert.equal(wordTok.tokenize(ex.context).length, 50);
  // 16 context tokens per window, 8 shared: windows [0,16) [8,24) [16,32) [24,40) [32,48) [40,50)
  const f = qaFeatures(wordTok, [ex], { maxLength: 27, docStride: 8, forTraining: true });
  assert.equal(f.length, 6);
  assert.deepEqual(f.map((x) => [x.startPosition, x.endPosition]), [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [16, 18]]);
  // window [32,48) holds "hydrogen and" (tokens 46, 47 at 24, 25) but not "helium"
  assert.deepEqual(f[4]!.offsets.slice(24, 26).map((o) => ex.context.slice(o![0], o![1])), ["hydrogen", "and"]);
  assert.equal(f[4]!.ids.length, 27);
  const last = f[5]!;
  assert.equal(last.ids.length, 21); // 10 context tokens, no padding asked for
  assert.equal(ex.context.slice(last.offsets[16]![0], last.offsets[18]![1]), "hydrogen and helium");
  // question and special tokens have no offsets; the context's do, relative to the context
  assert.deepEqual(last.offsets.slice(0, 10), new Array(10).fill(null));
  assert.equal(last.offsets[20], null);
  assert.deepEqual(last.offsets[10], [ex.context.indexOf("element in the universe"), ex.context.indexOf("element in the universe") + 7]);
  assert.deepEqual(last.typeIds, [...new Array(10).fill(0), ...new Array(11).fill(1)]);
  assert.ok(f.every((x) => x.exampleIndex === 0 && x.clsIndex === 0));
  // an impossible question points at [CLS] everywhere
  assert.ok(qaFeatures(wordTok, [oxygen[2]!], { maxLength: 27, docStride: 8, forTraining: true }).every((x) => x.startPosition === 0 && x.endPosition === 0));
});

test("windows: padding to maxLength, on the right, or on the left with the context first", () => {
  const ex = oxygen[3]!;
  const right = qaFeatures(wordTok, [ex], { maxLength: 27, docStride: 8, padSide: "right", forTraining: true });
  const r = right[5]!;
  assert.equal(r.ids.length, 27);
  assert.deepEqual(r.attentionMask, [...new Array(21).fill(1), ...new Array(6).fill(0)]);
  assert.deepEqual(r.ids.slice(21), new Array(6).fill(wordTok.tokenToId("[PAD]")));
  assert.deepEqual(r.offsets.slice(21), new Array(6).fill(null));
  assert.deepEqual([r.startPosition, r.endPosition], [16, 18]);
  // context first: 6 pads, [CLS] at 6, context tokens 40..49 at 7..16, then [SEP] question [SEP]
  const left = qaFeatures(wordTok, [ex], { maxLength: 27, docStride: 8, padSide: "left", forTraining: true });
  assert.equal(left.length, 6);
  const l = left[5]!;
  assert.equal(l.clsIndex, 6);
  assert.deepEqual([l.startPosition, l.endPosition], [13, 15]);
  assert.equal(ex.context.slice(l.offsets[13]![0], l.offsets[15]![1]), "hydrogen and helium");
  assert.deepEqual(l.offsets.slice(17), new Array(10).fill(null));
  assert.deepEqual([left[4]!.clsIndex, left[4]!.startPosition], [0, 0]);
});

test("windows round trip: every labelled span maps back through the offsets to exactly the answer", () => {
  const all: QAExample[] = [...readSquad(v11).examples, ...oxygen, ...readSquad(jsonl).examples];
  const texts = all.flatMap((e) => [e.context, e.question]);
  for (const kind of ["wordpiece", "bpe"] as const) {
    const tok = trainTokenizerFromTexts(texts, { kind, vocabSize: 400, lowercase: true });
    for (const [maxLength, docStride] of [[32, 8], [48, 16], [384, 128]] as const) {
      const features = qaFeatures(tok, all, { maxLength, docStride, forTraining: true });
      const labelled = new Set<number>();
      for (const f of features) {
        const ex = all[f.exampleIndex]!;
        assert.ok(f.ids.length <= maxLength);
        if (f.startPosition === f.clsIndex) continue;
        labelled.add(f.exampleIndex);
        const [s, e] = [f.offsets[f.startPosition]!, f.offsets[f.endPosition]!];
        assert.equal(ex.context.slice(s[0], e[1]), ex.answers[0]!.text, `${kind} ${maxLength}/${docStride} ${ex.id}`);
      }
      // an answer of at most docStride + 1 tokens lies wholly inside some window
      for (const [i, ex] of all.entries()) {
        if (ex.impossible) assert.ok(!labelled.has(i));
        else if (tok.tokenize(ex.answers[0]!.text).length <= docStride + 1) assert.ok(labelled.has(i), `${kind} ${maxLength}/${docStride}: ${ex.id} is in no window`);
      }
    }
  }
});

test("windows: bad options and an answerable question without answers are errors", () => {
  assert.throws(() => qaFeatures(wordTok, oxygen, { maxLength: 0, docStride: 0, forTraining: true }), /maxLength must be a positive integer, got 0/);
  assert.throws(() => qaFeatures(wordTok, oxygen, { maxLength: 27, docStride: 16, forTraining: true }), /qas\[0\]: encode: stride \(16\) must be smaller than the room for the truncated sequence/);
  const unlabelled = { ...oxygen[0]!, answers: [] };
  assert.throws(() => qaFeatures(wordTok, [unlabelled], { maxLength: 27, docStride: 8, forTraining: true }), /qas\[0\]: an answerable question without answers cannot be trained on/);
  assert.equal(qaFeatures(wordTok, [unlabelled], { maxLength: 27, docStride: 8, forTraining: false }).length, 6);
  // run_qa.py strips the question's leading whitespace (sb-2 starts with two spaces), which byte-level BPE would keep as tokens
  const sb2 = readSquad(v11).examples[1]!;
  const bpe = trainTokenizerFromTexts([sb2.context, sb2.question], { kind: "bpe", vocabSize: 300 });
  const ids = (question: string) => qaFeatures(bpe, [{ ...sb2, question }], { maxLength: 512, docStride: 0, forTraining: false })[0]!.ids;
  assert.deepEqual(ids(sb2.question), ids(sb2.question.trimStart()));
  assert.notDeepEqual(bpe.encode(sb2.question, sb2.context).ids, bpe.encode(sb2.question.trimStart(), sb2.context).ids);
});

// --- metrics ---------------------------------------------------------------------------------------

test("normalisation: lower case, Python's punctuation, whole-word articles, Python's whitespace", () => {
  assert.equal(normalizeAnswer("The  Cat's  hat!"), "cats hat");
  assert.equal(normalizeAnswer("An apple a day, the end."), "apple day end");
  assert.equal(normalizeAnswer("banana theatre Anthem"), "banana theatre anthem");
  assert.equal(normalizeAnswer("A-team"), "ateam"); // the hyphen goes first, so "a" is no longer a word
  assert.equal(normalizeAnswer("the_end (the)"), "theend");
  // Python's \b is Unicode-aware: "éthe" is one word; "«the»" is an article between symbols outside string.punctuation
  assert.equal(normalizeAnswer("éthe theé the"), "éthe theé");
  assert.equal(normalizeAnswer("«the»"), "« »");
  // str.split() separates at \x1c and the ideographic space, not at the BOM
  assert.equal(normalizeAnswer("x\ufeffy\x1cz\u3000w"), "x\ufeffy z w");
});

test("EM and F1: partial overlap worked by hand, repeated tokens, the max over golds, no-answer", () => {
  // pred [denver broncos team], gold [denver broncos]: P 2/3, R 1, F1 = 2·(2/3)/(5/3) = 0.8
  assert.equal(f1Score("the Denver Broncos team", "Denver Broncos"), 0.8);
  assert.equal(exactMatch("the Denver Broncos!", "Denver  Broncos"), 1);
  // pred [x y y z], gold [y y y w]: common y twice, P = R = 2/4
  assert.equal(f1Score("x y y z", "y y y w"), 0.5);
  // F1 against [santa clara california] is 2·1·(2/3)/(5/3) = 0.8; against [levis stadium] 0
  assert.equal(f1Score("Santa Clara", ["Levi's Stadium", "Santa Clara, California"]), 0.8);
  assert.equal(exactMatch("Santa Clara", ["Levi's Stadium", "Santa Clara, California"]), 0);
  assert.equal(exactMatch("santa clara, california.", ["Levi's Stadium", "Santa Clara, California"]), 1);
  // unanswerable: the gold list is [""]; only "" (or what normalises to it) is right
  assert.deepEqual([exactMatch("", []), f1Score("", []), exactMatch("8", []), f1Score("8", [])], [1, 1, 0, 0]);
  assert.deepEqual([exactMatch("", "the"), f1Score("a", [])], [1, 1]);
  // golds that normalise to nothing are dropped (evaluate-v2.0.py), so "" does not match "the" beside "Denver"
  assert.deepEqual([exactMatch("", ["the", "Denver"]), f1Score("", ["the", "Denver"])], [0, 0]);
  assert.equal(f1Score("", "Denver"), 0);
});

const golds = [
  { id: "q1", answers: ["Denver Broncos"] },
  { id: "q2", answers: ["Santa Clara, California", "Levi's Stadium"] },
  { id: "q3", answers: [] },
  { id: "q4", answers: [] },
];
const preds = { q1: "Denver Broncos", q2: "Santa Clara", q3: "", q4: "helium" };

test("squadMetrics: percentages, the HasAns / NoAns split, missing predictions score 0", () => {
  // EM 1, 0, 1, 0; F1 1, 0.8, 1, 0
  assert.deepEqual(squadMetrics(golds, preds), { exact_match: 50, f1: 70, total: 4, HasAns_exact: 50, HasAns_f1: 90, HasAns_total: 2, NoAns_exact: 50, NoAns_f1: 50, NoAns_total: 2 });
  // a v1.1 set has no split; q2 without a prediction scores 0
  // q1: [broncos] against [denver broncos], P 1, R 1/2, F1 2/3
  const v1 = squadMetrics(golds.slice(0, 2), { q1: "Broncos" });
  assert.deepEqual(Object.keys(v1), ["exact_match", "f1", "total"]);
  assert.deepEqual([v1.exact_match, v1.f1.toFixed(10), v1.total], [0, (100 / 3).toFixed(10), 2]);
});

test("squadMetrics: the best no-answer threshold (find_best_thresh) and the probability threshold", () => {
  const noAnswerProbs = { q1: 0.1, q2: 0.2, q3: 0.9, q4: 0.3 };
  // all "no answer" scores 2 (q3, q4); then in order q1 +1 (3, at 0.1), q2 +0 / +0.8 (3 / 3.8, at 0.2),
  // q4 answered "helium" -1, q3 answered "" +0: best EM 3 of 4 at 0.1, best F1 3.8 of 4 at 0.2
  const m = squadMetrics(golds, preds, { noAnswerProbs });
  assert.deepEqual([m.best_exact, m.best_exact_thresh, m.best_f1, m.best_f1_thresh], [75, 0.1, 95, 0.2]);
  assert.equal(m.exact_match, 50); // no probability is above the default threshold 1.0
  // above 0.25, q4 and q3 count as "no answer", right for both: EM 1 0 1 1, F1 1 0.8 1 1
  const t = squadMetrics(golds, preds, { noAnswerProbs, noAnswerThreshold: 0.25 });
  assert.deepEqual([t.exact_match, t.f1, t.NoAns_exact], [75, 95, 100]);
  assert.throws(() => squadMetrics(golds, preds, { noAnswerProbs: { q1: 0.5 } }), /noAnswerProbs has no finite value for question "q2"/);
});

// --- post-processing -------------------------------------------------------------------------------

// [CLS] q q [SEP] Denver Broncos won in Santa Clara [SEP]: tokens 4..9 are the context
const context = "Denver Broncos won in Santa Clara";
const offsets: ([number, number] | null)[] = [null, null, null, null, [0, 6], [7, 14], [15, 18], [19, 21], [22, 27], [28, 33], null];
/** Logits of -10 everywhere but where given. */
function logits(at: Record<number, number>): number[] {
  return offsets.map((_, i) => at[i] ?? -10);
}
// high logits on the question and [SEP] must be ignored: they are outside the context
const start = logits({ 0: 1, 1: 10, 4: 3, 8: 2.5 });
const end = logits({ 0: 1, 2: 9, 5: 3, 9: 2, 10: 8 });

test("post-processing: spans inside the context, n-best order and probabilities, max answer length", () => {
  const examples = [{ id: "e", context }];
  // top 4 starts 1 4 8 0, ends 2 10 5 9: in-context pairs (4,5) 6, (4,9) 5, (8,9) 4.5
  const [p] = postprocessQa([{ exampleIndex: 0, offsets }], [start], [end], examples, { nBest: 4, versionTwo: false });
  assert.deepEqual(p!.nBest.map((c) => [c.text, c.score, c.offsets]), [["Denver Broncos", 6, [0, 14]], ["Denver Broncos won in Santa Clara", 5, [0, 33]], ["Santa Clara", 4.5, [22, 33]]]);
  const z = 1 + Math.exp(-1) + Math.exp(-1.5);
  assert.deepEqual(p!.nBest.map((c) => c.probability.toFixed(12)), [1 / z, Math.exp(-1) / z, Math.exp(-1.5) / z].map((x) => x.toFixed(12)));
  assert.deepEqual([p!.text, p!.score, p!.offsets, p!.nullScore], ["Denver Broncos", 6, [0, 14], undefined]);
  // at most 5 tokens: (4,9) is 6 long
  const short = postprocessQa([{ exampleIndex: 0, offsets }], [start], [end], examples, { nBest: 4, maxAnswerLength: 5, versionTwo: false });
  assert.deepEqual(short[0]!.nBest.map((c) => c.text), ["Denver Broncos", "Santa Clara"]);
  // no pair of the top 2 starts (1, 4) and ends (2, 10) lies in the context: the reference's filler "empty"
  const none = postprocessQa([{ exampleIndex: 0, offsets }], [start], [end], examples, { nBest: 2, versionTwo: false });
  assert.deepEqual(none[0]!.nBest.map((c) => [c.text, c.score]), [["empty", 0]]);
  assert.deepEqual(predictionsById(postprocessQa([{ exampleIndex: 0, offsets }], [start], [end], examples, { versionTwo: false })), { e: "Denver Broncos" });
});

test("post-processing v2.0: the null score is the minimum over windows; '' when it beats the best span by more than the threshold", () => {
  const examples = [{ id: "e", context }];
  // window 1: [CLS] scores 6.5 + 1.5 = 8 (fifth among the ends, so out of the top 4) and the spans above; window 2: [CLS] 3.5 + 3.5 = 7, no span
  const features = [{ exampleIndex: 0, offsets }, { exampleIndex: 0, offsets }];
  const starts = [start.map((v, i) => (i === 0 ? 6.5 : v)), logits({ 0: 3.5 })];
  const ends = [end.map((v, i) => (i === 0 ? 1.5 : v)), logits({ 0: 3.5 })];
  const run = (nullThreshold: number, nBest = 4) => postprocessQa(features, starts, ends, examples, { nBest, versionTwo: true, nullThreshold })[0]!;
  const p = run(0);
  assert.equal(p.nullScore, 7);
  assert.equal(p.scoreDiff, 1); // 7 - 6
  assert.deepEqual([p.text, p.score, p.offsets], ["", 7, null]);
  assert.deepEqual(p.nBest.map((c) => [c.text, c.score]), [["", 7], ["Denver Broncos", 6], ["Denver Broncos won in Santa Clara", 5], ["Santa Clara", 4.5]]);
  // the rule is strict: a difference equal to the threshold keeps the answer
  assert.deepEqual([run(1).text, run(0.5).text], ["Denver Broncos", ""]);
  // the null candidate comes back when the n-best cut drops it
  const low = postprocessQa([features[0]!], [logits({ 0: 1, 4: 3, 8: 2.5 })], [logits({ 0: 1, 5: 3, 9: 2 })], examples, { nBest: 1, versionTwo: true })[0]!;
  assert.deepEqual(low.nBest.map((c) => [c.text, c.score]), [["Denver Broncos", 6], ["", 2]]);
  assert.equal(low.text, "Denver Broncos");
  // the no-answer position is the feature's clsIndex (left padding moves [CLS])
  const moved = postprocessQa([{ ...features[0]!, clsIndex: 2 }], [logits({ 2: 5, 4: 3 })], [logits({ 2: 5, 5: 3 })], examples, { versionTwo: true })[0]!;
  assert.deepEqual([moved.nullScore, moved.text], [10, ""]);
  assert.throws(() => postprocessQa(features, [start], [end], examples, { versionTwo: true }), /2 features but 1 start and 1 end logit rows/);
});

test("windows, then logits peaked at the labels, post-process back to the gold answers (100 EM)", () => {
  const features: QAFeature[] = qaFeatures(wordTok, oxygen, { maxLength: 27, docStride: 8, forTraining: false });
  const peak = (at: number, n: number) => Array.from({ length: n }, (_, i) => (i === at ? 5 : 0));
  const predictions = postprocessQa(features, features.map((f) => peak(f.startPosition, f.ids.length)), features.map((f) => peak(f.endPosition, f.ids.length)), oxygen, { versionTwo: true });
  assert.deepEqual(predictionsById(predictions), { "ox-1": "8", "ox-2": "chalcogen group", "ox-3": "", "ox-4": "hydrogen and helium" });
  const m = squadMetrics(oxygen.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })), predictionsById(predictions));
  assert.deepEqual([m.exact_match, m.f1, m.HasAns_total, m.NoAns_total], [100, 100, 3, 1]);
});

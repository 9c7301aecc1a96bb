// Named entities and question answering through the one Trainer: labels aligned to word
// pieces, windows over long inputs and their merge, learning on small synthetic tasks whose
// held-out parts use unseen combinations, the saved folder, and the command line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import type { Tokenizer } from "../src/tokenizers/index.js";
import { decodeIob2, nerWindows, splitWords, tagSet, knownTasks, taskEntry } from "../src/tasks/index.js";
import type { NerExample } from "../src/tasks/index.js";
import { finetune, loadFinetuned, evaluateFinetuned } from "../src/train/index.js";
import type { QAExample, TaggedSentence } from "../src/data/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// A world of people and cities. Training and test sentences use different pairings, and the
// test people appear in training only in other sentences.
const people = ["John", "Mary", "Anna", "Peter", "Susan", "Robert", "Linda", "James"];
const cities = ["Boston", "Paris", "Berlin", "Rome", "Madrid", "Vienna", "Oslo", "Lisbon"];
const fillers = ["yesterday", "today", "by train", "with friends", "for work", "again"];
function nerSentences(n: number, seed: number): TaggedSentence[] {
  // names, cities and the words around them drawn at random: positions tell nothing, words and context do
  let x = seed * 7919 + 29;
  const pick = <T>(xs: readonly T[]): T => xs[(x = (x * 1103515245 + 12345) % 2147483648) % xs.length]!;
  const out: TaggedSentence[] = [];
  for (let i = 0; i < n; i++) {
    const before = Array.from({ length: x % 3 }, () => pick(fillers).split(" ")).flat();
    const after = pick(fillers).split(" ");
    const tokens = [...before, pick(people), "went", "to", pick(cities), ...after, "."];
    const tags = [...before.map(() => "O"), "B-PER", "O", "O", "B-LOC", ...after.map(() => "O"), "O"];
    out.push({ tokens, tags, source: `synth:${seed}:${i}` });
  }
  return out;
}

let tok: Tokenizer;
const modelDir = join(dir, "base");
{
  const text = [...people, ...cities, ...fillers, "went to where did go . Where ? in the"].join(" ");
  // a vocabulary too small for whole names: names split into pieces, as rare words do
  tok = trainTokenizerFromTexts([text, text.toLowerCase()], { kind: "wordpiece", vocabSize: 90, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 128 }), modelDir);
  saveTokenizer(tok, modelDir);
}
// a model whose vocabulary holds the names whole, for the learning tests
const wordModelDir = join(dir, "base-qa");
{
  const text = [...people, ...cities, ...fillers, "went to where did go . Where ? in the stayed at home"].join(" ");
  const qaTok = trainTokenizerFromTexts([text], { kind: "wordpiece", vocabSize: 200, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: qaTok.vocabSize, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, max_position_embeddings: 128 }), wordModelDir);
  saveTokenizer(qaTok, wordModelDir);
}

test("the task registry knows every task and names them on an unknown one", () => {
  assert.deepEqual(knownTasks(), ["classification", "token-classification", "question-answering", "translation", "summarization", "image-classification", "prompt-classification", "setfit"]);
  assert.throws(() => taskEntry("summarisation"), /unknown task "summarisation"; lmforge knows classification, token-classification, question-answering, translation, summarization/);
});

test("labels align to word pieces: the first piece carries the label, the others -100 (or I- with labelAllPieces)", () => {
  const s: NerExample = { tokens: ["Robert", "went", "to", "Lisbon"], tags: ["B-PER", "O", "O", "B-LOC"], source: "t" };
  const tags = tagSet([s]);
  assert.deepEqual(tags, ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]);
  const index = new Map(tags.map((t, i) => [t, i]));
  const enc = tok.encode("Robert went to Lisbon");
  const words = enc.wordIds; // the tokenizer's own words are these four, split into pieces
  const [w] = nerWindows(tok, s, 0, index, { maxLength: 64, stride: 8, labelAllPieces: false });
  assert.deepEqual(w!.ids, enc.ids);
  const expected = enc.ids.map((_, i) => (words[i] === null ? -100 : i > 0 && words[i - 1] === words[i] ? -100 : index.get(s.tags[words[i]!]!)!));
  assert.deepEqual(w!.labels, expected);
  assert.ok(enc.tokens.filter((t) => t.startsWith("##")).length >= 2, `names should split into pieces: ${enc.tokens.join(" ")}`);
  const [all] = nerWindows(tok, s, 0, index, { maxLength: 64, stride: 8, labelAllPieces: true });
  const cont = enc.ids.map((_, i) => (words[i] === null ? -100 : index.get((i > 0 && words[i - 1] === words[i] ? s.tags[words[i]!]!.replace("B-", "I-") : s.tags[words[i]!])!)!));
  assert.deepEqual(all!.labels, cont);
});

test("windows over a long sentence overlap by the stride and cover every piece; each word's first piece is in one window at least", () => {
  const long = nerSentences(12, 1).flatMap((s) => s.tokens);
  const s: NerExample = { tokens: long, tags: long.map(() => "O"), source: "long" };
  const ws = nerWindows(tok, s, 0, null, { maxLength: 16, stride: 4, labelAllPieces: false });
  assert.ok(ws.length > 5);
  const body = (w: (typeof ws)[0]): number[] => w.ids.slice(1, -1);
  for (let i = 1; i < ws.length; i++) {
    assert.equal(ws[i]!.from, ws[i - 1]!.to - 4, "consecutive windows share 4 pieces");
    assert.deepEqual(body(ws[i]!).slice(0, 4), body(ws[i - 1]!).slice(-4));
  }
  const pieces = tok.encode(long.join(" ")).ids.slice(1, -1);
  assert.deepEqual(ws.flatMap((w, i) => (i === 0 ? body(w) : body(w).slice(4))), pieces);
  const firsts = new Set(ws.flatMap((w) => w.firstOf.filter((x) => x >= 0)));
  assert.equal(firsts.size, long.length);
  assert.throws(() => nerWindows(tok, s, 0, null, { maxLength: 16, stride: 14, labelAllPieces: false }), /--stride 14 must be less than the 14 word pieces/);
});

test("windowed predictions merge back per word: each word takes its first piece's tag, from the window where that piece is most central", async () => {
  // a stand-in model whose tag for a piece is a function of its id and of its position in the window
  const labels = ["O", "B-X", "I-X", "B-Y", "I-Y"];
  const fake = {
    config: { model_type: "bert" },
    eval() {},
    forward(i: { inputIds: torch.Tensor }) {
      const ids = i.inputIds.toArray() as number[][];
      const logits = ids.map((row) => row.map((id, k) => labels.map((_, c) => (c === (id % 2) + 1 + (k < 8 ? 0 : 2) ? 5 : 0))));
      return { logits: torch.tensor(logits, { dtype: "float32" }), lastHiddenState: torch.zeros([1]) };
    },
  } as unknown as import("../src/models/index.js").PretrainedModel;
  const long = nerSentences(8, 2).flatMap((s) => s.tokens);
  const s: NerExample = { tokens: long, tags: long.map(() => "O"), source: "long" };
  const objective = taskEntry("token-classification").objective({ tokenizer: tok, labels, maxLength: 16, options: { stride: 6, decode: "argmax" } });
  const [pred] = objective.predict(fake, [s]) as { tags: string[] }[];
  // by hand: windows of 14 body pieces stepping by 8; a piece's most central window puts it at position 4..11 (k = 4..11 with [CLS])
  const ws = nerWindows(tok, s, 0, null, { maxLength: 16, stride: 6, labelAllPieces: false });
  const expected = long.map((_, word) => {
    let best: { tag: string; margin: number } = { tag: "O", margin: -1 };
    for (const w of ws) {
      const k = w.firstOf.indexOf(word);
      if (k < 0) continue;
      const piece = w.from + k - w.lead;
      const margin = Math.min(piece - w.from, w.to - 1 - piece);
      if (margin > best.margin) best = { tag: labels[(w.ids[k]! % 2) + 1 + (k < 8 ? 0 : 2)]!, margin };
    }
    return best.tag;
  });
  assert.deepEqual(pred!.tags, expected);
  // both halves of the window were used somewhere: the choice of window matters in this check
  assert.ok(expected.some((t) => t.endsWith("X")) && expected.some((t) => t.endsWith("Y")));
});

test("IOB2 decoding: the most probable valid tag sequence, worked by hand", () => {
  const labels = ["O", "B-LOC", "I-LOC"];
  // word 1 alone prefers I-LOC (0.6) after an O: invalid. Paths: O O = 0.7 x 0.3 = 0.21; O B = 0.7 x 0.1 = 0.07;
  // B I = 0.2 x 0.6 = 0.12; B O, B B lower: O O wins
  assert.deepEqual(decodeIob2([[0.7, 0.2, 0.1], [0.3, 0.1, 0.6]], labels), [0, 0]);
  // now B-LOC first is likelier: B I = 0.5 x 0.6 = 0.30 beats O O = 0.4 x 0.3 = 0.12
  assert.deepEqual(decodeIob2([[0.4, 0.5, 0.1], [0.3, 0.1, 0.6]], labels), [1, 2]);
  // never an I- first, nor I-X after another type
  assert.deepEqual(decodeIob2([[0.05, 0.15, 0.8]], labels), [1]);
  assert.deepEqual(decodeIob2([[0.1, 0.8, 0.05, 0.05, 0], [0.1, 0.05, 0.05, 0.15, 0.65]], ["O", "B-A", "I-A", "B-B", "I-B"]), [1, 3]);
  assert.deepEqual(decodeIob2([], labels), []);
});

test("splitWords keeps each word's character span in the original text", () => {
  const text = "Dr. Anna  Müller visited Oslo, Norway (twice).";
  const { tokens, spans } = splitWords(text);
  assert.deepEqual(tokens, ["Dr", ".", "Anna", "Müller", "visited", "Oslo", ",", "Norway", "(", "twice", ")", "."]);
  tokens.forEach((t, i) => assert.equal(text.slice(spans[i]![0], spans[i]![1]), t));
});

test("named entities: the Trainer learns them; windows merge back per word; the folder reloads and the CLI tags free text with offsets", async () => {
  const out = join(dir, "ner");
  const pairs = (xs: TaggedSentence[]): TaggedSentence[] => xs.map((s, i) => (i % 2 ? { tokens: [...xs[i - 1]!.tokens, ...s.tokens], tags: [...xs[i - 1]!.tags, ...s.tags], source: s.source } : s));
  const r = await finetune({ model: wordModelDir, task: "token-classification", train: pairs(nerSentences(240, 0)), validation: nerSentences(40, 3), test: nerSentences(40, 5), epochs: 4, batchSize: 16, learningRate: 3e-3, maxLength: 16, patience: 0, precision: "fp32", seed: 1, out });
  assert.ok(r.test!.metrics.f1! > 0.9, `test entity F1 ${r.test!.metrics.f1}`);
  assert.deepEqual(r.labels, ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]);
  // a sentence six times longer than a window: predictions merged per word still find the entities
  const long: NerExample = { tokens: nerSentences(6, 5).flatMap((s) => s.tokens), tags: nerSentences(6, 5).flatMap((s) => s.tags), source: "long" };
  const f = await loadFinetuned(out);
  assert.equal(f.meta.max_length, 16);
  assert.ok(f.objective.prepare!([long]).length > 3, "the long sentence takes several windows");
  const ev = evaluateFinetuned(f, [long]);
  assert.ok(ev.metrics.f1! > 0.9, `long-sentence F1 ${ev.metrics.f1}: ${long.tokens.map((t, i) => `${t}/${long.tags[i]}/${(ev.predictions[0] as { tags: string[] }).tags[i]}`).join(" ")}`);
  // the CLI: CoNLL in, seqeval's numbers out; free text in, entities with offsets out
  const conll = join(dir, "test.conll");
  writeFileSync(conll, "-DOCSTART- -X- O O\n\n" + nerSentences(20, 7).map((s) => s.tokens.map((t, i) => `${t} NNP O ${s.tags[i]}`).join("\n")).join("\n\n") + "\n");
  const json = JSON.parse(execFileSync(process.execPath, [cli, "evaluate", "--model", out, "--data", conll, "--json"], { encoding: "utf8" })) as { f1: number; per_type: Record<string, { support: number }> };
  assert.ok(json.f1 > 0.9, `CLI F1 ${json.f1}`);
  assert.deepEqual([json.per_type.LOC!.support, json.per_type.PER!.support], [20, 20]);
  // a held-out sentence as free text, spaced irregularly: entities come back with their characters
  const sentence = nerSentences(20, 5).find((x) => {
    const p = (f.objective.predict(f.model, [x]) as { tags: string[] }[])[0]!;
    return p.tags.join() === x.tags.join();
  })!;
  const text = sentence.tokens.join("  ").replace(/ +\./, ".");
  const line = JSON.parse(execFileSync(process.execPath, [cli, "predict", "--model", out, "--json", text], { encoding: "utf8" })) as { entities: { type: string; text: string; char_start: number; char_end: number }[] };
  const expected = sentence.tokens.map((t, i) => [sentence.tags[i]!.slice(2), t]).filter(([type]) => type !== "");
  assert.deepEqual(line.entities.map((e) => [e.type, e.text]), expected);
  for (const e of line.entities) assert.equal(text.slice(e.char_start, e.char_end), e.text);
});

function qaExamples(n: number, seed: number, unanswerable = 0): QAExample[] {
  // the city is drawn at random and the context's length varies: the answer must be read off the context;
  // an unanswerable question is asked of a context where the person went nowhere
  let x = seed * 7919 + 17;
  const pick = <T>(xs: readonly T[]): T => xs[(x = (x * 1103515245 + 12345) % 2147483648) % xs.length]!;
  const out: QAExample[] = [];
  for (let i = 0; i < n; i++) {
    const p = pick(people);
    const c = pick(cities);
    const impossible = i < unanswerable;
    const context = impossible ? `${pick(fillers)} ${p} stayed at home ${pick(fillers)} .` : `${pick(fillers)} ${p} went to ${c} ${pick(fillers)} .`;
    out.push({ id: `${seed}-${i}`, question: `Where did ${p} go ?`, context, answers: impossible ? [] : [{ text: c, start: context.indexOf(` ${c} `) + 1 }], impossible, source: `synth:${seed}:${i}` });
  }
  return out;
}

test("question answering: the Trainer learns spans; answers map back to the context's characters; the CLI answers a question", async () => {
  const out = join(dir, "qa");
  const r = await finetune({ model: wordModelDir, task: "question-answering", train: qaExamples(320, 0), validation: qaExamples(40, 3), test: qaExamples(40, 5), epochs: 6, batchSize: 16, learningRate: 3e-3, maxLength: 48, patience: 0, precision: "fp32", seed: 1, out });
  assert.ok(r.test!.metrics.exact_match! >= 80, `test exact match ${r.test!.metrics.exact_match}`);
  assert.equal(r.meta.options.squadVersion, "1.1");
  const preds = r.test!.predictions as { id: string; text: string; offsets: [number, number] | null }[];
  const ex = qaExamples(40, 5);
  preds.forEach((p, i) => p.offsets && assert.equal(ex[i]!.context.slice(p.offsets[0], p.offsets[1]), p.text));
  const context = "with friends James went to Rome by train .";
  const line = execFileSync(process.execPath, [cli, "predict", "--model", out, "--question", "Where did James go ?", "--context", context], { encoding: "utf8" }).trim();
  const [answer, , span] = line.split("\t");
  assert.equal(answer, "Rome");
  assert.equal(span, `[${context.indexOf("Rome")}, ${context.indexOf("Rome") + 4})`);
});

test("question answering, SQuAD v2.0: unanswerable questions, the null answer, HasAns and NoAns scores, a context longer than one window", async () => {
  const out = join(dir, "qa2");
  const r = await finetune({ model: wordModelDir, task: "question-answering", train: qaExamples(400, 0, 100), validation: qaExamples(40, 3, 10), test: qaExamples(60, 5, 20), epochs: 6, batchSize: 16, learningRate: 3e-3, maxLength: 14, docStride: 3, patience: 0, precision: "fp32", seed: 1, out });
  assert.equal(r.meta.options.squadVersion, "2.0");
  const m = r.test!.metrics;
  for (const k of ["HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"]) assert.equal(typeof m[k], "number", k);
  assert.ok(m.NoAns_exact! >= 60 && m.HasAns_exact! >= 60, JSON.stringify(m));
  // maxLength 14 with docStride 3: each context takes two windows or more
  const f = await loadFinetuned(out);
  const features = f.objective.prepare!(qaExamples(5, 5)) as { exampleIndex: number }[];
  assert.ok(features.length >= 10, `${features.length} windows for 5 questions`);
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { lmforge: { task: string; options: { docStride: number } } };
  assert.deepEqual([saved.lmforge.task, saved.lmforge.options.docStride], ["question-answering", 3]);
});

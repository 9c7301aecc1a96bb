// finetune --adapt (task-adaptive pretraining) and --extend-vocab: the checkpoint's new rows by
// hand, and a tiny end-to-end run with both flags (which text each step reads, what is saved).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { readCheckpoint, saveCheckpoint } from "../src/io/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { extendVocabulary, loadTokenizer, saveTokenizer, tokenizerFromVocabTxt, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune, loadFinetuned } from "../src/train/index.js";
import { exampleTexts } from "../src/train/adapt.js";
import { resizeCheckpointVocabulary } from "../src/train/extend-vocab.js";
import type { LabelledExample } from "../src/data/index.js";
import { flat, tempDir } from "./helpers.js";

const dir = await tempDir();

test("the checkpoint grows: each new row is the mean of its old pieces' rows, in every vocabulary-indexed tensor", () => {
  const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "d", "##g", "a", "##t"];
  writeFileSync(join(dir, "vocab.txt"), VOCAB.join("\n") + "\n");
  const tok = tokenizerFromVocabTxt(join(dir, "vocab.txt"));
  // row i of the embedding is [i, 10 i]; the output bias is i / 2; the position table has 15 rows too
  const src = join(dir, "small");
  const rows = (f: (i: number) => number[]): torch.Tensor => torch.tensor(Array.from({ length: 15 }, (_, i) => f(i)), { dtype: "float32" });
  saveCheckpoint(src, { model_type: "bert", vocab_size: 15 }, new Map([
    ["bert.embeddings.word_embeddings.weight", rows((i) => [i, 10 * i])],
    ["bert.embeddings.position_embeddings.weight", rows((i) => [-i, -i])],
    ["cls.predictions.bias", torch.tensor(Array.from({ length: 15 }, (_, i) => i / 2), { dtype: "float32" })],
  ]));
  // cats = cat (6) + ##s (10); dog = [UNK], from its characters d (11) and ##g (12)
  const { tokenizer, added } = extendVocabulary(tok, ["cats", "dog"]);
  const out = join(dir, "small-extended");
  const r = resizeCheckpointVocabulary(src, out, tokenizer, added);
  assert.deepEqual(r, { vocabSize: 17, resized: ["bert.embeddings.word_embeddings.weight", "cls.predictions.bias"] });
  const ck = readCheckpoint(out);
  assert.equal(ck.config.vocab_size, 17);
  const emb = flat(ck.get("bert.embeddings.word_embeddings.weight").toArray());
  assert.deepEqual(emb.slice(0, 30), Array.from({ length: 15 }, (_, i) => [i, 10 * i]).flat()); // old rows kept
  assert.deepEqual(emb.slice(30), [8, 80, 11.5, 115]); // (6 + 10) / 2, (11 + 12) / 2
  assert.deepEqual(flat(ck.get("cls.predictions.bias").toArray()).slice(13), [6.5, 7, 4, 5.75]);
  assert.deepEqual(ck.get("bert.embeddings.position_embeddings.weight").shape, [15, 2]);
  assert.deepEqual(loadTokenizer(out).tokenize("cats dog"), ["cats", "dog"]);
});

test("the text adaptation and the statistics read: inputs, never labels or targets", () => {
  assert.deepEqual(exampleTexts([{ text: "a", textPair: "b", label: "x" }, { tokens: ["New", "York"], tags: ["B-LOC", "I-LOC"] }, { question: "q?", context: "c.", answers: [] }, { text: "src", target: "tgt" }]), ["a", "b", "New York", "q?", "c.", "src"]);
});

// --- end to end ---------------------------------------------------------------------------------------------
const WORDS = { whale: "whale ship sea harpoon captain ocean voyage sail".split(" "), nation: "nation congress president law people union tax".split(" ") };
/** n sentences of 6 words of their label's topic; the domain words go in as extra(i) says. */
function sentences(n: number, seed: number, extra: (i: number) => string[]): LabelledExample[] {
  let x = seed;
  const rnd = (): number => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2 ? "whale" : "nation";
    const words = Array.from({ length: 6 }, () => WORDS[label][Math.floor(rnd() * 7)]!);
    return { text: [...words, ...extra(i)].join(" "), label, source: `synth:${i}` };
  });
}
// training text: zorblax in every example, harpoonist in every second, glimmerfin in every fourth;
// validation and test use quibbit three times each (more often than any of those) and must not shape anything
const train = sentences(48, 1, (i) => ["zorblax", ...(i % 2 ? [] : ["harpoonist"]), ...(i % 4 ? [] : ["glimmerfin"])]);
const validation = sentences(12, 2, () => ["quibbit", "quibbit", "quibbit"]);
const testSet = sentences(12, 3, () => ["quibbit", "quibbit", "quibbit"]);

test("finetune --extend-vocab 3 --adapt 4: the training split's words added, adaptation on its text, the extended tokenizer saved", async () => {
  const base = join(dir, "base");
  const tok = trainTokenizerFromTexts([...WORDS.whale, ...WORDS.nation].map((w) => `${w} ${w}`), { kind: "wordpiece", vocabSize: 120, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 32 }), base);
  saveTokenizer(tok, base);
  const out = join(dir, "run");
  const lines: string[] = [];
  const options = { model: base, train, validation, test: testSet, adapt: 4, adaptBatchSize: 4, extendVocab: 3, epochs: 1, batchSize: 8, maxLength: 16, precision: "fp32" as const, seed: 5, out, log: (l: string) => lines.push(l) };
  const r = await finetune(options);

  // the three most frequent split words of the training text, in order; quibbit (validation only) is not one
  assert.deepEqual(r.tokenization?.added?.map((w) => [w.word, w.count, w.id]), [["zorblax", 48, tok.vocabSize], ["harpoonist", 24, tok.vocabSize + 1], ["glimmerfin", 12, tok.vocabSize + 2]]);
  assert.equal((JSON.parse(readFileSync(join(out, "extended", "config.json"), "utf8")) as { vocab_size: number }).vocab_size, tok.vocabSize + 3);
  // adaptation read the 48 training texts only, for 4 steps, from the extended checkpoint
  assert.ok(lines.some((l) => l.startsWith("--adapt: data: 48 documents")), lines.join("\n"));
  assert.equal((JSON.parse(readFileSync(join(out, "adapted", "train_summary.json"), "utf8")) as { steps: number }).steps, 4);
  assert.equal(readCheckpoint(join(out, "adapted")).get("bert.embeddings.word_embeddings.weight").shape[0], tok.vocabSize + 3);
  // every training word is now one piece: 6 topic words + 1.75 domain words per text on average
  const t = JSON.parse(readFileSync(join(out, "tokenization.json"), "utf8")) as { splits: Record<string, { words: number; tokens: number; unknown: number; piecesPerWord: number }>; before: Record<string, { unknown: number; piecesPerWord: number }> };
  assert.deepEqual([t.splits.train!.words, t.splits.train!.tokens, t.splits.train!.unknown], [48 * 6 + 48 + 24 + 12, 48 * 6 + 48 + 24 + 12, 0]);
  // before: no topic word has a z or an f, so zorblax (48) and glimmerfin (12) were [UNK]; harpoonist was split
  assert.equal(t.before.train!.unknown, 60);
  assert.ok(t.before.train!.piecesPerWord > 1);
  assert.deepEqual(Object.keys(t.splits), ["train", "validation", "test"]);
  // quibbit (no topic word has a q) stays one [UNK]: 6 topic words + 3 quibbits per text
  assert.deepEqual([t.splits.validation!.words, t.splits.validation!.tokens, t.splits.validation!.unknown], [12 * 9, 12 * 9, 12 * 3]);
  const saved = JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as { tokenization: unknown };
  assert.deepEqual(saved.tokenization, t);

  // the fine-tuned folder holds the extended tokenizer and a model of the grown vocabulary
  assert.deepEqual(loadTokenizer(out).tokenize("zorblax harpoonist glimmerfin"), ["zorblax", "harpoonist", "glimmerfin"]);
  const f = await loadFinetuned(out);
  assert.equal(f.model.config.vocab_size, tok.vocabSize + 3);
  assert.equal(f.meta.tokenizer.vocab_size, tok.vocabSize + 3);
  f.model.dispose();
  r.model.dispose();

  // --resume finds the adaptation done and does not repeat it
  const again: string[] = [];
  const r2 = await finetune({ ...options, resume: true, log: (l: string) => again.push(l) });
  assert.ok(again.some((l) => l.includes("already holds 4 steps of adaptation")), again.join("\n"));
  assert.ok(!again.some((l) => l.startsWith("--adapt: data:")));
  r2.model.dispose();
  assert.ok(existsSync(join(out, "model.safetensors")));
});

test("--adapt and --extend-vocab refuse --from-scratch", async () => {
  await assert.rejects(finetune({ model: join(dir, "base"), train, validation, adapt: 2, fromScratch: true, maxLength: 16, out: join(dir, "scratch") }), /--from-scratch starts from random weights/);
});

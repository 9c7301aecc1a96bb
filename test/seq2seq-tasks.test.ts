// Translation and summarisation as fine-tuning tasks: the readers (HF datasets' JSONL, document /
// summary, source / target, TSV) and their bad-input errors by row; T5 features (prefix, </s>,
// labels + eos, truncation counted or refused); decoder-only features with the prompt's labels
// -100 (checked by hand on a GPT-2 tokenizer); scores of known texts; a tiny T5 fine-tuned
// through finetune() on a toy copy task (the loss falls, BLEU by generation rises) and read
// back by loadFinetuned; a tiny GPT-2 through the same task; `lmforge generate` on a T5 folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForCausalLM, AutoModelForSeq2SeqLM, modelFromPretrained, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import type { Tokenizer } from "../src/tokenizers/index.js";
import { taskEntry } from "../src/tasks/index.js";
import { defaultPrefix, readPairs, scoreTexts } from "../src/tasks/seq2seq.js";
import type { Seq2SeqExample, Seq2SeqFeature } from "../src/tasks/seq2seq.js";
import { finetune, loadFinetuned } from "../src/train/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// a toy language: sentences of 3-5 words; "German" is the same words (a copy task)
const WORDS = ["red", "blue", "green", "cat", "dog", "fish", "big", "small", "runs", "sleeps"];
const sentence = (i: number): string => Array.from({ length: 3 + (i % 3) }, (_, k) => WORDS[(i * 7 + k * 3 + Math.floor(i / 10)) % WORDS.length]!).join(" ");
const pairs = Array.from({ length: 120 }, (_, i) => ({ en: sentence(i), de: sentence(i) }));
const PREFIX = "translate English to German: ";

// T5's special tokens (<pad> 0, </s> 1, <unk> 2) for the feature checks; a WordPiece vocabulary of whole words for training (short sequences)
const unigram = trainTokenizerFromTexts([...WORDS, PREFIX, ...pairs.map((p) => p.en)], { kind: "unigram", vocabSize: 60 });
const wordpiece = trainTokenizerFromTexts([...new Array<string>(10).fill(PREFIX), ...pairs.map((p) => p.en)], { kind: "wordpiece", vocabSize: 80, minFrequency: 1 });

test("readers: Hugging Face's translation rows, document/summary, source/target, TSV; bad rows named with their keys", () => {
  const jsonl = join(dir, "t.jsonl");
  writeFileSync(jsonl, '{"translation": {"en": "a cat", "de": "eine Katze"}}\n\n{"source": "the dog", "target": "der Hund"}\n');
  assert.deepEqual(readPairs("translation", jsonl).examples, [{ text: "a cat", target: "eine Katze", source: `${jsonl}:1` }, { text: "the dog", target: "der Hund", source: `${jsonl}:3` }]);
  assert.deepEqual(readPairs("translation", jsonl, { sourceLang: "de", targetLang: "en" }).examples[0], { text: "eine Katze", target: "a cat", source: `${jsonl}:1` });
  assert.throws(() => readPairs("translation", jsonl, { targetLang: "fr" }), new RegExp(`${jsonl}:1: no "fr" text in "translation" \\(--target-lang fr\\); keys present: en, de`));
  const sum = join(dir, "s.jsonl");
  writeFileSync(sum, '{"document": "a long text about cats", "summary": "cats"}\n{"document": "another text", "summary": "  "}\n');
  assert.throws(() => readPairs("summarization", sum), new RegExp(`${sum}:2: empty target`));
  const r = readPairs("summarization", sum, { skipBadRows: true });
  assert.deepEqual([r.examples.length, r.skipped], [1, [{ source: `${sum}:2`, reason: "empty target" }]]);
  writeFileSync(sum, '{"text": "a text", "label": "x"}\n');
  assert.throws(() => readPairs("summarization", sum), /s\.jsonl:1: expected "document" and "summary" \(or "source" and "target"\) strings; keys present: text, label/);
  const tsv = join(dir, "p.tsv");
  writeFileSync(tsv, "en\tde\nthe cat\tdie Katze\nno tab here\n");
  assert.throws(() => readPairs("translation", tsv), new RegExp(`${tsv}:3: expected text<TAB>target, found 1 column\\(s\\)`));
  writeFileSync(tsv, "en\tde\nthe cat\tdie Katze\n");
  assert.deepEqual(readPairs("translation", tsv).examples, [{ text: "the cat", target: "die Katze", source: `${tsv}:2` }]);
  writeFileSync(tsv, "\n\n");
  assert.throws(() => readPairs("translation", tsv), /p\.tsv: no examples \(expected \.jsonl with \{"translation"/);
});

test("T5's prefixes from the language names; scores of known texts (BLEU and chrF 100 on a copy, ROUGE by hand)", () => {
  assert.equal(defaultPrefix("translation", {}), "translate English to German: ");
  assert.equal(defaultPrefix("translation", { sourceLang: "en", targetLang: "ro" }), "translate English to Romanian: ");
  assert.equal(defaultPrefix("translation", { sourceLang: "xx", targetLang: "fr" }), "translate xx to French: ");
  assert.equal(defaultPrefix("summarization", {}), "summarize: ");
  const ex = (text: string, target: string): Seq2SeqExample => ({ text, target, source: "x" });
  const same = scoreTexts("translation", [ex("a", "the cat sat on the mat")], ["the cat sat on the mat"]).metrics;
  assert.ok(Math.abs(same.bleu! - 100) < 1e-9 && Math.abs(same.chrf! - 100) < 1e-9 && same.gen_len === 6, JSON.stringify(same));
  // ROUGE-1 by hand: target "the cat sat" vs "the cat ran": 2 of 3 unigrams, F = 2/3; ROUGE-2: 1 of 2 bigrams, F = 1/2
  const r = scoreTexts("summarization", [ex("doc", "the cat sat")], ["the cat ran"]).metrics;
  assert.ok(Math.abs(r.rouge1! - 200 / 3) < 1e-9 && Math.abs(r.rouge2! - 50) < 1e-9 && Math.abs(r.rougeL! - 200 / 3) < 1e-9, JSON.stringify(r));
});

/** A task's features for examples (the objective's prepare), with its log lines. */
function features(task: string, tok: Tokenizer, examples: Seq2SeqExample[], options: Record<string, unknown>, modelHead: "seq2seq-lm" | "causal-lm", maxLength = 32): { f: Seq2SeqFeature[]; log: string[] } {
  const log: string[] = [];
  const objective = taskEntry(task).objective({ tokenizer: tok, labels: [], maxLength, options: { ...options, log: (l: string) => log.push(l) }, modelHead });
  return { f: objective.prepare!(examples) as Seq2SeqFeature[], log };
}

test("T5 features: prefix + source with </s>, labels = target + eos; truncation counted, or refused by row", () => {
  const ids = (s: string): number[] => unigram.encode(s, null, { addSpecialTokens: false }).ids;
  const eos = unigram.tokenToId("</s>")!;
  assert.equal(eos, 1, "T5's ids: <pad> 0, </s> 1");
  const e = { text: "red cat runs", target: "red cat", source: "f:1" };
  const { f } = features("translation", unigram, [e], {}, "seq2seq-lm", 64);
  assert.deepEqual(f[0]!.ids, [...ids(PREFIX + "red cat runs"), eos]);
  assert.deepEqual(f[0]!.labels, [...ids("red cat"), eos]);
  // with no prefix, a --max-length one short of "red cat runs" + </s> cuts it (its </s> kept) but not "cat"; a target cut to 2 (one token and eos)
  const L = ids("red cat runs").length;
  assert.ok(ids("cat").length + 1 <= L);
  const cut = features("translation", unigram, [e, { ...e, text: "cat", source: "f:2" }], { prefix: "", maxTargetLength: 2 }, "seq2seq-lm", L);
  assert.deepEqual(cut.f[0]!.ids, [...ids("red cat runs").slice(0, L - 1), eos]);
  assert.deepEqual(cut.f[1]!.ids, [...ids("cat"), eos]);
  assert.deepEqual(cut.f[0]!.labels, [ids("red cat")[0], eos]);
  assert.deepEqual(cut.log, [`translation: 1 of 2 sources truncated to --max-length ${L} tokens`, "translation: 2 of 2 targets truncated to --max-target-length 2 tokens (eos included)"]);
  assert.throws(() => features("translation", unigram, [{ ...e, text: "cat", source: "f:2" }, e], { prefix: "", truncation: "refuse" }, "seq2seq-lm", L), new RegExp(`f:1: the source is ${L + 1} tokens, more than --max-length ${L} \\(--truncation refuse\\)`));
  // the teacher-forced batch: labels padded with -100, targets = label tokens
  const objective = taskEntry("summarization").objective({ tokenizer: unigram, labels: [], maxLength: 32, options: {}, modelHead: "seq2seq-lm" });
  const b = objective.batch(objective.prepare!([e, { ...e, target: "red cat runs fast" }]) as never[], [0, 1], 0) as unknown as { labels: torch.Tensor; targets: number };
  const labels = b.labels.toArray() as number[][];
  assert.ok(labels[0]!.slice(ids("red cat").length + 1).every((l) => l === -100));
  assert.equal(b.targets, ids("red cat").length + 1 + ids("red cat runs fast").length + 1);
  // beams can only be filled from the vocabulary: more is refused, naming the setting
  const V = unigram.vocabSize;
  assert.throws(() => features("translation", unigram, [e], { numBeams: V + 1 }, "seq2seq-lm"), new RegExp(`translation: --num-beams ${V + 1} is more than the tokenizer's ${V} tokens`));
  assert.equal(features("translation", unigram, [e], { numBeams: V }, "seq2seq-lm").f.length, 1);
  // the length that --group-by-length groups by: the encoder's and the decoder's tokens
  const task = taskEntry("translation").objective({ tokenizer: unigram, labels: [], maxLength: 64, options: {}, modelHead: "seq2seq-lm" });
  const [feature] = task.prepare!([e]) as Seq2SeqFeature[];
  assert.equal((task as unknown as { length(f: Seq2SeqFeature): number }).length(feature!), feature!.ids.length + feature!.labels.length);
});

test("decoder-only features: prompt (bos, prefix + source, separator) labelled -100, the continuation (target + eos) labelled with itself", () => {
  const bpe = trainTokenizerFromTexts(["red cat runs", "summarize: blue dog", "x\ny"], { kind: "bpe", vocabSize: 300 });
  const raw = (s: string): number[] => bpe.encode(s, null, { addSpecialTokens: false }).ids;
  const bos = bpe.tokenToId("<s>")!;
  const eos = bpe.tokenToId("</s>")!;
  const { f } = features("summarization", bpe, [{ text: "blue dog", target: "red cat", source: "f:1" }], {}, "causal-lm");
  const prompt = [...(bpe.encode("x").ids[0] === bos ? [bos] : []), ...raw("summarize: blue dog"), ...raw("\n")];
  const continuation = [...raw("red cat"), eos];
  assert.deepEqual(f[0]!.ids, [...prompt, ...continuation]);
  assert.deepEqual(f[0]!.labels, [...prompt.map(() => -100), ...continuation]);
  assert.equal(f[0]!.promptLength, prompt.length);
  // the separator survives truncation: the source is cut before it
  const short = features("summarization", bpe, [{ text: "blue dog", target: "red cat", source: "f:1" }], { separator: " => " }, "causal-lm", 8).f[0]!;
  assert.deepEqual(short.ids.slice(short.promptLength - raw(" => ").length, short.promptLength), raw(" => "));
  assert.equal(short.promptLength, 8);
});

const t5Dir = join(dir, "t5");
torch.manualSeed(1);
savePretrained(AutoModelForSeq2SeqLM.fromConfig({ model_type: "t5", vocab_size: wordpiece.vocabSize, d_model: 32, d_kv: 8, d_ff: 64, num_layers: 2, num_heads: 4, relative_attention_num_buckets: 8, relative_attention_max_distance: 16, dropout_rate: 0, eos_token_id: wordpiece.tokenToId("[SEP]"), pad_token_id: 0, decoder_start_token_id: 0 }), t5Dir);
saveTokenizer(wordpiece, t5Dir);

test("a tiny T5 fine-tuned on a toy copy task through finetune(): the loss falls, BLEU by generation rises; the folder predicts by generating", async () => {
  const rows = pairs.map((p, i) => ({ text: p.en, target: p.de, source: `toy:${i + 1}` }));
  const train = rows.slice(0, 96);
  const validation = rows.slice(96, 112);
  const out = join(dir, "t5-copy");
  // BLEU of the untrained model, as the evaluation computes it
  const base = await modelFromPretrained(t5Dir, "seq2seq-lm", { verbose: false });
  const objective = taskEntry("translation").objective({ tokenizer: wordpiece, labels: [], maxLength: 32, options: { generationMaxLength: 8 }, modelHead: "seq2seq-lm" });
  const before = objective.evaluate!(base, validation, { batchSize: 16, precision: "fp32" }).metrics;
  const evals: Record<string, number>[] = [];
  const losses: number[] = [];
  const r = await finetune({ model: t5Dir, task: "translation", train, validation, out, maxSteps: 30, batchSize: 16, learningRate: 1e-2, warmupRatio: 0, evalEvery: 30, saveEvery: 30, generationMaxLength: 8, maxLength: 32, precision: "fp32", onStep: (s) => losses.push(s.loss), onEval: (m) => evals.push(m) });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-10)) < 0.5 * mean(losses.slice(0, 5)), `loss ${mean(losses.slice(0, 5))} -> ${mean(losses.slice(-10))}`);
  const last = evals.at(-1)!;
  assert.ok(last.val_bleu! > before.bleu! + 20, `BLEU ${before.bleu} -> ${last.val_bleu}`);
  assert.ok(last.val_chrf! > before.chrf!, `chrF ${before.chrf} -> ${last.val_chrf}`);
  assert.ok(last.val_loss! < before.loss!, "validation loss falls");
  assert.equal(r.train.best?.metric, "bleu", "translation's primary metric");
  // the folder reads back as a translation model whose predictions are generated texts
  const f = await loadFinetuned(out);
  assert.equal(f.task.name, "translation");
  const predicted = f.objective.predict(f.model, validation.slice(0, 4)) as string[];
  assert.equal(predicted.length, 4);
  assert.ok(predicted.every((p) => typeof p === "string"));
  // lmforge predict and lmforge generate on the same folder: the generated German (the copy)
  const p = spawnSync(process.execPath, [cli, "predict", "--model", out, validation[0]!.text], { encoding: "utf8" });
  assert.equal(p.status, 0, p.stderr);
  assert.equal(p.stdout.trim(), predicted[0]);
  const g = spawnSync(process.execPath, [cli, "generate", "--model", out, "--prompt", PREFIX + validation[0]!.text, "--max-new-tokens", "8"], { encoding: "utf8" });
  assert.equal(g.status, 0, g.stderr);
  assert.equal(g.stdout.trim(), predicted[0], "the encoder's input is the prompt; the output is the decoder's text");
});

test("a tiny GPT-2 through the same task: the causal-lm head is chosen, the loss falls, evaluation generates, the folder reloads as GPT-2", async () => {
  const bpe = trainTokenizerFromTexts([PREFIX, ...pairs.map((p) => p.en)], { kind: "bpe", vocabSize: 300 });
  const gptDir = join(dir, "gpt2");
  torch.manualSeed(2);
  savePretrained(AutoModelForCausalLM.fromConfig({ model_type: "gpt2", vocab_size: bpe.vocabSize, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 96, bos_token_id: bpe.tokenToId("<s>"), eos_token_id: bpe.tokenToId("</s>") }), gptDir);
  saveTokenizer(bpe, gptDir);
  const rows = pairs.slice(0, 40).map((p, i) => ({ text: p.en, target: p.de, source: `toy:${i + 1}` }));
  const losses: number[] = [];
  const evals: Record<string, number>[] = [];
  const out = join(dir, "gpt2-copy");
  await finetune({ model: gptDir, task: "translation", train: rows.slice(0, 32), validation: rows.slice(32), out, maxSteps: 20, batchSize: 16, learningRate: 1e-2, warmupRatio: 0, evalEvery: 20, generationMaxLength: 6, maxLength: 48, precision: "fp32", onStep: (s) => losses.push(s.loss), onEval: (m) => evals.push(m) });
  assert.ok(losses.at(-1)! < losses[0]!, `loss ${losses[0]} -> ${losses.at(-1)}`);
  assert.deepEqual(Object.keys(evals[0]!).filter((k) => k.startsWith("val_")).sort(), ["val_bleu", "val_chrf", "val_gen_len", "val_loss"]);
  const f = await loadFinetuned(out);
  assert.equal(f.model.constructor.name, "GPT2LMHeadModel");
  assert.equal((f.objective.predict(f.model, rows.slice(32, 34)) as string[]).length, 2);
});

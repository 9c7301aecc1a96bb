// Fine-tuning and evaluation: readers, splits, metrics against hand-computed cases, every
// transfer strategy, early stopping and best-weight restore, the CLI, and the quickstart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { readLabelled, saveSplit, spamAssassin, stratifiedSplit } from "../src/data/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { classificationReport, rocAuc } from "../src/eval/index.js";
import { finetune, loadFinetuned, evaluateFinetuned } from "../src/train/index.js";
import type { FinetuneOptions } from "../src/train/index.js";
import { AutoModelForMaskedLM, AutoModelForSequenceClassification, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// --- readers -----------------------------------------------------------------------------------------
test("readers: TSV with and without a header, pairs, CSV with quotes, JSONL, the IMDB folder layout", () => {
  const tsv = join(dir, "a.tsv");
  writeFileSync(tsv, "sentence\tlabel\na fine film\tpos\na dull film\tneg\n");
  assert.deepEqual(readLabelled(tsv).examples.map((e) => [e.text, e.label, e.source]), [["a fine film", "pos", `${tsv}:2`], ["a dull film", "neg", `${tsv}:3`]]);
  const pairs = join(dir, "pairs.tsv");
  writeFileSync(pairs, "the cat sat\ta cat sat\t1\nthe dog ran\tit rained\t0\n");
  const p = readLabelled(pairs).examples;
  assert.deepEqual([p[0]!.text, p[0]!.textPair, p[0]!.label], ["the cat sat", "a cat sat", "1"]);
  const csv = join(dir, "b.csv");
  writeFileSync(csv, 'id,review,stars\n1,"great, really great",5\n2,"""quoted"" and bad",1\n');
  const c = readLabelled(csv, { textColumn: "review", labelColumn: "stars" }).examples;
  assert.deepEqual(c.map((e) => [e.text, e.label]), [["great, really great", "5"], ['"quoted" and bad', "1"]]);
  assert.throws(() => readLabelled(csv, { textColumn: "body" }), /header \[id, review, stars\] has no column "body"/);
  const jsonl = join(dir, "c.jsonl");
  writeFileSync(jsonl, '{"text":"spam spam","label":1}\n\n{"text":"hello","label":0}\n');
  assert.deepEqual(readLabelled(jsonl).examples.map((e) => e.label), ["1", "0"]);
  const imdb = join(dir, "imdb", "train");
  for (const [label, texts] of [["pos", ["loved it<br />really"]], ["neg", ["hated it", "boring"]]] as const) {
    mkdirSync(join(imdb, label), { recursive: true });
    texts.forEach((t, i) => writeFileSync(join(imdb, label, `${i}_1.txt`), t));
  }
  const im = readLabelled(imdb).examples;
  assert.deepEqual(im.map((e) => e.label).sort(), ["neg", "neg", "pos"]);
  assert.equal(im.find((e) => e.label === "pos")!.text, "loved it really");
});

test("bad rows are reported with file and line; --skip-bad-rows skips and counts them", () => {
  const bad = join(dir, "bad.tsv");
  writeFileSync(bad, "sentence\tlabel\ngood row\tpos\n\tneg\nno label\t\ntoo\tmany\tcolumns\nfine\tneg\n");
  assert.throws(() => readLabelled(bad), new RegExp(`${bad}:3: empty text`));
  const r = readLabelled(bad, { skipBadRows: true });
  assert.equal(r.examples.length, 2);
  assert.deepEqual(r.skipped.map((s) => [s.source, s.reason]), [[`${bad}:3`, "empty text"], [`${bad}:4`, "missing label"], [`${bad}:5`, "expected 2 columns, found 3"]]);
  const badJson = join(dir, "bad.jsonl");
  writeFileSync(badJson, '{"text":"ok","label":"a"}\n{oops\n');
  assert.throws(() => readLabelled(badJson), new RegExp(`${badJson}:2: not valid JSON`));
  assert.throws(() => readLabelled(join(dir, "none.tsv")), /none\.tsv: no such file or folder/);
});

test("SpamAssassin: 6,046 mails, subject and body without headers, spam and ham", () => {
  const mails = spamAssassin();
  assert.equal(mails.length, 6046);
  assert.equal(mails.filter((m) => m.label === "spam").length, 1896);
  // the header block is gone (a few bodies quote forwarded headers of their own)
  assert.ok(mails.filter((m) => /^Return-Path:/m.test(m.text)).length < mails.length * 0.02);
  assert.ok(!mails[0]!.text.includes("exmh-workers-admin@redhat.com"));
  assert.ok(mails.some((m) => m.text.length > 200));
});

test("stratified splits keep each label's share and reproduce from the seed; the split is saved", () => {
  const ex: LabelledExample[] = Array.from({ length: 1000 }, (_, i) => ({ text: `t${i}`, label: i % 10 < 3 ? "a" : "b", source: String(i) }));
  const s = stratifiedSplit(ex, { validation: 0.1, test: 0.2 }, 7);
  assert.deepEqual([s.train.length, s.validation.length, s.test.length], [700, 100, 200]);
  for (const part of [s.train, s.validation, s.test]) assert.ok(Math.abs(part.filter((e) => e.label === "a").length / part.length - 0.3) < 0.01);
  assert.deepEqual(stratifiedSplit(ex, { validation: 0.1, test: 0.2 }, 7).indices, s.indices);
  assert.notDeepEqual(stratifiedSplit(ex, { validation: 0.1, test: 0.2 }, 8).indices.test, s.indices.test);
  const f = join(dir, "split.json");
  saveSplit(f, s, { seed: 7 });
  const saved = JSON.parse(readFileSync(f, "utf8")) as { seed: number; test: number[] };
  assert.equal(saved.seed, 7);
  assert.deepEqual(saved.test, s.indices.test);
});

// --- metrics -----------------------------------------------------------------------------------------
test("metrics equal hand-computed values", () => {
  // truth:     a a a b b c
  // predicted: a a b b c c
  const r = classificationReport([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"]);
  assert.deepEqual(r.confusion_matrix, [[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
  assert.equal(r.accuracy, 4 / 6);
  const pa = 1, ra = 2 / 3, pb = 0.5, rb = 0.5, pc = 0.5, rc = 1;
  const f = (p: number, q: number): number => (2 * p * q) / (p + q);
  assert.ok(Math.abs(r.per_class.a!.f1 - f(pa, ra)) < 1e-12);
  assert.ok(Math.abs(r.per_class.b!.precision - pb) < 1e-12 && Math.abs(r.per_class.b!.recall - rb) < 1e-12);
  assert.ok(Math.abs(r.macro_f1 - (f(pa, ra) + f(pb, rb) + f(pc, rc)) / 3) < 1e-12);
  assert.ok(Math.abs(r.weighted_f1 - (3 * f(pa, ra) + 2 * f(pb, rb) + 1 * f(pc, rc)) / 6) < 1e-12);
  assert.equal(r.micro_f1, 4 / 6);
  assert.equal(r.per_class.c!.support, 1);
  // ROC AUC: pairs (pos, neg) ranked right: 0.35 > 0.1 yes, 0.35 > 0.4 no, 0.8 > both: 3 of 4
  assert.equal(rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
  assert.equal(rocAuc([0, 1], [0.5, 0.5]), 0.5);
  assert.throws(() => classificationReport([0, 1], [0], ["a", "b"]), /2 labels but 1 predictions/);
});

// --- fine-tuning ------------------------------------------------------------------------------------------
const words = { whale: "whale ship sea harpoon captain ocean voyage sail", nation: "nation congress president law people union tax" };
function synth(n: number, seed: number): LabelledExample[] {
  const out: LabelledExample[] = [];
  let x = seed;
  const rnd = (): number => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < n; i++) {
    const label = i % 2 ? "whale" : "nation";
    const vocab = words[label].split(" ");
    const other = words[label === "whale" ? "nation" : "whale"].split(" ");
    const t = Array.from({ length: 8 }, () => (rnd() < 0.8 ? vocab : other)[Math.floor(rnd() * 7)]).join(" ");
    out.push({ text: t, label, source: `synth:${i}` });
  }
  return out;
}
const trainSet = synth(160, 1);
const valSet = synth(40, 2);
const modelDir = join(dir, "base");
{
  const tok = trainTokenizerFromTexts([...trainSet, ...valSet].map((e) => e.text).concat(["the and of"]), { kind: "wordpiece", vocabSize: 200, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  const m = AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 });
  savePretrained(m, modelDir);
  saveTokenizer(tok, modelDir);
}
let runs = 0;
async function trainWith(strategy: FinetuneOptions["strategy"], extra: Partial<FinetuneOptions> = {}) {
  return finetune({ model: modelDir, train: trainSet, validation: valSet, strategy, epochs: 4, batchSize: 16, learningRate: 3e-3, seed: 3, maxLength: 16, patience: 0, precision: "fp32", out: join(dir, `ft-${runs++}`), ...extra });
}
const baseClassifier = (): Promise<import("../src/models/index.js").PretrainedModel> => AutoModelForSequenceClassification.fromPretrained(modelDir, { verbose: false, config: { id2label: { 0: "nation", 1: "whale" } } });

test("full fine-tuning learns the task and every weight moves", async () => {
  const base = await baseClassifier();
  const r = await trainWith("full");
  assert.ok(r.train.best!.value >= 0.9, `validation macro F1 ${r.train.best!.value}`);
  const sd = r.model.stateDict();
  for (const [name, t] of base.stateDict()) if (!name.startsWith("classifier")) assert.ok(!t.equal(sd.get(name)!), `${name} did not change`);
});

test("feature extraction: the encoder stays frozen and only the head trains; features:N pools N layers, is saved and reloads", async () => {
  const base = await baseClassifier();
  for (const strategy of ["features", "features:2"] as const) {
    const r = await trainWith(strategy);
    const sd = r.model.stateDict();
    for (const [name, t] of base.stateDict()) {
      // (the pooler is not in the masked-LM checkpoint: each load initialises it afresh)
      if (name.startsWith("bert.") && !name.startsWith("bert.pooler")) assert.ok(t.equal(sd.get(name)!), `${strategy}: ${name} changed though frozen`);
    }
    // only the head trains: the classifier (32 x 2 + 2); for features:2 the pooled head instead
    assert.equal(r.trainable, 66, `${strategy}: ${r.trainable} trainable parameters`);
    // the saved folder scores exactly as the trained model (features:N's pooled head is saved)
    const f = await loadFinetuned(join(dir, `ft-${runs - 1}`));
    assert.equal(f.meta.strategy, strategy);
    assert.equal(f.meta.head, strategy === "features:2" ? "layer-pool:2" : undefined);
    const before = (await import("../src/tasks/index.js")).classification.objective({ tokenizer: r.tokenizer, labels: r.labels, maxLength: 16, options: {}, ...(r.meta.head ? { head: r.meta.head } : {}) }).predict(r.model, valSet) as { probabilities: Record<string, number> }[];
    const after = f.objective.predict(f.model, valSet) as { probabilities: Record<string, number> }[];
    after.forEach((p, i) => assert.ok(Math.abs(p.probabilities.whale! - before![i]!.probabilities.whale!) < 1e-6, `${strategy}: example ${i}`));
  }
});

test("freeze:N freezes the embeddings and the first N layers; LoRA trains only its own weights and the head, merged when saved", async () => {
  const base = await baseClassifier();
  const r = await trainWith("freeze:1");
  for (const [name, t] of base.stateDict()) {
    const frozen = /^bert\.(embeddings\.|encoder\.layer\.0\.)/.test(name);
    if (name.startsWith("classifier") || name.startsWith("bert.pooler")) continue;
    assert.equal(t.equal(r.model.stateDict().get(name)!), frozen, `freeze:1 ${name}`);
  }
  const lora = await trainWith("lora");
  const sd = lora.model.stateDict();
  const loraNames = [...sd.keys()].filter((n) => /lora_[AB]/.test(n));
  assert.equal(loraNames.length, 8, `LoRA adapters: ${loraNames.join(", ")}`);
  // B starts at zero: it moves only if the adapter is in the forward pass
  for (const n of loraNames.filter((x) => x.includes("lora_B"))) assert.ok(sd.get(n)!.abs().sum().item() > 0, `lora: ${n} never trained`);
  assert.ok(lora.trainable < r.trainable);
  // saved with LoRA merged: a plain BERT classifier with the same predictions
  const out = join(dir, `ft-${runs - 1}`);
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { architectures: string[]; lmforge: { strategy: string; max_length: number } };
  assert.deepEqual(saved.architectures, ["BertForSequenceClassification"]);
  assert.equal(saved.lmforge.strategy, "lora");
  assert.equal(saved.lmforge.max_length, 16);
  const f = await loadFinetuned(out);
  assert.ok(![...f.model.stateDict().keys()].some((k) => k.includes("lora")));
  const a = evaluateFinetuned(f, valSet).predictions as { probabilities: Record<string, number> }[];
  const b = (await import("../src/tasks/index.js")).classification.objective({ tokenizer: lora.tokenizer, labels: lora.labels, maxLength: 16, options: {} }).predict(lora.model, valSet) as { probabilities: Record<string, number> }[];
  a.forEach((p, i) => assert.ok(Math.abs(p.probabilities.whale! - b[i]!.probabilities.whale!) < 1e-4));
  // ALBERT shares its layers: freeze:N > 0 is refused by the registry's word, before any training
  const albertDir = join(dir, "albert");
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "albert", vocab_size: 200, embedding_size: 16, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 }), albertDir);
  await assert.rejects(finetune({ model: albertDir, tokenizer: modelDir, train: trainSet, validation: valSet, strategy: "freeze:1", epochs: 1, maxLength: 16, out: join(dir, "albert-ft") }), /freeze:1: albert shares its layers across depth/);
  assert.ok(!existsSync(join(dir, "albert-ft")), "nothing is written when the strategy does not fit");
});

test("early stopping counts evaluations without improvement and restores the best weights", async () => {
  const r = await trainWith("full", { learningRate: 1e-9, epochs: 5, patience: 2, evalEvery: 3 });
  assert.equal(r.train.stoppedEarly, true);
  assert.equal(r.train.evals.length, 3); // the first evaluation is best; two more without improvement
  assert.equal(r.train.best!.step, 3);
  const r2 = await trainWith("full", { epochs: 3, patience: 0, evalEvery: 5 });
  const f = await loadFinetuned(join(dir, `ft-${runs - 1}`));
  const ev = evaluateFinetuned(f, valSet);
  assert.ok(Math.abs(ev.metrics.macro_f1! - r2.train.best!.value) < 1e-9, "the saved model scores the best evaluation");
  const best = r2.train.evals.find((e) => e.step === r2.train.best!.step)!;
  assert.equal(best.val_macro_f1, Math.max(...r2.train.evals.map((e) => e.val_macro_f1!)));
});

test("hyperparameter search runs each trial and ranks them by the validation metric; the best model is kept", async () => {
  const out = join(dir, "search");
  const r = await finetune({ model: modelDir, train: trainSet, validation: valSet, epochs: 1, batchSize: 16, seed: 1, maxLength: 16, patience: 0, precision: "fp32", out, search: "grid", searchLearningRate: [1e-6, 3e-3], searchBatchSize: [8, 16] });
  const trials = r.search!.trials;
  assert.equal(trials.length, 4);
  for (let i = 1; i < trials.length; i++) assert.ok(trials[i - 1]!.value >= trials[i]!.value);
  assert.equal(new Set(trials.map((t) => JSON.stringify(t.params))).size, 4);
  assert.equal(r.train.best!.value, trials[0]!.value);
  const f = await loadFinetuned(out);
  assert.ok(Math.abs(evaluateFinetuned(f, valSet).metrics.macro_f1! - trials[0]!.value) < 1e-9);
  assert.ok(existsSync(join(out, "search_results.json")));
});

// --- the command line --------------------------------------------------------------------------------------
test("lmforge finetune, evaluate --json and predict from the command line", () => {
  const data = join(dir, "cli.tsv");
  writeFileSync(data, "sentence\tlabel\n" + [...trainSet, ...valSet].map((e) => `${e.text}\t${e.label}`).join("\n") + "\n");
  const out = join(dir, "cli-out");
  execFileSync(process.execPath, [cli, "finetune", "--model", modelDir, "--train", data, "--out", out, "--epochs", "3", "--batch-size", "16", "--learning-rate", "3e-3", "--max-length", "16", "--precision", "fp32"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "split.json", "errors.jsonl", "test_metrics.json", "metrics.jsonl", "report.html"]) assert.ok(existsSync(join(out, f)), f);
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { id2label: Record<string, string>; architectures: string[]; lmforge: { task: string; labels: string[]; max_length: number } };
  assert.deepEqual(cfg.id2label, { 0: "nation", 1: "whale" });
  assert.deepEqual(cfg.architectures, ["BertForSequenceClassification"]);
  assert.deepEqual([cfg.lmforge.task, cfg.lmforge.labels, cfg.lmforge.max_length], ["classification", ["nation", "whale"], 16]);
  const evOut = join(dir, "cli-eval");
  const json = JSON.parse(execFileSync(process.execPath, [cli, "evaluate", "--model", out, "--data", data, "--json", "--out", evOut], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })) as Record<string, unknown>;
  for (const k of ["accuracy", "macro_f1", "micro_f1", "weighted_f1", "per_class", "confusion_matrix"]) assert.ok(k in json, k);
  // --out keeps the evaluation: the same numbers, the errors, and its report
  const kept = JSON.parse(readFileSync(join(evOut, "eval_metrics.json"), "utf8")) as { task: string; examples: number; accuracy: number };
  assert.deepEqual([kept.task, kept.examples, kept.accuracy], ["classification", trainSet.length + valSet.length, json.accuracy]);
  for (const f of ["errors.jsonl", "report.html"]) assert.ok(existsSync(join(evOut, f)), f);
  assert.ok((json.accuracy as number) > 0.85);
  const pred = execFileSync(process.execPath, [cli, "predict", "--model", out, "--json", "whale ship sea harpoon", "congress nation law tax"], { encoding: "utf8" }).trim().split("\n").map((l) => JSON.parse(l) as { label: string; probabilities: Record<string, number> });
  assert.deepEqual(pred.map((p) => p.label), ["whale", "nation"]);
  assert.ok(Math.abs(pred[0]!.probabilities.whale! + pred[0]!.probabilities.nation! - 1) < 1e-4);
  const stdin = execFileSync(process.execPath, [cli, "predict", "--model", out], { input: "ocean voyage captain\n", encoding: "utf8" });
  assert.match(stdin, /^whale\t0\.\d{4}\tocean voyage captain/);
  const bad = spawnSync(process.execPath, [cli, "finetune", "--model", modelDir, "--train", data, "--out", out, "--strategy", "half"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--strategy: must be full, features, features:N, freeze:N or lora, got "half"/);
  const unknown = join(dir, "unknown.tsv");
  writeFileSync(unknown, "sentence\tlabel\nsome text\tsports\n");
  const ev = spawnSync(process.execPath, [cli, "evaluate", "--model", out, "--data", unknown], { encoding: "utf8" });
  assert.equal(ev.status, 1);
  assert.match(ev.stderr, /unknown\.tsv:2: unknown label "sports" in the evaluation data; the model knows nation, whale/);
});

test("lmforge quickstart --fast: the whole pipeline on the embedded data, with its report", () => {
  const out = join(dir, "quickstart");
  const stdout = execFileSync(process.execPath, [cli, "quickstart", "--fast", "--out", out], { encoding: "utf8", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache") } });
  assert.match(stdout, /BERT pretrained\s+\d+\.\d+%\s+0\.\d{4}/);
  assert.match(stdout, /BERT from scratch\s+\d+\.\d+%\s+0\.\d{4}/);
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { results: { name: string; accuracy: number }[] };
  assert.equal(results.results.length, 2);
  assert.ok(results.results.every((r) => r.accuracy > 0.75), JSON.stringify(results.results.map((r) => r.accuracy)));
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.match(html, /<div id="charts">/); // uPlot's charts of both fine-tuning runs, drawn from the page's data
  assert.match(html, /<th><\/th><th>finetuned-pretrained<\/th><th>finetuned-scratch<\/th>/);
  assert.match(html, /Confusion matrix, pretrained/);
  for (const run of ["pretrained", "finetuned-pretrained", "finetuned-scratch"]) assert.ok(existsSync(join(out, run, "report.html")), `${run}/report.html`);
});

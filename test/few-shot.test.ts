// Few-shot fine-tuning: the k-shot draw, mean ± std over seeds, patterns and verbalizers, the
// verbalizer loss against a hand computation from the MLM logits, prompt-classification end
// to end on SpamAssassin mails (one pattern and a two-pattern ensemble), evaluate and predict
// on the saved folders.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { spamAssassin } from "../src/data/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { finetune, loadFinetuned, evaluateFinetuned } from "../src/train/index.js";
import { drawKShot, summariseMetrics } from "../src/train/few-shot.js";
import { fewShotCells, fewShotTable, parseMethods } from "../src/train/few-shot-study.js";
import type { FewShotRun } from "../src/train/few-shot-study.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { loadTokenizer, saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { knownTasks, taskEntry } from "../src/tasks/index.js";
import { encodePrompt, parsePattern, parseVerbalizer, truncateLongestFirst, verbalizerIds } from "../src/tasks/prompts.js";
import { loadServedModel } from "../src/serve/models.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// --- the k-shot draw and the summary ---------------------------------------------------------------
const pool: LabelledExample[] = [
  ...Array.from({ length: 10 }, (_, i) => ({ text: `a${i}`, label: "a", source: `a${i}` })),
  ...Array.from({ length: 7 }, (_, i) => ({ text: `b${i}`, label: "b", source: `b${i}` })),
  ...Array.from({ length: 12 }, (_, i) => ({ text: `c${i}`, label: "c", source: `c${i}` })),
];
const count = (xs: LabelledExample[], label: string): number => xs.filter((e) => e.label === label).length;

test("drawKShot: K per class to train on, K others to validate on, seeded, disjoint", () => {
  const d = drawKShot(pool, 3, 7);
  for (const l of ["a", "b", "c"]) {
    assert.equal(count(d.train, l), 3);
    assert.equal(count(d.validation, l), 3);
  }
  assert.equal(new Set([...d.indices.train, ...d.indices.validation]).size, 18, "train and validation share no example");
  assert.deepEqual(d.train.map((e) => e.source), d.indices.train.map((i) => pool[i]!.source));
  assert.deepEqual(drawKShot(pool, 3, 7).indices, d.indices, "the same seed draws the same");
  assert.notDeepEqual(drawKShot(pool, 3, 8).indices.train, d.indices.train, "another seed draws others");
  // class b has 7 examples: 3 + 3 fit, 4 + 4 do not
  assert.throws(() => drawKShot(pool, 4, 7), /--shots 4: class "b" has 7 training examples; .* need 8/);
  assert.throws(() => drawKShot(pool.filter((e) => e.label === "a"), 1, 7), /1 class\(es\)/);
});

test("summariseMetrics: mean and sample standard deviation per metric, by hand", () => {
  const s = summariseMetrics([{ accuracy: 0.8, macro_f1: 0.5 }, { accuracy: 0.9, macro_f1: 0.7 }, { accuracy: 1.0, macro_f1: 0.6 }]);
  // accuracy: mean 0.9; deviations -0.1, 0, 0.1: sqrt(0.02 / 2) = 0.1. macro F1: mean 0.6, the same deviations
  assert.ok(Math.abs(s.accuracy!.mean - 0.9) < 1e-12 && Math.abs(s.accuracy!.std - 0.1) < 1e-12);
  assert.ok(Math.abs(s.macro_f1!.mean - 0.6) < 1e-12 && Math.abs(s.macro_f1!.std - 0.1) < 1e-12);
  assert.deepEqual(s.accuracy!.values, [0.8, 0.9, 1.0]);
  assert.deepEqual(summariseMetrics([{ accuracy: 0.75 }]), { accuracy: { mean: 0.75, std: 0, values: [0.75] } });
});

// --- patterns and verbalizers ----------------------------------------------------------------------
const mails = spamAssassin();
const pick = (label: string, n: number, skip = 0): LabelledExample[] => mails.filter((m) => m.label === label).slice(skip, skip + n).map((m) => ({ ...m, text: m.text.slice(0, 300) }));
const train = [...pick("spam", 8), ...pick("ham", 8)];
const validation = [...pick("spam", 4, 8), ...pick("ham", 4, 8)];
const testSet = [...pick("spam", 6, 12), ...pick("ham", 6, 12)];
const modelDir = join(dir, "base");
{
  // the label words appear often, so that each is one WordPiece
  const words = "spam ham junk fine it was great bad".split(" ");
  const tok = trainTokenizerFromTexts([...train, ...validation, ...testSet].map((e) => e.text).concat(Array.from({ length: 50 }, () => words.join(" "))), { kind: "wordpiece", vocabSize: 400, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 }), modelDir);
  saveTokenizer(tok, modelDir);
}
const tok = loadTokenizer(modelDir);

test("patterns: slots and errors; verbalizers: one word per label, errors name the word and the label", () => {
  assert.deepEqual(parsePattern("{text} It was [MASK]."), [{ kind: "slot", slot: "a" }, { kind: "literal", text: " It was " }, { kind: "mask" }, { kind: "literal", text: "." }]);
  assert.deepEqual(parsePattern("{text_a} ? [MASK] , {text_b}").map((p) => p.kind), ["slot", "literal", "mask", "literal", "slot"]);
  assert.throws(() => parsePattern("{text} It was."), /needs exactly one \[MASK\], found 0/);
  assert.throws(() => parsePattern("{sentence} [MASK]"), /unknown slot \{sentence\}/);
  assert.throws(() => parsePattern("[MASK] {text_b}"), /\{text\} \(or \{text_a\}\) once/);
  assert.deepEqual(parseVerbalizer("spam=junk, ham=fine"), { spam: "junk", ham: "fine" });
  assert.throws(() => parseVerbalizer("spam"), /LABEL=WORD/);
  assert.deepEqual(verbalizerIds(tok, ["ham", "spam"], { spam: "junk", ham: "fine" }), [tok.tokenToId("fine"), tok.tokenToId("junk")]);
  assert.deepEqual(verbalizerIds(tok, ["ham", "spam"]), [tok.tokenToId("ham"), tok.tokenToId("spam")], "default: the label names");
  assert.throws(() => verbalizerIds(tok, ["ham", "spam"], { spam: "junk" }), /no word for label "ham"/);
  assert.throws(() => verbalizerIds(tok, ["ham", "spam"], { spam: "junk", ham: "fine", eggs: "bad" }), /label "eggs" is not one of the labels/);
  assert.throws(() => verbalizerIds(tok, ["ham", "spam"], { spam: "junk", ham: "Junk" }), /labels "ham" and "spam" have the same word "junk"/);
  const long = tok.encode(" zyzzyva", null, { addSpecialTokens: false }).tokens.length;
  assert.ok(long > 1);
  assert.throws(() => verbalizerIds(tok, ["ham", "spam"], { spam: "zyzzyva", ham: "fine" }), new RegExp(`the word "zyzzyva" of label "spam" is ${long} pieces`));
});

test("truncation: the text is cut, the pattern's tokens and the mask always fit", () => {
  assert.deepEqual(truncateLongestFirst(3, 4, 10), [3, 4]);
  assert.deepEqual(truncateLongestFirst(2, 20, 10), [2, 8]);
  assert.deepEqual(truncateLongestFirst(20, 3, 10), [7, 3]);
  assert.deepEqual(truncateLongestFirst(20, 20, 9), [5, 4]);
  const parts = parsePattern("{text} It was [MASK].");
  const text = "spam ham junk fine ".repeat(20);
  const e = encodePrompt(tok, parts, { text }, 16);
  const tokens = e.ids.map((id) => tok.idToToken(id));
  // [CLS], 10 text tokens (16 - [CLS] [SEP] - "it was" - [MASK] - "."), then the pattern whole
  assert.deepEqual(tokens, ["[CLS]", ..."spam ham junk fine spam ham junk fine spam ham".split(" "), "it", "was", "[MASK]", ".", "[SEP]"]);
  assert.equal(e.maskIndex, 13);
  const short = encodePrompt(tok, parts, { text: "fine" }, 16);
  assert.deepEqual(short.ids.map((id) => tok.idToToken(id)), ["[CLS]", "fine", "it", "was", "[MASK]", ".", "[SEP]"]);
  assert.throws(() => encodePrompt(tok, parsePattern("{text} it was it was it was [MASK]"), { text }, 8), /leaving no room for the text in --max-length 8/);
  assert.throws(() => encodePrompt(tok, parts, { text: "a", textPair: "b" }, 16), /pair of texts but the pattern has no \{text_b\}/);
});

test("the verbalizer loss is the cross-entropy of the label words' MLM logits at the mask (by hand)", async () => {
  const model = (await AutoModelForMaskedLM.fromPretrained(modelDir, { verbose: false })) as PretrainedModel;
  model.eval();
  const labels = ["ham", "spam"];
  const objective = taskEntry("prompt-classification").objective({ tokenizer: tok, labels, maxLength: 24, options: { pattern: ["{text} It was [MASK]."], verbalizer: { ham: "fine", spam: "junk" } } });
  const examples = [train[0]!, train[9]!, train[1]!];
  const rows = objective.prepare!(examples) as { ids: number[]; maskIndex: number; label: number }[];
  const loss = torch.noGrad(() => objective.loss(model, objective.batch(rows, [0, 1, 2], 0) as never).loss.item());
  // by hand: each example alone, unpadded, the full (1, T, V) logits; softmax over [fine, junk] at the mask
  const fine = tok.tokenToId("fine")!;
  const junk = tok.tokenToId("junk")!;
  let sum = 0;
  for (const [i, r] of rows.entries()) {
    const logits = torch.noGrad(() => model.forward({ inputIds: torch.tensor([r.ids], { dtype: "int64" }) }).logits.toArray()) as number[][][];
    const at = logits[0]![r.maskIndex]!;
    const s = [at[fine]!, at[junk]!];
    const gold = labels.indexOf(examples[i]!.label);
    sum += -(s[gold]! - Math.log(Math.exp(s[0]!) + Math.exp(s[1]!)));
  }
  assert.ok(Math.abs(loss - sum / 3) < 1e-5, `objective ${loss}, by hand ${sum / 3}`);
  // the masked-LM head is the checkpoint's: its decoder is tied to the word embeddings, as saved
  const names = [...model.stateDict().keys()];
  assert.ok(names.some((n) => n.startsWith("cls.predictions.transform")), names.join(","));
  model.dispose();
});

// --- end to end -------------------------------------------------------------------------------------
const base = { model: modelDir, task: "prompt-classification", epochs: 12, batchSize: 8, learningRate: 3e-3, maxLength: 48, patience: 0, precision: "fp32" as const, seed: 1, warmupRatio: 0 };

test("prompt-classification end to end: trains through the MLM head, saves a folder evaluate and predict load", async () => {
  const out = join(dir, "prompt");
  const r = await finetune({ ...base, train, validation, test: testSet, pattern: ["{text} It was [MASK]."], verbalizer: { spam: "junk", ham: "fine" }, out });
  assert.equal(r.model.constructor.name, "BertForMaskedLM");
  assert.deepEqual(r.labels, ["ham", "spam"]);
  const losses = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { loss?: number }).filter((m) => m.loss !== undefined).map((m) => m.loss!);
  assert.ok(losses[losses.length - 1]! < losses[0]!, `training loss ${losses[0]} -> ${losses[losses.length - 1]}`);
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { architectures: string[]; lmforge: { task: string; options: Record<string, unknown> } };
  assert.deepEqual(saved.architectures, ["BertForMaskedLM"]);
  assert.deepEqual(saved.lmforge.options.pattern, ["{text} It was [MASK]."]);
  assert.deepEqual(saved.lmforge.options.verbalizer, { spam: "junk", ham: "fine" });
  // loading the folder predicts what training's model predicted on the test set
  const f = await loadFinetuned(out);
  const ev = evaluateFinetuned(f, testSet);
  assert.deepEqual(ev.predictions, r.test!.predictions);
  const written = JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as { accuracy: number; examples: number };
  assert.equal(written.examples, 12);
  assert.equal(written.accuracy, ev.metrics.accuracy);
  // the accuracy is the share of predictions equal to the labels
  const right = (ev.predictions as { label: string }[]).filter((p, i) => p.label === testSet[i]!.label).length;
  assert.equal(ev.metrics.accuracy, right / 12);
  f.model.dispose();
  r.model.dispose();
  // the command line: evaluate --json and predict on the folder
  const data = join(dir, "test.jsonl");
  writeFileSync(data, testSet.map((e) => JSON.stringify({ text: e.text, label: e.label })).join("\n") + "\n");
  const json = JSON.parse(execFileSync(process.execPath, [cli, "evaluate", "--model", out, "--data", data, "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })) as { task: string; accuracy: number };
  assert.equal(json.task, "prompt-classification");
  assert.equal(json.accuracy, ev.metrics.accuracy);
  const pred = execFileSync(process.execPath, [cli, "predict", "--model", out, "--json", testSet[0]!.text.replace(/\n/g, " ")], { encoding: "utf8" }).trim().split("\n").map((l) => JSON.parse(l) as { label: string; probabilities: Record<string, number> });
  assert.equal(pred.length, 1);
  assert.ok(Math.abs(pred[0]!.probabilities.ham! + pred[0]!.probabilities.spam! - 1) < 1e-6);
});

test("two patterns: one model each, the saved ensemble averages their probabilities", async () => {
  const out = join(dir, "ensemble");
  const prompts = [{ pattern: "{text} It was [MASK].", verbalizer: { spam: "junk", ham: "fine" } }, { pattern: "[MASK] mail: {text}", verbalizer: { spam: "spam", ham: "ham" } }];
  const file = join(dir, "prompts.json");
  writeFileSync(file, JSON.stringify([{ pattern: prompts[0]!.pattern, verbalizer: "spam=junk,ham=fine" }, prompts[1]]));
  const r = await finetune({ ...base, epochs: 4, train, validation, test: testSet, prompts: file, out });
  assert.ok(existsSync(join(out, "pattern-1", "config.json")) && existsSync(join(out, "pattern-2", "config.json")));
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { lmforge: { head: string; options: { prompts: unknown } } };
  assert.equal(saved.lmforge.head, "prompt-ensemble:2");
  assert.deepEqual(saved.lmforge.options.prompts, prompts);
  r.model.dispose();
  // each member alone, from its own folder, and the ensemble folder: probabilities are their mean
  const [one, two, both] = await Promise.all([join(out, "pattern-1"), join(out, "pattern-2"), out].map((d) => loadFinetuned(d)));
  const p = (f: typeof one) => (evaluateFinetuned(f!, testSet).predictions as { probabilities: Record<string, number> }[]).map((x) => x.probabilities.spam!);
  const [p1, p2, pe] = [p(one), p(two), p(both)];
  pe.forEach((x, i) => assert.ok(Math.abs(x - (p1[i]! + p2[i]!) / 2) < 1e-5, `example ${i}: ensemble ${x}, members ${p1[i]} and ${p2[i]}`));
  const written = JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as { accuracy: number; patterns: { accuracy: number }[] };
  assert.equal(written.accuracy, evaluateFinetuned(both!, testSet).metrics.accuracy);
  assert.equal(written.patterns.length, 2);
  for (const f of [one, two, both]) f!.model.dispose();
  // lmforge serve's classify endpoint answers as predict does
  const served = await loadServedModel("spam", out);
  const answer = served.run("classify", [{ text: testSet[0]!.text }]) as { probabilities: Record<string, number> }[];
  assert.ok(Math.abs(answer[0]!.probabilities.spam! - pe[0]!) < 1e-5);
});

test("--shots K --seeds 2: a draw per seed in its own folder, the summary's mean ± std of their test metrics", async () => {
  const out = join(dir, "shots");
  const r = await finetune({ ...base, epochs: 2, train: [...train, ...validation], test: testSet, shots: 3, seeds: 2, out });
  r.model.dispose();
  const summary = JSON.parse(readFileSync(join(out, "few_shot.json"), "utf8")) as { seeds: number[]; testExamples: number; metrics: Record<string, { mean: number; std: number; values: number[] }> };
  assert.deepEqual(summary.seeds, [1, 2]);
  assert.equal(summary.testExamples, 12);
  const accs = [1, 2].map((s) => (JSON.parse(readFileSync(join(out, `seed-${s}`, "test_metrics.json"), "utf8")) as { accuracy: number }).accuracy);
  assert.deepEqual(summary.metrics.accuracy!.values, accs);
  assert.ok(Math.abs(summary.metrics.accuracy!.mean - (accs[0]! + accs[1]!) / 2) < 1e-12);
  assert.ok(Math.abs(summary.metrics.accuracy!.std - Math.abs(accs[0]! - accs[1]!) / Math.SQRT2) < 1e-12);
  for (const s of [1, 2]) {
    const draw = JSON.parse(readFileSync(join(out, `seed-${s}`, "shots.json"), "utf8")) as { train: number[]; validation: number[] };
    assert.equal(draw.train.length, 6);
    assert.equal(draw.validation.length, 6);
  }
  await assert.rejects(finetune({ ...base, train, validation, shots: 3, out: join(dir, "bad") }), /--shots draws its validation set/);
  await assert.rejects(finetune({ ...base, train, seeds: 2, out: join(dir, "bad") }), /seeds repeats a few-shot run/);
});

// --- the few-shot table -----------------------------------------------------------------------------
test("fewShotTable and parseMethods: mean ± std per (method, K), per-seed values; setfit only when registered", () => {
  const runs: FewShotRun[] = [
    { method: "standard", shots: 2, seed: 1, dir: "a", metrics: { accuracy: 0.5, macro_f1: 0.4 }, seconds: 1 },
    { method: "standard", shots: 2, seed: 2, dir: "b", metrics: { accuracy: 0.7, macro_f1: 0.6 }, seconds: 1 },
    { method: "standard", shots: 2, seed: 3, dir: "c", metrics: {}, seconds: NaN, error: "exit 1: out of memory" },
  ];
  const [cell] = fewShotCells(runs, ["standard"], [2]);
  // mean 0.6, sample std sqrt((0.01 + 0.01) / 1) = 0.1414...
  assert.deepEqual(cell!.seeds, [1, 2]);
  assert.ok(Math.abs(cell!.metrics.accuracy!.mean - 0.6) < 1e-12 && Math.abs(cell!.metrics.accuracy!.std - Math.sqrt(0.02)) < 1e-12);
  assert.deepEqual(cell!.failed, [{ seed: 3, error: "exit 1: out of memory" }]);
  const table = fewShotTable([cell!]).split("\n");
  assert.match(table[2]!, /^\| standard \| 2 \| +2 \| 0\.6000 ± 0\.1414 \| 0\.5000 ± 0\.1414 \| +0\.5000, 0\.7000 \| +0\.4000, 0\.6000 \|$/);
  assert.equal(table[4], "standard K=2 seed 3 failed: exit 1: out of memory");
  assert.deepEqual(parseMethods("standard,prompt"), ["standard", "prompt"]);
  assert.throws(() => parseMethods("standard,lora"), /unknown method "lora"; the methods are standard, prompt, setfit/);
  if (!knownTasks().includes("setfit")) assert.throws(() => parseMethods("setfit"), /--methods setfit: needs the fine-tuning task "setfit", which this lmforge does not register/);
  else assert.deepEqual(parseMethods("setfit"), ["setfit"]);
});

test("lmforge fewshot: a process per (method, K, seed), fewshot.md and fewshot.json, a rerun keeps the runs done", async () => {
  const data = join(dir, "fewshot-train.jsonl");
  writeFileSync(data, [...train, ...validation].map((e) => JSON.stringify({ text: e.text, label: e.label })).join("\n") + "\n");
  const testFile = join(dir, "fewshot-test.jsonl");
  writeFileSync(testFile, testSet.map((e) => JSON.stringify({ text: e.text, label: e.label })).join("\n") + "\n");
  const out = join(dir, "table");
  const args = ["fewshot", "--model", modelDir, "--train", data, "--test", testFile, "--shots", "2,3", "--seeds", "2", "--methods", "standard,prompt", "--seed", "1", "--out", out, "--epochs", "1", "--batch-size", "4", "--max-length", "32", "--precision", "fp32", "--verbalizer", "spam=junk,ham=fine"];
  const env = { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE" };
  const first = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });
  assert.equal(first.status, 0, first.stderr);
  const json = JSON.parse(readFileSync(join(out, "fewshot.json"), "utf8")) as { cells: { method: string; shots: number; seeds: number[]; metrics: Record<string, { mean: number; values: number[] }> }[] };
  assert.deepEqual(json.cells.map((c) => `${c.method}/${c.shots}/${c.seeds.join("+")}`), ["standard/2/1+2", "standard/3/1+2", "prompt/2/1+2", "prompt/3/1+2"]);
  for (const c of json.cells) {
    const task = c.method === "standard" ? "classification" : "prompt-classification";
    const accs = c.seeds.map((s) => {
      const run = join(out, c.method, `k${c.shots}`, `seed-${s}`);
      const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8")) as { lmforge: { task: string } };
      assert.equal(config.lmforge.task, task);
      const draw = JSON.parse(readFileSync(join(run, "shots.json"), "utf8")) as { train: number[] };
      assert.equal(draw.train.length, 2 * c.shots);
      return (JSON.parse(readFileSync(join(run, "test_metrics.json"), "utf8")) as { accuracy: number; examples: number }).accuracy;
    });
    assert.deepEqual(c.metrics.accuracy!.values, accs);
  }
  assert.match(readFileSync(join(out, "fewshot.md"), "utf8"), /\| prompt +\| 3 \| +2 \| \d\.\d{4} ± \d\.\d{4} \|/);
  const again = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stderr.match(/done before/g)?.length, 8, again.stderr);
});

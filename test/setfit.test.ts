// SetFit: the contrastive pairs, mean pooling and the cosine loss against hand computations, and
// a run end to end on a tiny BERT with SpamAssassin mails: phase 1 through the Trainer (its steps
// are the pairs'), the logistic head at its optimum (scikit-learn's binary objective), and the
// saved folder predicting as the run did, in process and through the CLI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { contrastivePairs } from "../src/data/contrastive-pairs.js";
import { spamAssassin } from "../src/data/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { cosineSimilarity, cosineSimilarityLoss, meanPool } from "../src/nn/index.js";
import { AutoModelForMaskedLM, presetConfig, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { knownTasks } from "../src/tasks/index.js";
import { SETFIT_HEAD, SETFIT_HEAD_ATTRIBUTE } from "../src/tasks/setfit.js";
import { evaluateFinetuned, finetune, loadFinetuned } from "../src/train/index.js";
import type { ClassPrediction } from "../src/tasks/index.js";
import { assertClose, tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-setfit-");
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// --- pairs -----------------------------------------------------------------------------------------------
test("pairs: one label each side leaves no choice, so the pairs are known by hand", () => {
  // example 0 ("a") has only itself as a positive and 1 as a negative, and the other way round
  assert.deepEqual(contrastivePairs(["a", "b"], 2, 7), [
    { first: 0, second: 0, target: 1 }, { first: 0, second: 1, target: 0 }, { first: 1, second: 1, target: 1 }, { first: 1, second: 0, target: 0 },
    { first: 0, second: 0, target: 1 }, { first: 0, second: 1, target: 0 }, { first: 1, second: 1, target: 1 }, { first: 1, second: 0, target: 0 },
  ]);
});

test("pairs: 2 N R of them, half positive, labels agreeing with the targets, seeded", () => {
  const labels = ["ham", "spam", "ham", "ham", "spam", "eggs", "ham"];
  const R = 30;
  const pairs = contrastivePairs(labels, R, 11);
  assert.equal(pairs.length, 2 * labels.length * R);
  assert.equal(pairs.filter((p) => p.target === 1).length, labels.length * R);
  // iteration by iteration, each example's positive then its negative
  pairs.forEach((p, k) => {
    assert.equal(p.first, Math.floor(k / 2) % labels.length);
    assert.equal(p.target, k % 2 === 0 ? 1 : 0);
    assert.equal(labels[p.first] === labels[p.second], p.target === 1, `pair ${k}: ${JSON.stringify(p)}`);
  });
  // positives are drawn from the whole class, the example itself included (setfit's reference does so)
  const partners = new Set(pairs.filter((p) => p.first === 0 && p.target === 1).map((p) => p.second));
  assert.deepEqual([...partners].sort(), [0, 2, 3, 6]);
  const negatives = new Set(pairs.filter((p) => p.first === 0 && p.target === 0).map((p) => p.second));
  assert.deepEqual([...negatives].sort(), [1, 4, 5]);
  assert.deepEqual(contrastivePairs(labels, R, 11), pairs);
  assert.notDeepEqual(contrastivePairs(labels, R, 12), pairs);
  // a longer run starts with the shorter one's pairs (each iteration its own stream)
  assert.deepEqual(contrastivePairs(labels, R + 5, 11).slice(0, pairs.length), pairs);
  assert.throws(() => contrastivePairs(["a", "a"], 1, 0), /1 label\(s\); negative pairs need at least 2/);
  assert.throws(() => contrastivePairs(["a", "b"], 0, 0), /iterations must be a positive integer, got 0/);
});

// --- pooling and loss ----------------------------------------------------------------------------------
test("mean pooling averages the real tokens only (padding states are ignored, whatever they hold)", () => {
  torch.scope(() => {
    const hidden = torch.tensor([
      [[1, 2], [3, 4], [1000, -1000]],
      [[5, 6], [-999, 999], [777, 777]],
    ]);
    const mask = torch.tensor([[1, 1, 0], [1, 0, 0]], { dtype: "int64" });
    // row 0: ([1,2] + [3,4]) / 2 = [2, 3]; row 1: [5, 6] alone
    assertClose(meanPool(hidden, mask), [[2, 3], [5, 6]], 1e-6, "meanPool");
    // a row of padding only is zeros, not NaN (the count is clamped at 1e-9)
    assertClose(meanPool(hidden, torch.tensor([[0, 0, 0], [1, 1, 1]], { dtype: "int64" })), [[0, 0], [(5 - 999 + 777) / 3, (6 + 999 + 777) / 3]], 1e-5, "meanPool, empty row");
  });
});

test("cosine similarity loss: the mean squared gap between cos(u, v) and the target, by hand", () => {
  torch.scope(() => {
    const f32 = { dtype: "float32" } as const;
    const u = torch.tensor([[1, 0], [3, 4], [1, 1]], f32);
    const v = torch.tensor([[0, 1], [6, 8], [1, 0]], f32);
    // orthogonal: 0; parallel: 1; 45 degrees: 1/sqrt(2)
    assertClose(cosineSimilarity(u, v), [0, 1, Math.SQRT1_2], 1e-6, "cos");
    const target = torch.tensor([0, 1, 1]);
    const expected = (0 ** 2 + 0 ** 2 + (Math.SQRT1_2 - 1) ** 2) / 3;
    assert.ok(Math.abs(cosineSimilarityLoss(u, v, target).item() - expected) < 1e-6);
    // a dissimilar target on the parallel pair costs (1 - 0)^2 / 3 more
    assert.ok(Math.abs(cosineSimilarityLoss(u, v, torch.tensor([0, 0, 1])).item() - (expected + 1 / 3)) < 1e-6);
    // d loss / d u for one pair u=[1,1], v=[1,0], target 1: 2 (c - 1) dc/du, dc/du = v/(|u||v|) - c u/|u|^2
    const u1 = torch.tensor([[1, 1]], f32).requiresGrad_(true);
    const [g] = torch.grad([cosineSimilarityLoss(u1, torch.tensor([[1, 0]], f32), torch.tensor([1], f32))], [u1]);
    const c = Math.SQRT1_2;
    const dc = [1 / Math.SQRT2 - c / 2, 0 - c / 2];
    assertClose(g!, [dc.map((d) => 2 * (c - 1) * d)], 1e-5, "gradient");
  });
});

// --- end to end ------------------------------------------------------------------------------------------
/** The first n mails of a label after `skip` of them: a fixed, balanced handful. */
function mails(all: readonly LabelledExample[], label: string, skip: number, n: number): LabelledExample[] {
  return all.filter((m) => m.label === label).slice(skip, skip + n);
}

const all = spamAssassin();
const pick = (skip: number, n: number): LabelledExample[] => [...mails(all, "ham", skip, n), ...mails(all, "spam", skip, n)];
const train = pick(0, 8);
const validation = pick(8, 4);
const testSet = pick(12, 6);
const modelDir = join(dir, "bert-tiny");
{
  const tok = trainTokenizerFromTexts([...train, ...validation, ...testSet].map((e) => e.text), { kind: "wordpiece", vocabSize: 400, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig(presetConfig("bert-tiny", { vocab_size: tok.vocabSize, max_position_embeddings: 64 })), modelDir);
  saveTokenizer(tok, modelDir);
}

test("setfit end to end: pairs through the Trainer, the head at the logistic optimum, the saved folder predicts the same", async () => {
  assert.ok(knownTasks().includes("setfit"));
  const out = join(dir, "setfit");
  const r = await finetune({ model: modelDir, task: "setfit", train, validation, test: testSet, pairIterations: 2, epochs: 1, batchSize: 8, learningRate: 1e-4, maxLength: 32, seed: 5, patience: 0, out });
  // phase 1: 2 N R = 2 x 16 x 2 = 64 pairs in batches of 8
  assert.equal(r.train.steps, 8);
  assert.equal(r.meta.task, "setfit");
  assert.equal(r.meta.head, SETFIT_HEAD);
  assert.equal(r.model.constructor.name, "BertModel");
  assert.deepEqual(r.labels, ["ham", "spam"]);
  // the validation fitted the head and scored it like classification (in the Trainer's log)
  const evals = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === "eval");
  assert.equal(evals.length, 1);
  for (const k of ["val_accuracy", "val_macro_f1", "val_loss"]) assert.equal(typeof evals[0]![k], "number", k);
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { architectures: string[]; lmforge: { head: string; options: Record<string, unknown> } };
  assert.deepEqual(config.architectures, ["BertModel"]);
  assert.equal(config.lmforge.options.pairIterations, 2);

  // phase 2: the head is scikit-learn's binary LogisticRegression(C=1) optimum on the training embeddings:
  // with d = W[spam] - W[ham], p = sigmoid(x d + b[spam] - b[ham]): X^T (p - y) + d / C = 0 and sum(p - y) = 0
  const loaded = await loadFinetuned(out);
  const head = (loaded.model as unknown as Record<string, { weight: torch.Tensor; bias: torch.Tensor }>)[SETFIT_HEAD_ATTRIBUTE]!;
  const W = head.weight.toArray() as number[][];
  const b = head.bias.toArray() as number[];
  const d = W[1]!.map((w, j) => w - W[0]![j]!);
  const embeddings = (loaded.objective as unknown as { embed(m: unknown, x: LabelledExample[]): torch.Tensor }).embed(loaded.model, train);
  const X = embeddings.toArray() as number[][];
  embeddings.dispose();
  const residual = X.map((x, i) => 1 / (1 + Math.exp(-(x.reduce((s, xj, j) => s + xj * d[j]!, 0) + b[1]! - b[0]!))) - (train[i]!.label === "spam" ? 1 : 0));
  const gradient = d.map((dj, j) => X.reduce((s, x, i) => s + x[j]! * residual[i]!, 0) + dj);
  assert.ok(Math.max(...gradient.map(Math.abs)) < 1e-3, `gradient of the binary objective at the head: ${Math.max(...gradient.map(Math.abs))}`);
  assert.ok(Math.abs(residual.reduce((s, x) => s + x, 0)) < 1e-3);
  assert.ok(d.some((x) => Math.abs(x) > 1e-3), "the head was fitted (not left at zero)");

  // the saved folder predicts what the run predicted, and evaluates to the run's test metrics
  const saved = JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as Record<string, number>;
  const again = evaluateFinetuned(loaded, testSet);
  const before = r.test!.predictions as ClassPrediction[];
  const after = again.predictions as ClassPrediction[];
  assert.deepEqual(after.map((p) => p.label), before.map((p) => p.label));
  after.forEach((p, i) => assert.ok(Math.abs(p.probabilities.spam! - before[i]!.probabilities.spam!) < 1e-5, `example ${i}`));
  for (const k of ["accuracy", "macro_f1", "micro_f1"]) assert.equal(again.metrics[k], saved[k], k);
  // accuracy as classification counts it, from the predictions themselves
  assert.equal(saved.accuracy, after.filter((p, i) => p.label === testSet[i]!.label).length / testSet.length);

  // lmforge predict on the folder: the same labels and probabilities as the folder loaded here
  const texts = testSet.slice(0, 3).map((e) => e.text.replace(/\s+/g, " "));
  const inputs = join(dir, "inputs.txt");
  writeFileSync(inputs, texts.join("\n") + "\n");
  const lines = execFileSync(process.execPath, [cli, "predict", "--model", out, "--file", inputs, "--json"], { encoding: "utf8" }).trim().split("\n");
  const expected = loaded.objective.predict(loaded.model, loaded.task.predictInput(texts, {})) as ClassPrediction[];
  loaded.model.dispose();
  assert.equal(lines.length, 3);
  lines.forEach((line, i) => {
    const p = JSON.parse(line) as { label: string; probabilities: Record<string, number> };
    assert.equal(p.label, expected[i]!.label);
    assert.ok(Math.abs(p.probabilities.spam! - expected[i]!.probabilities.spam!) < 1e-5);
  });
});

test("setfit: a features:N strategy is refused with the reason", async () => {
  await assert.rejects(
    finetune({ model: modelDir, task: "setfit", train, validation, strategy: "features:2", epochs: 1, maxLength: 32, out: join(dir, "refused") }),
    /setfit fine-tunes the encoder itself and fits its own head; --strategy features:2 does not apply/,
  );
});

// Knowledge distillation: Hinton et al.'s loss against hand computations (temperature, alpha,
// a 3-class case), the ensemble's averaged soft targets, the T² scaling of the gradients,
// TinyBERT's layer mapping and the masked hidden-state loss, and a tiny run end to end (a
// bert-tiny teacher fine-tuned for a few steps on SpamAssassin mails, a smaller student)
// whose saved folder evaluates as it scored.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { spamAssassin, stratifiedSplit } from "../src/data/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { AutoModelForMaskedLM, presetConfig, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { HiddenProjections, distillationLoss, hiddenStateLoss, layerMapping, softTargets } from "../src/tasks/index.js";
import { DISTILL_OPTIONS, distill, evaluateFinetuned, finetune, loadFinetuned } from "../src/train/index.js";
import { resolveOptions } from "../src/io/options.js";
import type { DistillOptions } from "../src/train/index.js";
import { assertClose, tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// One batch of 3-class logits. Example 0 by hand, T = 2:
//   teacher z/T = [1, 0, 0.5]: e^1, e^0, e^0.5 = 2.71828, 1, 1.64872 (sum 5.36700) -> p = [0.50648, 0.18632, 0.30720]
//   student s/T = [0.5, 1, 0]: the same exponentials permuted, q = [0.30720, 0.50648, 0.18632]
//   the log-sum-exps are equal, so ln(p_i / q_i) = (z_i - s_i) / T = [0.5, -1, 0.5]
//   KL = 0.5 (0.50648 + 0.30720) - 0.18632 = 0.220514
// Example 1 (z = [0, 0, 3], s = [0.5, -1, 1.5]) the same way: KL = 0.076350.
// soft = T² · mean KL = 4 · 0.148432 = 0.593728
// hard: CE(s0, 1) = ln(e^1 + e^2 + e^0) - 2 = 0.407606; CE(s1, 2) = ln(e^0.5 + e^-1 + e^1.5) - 1.5 = 0.371539; mean 0.389572
// loss (alpha 0.5) = 0.5 · 0.593728 + 0.5 · 0.389572 = 0.491650
const S = [[1, 2, 0], [0.5, -1, 1.5]];
const Z = [[2, 0, 1], [0, 0, 3]];
const LABELS = [1, 2];

test("the loss: alpha · T² · KL(teacher^T || student^T) + (1 - alpha) · CE, against a hand computation", () => {
  torch.scope(() => {
    const s = torch.tensor(S);
    const z = torch.tensor([Z]); // (K = 1, B, C)
    const y = torch.tensor(LABELS, { dtype: "int64" });
    const r = distillationLoss(s, z, y, { temperature: 2, alpha: 0.5 });
    assert.ok(Math.abs(r.soft.item() - 0.593728) < 1e-5, `soft ${r.soft.item()}`);
    assert.ok(Math.abs(r.hard.item() - 0.389572) < 1e-5, `hard ${r.hard.item()}`);
    assert.ok(Math.abs(r.loss.item() - 0.49165) < 1e-5, `loss ${r.loss.item()}`);
    // alpha weighs the two terms: 1 is the soft term alone, 0 plain cross-entropy
    assert.ok(Math.abs(distillationLoss(s, z, y, { temperature: 2, alpha: 1 }).loss.item() - 0.593728) < 1e-5);
    assert.ok(Math.abs(distillationLoss(s, z, y, { temperature: 2, alpha: 0 }).loss.item() - 0.389572) < 1e-5);
    // at T = 1 the soft term is the plain KL; a student equal to its teacher has none
    assert.ok(distillationLoss(torch.tensor(Z), z, y, { temperature: 3, alpha: 1 }).loss.item() < 1e-6);
  });
});

test("an ensemble's soft targets are the mean of its teachers' probabilities at T", () => {
  torch.scope(() => {
    // a second teacher: example 0 z = [0, 1, 0], example 1 uniform ([1, 1, 1] -> 1/3 each)
    // example 1 by hand: teacher 1 softmax([0, 0, 1.5]) = [1, 1, 4.48169] / 6.48169 = [0.154281, 0.154281, 0.691438];
    // averaged with 1/3: [0.243807, 0.243807, 0.512386]
    const z = torch.tensor([Z, [[0, 1, 0], [1, 1, 1]]]); // (K = 2, B, C)
    const p = softTargets(z, 2);
    assertClose(p.select(0, 1), [0.243807, 0.243807, 0.512386], 1e-5, "example 1");
    // example 0: (softmax([1, 0, 0.5]) + softmax([0, 0.5, 0])) / 2; the second is [1, 1.64872, 1] / 3.64872
    assertClose(p.select(0, 0), [(0.50648 + 0.274069) / 2, (0.186324 + 0.451862) / 2, (0.307196 + 0.274069) / 2], 1e-5, "example 0");
    // the loss with these targets: 0.7 · 4 · mean KL(p || q) + 0.3 · 0.389572, KL worked out from p above
    const q = S.map((s) => {
      const e = s.map((x) => Math.exp(x / 2));
      const sum = e.reduce((a, b) => a + b);
      return e.map((x) => x / sum);
    });
    const targets = p.toArray() as number[][];
    const kl = targets.map((row, i) => row.reduce((a, pi, k) => a + pi * Math.log(pi / q[i]![k]!), 0));
    const expected = 0.7 * 4 * ((kl[0]! + kl[1]!) / 2) + 0.3 * 0.389572;
    assert.ok(Math.abs(expected - 0.26978) < 1e-4, `the hand value ${expected}`);
    const r = distillationLoss(torch.tensor(S), z, torch.tensor(LABELS, { dtype: "int64" }), { temperature: 2, alpha: 0.7 });
    assert.ok(Math.abs(r.loss.item() - expected) < 1e-5, `loss ${r.loss.item()} vs ${expected}`);
  });
});

test("T² keeps the soft term's gradient the same size as T grows (Hinton et al., section 2.1)", () => {
  // d(T² KL)/ds_i = T (q_i - p_i); for zero-mean logits and large T, q_i - p_i ≈ (s_i - z_i) / (C T),
  // so the gradient tends to (s_i - z_i) / C per example, divided by B for the batch mean: no T left.
  const s = [[0.3, -0.1, -0.2], [-0.4, 0.1, 0.3]];
  const z = [[-0.2, 0.5, -0.3], [0.2, 0.2, -0.4]];
  const limit = s.map((row, b) => row.map((x, i) => (x - z[b]![i]!) / (3 * 2)));
  const gradAt = (T: number, scaled: boolean): number[][] =>
    torch.scope(() => {
      const st = torch.tensor(s).requiresGrad_(true);
      const { soft } = distillationLoss(st, torch.tensor([z]), torch.tensor([0, 1], { dtype: "int64" }), { temperature: T, alpha: 1 });
      (scaled ? soft : soft.div(T * T)).backward();
      return st.grad!.toArray() as number[][];
    });
  for (const T of [20, 100]) {
    const g = gradAt(T, true).flat();
    limit.flat().forEach((x, i) => assert.ok(Math.abs(g[i]! - x) < 0.02 * Math.abs(x) + 1e-4, `T ${T}: gradient ${g[i]} vs the limit ${x}`));
  }
  // without the T², the gradient shrinks as 1/T²: a hundredfold from T = 10 to T = 100
  const g10 = gradAt(10, false).flat();
  const g100 = gradAt(100, false).flat();
  g10.forEach((x, i) => assert.ok(Math.abs(x / g100[i]! - 100) < 2, `ratio ${x / g100[i]!}`));
});

test("TinyBERT's uniform layer mapping and the masked hidden-state MSE, through projections where widths differ", () => {
  // TinyBERT-4 from a 12-layer BERT: g(m) = 3m (Jiao et al. 2020, section 4.2)
  assert.deepEqual(layerMapping(4, 12), [0, 3, 6, 9, 12]);
  assert.deepEqual(layerMapping(2, 4), [0, 2, 4]);
  assert.deepEqual(layerMapping(4, 4), [0, 1, 2, 3, 4]);
  // not a divisor: rounded, the last to the last
  assert.deepEqual(layerMapping(3, 4), [0, 1, 3, 4]);
  assert.deepEqual(layerMapping(4, 2), [0, 1, 1, 2, 2]);
  assert.throws(() => layerMapping(0, 4), /positive integers/);
  torch.scope(() => {
    // two hidden states of (B 1, T 2, H 2), the second token padding (its values must not count)
    const mask = torch.tensor([[1, 0]], { dtype: "int64" });
    const student = [torch.tensor([[[1, 2], [5, 5]]]), torch.tensor([[[0, 0], [0, 0]]])];
    const teacher = [torch.tensor([[[0, 0], [9, 9]]]), torch.tensor([[[1, 1], [7, 7]]])];
    // layer 0: (1² + 2²) / 2 = 2.5; layer 1: (1 + 1) / 2 = 1; their mean 1.75
    assert.ok(Math.abs(hiddenStateLoss(student, teacher, mask, null).item() - 1.75) < 1e-6);
    // widths 2 -> 3 on the second state only: a projection there, none (identity) on the first
    const proj = new HiddenProjections([2, 2], [2, 3]);
    assert.equal(proj.at(0), null);
    const p = proj.at(1)!;
    assert.deepEqual([p.inFeatures, p.outFeatures], [2, 3]);
    assert.deepEqual([...proj.namedParameters()].map(([n]) => n).sort(), ["layer_1.bias", "layer_1.weight"]);
    // W = [[1, 0], [0, 1], [1, 1]], b = [0, 0, 1]: student token [1, 2] -> [1, 2, 4] against teacher [1, 1, 1]: (0 + 1 + 9) / 3
    torch.noGrad(() => {
      p.weight.copy_(torch.tensor([[1, 0], [0, 1], [1, 1]]));
      p.bias!.copy_(torch.tensor([0, 0, 1]));
    });
    const l = hiddenStateLoss([torch.tensor([[[1, 2]]]), torch.tensor([[[1, 2]]])], [torch.tensor([[[1, 2]]]), torch.tensor([[[1, 1, 1]]])], torch.tensor([[1]], { dtype: "int64" }), proj);
    assert.ok(Math.abs(l.item() - 10 / 3 / 2) < 1e-6, `loss ${l.item()}`);
  });
});

test("the defaults: T 2, alpha 0.5, no hidden loss; a random student's learning rate is 1e-3, a pretrained one's 1e-4", () => {
  const given = { teacher: "t1,t2", train: "x", out: "o" };
  const resolve = (o: Record<string, unknown>): Record<string, unknown> => resolveOptions(DISTILL_OPTIONS, o);
  const preset = resolve({ ...given, student: "bert-tiny" });
  assert.deepEqual([preset.teacher, preset.temperature, preset.alpha, preset.hiddenLoss, preset.learningRate], [["t1", "t2"], 2, 0.5, 0, 1e-3]);
  assert.equal(resolve({ ...given, student: "runs/pretrained" }).learningRate, 1e-4);
  assert.equal(resolve({ ...given, student: "bert-tiny", learningRate: 3e-4 }).learningRate, 3e-4);
  assert.throws(() => resolve({ ...given, student: "bert-tiny", alpha: 1.5 }), /alpha must be >= 0 and <= 1, got 1.5/);
  assert.throws(() => resolve({ ...given, teacher: "a,,b", student: "bert-tiny" }), /teacher: must be a comma-separated list of folders/);
});

// --- end to end: a bert-tiny teacher fine-tuned on a handful of SpamAssassin mails ---------------------
const mails = spamAssassin();
const picked = stratifiedSplit(mails, { validation: 0, test: 1 - 96 / mails.length }, 5).train;
const parts = stratifiedSplit(picked, { validation: 0.2, test: 0.2 }, 5);
const train: LabelledExample[] = parts.train;
const validation: LabelledExample[] = parts.validation;
const testSet: LabelledExample[] = parts.test;
const base = join(dir, "base");
{
  const tok = trainTokenizerFromTexts(picked.map((e) => e.text), { kind: "wordpiece", vocabSize: 600, lowercase: true, minFrequency: 2 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-tiny"), vocab_size: tok.vocabSize, max_position_embeddings: 64 }), base);
  saveTokenizer(tok, base);
}
const teacherDir = join(dir, "teacher");
const teacher2Dir = join(dir, "teacher2");
for (const [out, seed] of [[teacherDir, 1], [teacher2Dir, 2]] as const) {
  await finetune({ model: base, train, validation, test: testSet, epochs: 3, batchSize: 8, maxLength: 32, learningRate: 1e-3, seed, patience: 0, precision: "fp32", out });
}
const common = (out: string): DistillOptions => ({ teacher: teacherDir, student: "albert-tiny", train, validation, test: testSet, epochs: 2, batchSize: 8, maxLength: 32, learningRate: 1e-3, seed: 3, precision: "fp32", out: join(dir, out) });

test("end to end: a smaller student distilled from a fine-tuned teacher, scored beside it and beside itself trained alone; the folder evaluates", async () => {
  const r = await distill({ ...common("student"), compare: true });
  const teacher = await loadFinetuned(teacherDir);
  // albert-tiny (factorised embeddings, one shared layer) is smaller than bert-tiny
  assert.ok(r.student!.parameters < 0.7 * r.teacher!.parameters, `${r.student!.parameters} vs ${r.teacher!.parameters}`);
  assert.equal(r.student!.parameters, r.compare!.score!.parameters);
  // the teacher's row is the teacher folder evaluated on the test set
  const t = evaluateFinetuned(teacher, testSet, { batchSize: 8 });
  assert.deepEqual(r.teacher!.metrics, t.metrics);
  // the saved student is a fine-tuned classification folder that scores as the run reported
  const saved = await loadFinetuned(join(dir, "student"));
  assert.equal(saved.meta.task, "classification");
  assert.deepEqual(saved.meta.labels, ["ham", "spam"]);
  assert.equal(saved.model.config.model_type, "albert");
  const e = evaluateFinetuned(saved, testSet, { batchSize: 8 });
  for (const k of ["accuracy", "macro_f1"]) assert.ok(Math.abs(e.metrics[k]! - r.student!.metrics[k]!) < 1e-9, `${k}: ${e.metrics[k]} vs ${r.student!.metrics[k]}`);
  const compareSaved = await loadFinetuned(join(dir, "student", "compare"));
  assert.ok(Math.abs(evaluateFinetuned(compareSaved, testSet, { batchSize: 8 }).metrics.macro_f1! - r.compare!.score!.metrics.macro_f1!) < 1e-9);
  // both students start from the same weights and see the same data: distillation makes them differ
  const a = saved.model.stateDict().get("classifier.weight")!;
  const b = compareSaved.model.stateDict().get("classifier.weight")!;
  assert.ok(!a.equal(b), "the distilled student equals the one trained alone");
  for (const s of [r.teacher!, r.student!, r.compare!.score!]) assert.ok(s.examplesPerSecond > 0 && Number.isFinite(s.examplesPerSecond), `${s.name}: ${s.examplesPerSecond} examples/s`);
  const summary = JSON.parse(readFileSync(join(dir, "student", "distill_summary.json"), "utf8")) as { models: { name: string }[]; temperature: number; alpha: number };
  assert.deepEqual(summary.models.map((m) => m.name), ["teacher", "student (distilled)", "student (alone)"]);
  assert.deepEqual([summary.temperature, summary.alpha], [2, 0.5]);
  assert.ok(existsSync(join(dir, "student", "test_metrics.json")) && existsSync(join(dir, "student", "input_stats.json")));
  // the Trainer ran the distillation objective
  const start = JSON.parse(readFileSync(join(dir, "student", "metrics.jsonl"), "utf8").split("\n")[0]!) as { objective: string };
  assert.equal(start.objective, "distillation");
});

test("an ensemble's test score averages its teachers' probabilities", async () => {
  // (with batches grouped by length: the student's run records the setting)
  const r = await distill({ ...common("ensemble"), teacher: [teacherDir, teacher2Dir], epochs: 1, groupByLength: true });
  const checkpoint = readdirSync(join(dir, "ensemble")).find((f) => f.startsWith("checkpoint-"))!;
  assert.equal((JSON.parse(readFileSync(join(dir, "ensemble", checkpoint, "trainer_state.json"), "utf8")) as { settings: { groupByLength?: boolean } }).settings.groupByLength, true);
  const [t1, t2] = [await loadFinetuned(teacherDir), await loadFinetuned(teacher2Dir)];
  const p1 = t1.objective.predict(t1.model, testSet) as { probabilities: Record<string, number> }[];
  const p2 = t2.objective.predict(t2.model, testSet) as { probabilities: Record<string, number> }[];
  // accuracy by hand: the label whose averaged probability is higher
  const right = testSet.filter((e, i) => ((p1[i]!.probabilities.spam! + p2[i]!.probabilities.spam!) / 2 > 0.5 ? "spam" : "ham") === e.label).length;
  assert.equal(r.teacher!.name, "teacher ensemble (2)");
  assert.equal(r.teacher!.metrics.accuracy, right / testSet.length);
  assert.equal(r.teacher!.parameters, 2 * [...t1.model.parameters()].reduce((n, p) => n + p.numel, 0));
});

test("hidden-state matching: a narrower, shallower student, projections while training only; refused across tokenizers and for ensembles", async () => {
  const lines: string[] = [];
  const studentConfig = { hidden_size: 64, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 128 };
  const r = await distill({ ...common("hidden"), student: "bert-tiny", studentConfig, hiddenLoss: 1, epochs: 1, log: (l) => lines.push(l) });
  // bert-tiny's 2 layers (3 states) taught to 1 (2 states): 0 <- 0, 1 <- 2; widths 64 -> 128 both
  assert.ok(lines.some((l) => l.includes("student states 0..1 <- teacher states 0, 2; widths 64/64 -> 128/128/128")), lines.join("\n"));
  assert.ok(![...r.model.namedParameters()].some(([n]) => n.startsWith("distill_projections")), "projections left on the student");
  const saved = await loadFinetuned(join(dir, "hidden"));
  assert.equal(saved.model.config.hidden_size, 64);
  assert.ok(Number.isFinite(r.student!.metrics.macro_f1!));
  // another tokenizer: refused before training, naming both folders
  const other = join(dir, "other-tok");
  saveTokenizer(trainTokenizerFromTexts(train.map((e) => e.text), { kind: "wordpiece", vocabSize: 300, lowercase: true, minFrequency: 2 }), other);
  await assert.rejects(distill({ ...common("refused"), student: "bert-tiny", tokenizer: other, hiddenLoss: 1 }), /--hidden-loss compares hidden states token by token, so the student needs the teacher's tokenizer; .*has \d+ tokens.*--tokenizer/);
  await assert.rejects(distill({ ...common("refused2"), teacher: [teacherDir, teacher2Dir], hiddenLoss: 1 }), /--hidden-loss matches one teacher's hidden states; --teacher names 2/);
  assert.ok(!existsSync(join(dir, "refused")), "a refused run wrote its folder");
});

test("the command line: distill prints the teacher and student side by side; wrong teachers are refused clearly", () => {
  const out = join(dir, "cli");
  const env = { ...process.env, OMP_NUM_THREADS: "1", LMFORGE_NO_PROGRESS: "1" };
  const data = join(dir, "train.jsonl");
  writeFileSync(data, train.map((e) => JSON.stringify({ text: e.text, label: e.label })).join("\n") + "\n");
  const r = spawnSync(process.execPath, [cli, "distill", "--teacher", teacherDir, "--student", "albert-tiny", "--train", data, "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--precision", "fp32", "--out", out], { encoding: "utf8", env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /model\s+parameters\s+macro F1\s+accuracy\s+examples\/s\nteacher\s+[\d,]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\nstudent \(distilled\)/);
  assert.match(r.stderr, /teacher logits of \d+ training examples computed and cached/);
  const bad = spawnSync(process.execPath, [cli, "distill", "--teacher", base, "--student", "albert-tiny", "--train", data, "--out", join(dir, "cli-bad")], { encoding: "utf8", env });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /config\.json names BertForMaskedLM, which is no fine-tuned task lmforge knows/);
  const missing = spawnSync(process.execPath, [cli, "distill", "--teacher", join(dir, "nowhere"), "--student", "albert-tiny", "--train", data, "--out", join(dir, "cli-bad")], { encoding: "utf8", env });
  assert.match(missing.stderr, /--teacher \S*nowhere: no config\.json there/);
  assert.ok(!existsSync(join(dir, "cli-bad")), "a refused run wrote its folder");
  const t = spawnSync(process.execPath, [cli, "distill", "--teacher", teacherDir, "--student", "albert-tiny", "--train", data, "--temperature", "0", "--out", join(dir, "cli-bad")], { encoding: "utf8", env });
  assert.match(t.stderr, /--temperature must be > 0, got "0"/);
});

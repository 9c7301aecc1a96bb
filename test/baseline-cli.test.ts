// `lmforge baseline` from the command line and `finetune --baseline`: the same data reading and
// split as finetune, the files written, the baseline's numbers saved beside the fine-tuned model's.
import test from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { readLabelled, stratifiedSplit } from "../src/data/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { finetune, runBaseline } from "../src/train/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-baseline-");
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

// Two topics, each text 8 words drawn from its own topic's words (a share `purity`) or the other's.
const topics = { whale: "whale ship sea harpoon captain ocean voyage sail", nation: "nation congress president law people union tax" };
function synth(n: number, seed: number, purity = 0.8): LabelledExample[] {
  let x = seed;
  const rnd = (): number => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2 ? "whale" : "nation";
    const own = topics[label].split(" ");
    const other = topics[label === "whale" ? "nation" : "whale"].split(" ");
    return { text: Array.from({ length: 8 }, () => (rnd() < purity ? own : other)[Math.floor(rnd() * 7)]).join(" "), label, source: `synth:${seed}:${i}` };
  });
}

test("lmforge baseline: finetune's split of a TSV (seed 42), the report, metrics.json and predictions.jsonl", () => {
  const data = join(dir, "topics.tsv");
  writeFileSync(data, "sentence\tlabel\n" + synth(200, 1, 1).map((e) => `${e.text}\t${e.label}`).join("\n") + "\n");
  const out = join(dir, "baseline-out");
  const printed = execFileSync(process.execPath, [cli, "baseline", "--train", data, "--out", out, "--c-grid", "0.1,1,10"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  assert.match(printed, /C (0\.1|1|10) chosen on 20 validation examples, fitted on 160 training examples/);
  assert.match(printed, /accuracy 1\.0000 {3}macro F1 1\.0000/); // no word is in both topics: any weight on them separates the classes
  const metrics = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as { C: number; grid: { C: number }[]; examples: Record<string, number>; accuracy: number; refit: string; report: { confusion_matrix: number[][] } };
  assert.deepEqual(metrics.grid.map((g) => g.C), [0.1, 1, 10]);
  assert.deepEqual(metrics.examples, { train: 160, validation: 20, test: 20 });
  assert.equal(metrics.refit, "train only");
  assert.deepEqual(metrics.report.confusion_matrix, [[10, 0], [0, 10]]);
  // the test part is finetune's: the classification task's stratified split with the default seed 42
  const expected = stratifiedSplit(readLabelled(data).examples, { validation: 0.1, test: 0.1 }, 42).test;
  const lines = readFileSync(join(out, "predictions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { source: string; true_label: string; label: string; probabilities: Record<string, number> });
  assert.deepEqual(lines.map((l) => l.source), expected.map((e) => e.source));
  assert.deepEqual(lines.map((l) => l.label), expected.map((e) => e.label));
  for (const l of lines) assert.ok(Math.abs(l.probabilities.whale! + l.probabilities.nation! - 1) < 1e-12);
  const bad = spawnSync(process.execPath, [cli, "baseline", "--train", data, "--c-grid", "1,-2"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--c-grid: must be a comma-separated list of positive numbers, got "1,-2"/);
});

test("finetune --baseline: the baseline on the run's own splits, saved as baseline_metrics.json; other tasks refuse it", async () => {
  const train = synth(120, 1);
  const validation = synth(30, 2);
  const testSet = synth(30, 3);
  const tok = trainTokenizerFromTexts([...train, ...validation].map((e) => e.text), { kind: "wordpiece", vocabSize: 120, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  const modelDir = join(dir, "base");
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 32 }), modelDir);
  saveTokenizer(tok, modelDir);
  const out = join(dir, "ft");
  const r = await finetune({ model: modelDir, train, validation, test: testSet, epochs: 1, batchSize: 16, learningRate: 3e-3, maxLength: 16, precision: "fp32", patience: 0, out, baseline: true, cGrid: [0.1, 1, 10] });
  r.model.dispose();
  // the same numbers as the baseline run by itself on those splits
  const alone = runBaseline({ train, validation, test: testSet }, ["nation", "whale"], { cGrid: [0.1, 1, 10] });
  assert.equal(r.baseline!.C, alone.C);
  assert.deepEqual(r.baseline!.test!.metrics, alone.test!.metrics);
  const saved = JSON.parse(readFileSync(join(out, "baseline_metrics.json"), "utf8")) as { C: number; accuracy: number; macro_f1: number; examples: Record<string, number> };
  assert.deepEqual([saved.C, saved.accuracy, saved.macro_f1], [alone.C, alone.test!.metrics.accuracy, alone.test!.metrics.macro_f1]);
  assert.deepEqual(saved.examples, { train: 120, validation: 30, test: 30 });
  assert.ok(existsSync(join(out, "baseline_predictions.jsonl")) && existsSync(join(out, "test_metrics.json")));
  await assert.rejects(finetune({ model: modelDir, task: "token-classification", train: "sotu-ner", out: join(dir, "ner"), baseline: true }), /--baseline: the TF-IDF baseline classifies texts; the task is token-classification/);
});

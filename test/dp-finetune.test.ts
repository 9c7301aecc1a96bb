// DP-SGD through finetune(): the noise multiplier planned for a target ε ends the run at it, ε is
// logged at every step and grows, the summary records the settings; with a noise multiplier and
// a target both, the run stops at the last step within the target; a resumed run with other
// privacy settings is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune } from "../src/train/index.js";
import type { FinetuneOptions } from "../src/train/index.js";
import { epsilonFor } from "../src/train/privacy/accountant.js";

const dir = mkdtempSync(join(tmpdir(), "lmforge-dp-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const words = { whale: "whale ship sea harpoon captain boat oil", nation: "nation congress law people union state war" };
const examples = Array.from({ length: 80 }, (_, i) => {
  const label = i % 2 ? "whale" : "nation";
  const vocab = words[label].split(" ");
  return { text: Array.from({ length: 6 }, (_, k) => vocab[(i * 3 + k * 5) % 7]).join(" "), label };
});
const modelDir = join(dir, "base");
{
  const tok = trainTokenizerFromTexts(examples.map((e) => e.text), { kind: "wordpiece", vocabSize: 100, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 32 }), modelDir);
  saveTokenizer(tok, modelDir);
}
const run = (out: string, extra: Partial<FinetuneOptions>) =>
  finetune({ model: modelDir, train: examples.slice(0, 64), validation: examples.slice(64), batchSize: 8, learningRate: 1e-2, seed: 1, maxLength: 12, patience: 0, precision: "fp32", out: join(dir, out), ...extra });
const steps = (out: string) =>
  readFileSync(join(dir, out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number | string>);

test("a target ε: σ planned so that the run's steps end at ε, logged each step", async () => {
  const r = await run("target", { epochs: 2, dpEpsilon: 3, dpDelta: 1e-3 });
  const p = r.train.privacy!;
  assert.equal(p.steps, 16); // 2 epochs of 64 / 8
  assert.equal(p.sampleRate, 8 / 64);
  assert.ok(p.epsilon <= 3 && p.epsilon > 2.99, `ε ${p.epsilon}`);
  assert.equal(p.epsilon, epsilonFor(0.125, p.noiseMultiplier, 16, 1e-3));
  const eps = steps("target").filter((e) => e.event === "step").map((e) => e.epsilon as number);
  assert.equal(eps.length, 16);
  for (let i = 1; i < eps.length; i++) assert.ok(eps[i]! > eps[i - 1]!);
  assert.equal(eps.at(-1), p.epsilon);
  // resuming with more steps would need another σ: refused
  await assert.rejects(run("target", { epochs: 3, dpEpsilon: 3, dpDelta: 1e-3, resume: true }), /privacy settings .* are not this run's/);
});

test("a noise multiplier and a target: the run stops at the last step within the target", async () => {
  // σ = 1, q = 1/8, δ = 1e-3: find the step at which ε passes 2.5
  let k = 0;
  while (epsilonFor(0.125, 1, k + 1, 1e-3) <= 2.5) k++;
  assert.ok(k > 1 && k < 40, `${k}`);
  const r = await run("stop", { maxSteps: 40, dpNoiseMultiplier: 1, dpEpsilon: 2.5, dpDelta: 1e-3, evalEvery: 100, saveEvery: 100 });
  assert.equal(r.train.steps, k);
  const log = steps("stop");
  const spent = log.find((e) => e.event === "privacy_budget_spent")!;
  assert.equal(spent.step, k);
  assert.ok((spent.epsilon as number) <= 2.5);
});

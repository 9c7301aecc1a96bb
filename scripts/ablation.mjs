#!/usr/bin/env node
// The pretraining ablation on the embedded corpus, same budget for every row: static vs
// dynamic masking, MLM alone vs MLM + SOP, without and with context perturbation. Prints the
// validation MLM accuracy (and perplexity) of each; then MLM + sentence reordering, and
// mixtures of the two corpora (T5's mixing rates), with each corpus's perplexity.
// Usage: node scripts/ablation.mjs [steps] [model] [ROW-FILTER, a regular expression]
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pretrain } from "../dist/src/train/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../dist/src/tokenizers/index.js";
import { embeddedCorpus } from "../dist/src/data/index.js";

const steps = Number(process.argv[2] ?? 300);
const model = process.argv[3] ?? "bert-tiny";
const only = new RegExp(process.argv[4] ?? "", "i");
const dir = mkdtempSync(join(tmpdir(), "lmforge-ablation-"));
const docs = [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")];
saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 8000, lowercase: true }), join(dir, "tok"));
const rows = [
  ["static masking, MLM", { masking: "static", objectives: "mlm" }],
  ["dynamic masking, MLM", { masking: "dynamic", objectives: "mlm" }],
  ["dynamic masking, MLM + SOP", { masking: "dynamic", objectives: "mlm,sop" }],
  ["dynamic masking, MLM, perturbation", { masking: "dynamic", objectives: "mlm", perturb: { deletion: 0.05, localShuffle: 0.3, infilling: 0.02 } }],
  ["dynamic masking, MLM + SOP, perturbation", { masking: "dynamic", objectives: "mlm,sop", perturb: { deletion: 0.05, localShuffle: 0.3, infilling: 0.02 } }],
  ["dynamic masking, MLM + sentence reordering", { masking: "dynamic", objectives: "mlm", auxiliary: [{ name: "sentence-reordering", weight: 0.5 }] }],
];
const mixtures = [
  ["mixture, examples-proportional", { kind: "proportional" }],
  ["mixture, temperature T = 2", { kind: "temperature", temperature: 2 }],
  ["mixture, equal", { kind: "equal" }],
];
console.log(`ablation: ${model}, ${steps} steps, batch 32, seq 128, lr 1e-3, embedded corpora`);
console.log(`${"configuration".padEnd(44)} val MLM accuracy   val perplexity`);
for (const [name, cfg] of rows) {
  if (!only.test(name)) continue;
  const r = await pretrain({ model, tokenizer: join(dir, "tok"), maxSteps: steps, batchSize: 32, seqLen: 128, learningRate: 1e-3, out: join(dir, name.replace(/\W+/g, "-")), seed: 1, evalEvery: steps, evalBatches: 20, saveEvery: steps, precision: "fp32", ...cfg });
  const e = r.evals[r.evals.length - 1];
  const extra = e.val_sentence_reordering_accuracy !== undefined ? `, reordering accuracy ${(e.val_sentence_reordering_accuracy * 100).toFixed(2)}%` : "";
  console.log(`${name.padEnd(44)} ${(e.val_mlm_accuracy * 100).toFixed(2).padStart(15)}%   ${e.val_perplexity.toFixed(1).padStart(14)}   (unigram ${r.unigramPerplexity.toFixed(1)}${extra})`);
}
// Mixtures: Moby Dick (small) and the State of the Union addresses (large) as two MLM tasks
for (const [name, mixing] of mixtures) {
  if (!only.test(name)) continue;
  const tasks = [{ name: "moby", objectives: "mlm", input: ["moby-dick"] }, { name: "sotu", objectives: "mlm", input: ["sotu"] }];
  const r = await pretrain({ model, tokenizer: join(dir, "tok"), tasks, mixing, maxSteps: steps, batchSize: 32, seqLen: 128, learningRate: 1e-3, out: join(dir, name.replace(/\W+/g, "-")), seed: 1, evalEvery: steps, evalBatches: 20, saveEvery: steps, precision: "fp32" });
  const e = r.evals[r.evals.length - 1];
  const rates = r.rates.map((x, i) => `${tasks[i].name} ${(x * 100).toFixed(1)}%`).join(", ");
  console.log(`${name.padEnd(44)} ${(e.val_mlm_accuracy * 100).toFixed(2).padStart(15)}%   ${e.val_perplexity.toFixed(1).padStart(14)}   (Moby Dick ${e.val_moby_perplexity.toFixed(1)}, addresses ${e.val_sotu_perplexity.toFixed(1)}; rates ${rates})`);
}

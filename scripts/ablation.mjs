#!/usr/bin/env node
// The pretraining ablation on the embedded corpus, same budget for every row: static vs
// dynamic masking, MLM alone vs MLM + SOP, without and with context perturbation. Prints the
// validation MLM accuracy (and perplexity) of each. Usage: node scripts/ablation.mjs [steps] [model]
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pretrain } from "../dist/src/train/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../dist/src/tokenizers/index.js";
import { embeddedCorpus } from "../dist/src/data/index.js";

const steps = Number(process.argv[2] ?? 300);
const model = process.argv[3] ?? "bert-tiny";
const dir = mkdtempSync(join(tmpdir(), "lmforge-ablation-"));
const docs = [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")];
saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 8000, lowercase: true }), join(dir, "tok"));
const rows = [
  ["static masking, MLM", { masking: "static", objectives: "mlm" }],
  ["dynamic masking, MLM", { masking: "dynamic", objectives: "mlm" }],
  ["dynamic masking, MLM + SOP", { masking: "dynamic", objectives: "mlm,sop" }],
  ["dynamic masking, MLM, perturbation", { masking: "dynamic", objectives: "mlm", perturb: { deletion: 0.05, localShuffle: 0.3, infilling: 0.02 } }],
  ["dynamic masking, MLM + SOP, perturbation", { masking: "dynamic", objectives: "mlm,sop", perturb: { deletion: 0.05, localShuffle: 0.3, infilling: 0.02 } }],
];
console.log(`ablation: ${model}, ${steps} steps, batch 32, seq 128, lr 1e-3, embedded corpora`);
console.log(`${"configuration".padEnd(44)} val MLM accuracy   val perplexity`);
for (const [name, cfg] of rows) {
  const r = await pretrain({ model, tokenizer: join(dir, "tok"), maxSteps: steps, batchSize: 32, seqLen: 128, learningRate: 1e-3, out: join(dir, name.replace(/\W+/g, "-")), seed: 1, evalEvery: steps, evalBatches: 20, saveEvery: steps, precision: "fp32", ...cfg });
  const e = r.evals[r.evals.length - 1];
  console.log(`${name.padEnd(44)} ${(e.val_mlm_accuracy * 100).toFixed(2).padStart(15)}%   ${e.val_perplexity.toFixed(1).padStart(14)}   (unigram ${r.unigramPerplexity.toFixed(1)})`);
}

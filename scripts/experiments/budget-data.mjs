#!/usr/bin/env node
// The fixed parts of issue 21's study (scripts/experiments/budget.mjs --data DIR), as JSONL:
// SpamAssassin's seed-42 split (finetune's default fractions, 0.1 / 0.1), and sotu-party's own
// split by address with 3,000 training and 500 validation passages sampled once (seeds 42, 43)
// and the whole test part. Every seed of the study then trains and tests on the same texts.
//   node scripts/experiments/budget-data.mjs DIR      (needs the compiled project: dist/)
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sotuParty, spamAssassin, stratifiedSplit } from "../../dist/src/data/index.js";
import { Rng } from "../../dist/src/data/random.js";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node scripts/experiments/budget-data.mjs DIR");
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
const sample = (xs, n, seed) => new Rng(seed).shuffle(xs.map((_, i) => i)).slice(0, n).sort((a, b) => a - b).map((i) => xs[i]);
const spam = stratifiedSplit(spamAssassin(), { validation: 0.1, test: 0.1 }, 42);
const sotu = sotuParty();
const parts = {
  spam: { train: spam.train, validation: spam.validation, test: spam.test },
  sotu: { train: sample(sotu.train, 3000, 42), validation: sample(sotu.validation, 500, 43), test: sotu.test },
};
for (const [task, ps] of Object.entries(parts))
  for (const [part, xs] of Object.entries(ps)) {
    writeFileSync(join(dir, `${task}-${part}.jsonl`), xs.map((e) => JSON.stringify({ text: e.text, label: e.label })).join("\n") + "\n");
    console.log(`${task}-${part}.jsonl: ${xs.length}`);
  }

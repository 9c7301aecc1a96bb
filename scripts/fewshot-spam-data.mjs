#!/usr/bin/env node
// Few-shot SpamAssassin files for a SetFit / classification comparison: the corpus split as
// `lmforge finetune --train spam-assassin` splits it (stratified, 10% validation, 10% test, the
// seed given), then K mails per class drawn (seeded) from the training part and K per class
// from the validation part; the whole test part is kept. Writes train.jsonl, validation.jsonl
// and test.jsonl (text, label) into OUT.
// Usage: node scripts/fewshot-spam-data.mjs OUT [K=16] [seed=42]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spamAssassin, stratifiedSplit } from "../dist/src/data/index.js";
import { Rng } from "../dist/src/data/random.js";

const [out, k = "16", seed = "42"] = process.argv.slice(2);
if (!out) throw new Error("usage: node scripts/fewshot-spam-data.mjs OUT [K] [seed]");
const K = Number(k);
const split = stratifiedSplit(spamAssassin(), { validation: 0.1, test: 0.1 }, Number(seed));
/** K examples of each label, seeded, in a shuffled order. */
const shots = (examples, purpose) =>
  new Rng(Number(seed), purpose).shuffle(
    [...new Set(examples.map((e) => e.label))].sort().flatMap((label) => new Rng(Number(seed), purpose, label.length).shuffle(examples.filter((e) => e.label === label)).slice(0, K)),
  );
const jsonl = (examples) => examples.map((e) => JSON.stringify({ text: e.text, label: e.label })).join("\n") + "\n";
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "train.jsonl"), jsonl(shots(split.train, 1)));
writeFileSync(join(out, "validation.jsonl"), jsonl(shots(split.validation, 2)));
writeFileSync(join(out, "test.jsonl"), jsonl(split.test));
console.log(`${out}: ${2 * K} train, ${2 * K} validation, ${split.test.length} test`);

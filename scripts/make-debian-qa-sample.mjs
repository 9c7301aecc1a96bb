#!/usr/bin/env node
// Writes test/fixtures/silver/debian-qa-sample.json: about 300 SILVER questions (SQuAD v2.0) made
// by src/data/silver-qa.ts from this machine's Debian Translation-en index, so that the tests read
// real descriptions without apt. Run once, after `npx tsc -p tsconfig.json`:
//   node scripts/make-debian-qa-sample.mjs [translation-file]
// Besides SQuAD's "version" and "data", the file records where it came from ("source") and which
// packages went to which split ("splits": titles per split), for the tests.
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { debianQa, findTranslationFile } from "../dist/src/data/silver-qa.js";

const out = "test/fixtures/silver/debian-qa-sample.json";
const file = process.argv[2] ?? findTranslationFile();
const { train, validation, test } = debianQa({ file: file ?? undefined, seed: 0, maxExamples: 300 });
const splits = { train, validation, test };
const sample = {
  version: "v2.0",
  source: `SILVER (pattern-made, not human-annotated) questions from ${basename(file ?? "")}, seed 0, by scripts/make-debian-qa-sample.mjs`,
  splits: Object.fromEntries(Object.entries(splits).map(([name, d]) => [name, d.data.map((a) => a.title)])),
  data: [train, validation, test].flatMap((d) => d.data).sort((a, b) => (a.title < b.title ? -1 : 1)),
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(sample, null, 1) + "\n");
const questions = sample.data.flatMap((a) => a.paragraphs.flatMap((p) => p.qas));
console.log(`${out}: ${sample.data.length} packages, ${questions.length} questions (${questions.filter((q) => q.is_impossible).length} unanswerable)`);

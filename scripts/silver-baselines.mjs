#!/usr/bin/env node
// The simple baselines the silver tasks' models are measured against, on the same held-out
// parts that `lmforge finetune --train sotu-ner|debian-qa` tests on:
//   NER: the memorisation baseline (every entity string seen in training tagged with its
//        commonest type wherever it appears, the rest O) — CoNLL's classic baseline;
//   QA:  the sentence of the context sharing the most words with the question (a sliding-window
//        baseline, as the SQuAD paper's), and "no answer" for every question (v2.0's floor).
// Usage: node scripts/silver-baselines.mjs [--seed 42] [--limit N]
import { parseArgs } from "node:util";
import { sotuNer, lookupBaseline, debianQa, parseSquad } from "../dist/src/data/index.js";
import { seqevalReport, squadMetrics, normalizeAnswer } from "../dist/src/eval/index.js";

const { values } = parseArgs({ options: { seed: { type: "string", default: "42" }, limit: { type: "string" } } });
const seed = Number(values.seed);
const limit = values.limit ? Number(values.limit) : undefined;

const ner = sotuNer({ seed, ...(limit ? { maxSentences: limit } : {}) });
const predicted = lookupBaseline(ner.train, ner.test);
const r = seqevalReport(ner.test.map((s) => s.tags), predicted);
console.log(`sotu-ner (silver), ${ner.test.length} test sentences from ${ner.documents.test.length} held-out addresses`);
console.log(`  lookup baseline: entity F1 ${(r.f1 * 100).toFixed(2)} (precision ${(r.precision * 100).toFixed(2)}, recall ${(r.recall * 100).toFixed(2)}); per type ${Object.entries(r.per_type).map(([t, s]) => `${t} ${(s.f1 * 100).toFixed(1)}`).join(", ")}`);

const qa = debianQa({ seed, ...(limit ? { maxExamples: limit } : {}) });
const test = parseSquad(JSON.stringify(qa.test), "debian-qa:test").examples;
const words = (s) => new Set(normalizeAnswer(s).split(" ").filter(Boolean));
const overlap = {};
for (const e of test) {
  const q = words(e.question);
  const sentences = e.context.split(/(?<=[.!?])\s+|\n+/).filter((s) => s.trim());
  let best = "";
  let score = -1;
  for (const s of sentences) {
    const n = [...words(s)].filter((w) => q.has(w)).length;
    if (n > score) [best, score] = [s.trim(), n];
  }
  overlap[e.id] = best;
}
const gold = test.map((e) => ({ id: e.id, answers: e.impossible ? [] : e.answers.map((a) => a.text) }));
const m = squadMetrics(gold, overlap);
const none = squadMetrics(gold, Object.fromEntries(test.map((e) => [e.id, ""])));
console.log(`debian-qa (silver, SQuAD v2.0), ${test.length} test questions (${test.filter((e) => e.impossible).length} unanswerable)`);
console.log(`  best-overlap sentence: exact match ${m.exact_match.toFixed(2)}, F1 ${m.f1.toFixed(2)}`);
console.log(`  always no answer:      exact match ${none.exact_match.toFixed(2)}, F1 ${none.f1.toFixed(2)}`);

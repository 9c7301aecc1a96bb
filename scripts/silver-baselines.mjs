#!/usr/bin/env node
// The simple baselines the silver tasks' models are measured against, on the same held-out
// parts that `lmforge finetune --train sotu-ner|debian-qa` tests on:
//   NER: the memorisation baseline (every entity string seen in training tagged with its
//        commonest type wherever it appears, the rest O) — CoNLL's classic baseline;
//   QA:  the sentence of the context sharing the most words with the question (a sliding-window
//        baseline, as the SQuAD paper's), and "no answer" for every question (v2.0's floor).
// With --ner-model DIR (a model fine-tuned on sotu-ner), it is scored on the same test part beside
// the baseline, overall and on the mentions whose text never appears as an entity in training
// (where memorisation cannot help).
// Usage: node scripts/silver-baselines.mjs [--seed 42] [--limit N] [--ner-model DIR]
import { parseArgs } from "node:util";
import { sotuNer, lookupBaseline, debianQa, parseSquad } from "../dist/src/data/index.js";
import { seqevalReport, squadMetrics, normalizeAnswer, entities } from "../dist/src/eval/index.js";
import { loadFinetuned } from "../dist/src/train/index.js";

const { values } = parseArgs({ options: { seed: { type: "string", default: "42" }, limit: { type: "string" }, "ner-model": { type: "string" } } });
const seed = Number(values.seed);
const limit = values.limit ? Number(values.limit) : undefined;

const ner = sotuNer({ seed, ...(limit ? { maxSentences: limit } : {}) });
const predicted = lookupBaseline(ner.train, ner.test);
const r = seqevalReport(ner.test.map((s) => s.tags), predicted);
console.log(`sotu-ner (silver), ${ner.test.length} test sentences from ${ner.documents.test.length} held-out addresses`);
console.log(`  lookup baseline: entity F1 ${(r.f1 * 100).toFixed(2)} (precision ${(r.precision * 100).toFixed(2)}, recall ${(r.recall * 100).toFixed(2)}); per type ${Object.entries(r.per_type).map(([t, s]) => `${t} ${(s.f1 * 100).toFixed(1)}`).join(", ")}`);

// recall on the test mentions whose text was never an entity in training: memorisation gets none of them
const seenTexts = new Set(ner.train.flatMap((s) => entities(s.tags).map((e) => s.tokens.slice(e.start, e.end).join(" "))));
function unseenRecall(tagsOf) {
  let total = 0;
  let found = 0;
  ner.test.forEach((s, i) => {
    const pred = new Set(entities(tagsOf(i)).map((e) => `${e.type}:${e.start}:${e.end}`));
    for (const e of entities(s.tags)) {
      if (seenTexts.has(s.tokens.slice(e.start, e.end).join(" "))) continue;
      total++;
      if (pred.has(`${e.type}:${e.start}:${e.end}`)) found++;
    }
  });
  return { total, found };
}
const bu = unseenRecall((i) => predicted[i]);
console.log(`  test mentions unseen in training: ${bu.total}; the lookup baseline finds ${bu.found}`);
if (values["ner-model"]) {
  const f = await loadFinetuned(values["ner-model"]);
  const preds = f.objective.predict(f.model, ner.test);
  const mr = seqevalReport(ner.test.map((s) => s.tags), preds.map((p) => p.tags));
  console.log(`  ${values["ner-model"]}: entity F1 ${(mr.f1 * 100).toFixed(2)} (precision ${(mr.precision * 100).toFixed(2)}, recall ${(mr.recall * 100).toFixed(2)}); per type ${Object.entries(mr.per_type).map(([t, s]) => `${t} ${(s.f1 * 100).toFixed(1)}`).join(", ")}`);
  const mu = unseenRecall((i) => preds[i].tags);
  console.log(`  ${values["ner-model"]} finds ${mu.found} of the ${mu.total} unseen mentions (${((mu.found / Math.max(1, mu.total)) * 100).toFixed(1)}%)`);
}

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

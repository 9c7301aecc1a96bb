#!/usr/bin/env node
// The simple baselines that translation and summarisation models are measured against, on the
// test files that `lmforge data debian-descriptions` writes, with the same metrics the tasks report:
//   summarisation: the document's first sentence as the summary (lead-1), ROUGE-1/2/L/Lsum
//                  (Porter-stemmed, as the task scores);
//   translation:   the source copied word for word as the "translation", BLEU and chrF
//                  (names, versions and technical terms often pass through unchanged).
// With --model DIR (a fine-tuned folder) it also prints that folder's test_metrics.json beside.
// Usage: node scripts/seq2seq-baselines.mjs DATA_DIR [--pair en-de] [--limit N]
import { parseArgs } from "node:util";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { corpusBleu, corpusChrf, corpusRouge } from "../dist/src/eval/index.js";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { pair: { type: "string", default: "en-de" }, limit: { type: "string" }, model: { type: "string", multiple: true } } });
const dir = positionals[0];
if (!dir) throw new Error("usage: node scripts/seq2seq-baselines.mjs DATA_DIR [--pair en-de] [--limit N] [--model DIR ...]");
const limit = values.limit ? Number(values.limit) : Infinity;
const rows = (path) => readFileSync(path, "utf8").split("\n").filter(Boolean).slice(0, limit).map((l) => JSON.parse(l));

// the first sentence: up to the first sentence-ending punctuation followed by a space, or the first line
const firstSentence = (text) => {
  const line = text.split("\n")[0];
  const m = /^(.*?[.!?])(\s|$)/.exec(line);
  return m ? m[1] : line;
};
const pct = (x) => x.toFixed(2);

const sumPath = join(dir, "summarization", "test.jsonl");
if (existsSync(sumPath)) {
  const test = rows(sumPath);
  const r = corpusRouge(test.map((e) => e.summary), test.map((e) => firstSentence(e.document)), { stemmer: true });
  console.log(`summarisation, ${test.length} test descriptions (held-out package families)`);
  console.log(`  lead-1 (first sentence): rouge1 ${pct(r.rouge1)}, rouge2 ${pct(r.rouge2)}, rougeL ${pct(r.rougeL)}, rougeLsum ${pct(r.rougeLsum)}`);
}
const [src, tgt] = values.pair.split("-");
const trPath = join(dir, `translation-${values.pair}`, "test.jsonl");
if (existsSync(trPath)) {
  const test = rows(trPath);
  const hyps = test.map((e) => e.translation[src]);
  const refs = [test.map((e) => e.translation[tgt])];
  console.log(`translation ${values.pair}, ${test.length} test pairs (held-out package families)`);
  console.log(`  copy the source: BLEU ${pct(corpusBleu(hyps, refs).score)}, chrF ${pct(corpusChrf(hyps, refs).score)}`);
}
for (const m of values.model ?? []) {
  const metrics = JSON.parse(readFileSync(join(m, "test_metrics.json"), "utf8"));
  console.log(`  ${m}: ${Object.entries(metrics).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(2)}`).join(", ")}`);
}

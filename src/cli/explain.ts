// `lmforge explain`: why a model folder says what it says about a text. Attributions per token
// (the explain layer's flags, EXPLAIN_OPTIONS), every layer's and head's attention with rollout
// (--attention), and linear probes per layer on word labels (--probe); writes
// explanation.json and a self-contained explanation.html, and prints the top tokens.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadFinetuned } from "../train/index.js";
import { modelFromPretrained } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { readTagged, sotuNer } from "../data/index.js";
import { attentionMaps, explain, explanationHtml, modelTask, probeLayers } from "../explain/index.js";
import type { AttentionMaps, Explanation, ExplainOptions, ProbeResult, ProbeSentence } from "../explain/index.js";
import { writeTextAtomic } from "../io/index.js";
import { defineOptions } from "../io/options.js";
import { UsageError } from "./errors.js";

/** The command's own flags; the attribution flags are the explain layer's EXPLAIN_OPTIONS. */
export const EXPLAIN_COMMAND_OPTIONS = defineOptions([
  { flag: "model", key: "model", type: "string", arg: "DIR", required: true, help: "a model folder: a fine-tuned classifier or tagger for attributions; any encoder for --attention and --probe" },
  { flag: "text", key: "text", type: "string", arg: "TEXT", required: true, help: "the text to explain" },
  { flag: "attention", key: "attention", type: "boolean", default: false, help: "every layer's and head's attention, and attention rollout" },
  { flag: "probe", key: "probe", type: "string", arg: "DATA", help: "train a linear probe per layer on word labels: sotu-ner (the embedded silver named entities) or a CoNLL / JSONL file" },
  { flag: "probe-sentences", key: "probeSentences", type: "int", arg: "N", min: 2, default: 400, help: "sentences of the probing data used (a quarter held out)" },
  { flag: "out", key: "out", type: "string", arg: "DIR", default: ".", help: "where explanation.json and explanation.html are written" },
] as const);

async function loadModel(dir: string): Promise<{ model: PretrainedModel; tokenizer: Tokenizer; maxLength?: number }> {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new UsageError(`--model ${dir}: no config.json there`);
  const config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  if (config.lmforge && typeof config.lmforge === "object") {
    // a folder lmforge fine-tuned: loaded as it was trained (labels, length, head)
    const f = await loadFinetuned(dir, { log: (l) => console.error(l) });
    if (f.meta.head) throw new UsageError(`--model ${dir}: its ${f.meta.head} head is not the model's own, which explain reads; explain a model fine-tuned with the model's head`);
    return { model: f.model, tokenizer: f.tokenizer, maxLength: f.meta.max_length };
  }
  return { model: await modelFromPretrained(dir, "auto", { verbose: false }), tokenizer: loadTokenizer(dir) };
}

function probeData(spec: string, count: number): ProbeSentence[] {
  if (spec === "sotu-ner") return sotuNer({ maxSentences: Math.ceil(count / 0.8) + 1 }).train.slice(0, count);
  if (!existsSync(spec)) throw new UsageError(`--probe ${spec}: no such file (or give sotu-ner)`);
  const r = readTagged(spec);
  if (r.sentences.length === 0) throw new UsageError(`--probe ${spec}: no sentences`);
  return r.sentences.slice(0, count);
}

function printTop(e: Explanation): void {
  const where = e.head === "token" ? ` for token ${e.position} (${e.tokens[e.position!]})` : "";
  console.log(`prediction${where}: ${e.prediction.label} (p = ${e.prediction.probability.toFixed(4)}); explaining ${e.target.label} by ${e.method} (its ${e.score})`);
  const top = e.tokens
    .map((t, i) => ({ t, i, s: e.scores[i]! }))
    .filter((x) => !e.special[x.i])
    .sort((a, b) => b.s - a.s)
    .slice(0, 5);
  console.log("top tokens:");
  for (const x of top) console.log(`  ${x.s.toFixed(4).padStart(9)}  ${x.t}  (token ${x.i})`);
  const c = e.completeness;
  if (!c) return;
  console.log(`completeness: Σ attributions ${c.attributionSum.toFixed(5)} vs f(x) - f(baseline) ${(c.fInput - c.fBaseline).toFixed(5)}: error ${c.error.toExponential(2)} (${(100 * c.relativeError).toFixed(3)}%)`);
  // a saturated model's logit can jump within a sliver of the path, which few steps miss
  if (c.relativeError > 0.05) console.error(`warning: the attributions miss ${(100 * c.relativeError).toFixed(1)}% of f(x) - f(baseline); the path integral needs more --steps than ${c.steps}`);
}

/** Runs `lmforge explain`. */
export async function explainCommand(v: Record<string, unknown>): Promise<void> {
  const dir = String(v.model);
  const text = String(v.text);
  if (!text.trim()) throw new UsageError("--text is empty");
  const out = String(v.out ?? ".");
  const { model, tokenizer, maxLength } = await loadModel(dir);
  const task = modelTask(model);
  const classifier = task === "sequence-classification" || task === "token-classification";
  if (!classifier && !v.attention && !v.probe) {
    throw new UsageError(`--model ${dir} is a ${task ?? model.constructor.name} model: attributions need a classifier or tagger; give --attention or --probe DATA`);
  }
  const limit = maxLength !== undefined ? { maxLength } : {};
  let explanation: Explanation | undefined;
  if (classifier) {
    explanation = explain(model, tokenizer, text, { ...(v as ExplainOptions), ...limit });
    printTop(explanation);
  } else console.error(`${dir}: a ${task ?? "base"} model; attributions skipped (they need a classifier or tagger)`);
  let attention: AttentionMaps | undefined;
  if (v.attention) {
    attention = attentionMaps(model, tokenizer, text, limit);
    console.log(`attention: ${attention.attentions.length} layers x ${attention.attentions[0]?.length ?? 0} heads over ${attention.tokens.length} tokens`);
  }
  let probe: ProbeResult | undefined;
  if (typeof v.probe === "string") {
    probe = probeLayers(model, tokenizer, probeData(v.probe, Number(v.probeSentences ?? 400)), limit);
    console.log(`probe (${probe.labels.join(", ")}; always ${probe.majority.label}: ${probe.majority.accuracy.toFixed(4)}):`);
    for (const l of probe.layers) console.log(`  ${l.layer === 0 ? "embeddings" : `layer ${l.layer}`}: accuracy ${l.accuracy.toFixed(4)}, macro F1 ${l.macroF1.toFixed(4)}`);
  }
  mkdirSync(out, { recursive: true });
  const report = { model: dir, text, ...(explanation ? { explanation } : {}), ...(attention ? { attention } : {}), ...(probe ? { probe } : {}) };
  writeTextAtomic(join(out, "explanation.json"), JSON.stringify(report, null, 1) + "\n");
  writeTextAtomic(join(out, "explanation.html"), explanationHtml(report));
  console.log(`wrote ${join(out, "explanation.json")} and ${join(out, "explanation.html")}`);
}

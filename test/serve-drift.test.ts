// Drift monitoring and request logs of `lmforge serve`: finetune writes input_stats.json for a
// tiny classifier; the server, its log stream captured, gets the training texts back (PSI 0), then
// a shifted stream of long texts in an unseen script (PSI far past 0.25, one warning per feature,
// not one per request), then the training texts again (back under, said once). Each request logs
// exactly one line with its id, model, route, status, latency and batch size, and no text unless
// asked.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune } from "../src/train/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { NUMERIC_BINS, histogram, psi } from "../src/eval/drift.js";
import type { ReferenceStats } from "../src/eval/drift.js";
import { createServer } from "../src/serve/server.js";
import { collectGarbage } from "../src/serve/host.js";
import type { FastifyInstance } from "fastify";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const words = { whale: "whale ship sea harpoon captain ocean voyage sail", nation: "nation congress president law people union tax" };
/** Texts of 4 to 12 words of their label's topic (a seeded LCG): every word is one token. */
function synth(n: number, seed: number): LabelledExample[] {
  let x = seed;
  const rnd = (): number => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2 ? "whale" : "nation";
    const vocab = words[label].split(" ");
    const length = 4 + Math.floor(rnd() * 9);
    return { text: Array.from({ length }, () => vocab[Math.floor(rnd() * 7)]).join(" "), label, source: `synth:${i}` };
  });
}
const train = synth(48, 1);
const baseDir = join(dir, "base");
const tok = trainTokenizerFromTexts(train.map((e) => e.text), { kind: "wordpiece", vocabSize: 120, lowercase: true, minFrequency: 1 });
torch.manualSeed(0);
savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 64 }), baseDir);
saveTokenizer(tok, baseDir);
const ftDir = join(dir, "clf");
// validation = the training texts: the reference's inputs and predictions come from the same texts
await finetune({ model: baseDir, train, validation: train, maxSteps: 3, batchSize: 16, learningRate: 3e-3, seed: 1, maxLength: 32, patience: 0, precision: "fp32", out: ftDir });

const WINDOW = train.length;
const lines: Record<string, unknown>[] = [];
const stream = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
const servers: FastifyInstance[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function start(options: Partial<Parameters<typeof createServer>[0]>): Promise<string> {
  const app = createServer({ models: { clf: ftDir, base: baseDir }, driftWindow: WINDOW, driftThreshold: 0.25, maxWaitMs: 2, logger: { level: "info", stream }, ...options });
  servers.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lmforge.ready;
  return url;
}
// what fine-tuning left to the collector is freed before the inference worker makes tensors:
// one thread at a time may use the addon (src/serve/host.ts)
await collectGarbage();
const url = await start({});
const post = (path: string, body: unknown): Promise<Response> => fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
/** Sends the texts 8 per request, in order; returns the requests' answers. */
async function classify(texts: string[]): Promise<{ results: { truncated: boolean }[] }[]> {
  const out = [];
  for (let i = 0; i < texts.length; i += 8) {
    const r = await post("/v1/models/clf/classify", { texts: texts.slice(i, i + 8) });
    assert.equal(r.status, 200);
    out.push((await r.json()) as { results: { truncated: boolean }[] });
  }
  return out;
}
async function gauges(): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^lmforge_drift_psi\{model="clf",feature="(\w+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}
const driftLines = (level: number) => lines.filter((l) => l.level === level && String(l.msg).startsWith("input drift"));

test("finetune saves input_stats.json: the training texts' lengths and rates, the predictions' labels and confidence", () => {
  const stats = JSON.parse(readFileSync(join(ftDir, "input_stats.json"), "utf8")) as ReferenceStats;
  assert.deepEqual(Object.keys(stats.features), ["length", "oov_rate", "unk_rate", "label", "confidence"]);
  // every word is one token of the vocabulary: the length is the word count, no word is out of vocabulary
  const wordCounts = train.map((e) => e.text.split(" ").length);
  assert.deepEqual(stats.features.length!.counts, histogram({ kind: "numeric", cuts: NUMERIC_BINS.length }, wordCounts));
  assert.deepEqual(stats.features.oov_rate!.counts, [48, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(stats.features.unk_rate!.counts, [48, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(stats.features.label!.bins, { kind: "categorical", categories: ["nation", "whale"] });
  assert.equal(stats.features.label!.counts.reduce((a, b) => a + b), 48);
  assert.equal(stats.features.confidence!.counts[0], 0, "two labels: the top probability is at least 0.5");
  assert.equal(stats.features.confidence!.counts.reduce((a, b) => a + b), 48);
  assert.match(stats.source, /48 training examples; predictions: 48 validation examples/);
});

test("drift: said once at start per model; the training texts give PSI 0; a shifted stream passes the threshold with one warning per feature", async () => {
  const startLines = lines.filter((l) => String(l.msg).startsWith("drift monitoring"));
  assert.deepEqual(startLines.map((l) => [l.model, l.msg]), [["clf", "drift monitoring on"], ["base", `drift monitoring off: no input_stats.json in ${baseDir} (lmforge finetune writes one for classifiers)`]]);
  assert.deepEqual(startLines[0]!.features, ["length", "oov_rate", "unk_rate", "label", "confidence"]);
  assert.deepEqual(await gauges(), {}, "nothing before the window is full");
  await classify(train.map((e) => e.text));
  const same = await gauges();
  assert.deepEqual([same.length, same.oov_rate, same.unk_rate], [0, 0, 0], "the same texts: the same histograms");
  assert.ok(same.label! < 0.01 && same.confidence! < 0.01, `the same predictions (batched differently): ${JSON.stringify(same)}`);
  assert.equal(driftLines(40).length, 0);

  // 40 words of an unseen script: each one [UNK] token, 40 tokens (past max length 32: truncated, flagged)
  const greek = "αβγ δεζ ηθι κλμ νξο πρσ τυφ χψω".split(" ");
  const shifted = Array.from({ length: WINDOW }, (_, i) => Array.from({ length: 40 }, (_, k) => greek[(i + k) % 8]).join(" "));
  const answers = await classify(shifted);
  assert.ok(answers.every((a) => a.results.every((r) => r.truncated)));
  const moved = await gauges();
  // the reference's mass all in bin 0 (rate 0), the window's all in the last (rate 1): 2 (1 − ε) ln(1/ε)
  assert.ok(Math.abs(moved.unk_rate! - 2 * (1 - 1e-4) * Math.log(1e4)) < 1e-9, String(moved.unk_rate));
  assert.ok(Math.abs(moved.oov_rate! - moved.unk_rate!) < 1e-12);
  const stats = JSON.parse(readFileSync(join(ftDir, "input_stats.json"), "utf8")) as ReferenceStats;
  const all40 = histogram({ kind: "numeric", cuts: NUMERIC_BINS.length }, new Array(WINDOW).fill(40));
  assert.ok(Math.abs(moved.length! - psi(stats.features.length!.counts, all40)) < 1e-9);
  assert.ok(moved.length! > 0.25);
  // a second window of it: still one warning per feature
  await classify(shifted);
  const warnings = driftLines(40);
  const warned = warnings.map((l) => l.feature as string);
  for (const f of ["length", "oov_rate", "unk_rate"]) assert.equal(warned.filter((x) => x === f).length, 1, `one warning for ${f}: ${JSON.stringify(warned)}`);
  assert.equal(new Set(warned).size, warned.length, "never two for one feature");
  const w = warnings.find((l) => l.feature === "unk_rate")!;
  // it crossed with the first request of 8: window counts [40, 0, ..., 8] against [48, 0, ..., 0]
  const first = (40 / 48 - 1) * Math.log(40 / 48) + (8 / 48 - 1e-4) * Math.log(8 / 48 / 1e-4);
  assert.deepEqual([w.model, w.threshold, w.window, w.psi], ["clf", 0.25, WINDOW, Math.round(first * 1e4) / 1e4]);
  // back to the training texts: under the threshold again, said once
  await classify(train.map((e) => e.text));
  assert.deepEqual(Object.values(await gauges()).slice(0, 3), [0, 0, 0]);
  const back = driftLines(30).map((l) => l.feature as string);
  for (const f of ["length", "oov_rate", "unk_rate"]) assert.equal(back.filter((x) => x === f).length, 1);
});

test("one log line per request: id, model, route, status, latency, batch size; no text unless asked", async () => {
  const before = lines.length;
  const secret = "captain ahab whale secret";
  const ok = await post("/v1/models/clf/classify", { texts: [secret, "nation law"] });
  const bad = await post("/v1/models/clf/classify", { texts: [""] });
  assert.deepEqual([ok.status, bad.status], [200, 422]);
  const fresh = lines.slice(before);
  const requests = fresh.filter((l) => l.msg === "request");
  assert.equal(requests.length, 2, JSON.stringify(fresh));
  assert.equal(fresh.length, 2, "nothing else logged about them");
  const [a, b] = requests as { reqId: string; model: string; route: string; status: number; latencyMs: number; batchSize?: number; method: string }[];
  assert.deepEqual([a!.model, a!.route, a!.method, a!.status, a!.batchSize], ["clf", "/v1/models/:name/classify", "POST", 200, 2]);
  assert.ok(typeof a!.reqId === "string" && a!.reqId !== b!.reqId);
  assert.ok(a!.latencyMs > 0 && a!.latencyMs < 10000);
  assert.deepEqual([b!.status, b!.batchSize], [422, undefined], "refused before it queued: no model call");
  assert.ok(!JSON.stringify(fresh).includes("secret"), "no request text in the log");

  const loud = await start({ models: { clf: ftDir }, logRequestText: true });
  const n = lines.length;
  assert.equal((await fetch(`${loud}/v1/models/clf/classify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ texts: [secret] }) })).status, 200);
  const line = lines.slice(n).find((l) => l.msg === "request")!;
  assert.deepEqual(line.body, { texts: [secret] }, "--log-request-text: the body is in the line");
});

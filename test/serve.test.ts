// `lmforge serve` on real listening servers with tiny models made here (BERT classifier, tagger
// and reader, a GPT-2): every endpoint's answer equals the library's own prediction for the same
// input; concurrent requests share model calls; the queue refuses with 429 when full; 413, 422
// naming the field, 404, 401 and 504; streamed text equals the whole text; /openapi.json lists
// every route; SIGTERM lets requests in flight finish and exits 0.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForCausalLM, AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoModelForTokenClassification, savePretrained } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { generate } from "../src/generate/index.js";
import type { CausalModel } from "../src/generate/index.js";
import { loadFinetuned } from "../src/train/index.js";
import { createServer, parseSize } from "../src/serve/server.js";
import { collectGarbage } from "../src/serve/host.js";
import { modelNames } from "../src/cli/serve.js";
import type { FastifyInstance } from "fastify";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const texts = Array.from({ length: 60 }, (_, i) => (i % 2 ? "the whale ship sailed the sea with captain ahab" : "the president spoke to congress about the nation and its law"));
const wordpiece = trainTokenizerFromTexts(texts, { kind: "wordpiece", vocabSize: 90, minFrequency: 1 });
const bert = { model_type: "bert", vocab_size: wordpiece.vocabSize, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 64 };

/** A fine-tuned folder as finetune() writes one: weights, tokenizer, config.json's lmforge record. */
function saveTask(name: string, model: PretrainedModel, task: string, labels: string[], options: Record<string, unknown> = {}): string {
  const out = join(dir, name);
  savePretrained(model, out, { config: { lmforge: { task, labels, max_length: 16, strategy: "full", tokenizer: { files: ["tokenizer.json"], vocab_size: wordpiece.vocabSize }, options } } });
  saveTokenizer(wordpiece, out);
  return out;
}
const labelled = (labels: string[]) => ({ id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])), label2id: Object.fromEntries(labels.map((l, i) => [l, i])) });
torch.manualSeed(0);
const clfDir = saveTask("clf", AutoModelForSequenceClassification.fromConfig({ ...bert, ...labelled(["nation", "whale"]) }), "classification", ["nation", "whale"]);
const nerDir = saveTask("ner", AutoModelForTokenClassification.fromConfig({ ...bert, ...labelled(["O", "B-PER", "I-PER"]) }), "token-classification", ["O", "B-PER", "I-PER"], { stride: 4 });
const qaDir = saveTask("qa", AutoModelForQuestionAnswering.fromConfig(bert), "question-answering", [], { squadVersion: "1.1" });
const bpe = trainTokenizerFromTexts(texts, { kind: "bpe", vocabSize: 300 });
const gptDir = join(dir, "gpt");
savePretrained(AutoModelForCausalLM.fromConfig({ model_type: "gpt2", vocab_size: bpe.vocabSize, n_embd: 16, n_layer: 1, n_head: 2, n_positions: 64, bos_token_id: bpe.tokenToId("<s>"), eos_token_id: bpe.tokenToId("</s>") }), gptDir);
saveTokenizer(bpe, gptDir);
const MODELS = { clf: clfDir, ner: nerDir, qa: qaDir, gpt: gptDir };

const servers: FastifyInstance[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
/** A listening server and its base URL, models loaded and warmed. */
async function start(options: Partial<Parameters<typeof createServer>[0]> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = createServer({ models: MODELS, ...options });
  servers.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lmforge.ready;
  return { app, url };
}
const post = (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> => fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
/** A metric's value from the exposition text (labels as written). */
function metric(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line ? Number(line.split(" ").at(-1)) : 0;
}
const close = (a: readonly number[], b: readonly number[], tol = 1e-5): boolean => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= tol);

// The library's own answers, computed before any server starts: the servers' inference worker
// is then the only thread that makes tensors (the addon's handle table is process-wide and
// unguarded; src/serve/host.ts), and the collection below frees what this thread left behind.
const long = Array.from({ length: 30 }, () => "whale").join(" ");
const context = "the whale ship sailed the sea with captain ahab";
const reference = await (async () => {
  const clf = await loadFinetuned(clfDir);
  const classify = clf.objective.predict(clf.model, [{ text: "the whale ship", label: "", source: "t" }, { text: long, label: "", source: "t" }]) as { label: string; probabilities: Record<string, number> }[];
  const pair = clf.objective.predict(clf.model, [{ text: "the whale", textPair: "the sea", label: "", source: "t" }]) as { probabilities: Record<string, number> }[];
  const ner = await loadFinetuned(nerDir);
  const tokens = ner.objective.predict(ner.model, ner.task.predictInput(["captain ahab sailed", "the nation"], ner.meta.options)) as { entities: unknown[] }[];
  const qa = await loadFinetuned(qaDir);
  const answer = qa.objective.predict(qa.model, [{ id: "0", question: "who sailed", context, answers: [], impossible: false, source: "t" }]) as { text: string; score: number; offsets: [number, number] }[];
  const hidden = torch.noGrad(() => clf.model.forward({ inputIds: torch.tensor([wordpiece.encode("the whale ship").ids], { dtype: "int64" }) }).lastHiddenState.toArray() as number[][][])[0]!;
  const model = (await AutoModelForCausalLM.fromPretrained(gptDir, { verbose: false })) as unknown as CausalModel;
  // the prompt without the special tokens its encoding ends with (lmforge generate's rule)
  const enc = bpe.encode("the whale");
  const ids = enc.ids.slice(0, enc.specialTokensMask.lastIndexOf(0) + 1);
  const generated = (generate(model, torch.tensor([ids], { dtype: "int64" }), { maxNewTokens: 12 }).toArray() as number[][])[0]!.slice(ids.length);
  return { classify, pair, tokens, answer, hidden, generated };
})();
await collectGarbage();

const main = await start({ maxBatchSize: 16, maxWaitMs: 50 });

test("health, readiness and the models' descriptions", async () => {
  assert.deepEqual(await (await fetch(`${main.url}/healthz`)).json(), { status: "ok" });
  assert.deepEqual(await (await fetch(`${main.url}/readyz`)).json(), { status: "ready", models: ["clf", "ner", "qa", "gpt"] });
  const { models } = (await (await fetch(`${main.url}/v1/models`)).json()) as { models: { name: string; task: string; labels: string[]; maxLength: number; parameters: number; endpoints: string[] }[] };
  const clf = models.find((m) => m.name === "clf")!;
  // BERT with hidden 16, 1 layer, intermediate 32, 64 positions, 2 types, vocab V, 2 classes, by hand:
  const V = wordpiece.vocabSize;
  const params = V * 16 + 64 * 16 + 2 * 16 + 32 + /* layer */ 3 * (16 * 16 + 16) + (16 * 16 + 16) + 32 + (16 * 32 + 32) + (32 * 16 + 16) + 32 + /* pooler */ 16 * 16 + 16 + /* classifier */ 16 * 2 + 2;
  assert.deepEqual(clf, { name: "clf", task: "classification", labels: ["nation", "whale"], maxLength: 16, parameters: params, endpoints: ["classify", "embed"], loaded: true });
  assert.deepEqual(models.map((m) => [m.name, m.task, m.endpoints]), [["clf", "classification", ["classify", "embed"]], ["ner", "token-classification", ["tokens", "embed"]], ["qa", "question-answering", ["answer", "embed"]], ["gpt", "causal-lm", ["generate"]]]);
});

test("classify, tokens, answer and embed answer as the library predicts the same inputs", async () => {
  const r = (await (await post(`${main.url}/v1/models/clf/classify`, { texts: ["the whale ship", long] })).json()) as { results: { label: string; probabilities: Record<string, number>; truncated: boolean }[] };
  const expected = reference.classify;
  r.results.forEach((x, i) => {
    assert.equal(x.label, expected[i]!.label);
    assert.ok(close(Object.values(x.probabilities), Object.values(expected[i]!.probabilities)));
    assert.ok(Math.abs(x.probabilities.nation! + x.probabilities.whale! - 1) < 1e-6);
  });
  assert.deepEqual(r.results.map((x) => x.truncated), [false, true], "32 tokens with [CLS] and [SEP] > 16");
  // pairs
  const pr = await post(`${main.url}/v1/models/clf/classify`, { texts: ["the whale"], pairs: ["the sea"] });
  assert.equal(pr.status, 200);
  const pe = reference.pair;
  assert.ok(close(Object.values(((await pr.json()) as { results: { probabilities: Record<string, number> }[] }).results[0]!.probabilities), Object.values(pe[0]!.probabilities)));

  const t = (await (await post(`${main.url}/v1/models/ner/tokens`, { texts: ["captain ahab sailed", "the nation"] })).json()) as { results: { entities: { char_start: number; char_end: number; text: string }[] }[] };
  const te = reference.tokens;
  assert.deepEqual(t.results.map((x) => x.entities), te.map((x) => x.entities));
  for (const e of t.results.flatMap((x, i) => x.entities.map((en) => ({ en, text: ["captain ahab sailed", "the nation"][i]! })))) assert.equal(e.text.slice(e.en.char_start, e.en.char_end), e.en.text, "offsets point at the entity's text");

  const a = (await (await post(`${main.url}/v1/models/qa/answer`, { question: "who sailed", context })).json()) as { results: { answer: string; score: number; offsets: [number, number] }[] };
  const ae = reference.answer;
  assert.equal(a.results[0]!.answer, ae[0]!.text);
  assert.ok(Math.abs(a.results[0]!.score - ae[0]!.score) < 1e-5);
  assert.equal(context.slice(...a.results[0]!.offsets), a.results[0]!.answer);
  const bad = await post(`${main.url}/v1/models/qa/answer`, [{ question: "who sailed", context }, { question: "what" }]);
  assert.deepEqual([bad.status, ((await bad.json()) as { field: string }).field], [422, "1/context"], "of a list, the item at fault");
  const list = await post(`${main.url}/v1/models/qa/answer`, [{ question: "who sailed", context }, { question: "what", context: "the sea" }]);
  assert.equal(((await list.json()) as { results: unknown[] }).results.length, 2);

  // embed: [CLS]'s last hidden state, and the mean over the tokens (one text: every token is real)
  const e = (await (await post(`${main.url}/v1/models/clf/embed`, { texts: ["the whale ship"], pooling: "mean" })).json()) as { vectors: number[][]; truncated: boolean[] };
  const c = (await (await post(`${main.url}/v1/models/clf/embed`, { texts: ["the whale ship"] })).json()) as { vectors: number[][] };
  const h = reference.hidden;
  assert.ok(close(c.vectors[0]!, h[0]!, 1e-4));
  assert.ok(close(e.vectors[0]!, h[0]!.map((_, k) => h.reduce((s, row) => s + row[k]!, 0) / h.length), 1e-4));
  assert.deepEqual(e.truncated, [false]);
});

test("generate: greedy text equals the library's; the event stream carries the same text, then done", async () => {
  const body = { prompt: "the whale", maxNewTokens: 12 };
  const g = (await (await post(`${main.url}/v1/models/gpt/generate`, body)).json()) as { text: string; tokens: number };
  const seq = reference.generated;
  const eos = seq.indexOf(bpe.tokenToId("</s>")!);
  const kept = eos < 0 ? seq : seq.slice(0, eos);
  assert.equal(g.text, bpe.decode(kept, { skipSpecialTokens: true }));
  assert.equal(g.tokens, kept.length);
  const s = await post(`${main.url}/v1/models/gpt/generate`, { ...body, stream: true });
  assert.equal(s.status, 200);
  assert.match(s.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events = (await s.text()).trim().split("\n\n").map((block) => {
    const [ev, data] = block.split("\n");
    return { event: ev!.replace(/^event: /, ""), data: JSON.parse(data!.replace(/^data: /, "")) as { text: string } };
  });
  assert.equal(events.at(-1)!.event, "done");
  assert.equal(events.at(-1)!.data.text, g.text);
  assert.equal(events.filter((e) => e.event === "token").map((e) => e.data.text).join(""), g.text);
  // beam search and a refused combination (422 naming the option)
  assert.equal((await post(`${main.url}/v1/models/gpt/generate`, { ...body, numBeams: 2 })).status, 200);
  const bad = await post(`${main.url}/v1/models/gpt/generate`, { ...body, numBeams: 2, doSample: true });
  assert.equal(bad.status, 422);
  assert.match(((await bad.json()) as { message: string }).message, /doSample with numBeams > 1/);
  const long = await post(`${main.url}/v1/models/gpt/generate`, { ...body, maxNewTokens: 64 });
  assert.equal(long.status, 422);
  assert.deepEqual(await long.json(), { statusCode: 422, error: "Unprocessable Entity", message: "maxNewTokens 64 leaves no room for the prompt in the model's 64 positions", field: "maxNewTokens" });
});

test("dynamic batching: 8 concurrent requests share model calls; with max batch 1 each has its own", async () => {
  const count = async (url: string) => {
    const m = await (await fetch(`${url}/metrics`)).text();
    return { calls: metric(m, "lmforge_batch_size_count", 'model="clf",endpoint="classify"'), texts: metric(m, "lmforge_batch_size_sum", 'model="clf",endpoint="classify"'), tokens: metric(m, "lmforge_tokens_total", 'model="clf",endpoint="classify"') };
  };
  const before = await count(main.url);
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => post(`${main.url}/v1/models/clf/classify`, { texts: [texts[i]!] })));
  assert.deepEqual(rs.map((r) => r.status), new Array(8).fill(200));
  const after = await count(main.url);
  assert.equal(after.texts - before.texts, 8);
  // tokens: each text's pieces with [CLS] and [SEP], cut at the folder's max_length of 16 (rate() of the counter is tokens/s)
  const pieces = texts.slice(0, 8).reduce((n, t) => n + Math.min(wordpiece.encode(t).ids.length, 16), 0);
  assert.equal(after.tokens - before.tokens, pieces);
  assert.ok(after.calls - before.calls < 8, `${after.calls - before.calls} model calls for 8 requests`);
  const off = await start({ models: { clf: clfDir }, maxBatchSize: 1, maxWaitMs: 50 });
  const b2 = await count(off.url);
  await Promise.all(Array.from({ length: 8 }, (_, i) => post(`${off.url}/v1/models/clf/classify`, { texts: [texts[i]!] })));
  assert.equal((await count(off.url)).calls - b2.calls, 8);
  const m = await (await fetch(`${main.url}/metrics`)).text();
  for (const name of ["lmforge_http_requests_total", "lmforge_http_request_duration_seconds_bucket", "lmforge_queue_depth", "lmforge_model_load_seconds", "lmforge_process_resident_memory_bytes", "lmforge_native_allocator_in_use_bytes"]) assert.match(m, new RegExp(`^${name}`, "m"), name);
  assert.ok(metric(m, "lmforge_http_requests_total", 'route="/v1/models/:name/classify",method="POST",status="200"') >= 8);
});

test("admission: 429 with Retry-After when the queue is full; 504 when a request waits too long, and its slot is free again", async () => {
  const q = await start({ models: { clf: clfDir }, queueSize: 2, maxWaitMs: 1000 });
  const rs = await Promise.all([0, 1, 2].map((i) => post(`${q.url}/v1/models/clf/classify`, { texts: [texts[i]!] })));
  assert.deepEqual(rs.map((r) => r.status).sort(), [200, 200, 429]);
  const refused = rs.find((r) => r.status === 429)!;
  assert.equal(refused.headers.get("retry-after"), "1");
  const t = await start({ models: { clf: clfDir }, queueSize: 1, maxWaitMs: 2000, timeoutMs: 100 });
  const slow = await post(`${t.url}/v1/models/clf/classify`, { texts: ["the whale"] });
  assert.equal(slow.status, 504);
  assert.match(((await slow.json()) as { message: string }).message, /longer than 100 ms/);
  const m = await (await fetch(`${t.url}/metrics`)).text();
  assert.equal(metric(m, "lmforge_queue_depth", 'model="clf"'), 0, "the slot is freed");
  assert.equal((await post(`${t.url}/v1/models/clf/classify`, { texts: ["the whale"] })).status, 504, "a second request is queued (not refused), and times out too");
  // a client that hangs up leaves the queue too
  const gone = new AbortController();
  const hungUp = fetch(`${t.url}/v1/models/clf/classify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ texts: ["a"] }), signal: gone.signal }).catch((e: Error) => e.name);
  await new Promise((r) => setTimeout(r, 50));
  gone.abort();
  assert.equal(await hungUp, "AbortError");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(metric(await (await fetch(`${t.url}/metrics`)).text(), "lmforge_queue_depth", 'model="clf"'), 0, "its slot is freed before its timeout");
});

test("413 over the body limit; 422 naming the field; 404 for an unknown model or an endpoint the task lacks; 401 without the key", async () => {
  const k = await start({ models: { clf: clfDir }, apiKey: "s3cret", bodyLimit: 1000 });
  const auth = { authorization: "Bearer s3cret" };
  assert.equal((await post(`${k.url}/v1/models/clf/classify`, { texts: ["a"] })).status, 401);
  const wrong = await post(`${k.url}/v1/models/clf/classify`, { texts: ["a"] }, { authorization: "Bearer s3cres" });
  assert.equal(wrong.status, 401);
  assert.match(((await wrong.json()) as { message: string }).message, /API key/);
  assert.equal((await post(`${k.url}/v1/models/clf/classify`, { texts: ["a"] }, { "x-api-key": "s3cret" })).status, 200);
  assert.equal((await fetch(`${k.url}/healthz`)).status, 200, "health checks need no key");
  assert.equal((await post(`${k.url}/v1/models/clf/classify`, { texts: ["x".repeat(2000)] }, auth)).status, 413);
  const cases: [unknown, string, RegExp][] = [
    [{ texts: "the whale" }, "texts", /body\/texts must be array/],
    [{}, "texts", /must have required property 'texts'/],
    [{ texts: ["ok", 3] }, "texts/1", /body\/texts\/1 must be string/],
    [{ texts: ["ok"], colour: "red" }, "colour", /unknown field "colour"/],
    [{ texts: ["a", "b"], pairs: ["c"] }, "pairs", /1 texts for 2 texts/],
  ];
  for (const [body, field, message] of cases) {
    const r = await post(`${k.url}/v1/models/clf/classify`, body, auth);
    assert.equal(r.status, 422, JSON.stringify(body));
    const j = (await r.json()) as { field: string; message: string };
    assert.equal(j.field, field);
    assert.match(j.message, message);
  }
  const unknown = await post(`${main.url}/v1/models/nope/classify`, { texts: ["a"] });
  assert.equal(unknown.status, 404);
  assert.match(((await unknown.json()) as { message: string }).message, /unknown model "nope"; serving clf, ner, qa, gpt/);
  const misfit = await post(`${main.url}/v1/models/gpt/classify`, { texts: ["a"] });
  assert.equal(misfit.status, 404);
  assert.match(((await misfit.json()) as { message: string }).message, /"gpt" is a causal-lm model: it serves \/generate, not \/classify/);
});

test("/openapi.json lists every route with its request schema", async () => {
  const doc = (await (await fetch(`${main.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[] } }> }; parameters?: { name: string }[] }>> };
  assert.equal(doc.openapi, "3.1.0");
  const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
  const model = (e: string) => `POST /v1/models/{name}/${e}`;
  assert.deepEqual(routes, ["GET /healthz", "GET /metrics", "GET /openapi.json", "GET /readyz", "GET /v1/models", model("answer"), model("classify"), model("embed"), model("generate"), model("tokens")].sort());
  const classify = doc.paths["/v1/models/{name}/classify"]!.post!;
  assert.deepEqual(classify.requestBody!.content["application/json"]!.schema.required, ["texts"]);
  assert.deepEqual(classify.parameters!.map((p) => p.name), ["name"]);
});

test("SIGTERM while requests are in flight: they complete, the server exits 0", async () => {
  const child = spawn(process.execPath, [cli, "serve", clfDir, "--port", "0", "--max-wait-ms", "1500"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const ready = out.split("\n").map((l) => (l.startsWith("{") ? (JSON.parse(l) as { msg: string; address?: string }) : null)).find((l) => l?.msg === "ready");
      if (ready) resolve(ready.address!);
    });
    child.on("exit", () => reject(new Error(`the server exited before it was ready: ${out}`)));
  });
  const inFlight = Promise.all([0, 1, 2].map((i) => post(`${address}/v1/models/clf/classify`, { texts: [texts[i]!] })));
  await new Promise((r) => setTimeout(r, 400)); // they wait in the queue (1.5 s for company)
  child.kill("SIGTERM");
  const rs = await inFlight;
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
  assert.equal(await exited, 0);
  const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { msg: string; status?: number; model?: string; latencyMs?: number });
  const requests = lines.filter((l) => l.msg === "request");
  assert.equal(requests.length, 3, "one log line per request");
  assert.ok(requests.every((l) => typeof (l as { reqId?: string }).reqId === "string"), "with its id");
  assert.ok(requests.every((l) => l.status === 200 && l.model === "clf" && typeof l.latencyMs === "number"));
  assert.ok(!out.includes(texts[0]!), "no request text in the logs");
  assert.ok(lines.some((l) => l.msg.startsWith("draining")));
});

test("lmforge serve's arguments: names from folders or --name, sizes; a bad one is a usage error (exit 2)", () => {
  assert.deepEqual(modelNames([clfDir, gptDir], [`sentiment=${nerDir}`]), { sentiment: nerDir, clf: clfDir, gpt: gptDir });
  assert.throws(() => modelNames([join(dir, "none")]), /no folder .*none/);
  assert.throws(() => modelNames([], ["x"]), /--name must be NAME=DIR, got "x"/);
  assert.throws(() => modelNames([clfDir], [`clf=${gptDir}`]), /the name "clf" is taken already/);
  assert.deepEqual([parseSize("1mb"), parseSize("64kb"), parseSize("100")], [1048576, 65536, 100]);
  assert.throws(() => parseSize("lots"), /--body-limit must be a size such as 65536, 64kb or 1mb, got "lots"/);
  writeFileSync(join(dir, "key"), "\n");
  const r = spawnSync(process.execPath, [cli, "serve", clfDir, "--api-key-file", join(dir, "key")], { encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--api-key-file .*: the file is empty/);
});

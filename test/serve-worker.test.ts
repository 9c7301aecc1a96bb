// `lmforge serve` with its models in the inference worker (src/serve/worker.ts): while a long
// generation runs, /healthz answers in a small fraction of the batch's time (and, for contrast,
// with --inference main it waits for the batch to end); streamed text arrives as it is made;
// the deadline, a client hanging up and the worker's crash cross the thread boundary (504, the
// run stopped early, 503 with /readyz and /healthz failing); errors keep their kind and field;
// the worker sets its own intra-op threads.
import { test, after } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawn } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForCausalLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { createServer } from "../src/serve/server.js";
import { TimeoutError } from "../src/serve/batcher.js";
import { CancelledError, InputError } from "../src/serve/models.js";
import { collectGarbage, fromWire, toWire } from "../src/serve/host.js";
import type { WorkerHost } from "../src/serve/remote-model.js";
import type { FastifyInstance } from "fastify";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const texts = Array.from({ length: 60 }, (_, i) => (i % 2 ? "the whale ship sailed the sea with captain ahab" : "the president spoke to congress about the nation and its law"));
const bpe = trainTokenizerFromTexts(texts, { kind: "bpe", vocabSize: 300 });
// a GPT-2 whose generation of LONG tokens takes hundreds of milliseconds: its end-of-sequence
// token is GPT-2's default, 50256, past its vocabulary, so it never ends early; sampled, its
// text has spaces, where the streamer lets text go. Its bos_token_id is the default 50256 too:
// a prompt of special tokens only starts from it and fails in the worker (a 500).
const LONG = 600;
const gptDir = join(dir, "gpt");
torch.manualSeed(0);
savePretrained(AutoModelForCausalLM.fromConfig({ model_type: "gpt2", vocab_size: bpe.vocabSize, n_embd: 64, n_layer: 2, n_head: 2, n_positions: LONG + 40 }), gptDir);
saveTokenizer(bpe, gptDir);
await collectGarbage(); // this thread's tensors are freed before the worker makes its own

const lines: Record<string, unknown>[] = [];
const stream = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
const servers: FastifyInstance[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function start(options: Partial<Parameters<typeof createServer>[0]> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = createServer({ models: { gpt: gptDir }, maxWaitMs: 0, logger: { level: "info", stream }, ...options });
  servers.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lmforge.ready;
  return { app, url };
}
const post = (url: string, body: unknown, signal?: AbortSignal): Promise<Response> => fetch(`${url}/v1/models/gpt/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
const long = { prompt: "the whale", maxNewTokens: LONG, doSample: true, seed: 1 };
/** Seconds of generate batches so far (the batch-duration histogram's sum). */
async function batchSeconds(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^lmforge_batch_duration_seconds_sum\{model="gpt",endpoint="generate"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

/** A streamed long generation; once its first token came (the batch runs), /healthz is probed in turn until it ends. */
async function probeWhileGenerating(url: string): Promise<{ batchMs: number; probes: { ms: number; end: number; during: boolean }[]; firstToken: number; doneAt: number; tokens: number }> {
  const before = await batchSeconds(url);
  const res = await post(url, { ...long, stream: true });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let firstToken = -1;
  let doneAt = -1;
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (firstToken < 0 && text.includes("event: token")) firstToken = performance.now();
    }
    doneAt = performance.now();
  })();
  while (firstToken < 0 && doneAt < 0) await new Promise((r) => setTimeout(r, 2));
  const probes: { ms: number; end: number; during: boolean }[] = [];
  while (doneAt < 0 && probes.length < 8) {
    const t0 = performance.now();
    const h = await fetch(`${url}/healthz`);
    assert.equal(h.status, 200);
    await h.arrayBuffer();
    const end = performance.now();
    probes.push({ ms: end - t0, end, during: doneAt < 0 });
    await new Promise((r) => setTimeout(r, 20));
  }
  await reading;
  assert.match(text, /event: done/);
  const batchMs = ((await batchSeconds(url)) - before) * 1000;
  return { batchMs, probes, firstToken, doneAt, tokens: text.split("event: token").length - 1 };
}

let fullMs = 0; // a whole long generation in the worker, for the tests that stop one early

test("worker: /healthz answers during a long batch in a small fraction of its time; the tokens stream as they are made", async (t: TestContext) => {
  const { url } = await start();
  const r = await probeWhileGenerating(url);
  fullMs = r.batchMs;
  const during = r.probes.filter((p) => p.during);
  const worst = Math.max(...during.map((p) => p.ms));
  t.diagnostic(`worker: batch ${r.batchMs.toFixed(0)} ms; /healthz during it: ${during.map((p) => p.ms.toFixed(1)).join(", ")} ms`);
  assert.ok(r.batchMs >= 200, `the batch took ${r.batchMs.toFixed(0)} ms: too short to tell`);
  assert.ok(during.length >= 2, `${during.length} probes answered while the batch ran`);
  assert.ok(worst < r.batchMs / 4, `a probe took ${worst.toFixed(0)} ms of a ${r.batchMs.toFixed(0)} ms batch`);
  // streaming: the first token came well before the end, and many tokens came in between
  assert.ok(r.doneAt - r.firstToken > r.batchMs / 2, `first token ${(r.doneAt - r.firstToken).toFixed(0)} ms before the end of a ${r.batchMs.toFixed(0)} ms batch`);
  assert.ok(r.tokens > 1);
});

test("main (before): /healthz waits for the running batch to end", async (t: TestContext) => {
  // the server in a child process: this process, its client, keeps its event loop
  const child = spawn(process.execPath, [cli, "serve", gptDir, "--port", "0", "--inference", "main", "--max-wait-ms", "0"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, OMP_NUM_THREADS: "1" } });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const ready = out.split("\n").map((l) => (l.startsWith("{") ? (JSON.parse(l) as { msg: string; address?: string }) : null)).find((l) => l?.msg === "ready");
      if (ready) resolve(ready.address!);
    });
    child.on("exit", () => reject(new Error(`the server exited before it was ready: ${out}`)));
  });
  try {
    const r = await probeWhileGenerating(url);
    const first = r.probes[0]!;
    t.diagnostic(`main: batch ${r.batchMs.toFixed(0)} ms; the first /healthz sent during it took ${first.ms.toFixed(0)} ms`);
    assert.ok(r.batchMs >= 200, `the batch took ${r.batchMs.toFixed(0)} ms: too short to tell`);
    // answered only as the batch ended: with the rest of the stream, not during it
    assert.ok(first.end >= r.doneAt - 0.1 * r.batchMs, `the probe ended ${(r.doneAt - first.end).toFixed(0)} ms before the stream`);
    assert.ok(first.ms > r.batchMs / 4, `the probe took ${first.ms.toFixed(0)} ms of a ${r.batchMs.toFixed(0)} ms batch`);
  } finally {
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  }
});

test("the deadline crosses to the worker: 504 at the timeout, and the generation stops there, not at its end", async () => {
  assert.ok(fullMs > 0, "the first test measured a whole generation");
  const { url } = await start({ timeoutMs: 150 });
  const before = await batchSeconds(url);
  const t0 = performance.now();
  const r = await post(url, long);
  assert.equal(r.status, 504);
  assert.match(((await r.json()) as { message: string }).message, /longer than 150 ms/);
  assert.ok(performance.now() - t0 < fullMs, "answered before a whole generation's time");
  // the slot frees once the worker stops at its next step: the batch ended well before a whole generation
  while ((await batchSeconds(url)) === before) await new Promise((res) => setTimeout(res, 10));
  const ran = ((await batchSeconds(url)) - before) * 1000;
  assert.ok(ran < fullMs / 2, `the stopped batch ran ${ran.toFixed(0)} ms; a whole one ${fullMs.toFixed(0)} ms`);
  assert.equal((await post(url, { prompt: "the whale", maxNewTokens: 2 })).status, 200, "and it serves on");
});

test("a client that hangs up mid-stream stops its generation in the worker", async () => {
  const { url } = await start();
  const before = await batchSeconds(url);
  const gone = new AbortController();
  const res = await post(url, { ...long, stream: true }, gone.signal);
  const reader = res.body!.getReader();
  await reader.read(); // a token: the batch runs
  gone.abort();
  while ((await batchSeconds(url)) === before) await new Promise((r) => setTimeout(r, 10));
  const ran = ((await batchSeconds(url)) - before) * 1000;
  assert.ok(ran < fullMs / 2, `the abandoned batch ran ${ran.toFixed(0)} ms; a whole one ${fullMs.toFixed(0)} ms`);
});

test("errors keep their kind across the thread boundary: a 500 with the worker's stack in the log; each kind rebuilt", async () => {
  const { url } = await start();
  const n = lines.length;
  const r = await post(url, { prompt: "</s>", maxNewTokens: 2 });
  assert.equal(r.status, 500);
  assert.match(((await r.json()) as { message: string }).message, /^embedding\(float32\[\d+, 64\], int64\[1, 1\], -1\): index out of range in self$/);
  const line = lines.slice(n).find((l) => l.msg === "request")! as { level: number; status: number; err: { message: string; stack: string } };
  assert.deepEqual([line.level, line.status], [50, 500]);
  assert.match(line.err.stack, /at Embedding\.forward \(.*src\/nn\/layers\.js/, "the stack is the one thrown in the worker");
  // each kind, as the worker sends it and the main thread rebuilds it (InputError: a 422 naming its field)
  const input = fromWire(toWire(new InputError("bad", "texts/1")));
  assert.ok(input instanceof InputError && input.field === "texts/1" && input.message === "bad");
  const timeout = fromWire(toWire(new TimeoutError(250)));
  assert.ok(timeout instanceof TimeoutError && timeout.timeoutMs === 250);
  assert.ok(fromWire(toWire(new CancelledError())) instanceof CancelledError);
  const other = fromWire(toWire(new RangeError("out of range")));
  assert.deepEqual([other.name, other.message, other.stack?.includes("serve-worker.test")], ["RangeError", "out of range", true]);
});

test("the worker sets libtorch's intra-op threads (--threads) on its own thread", async () => {
  const before = torch.getNumThreads();
  torch.setNumThreads(1); // this thread's count: the worker's must not follow it
  try {
    const { app } = await start({ threads: 2 });
    assert.equal((await app.lmforge.host.stats()).threads, 2, "read in the worker");
    assert.equal(torch.getNumThreads(), 1, "the main thread keeps its own");
  } finally {
    torch.setNumThreads(before);
  }
});

test("a worker that dies: the request in flight and later ones get 503, /readyz and /healthz fail, the log says so", async () => {
  const { app, url } = await start();
  const worker = (app.lmforge.host as WorkerHost).worker;
  const res = await post(url, { ...long, stream: true });
  const reader = res.body!.getReader();
  await reader.read(); // the batch runs
  await worker.terminate(); // as a crash: the host did not ask for it
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
  assert.match(text, /event: error\ndata: \{"message":"model \\"gpt\\" is unavailable: the inference worker stopped \(it exited with code 1\); the server needs a restart","statusCode":503\}/);
  const later = await post(url, { prompt: "the whale", maxNewTokens: 2 });
  assert.equal(later.status, 503);
  assert.match(((await later.json()) as { message: string }).message, /model "gpt" is unavailable: the inference worker stopped/);
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 503);
  assert.match(((await ready.json()) as { message: string }).message, /the inference worker stopped \(it exited with code 1\): gpt cannot answer/);
  assert.equal((await fetch(`${url}/healthz`)).status, 503, "liveness fails: the worker is not restarted");
  const logged = lines.find((l) => l.level === 50 && String(l.msg).startsWith("the inference worker stopped"));
  assert.ok(logged, "logged at error level");
  assert.deepEqual(logged.models, ["gpt"]);
});

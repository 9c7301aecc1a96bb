// Load and fault tests of `lmforge serve`, on loopback, bounded in count and time, with a tiny
// BERT classifier: a burst of 10x the queue size (429s, no 5xx, bounded p99, RSS back after it);
// thousands of requests in sequence (live tensors exactly level, RSS flat); slow, stalled,
// oversized, malformed and odd requests (the right 4xx while others are served); SIGTERM under
// load (requests in flight complete, new ones are refused, exit 0). Wrong types and unknown
// fields are in serve.test.ts.
//
// The sequential run sends 10,000 requests (about 40 s on a quiet 2-core machine); LMFORGE_SOAK=1 sends
// 100,000, LMFORGE_SOAK_REQUESTS=N any number.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as torch from "../src/torch/index.js";
import { AutoModelForSequenceClassification, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { createServer } from "../src/serve/server.js";
import type { FastifyInstance } from "fastify";
import { tempDir } from "./helpers.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const texts = Array.from({ length: 60 }, (_, i) => (i % 2 ? "the whale ship sailed the sea with captain ahab" : "the president spoke to congress about the nation and its law"));
const wordpiece = trainTokenizerFromTexts(texts, { kind: "wordpiece", vocabSize: 90, minFrequency: 1 });
const clfDir = join(dir, "clf");
torch.manualSeed(0);
savePretrained(AutoModelForSequenceClassification.fromConfig({ model_type: "bert", vocab_size: wordpiece.vocabSize, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 64, id2label: { 0: "nation", 1: "whale" }, label2id: { nation: 0, whale: 1 } }), clfDir, {
  config: { lmforge: { task: "classification", labels: ["nation", "whale"], max_length: 16, strategy: "full", tokenizer: { files: ["tokenizer.json"], vocab_size: wordpiece.vocabSize }, options: {} } },
});
saveTokenizer(wordpiece, clfDir);

const servers: FastifyInstance[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
/** The live tensors of the last server's models, counted in its inference worker after a collection there. */
async function liveTensors(): Promise<number> {
  return (await servers.at(-1)!.lmforge.host.stats({ collect: true })).liveTensors;
}
async function start(options: Partial<Parameters<typeof createServer>[0]> = {}): Promise<string> {
  const app = createServer({ models: { clf: clfDir }, ...options });
  servers.push(app);
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  await app.lmforge.ready;
  return url;
}
const post = (url: string, body: unknown): Promise<Response> => fetch(`${url}/v1/models/clf/classify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const MiB = 2 ** 20;
/**
 * Collects garbage and lets the finalizers run (they free the native tensors of handles nobody
 * disposed, a task later), here and in the last server's inference worker: after it, RSS and
 * live tensors count what is held, not what awaits.
 */
async function collect(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  if (servers.length > 0) await liveTensors();
}
async function rss(): Promise<number> {
  await collect();
  return process.memoryUsage().rss;
}
// what this thread made (the model above) is freed before any inference worker makes tensors:
// one thread at a time may use the addon (src/serve/host.ts)
await collect();
const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
async function queueDepth(url: string): Promise<number> {
  const m = await (await fetch(`${url}/metrics`)).text();
  return Number(/^lmforge_queue_depth\{model="clf"\} (\S+)$/m.exec(m)?.[1] ?? NaN);
}

test("a burst of 10x the queue size: some 429s, no 5xx, bounded p99 of the accepted ones, RSS back near its level", async () => {
  const QUEUE = 8;
  const url = await start({ queueSize: QUEUE, maxBatchSize: 4, maxWaitMs: 20 });
  const burst = (): Promise<{ status: number; ms: number }[]> =>
    Promise.all(
      Array.from({ length: 10 * QUEUE }, async (_, i) => {
        const t0 = performance.now();
        const r = await post(url, { texts: [texts[i % texts.length]!] });
        await r.arrayBuffer();
        return { status: r.status, ms: performance.now() - t0 };
      }),
    );
  await burst(); // warm: sockets, allocator, JIT
  const before = await rss();
  const results = await burst();
  const statuses = results.map((r) => r.status);
  const accepted = results.filter((r) => r.status === 200);
  const refused = statuses.filter((s) => s === 429).length;
  assert.deepEqual([...new Set(statuses)].sort(), [200, 429], `statuses: ${JSON.stringify(statuses)}`);
  assert.ok(refused > 0 && accepted.length >= QUEUE, `${accepted.length} accepted, ${refused} refused`);
  assert.equal(accepted.length + refused, 80, "nothing else: no 5xx, no dropped connection");
  // at most QUEUE requests wait: the last accepted waits for two batches of 4 and their 20 ms
  const p99 = percentile(accepted.map((r) => r.ms), 99);
  assert.ok(p99 < 2000, `p99 of the accepted requests ${p99.toFixed(0)} ms`);
  await new Promise((r) => setTimeout(r, 100));
  const grown = (await rss() - before) / MiB;
  assert.ok(grown < 32, `RSS grew by ${grown.toFixed(1)} MiB after the burst`);
  assert.equal(await queueDepth(url), 0);
  assert.equal((await post(url, { texts: ["the whale"] })).status, 200, "and it serves on");
});

test("10,000 requests in sequence: live tensors exactly level, RSS flat", async () => {
  const total = process.env.LMFORGE_SOAK_REQUESTS ? Number(process.env.LMFORGE_SOAK_REQUESTS) : process.env.LMFORGE_SOAK === "1" ? 100_000 : 10_000;
  const url = await start({ maxBatchSize: 1, maxWaitMs: 0 });
  const one = async (i: number): Promise<void> => {
    const r = await post(url, { texts: [texts[i % texts.length]!] }); // fetch keeps the connection alive
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  };
  const warm = Math.min(500, Math.floor(total / 4));
  for (let i = 0; i < warm; i++) await one(i);
  const before = await rss(); // collects first: tensors of finished work that only the collector frees
  const tensors = await liveTensors();
  const t0 = performance.now();
  for (let i = warm; i < total; i++) await one(i);
  const seconds = (performance.now() - t0) / 1000;
  const grown = (await rss() - before) / MiB;
  assert.equal(await liveTensors(), tensors, "every tensor of every request is freed");
  assert.ok(grown < 16, `RSS grew by ${grown.toFixed(1)} MiB over ${total - warm} requests (${((total - warm) / seconds).toFixed(0)} req/s)`);
});

/** Sends raw bytes on a fresh connection; resolves with the status line's code (0 when the server closes without one). */
function raw(port: number, head: string, body: Buffer | string, trickleMs = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    socket.on("error", () => undefined); // the server may reset a connection it refuses
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    socket.on("connect", async () => {
      socket.write(head);
      const bytes = Buffer.from(body);
      // The request asks for `connection: close`: the server closes once it has answered. The
      // client must not half-close first, as a browser or curl would not: node's server aborts a
      // request whose client has ended its side (httpAllowHalfOpen is off), so an end() sent right
      // after the last byte raced the answer, and lost whenever inference took longer than that.
      if (!trickleMs) socket.write(bytes);
      else {
        for (const b of bytes) {
          if (socket.destroyed) return;
          socket.write(Buffer.from([b]));
          await new Promise((r) => setTimeout(r, trickleMs));
        }
      }
    });
    setTimeout(() => reject(new Error("no answer in 20 s")), 20000).unref();
  });
}

test("faults: slow, stalled, oversized, malformed and odd requests get the right 4xx while others are served", async () => {
  // 6 s: twenty times the trickled body's 0.3 s, so that a loaded machine's stalls (timers firing
  // ten times late under a load of 10 on 2 cores) do not time it out
  const url = await start({ timeoutMs: 6000, bodyLimit: 4096 });
  const port = Number(new URL(url).port);
  const tensors = await liveTensors();
  const body = JSON.stringify({ texts: ["the whale ship"] });
  const head = (length: number, type = "application/json") => `POST /v1/models/clf/classify HTTP/1.1\r\nhost: x\r\ncontent-type: ${type}\r\ncontent-length: ${length}\r\nconnection: close\r\n\r\n`;
  // a body trickled a byte every 10 ms (~0.3 s): answered, and others are served meanwhile
  const slow = raw(port, head(body.length), body, 10);
  const others = await Promise.all([0, 1, 2].map((i) => post(url, { texts: [texts[i]!] }).then((r) => r.status)));
  assert.deepEqual(others, [200, 200, 200]);
  assert.equal(await slow, 200);
  // a client that stops half-way: 408 once --timeout-ms passes, the connection closed
  const t0 = performance.now();
  const stalled = await new Promise<number>((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(head(body.length) + body.slice(0, 10)));
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
  });
  assert.equal(stalled, 408);
  assert.ok(performance.now() - t0 < 12000, "within the timeout and node's checking interval");
  // a client that hangs up mid-body
  const gone = connect(port, "127.0.0.1", () => {
    gone.write(head(body.length) + body.slice(0, 10));
    gone.destroy();
  });

  type Case = [name: string, send: () => Promise<Response>, status: number, check?: (j: { message?: string; field?: string; results?: { truncated: boolean }[] }) => void];
  const json = (b: string, type = "application/json") => () => fetch(`${url}/v1/models/clf/classify`, { method: "POST", headers: { "content-type": type }, body: b });
  const cases: Case[] = [
    ["oversized (content-length)", json(JSON.stringify({ texts: ["whale ".repeat(1000)] })), 413],
    [
      "oversized (chunked, no length)",
      () => fetch(`${url}/v1/models/clf/classify`, { method: "POST", headers: { "content-type": "application/json" }, body: new Blob([JSON.stringify({ texts: ["whale ".repeat(1000)] })]).stream(), duplex: "half" } as RequestInit),
      413,
    ],
    ["invalid JSON", json('{"texts": ["a",'), 400, (j) => assert.match(j.message!, /JSON/)],
    ["a form, not JSON", json("texts=a", "application/x-www-form-urlencoded"), 415],
    ["plain text, not an object", json("the whale", "text/plain"), 422, (j) => assert.match(j.message!, /body must be object/)],
    ["an empty text", json(JSON.stringify({ texts: [""] })), 422, (j) => assert.deepEqual([j.field, /must NOT have fewer than 1 characters/.test(j.message!)], ["texts/0", true])],
    ["no texts", json(JSON.stringify({ texts: [] })), 422, (j) => assert.equal(j.field, "texts")],
    ["a null body", json("null"), 422],
    ["texts far over max length: truncated and flagged", json(JSON.stringify({ texts: [Array.from({ length: 500 }, () => "whale").join(" "), "the whale"] })), 200, (j) => assert.deepEqual(j.results!.map((r) => r.truncated), [true, false])],
  ];
  for (const [name, send, status, check] of cases) {
    // each with a good request beside it: the server keeps serving
    const [bad, good] = await Promise.all([send(), post(url, { texts: ["the whale"] })]);
    assert.equal(bad.status, status, name);
    check?.((await bad.json()) as never);
    assert.equal(good.status, 200, `${name}: the request beside it`);
  }
  assert.equal(await queueDepth(url), 0);
  assert.equal(await liveTensors(), tensors, "nothing leaked by the failures");
});

test("SIGTERM under load: requests in flight complete, new ones are refused, exit code 0", async () => {
  const child = spawn(process.execPath, [cli, "serve", clfDir, "--port", "0", "--max-wait-ms", "800", "--max-batch-size", "64"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, OMP_NUM_THREADS: "1" } });
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
  const send = (i: number): Promise<number | "refused"> => post(address, { texts: [texts[i % texts.length]!] }).then((r) => r.status, () => "refused");
  // load: 4 clients, each sending as soon as its last answer came
  let stopping = false;
  const sentAfter: Promise<number | "refused">[] = [];
  const clients = Array.from({ length: 4 }, async (_, c) => {
    const statuses: (number | "refused")[] = [];
    for (let i = 0; !stopping; i++) statuses.push(await send(c * 100 + i));
    return statuses;
  });
  await new Promise((r) => setTimeout(r, 1000)); // a batch answered, the next waiting for company
  const inFlight = Array.from({ length: 8 }, (_, i) => send(i));
  await new Promise((r) => setTimeout(r, 200)); // they are queued
  child.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 4; i++) sentAfter.push(send(i));
  stopping = true;
  assert.deepEqual(await Promise.all(inFlight), new Array(8).fill(200), "the requests in flight complete");
  const after = await Promise.all(sentAfter);
  assert.ok(after.every((s) => s === "refused" || s === 503), `requests after SIGTERM: ${JSON.stringify(after)}`);
  const load = (await Promise.all(clients)).flat();
  assert.ok(load.filter((s) => s === 200).length >= 4, "the load was served until then");
  assert.ok(load.every((s) => s === 200 || s === 503 || s === "refused"), `no other answer under load: ${JSON.stringify(load)}`);
  assert.equal(await exited, 0);
  assert.ok(out.includes('"msg":"stopped"'));
});

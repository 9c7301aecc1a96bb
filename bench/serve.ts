// Load test of `lmforge serve`: a small BERT classifier (made here, untrained: serving cost does
// not depend on the weights) served by a child process, driven by autocannon's programmatic API
// at 1, 4 and 16 concurrent connections, one text per request, with dynamic batching on
// (--max-batch-size 16, waiting --max-wait-ms for company, and with no wait) and off (--max-batch-size 1). Reports requests per second and the p50
// and p99 latency, and the server's own count of model calls (its batch-size histogram).
//
//   node dist/bench/serve.js [--requests N] [--hidden C] [--layers L] [--wait-ms MS] [--threads N]
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import * as torch from "../src/torch/index.js";
import { AutoModelForSequenceClassification, savePretrained } from "../src/models/index.js";
import { embeddedCorpus } from "../src/data/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";

/**
 * The part of autocannon's result read here (it ships no types). A run of a set amount ends at
 * a sample tick: sampleInt 50 ms keeps its duration, and so requests / duration, within 50 ms.
 */
interface LoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  duration: number;
}
type Autocannon = (o: { url: string; connections: number; amount: number; sampleInt: number; method: string; headers: Record<string, string>; requests: { body: string }[] }) => Promise<LoadResult>;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

/** A classifier folder: WordPiece on the embedded corpus, BERT of the given size, two labels. */
function makeClassifier(dir: string, hidden: number, layers: number): string[] {
  const lines = embeddedCorpus("moby-dick").join("\n").split(/[.!?]\s+/).map((s) => s.replace(/\s+/g, " ").trim()).filter((s) => s.split(" ").length >= 8 && s.split(" ").length <= 24);
  const tok = trainTokenizerFromTexts(lines.slice(0, 3000), { kind: "wordpiece", vocabSize: 2000 });
  torch.manualSeed(0);
  const model = AutoModelForSequenceClassification.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: Math.max(1, hidden / 32), intermediate_size: 4 * hidden, max_position_embeddings: 128, id2label: { 0: "a", 1: "b" }, label2id: { a: 0, b: 1 } });
  savePretrained(model, dir, { config: { lmforge: { task: "classification", labels: ["a", "b"], max_length: 64, strategy: "full", tokenizer: { files: ["tokenizer.json"], vocab_size: tok.vocabSize }, options: {} } } });
  saveTokenizer(tok, dir);
  return lines.slice(3000, 3200);
}

/** Starts `lmforge serve` in a child process; resolves with its address once it is ready. */
function startServer(dir: string, maxBatchSize: number, waitMs: number, threads: number): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [cli, "serve", "--name", `clf=${dir}`, "--port", "0", "--max-batch-size", String(maxBatchSize), "--max-wait-ms", String(waitMs), "--queue-size", "256", "--threads", String(threads)], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      for (const line of out.split("\n")) {
        if (!line.startsWith("{")) continue;
        const j = JSON.parse(line) as { msg: string; address?: string };
        if (j.msg === "ready") resolve({ url: j.address!, stop: () => (child.kill("SIGTERM"), exited) });
      }
      out = out.slice(out.lastIndexOf("\n") + 1);
    });
    child.on("exit", (code) => reject(new Error(`lmforge serve exited with ${code}`)));
  });
}

/** The server's model calls so far (the batch-size histogram's count). */
async function modelCalls(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('lmforge_batch_size_count{model="clf",endpoint="classify"}'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: "string", default: "400" }, hidden: { type: "string", default: "128" }, layers: { type: "string", default: "2" }, "wait-ms": { type: "string", default: "5" }, threads: { type: "string", default: "1" } } });
  const amount = Number(values.requests);
  const dir = mkdtempSync(join(tmpdir(), "lmforge-serve-bench-"));
  try {
    const texts = makeClassifier(join(dir, "clf"), Number(values.hidden), Number(values.layers));
    const bodies = texts.map((t) => ({ body: JSON.stringify({ texts: [t] }) }));
    console.log(`BERT classifier: hidden ${values.hidden}, ${values.layers} layers, max length 64; one text per request (8-24 words); ${amount} requests per row; server with ${values.threads} libtorch thread(s)`);
    console.log("batching            connections  req/s   p50 ms  p99 ms  model calls  non-2xx");
    // batching on with the given wait, on with no wait (a batch is whatever arrived while the last one ran), off
    const modes = [{ maxBatch: 16, waitMs: Number(values["wait-ms"]) }, { maxBatch: 16, waitMs: 0 }, { maxBatch: 1, waitMs: 0 }];
    for (const { maxBatch, waitMs } of modes) {
      const server = await startServer(join(dir, "clf"), maxBatch, waitMs, Number(values.threads));
      try {
        for (const connections of [1, 4, 16]) {
          const before = await modelCalls(server.url);
          const r = await autocannon({ url: `${server.url}/v1/models/clf/classify`, connections, amount, sampleInt: 50, method: "POST", headers: { "content-type": "application/json" }, requests: bodies });
          const calls = (await modelCalls(server.url)) - before;
          const label = maxBatch > 1 ? `on (max ${maxBatch}, ${waitMs} ms)` : "off (max 1)";
          console.log(`${label.padEnd(20)}${String(connections).padStart(11)}  ${(r.requests.total / r.duration).toFixed(0).padStart(5)}  ${r.latency.p50.toFixed(1).padStart(7)}  ${r.latency.p99.toFixed(1).padStart(6)}  ${String(calls).padStart(11)}  ${String(r.non2xx + r.errors).padStart(7)}`);
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

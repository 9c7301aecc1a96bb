// Load test of `lmforge serve` against a minimal PyTorch HTTP server (bench/peers/serve_torch.py)
// on the same fine-tuned model. A small BERT is made here and fine-tuned for a few steps with
// lmforge's finetune() (so the folder is a real fine-tuned one, input_stats.json included: the
// server's drift monitoring is on). Each server runs in a child process; autocannon (its
// programmatic API) drives it at 1, 4 and 16 concurrent keep-alive connections for a fixed time
// per row, one text per request. Rows: lmforge with dynamic batching (--max-batch-size 16, waiting
// --max-wait-ms for company), lmforge without (--max-batch-size 1), and the PyTorch baseline.
// Both sides receive the same JSON body and compute the same per request: WordPiece tokenisation
// of the text, truncation to the max length, one forward, softmax, a JSON answer; only lmforge
// batches across requests. Both use the same number of intra-op threads.
//
//   node dist/bench/serve.js [--duration S] [--hidden C] [--layers L] [--steps N] [--wait-ms MS] [--threads N] [--json]
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { embeddedCorpus } from "../src/data/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune } from "../src/train/index.js";
import { PEERS_DIR, findPython, peerEnv } from "./peer.js";

/** The part of autocannon's result read here (it ships no types). duration is in seconds. */
interface LoadResult {
  requests: { total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  duration: number;
}
type Autocannon = (o: { url: string; connections: number; duration: number; method: string; headers: Record<string, string>; requests: { body: string }[] }) => Promise<LoadResult>;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

export interface ServeBenchOptions {
  /** Seconds of load per row. */
  duration: number;
  hidden: number;
  layers: number;
  /** Fine-tuning steps (batch 16). */
  steps: number;
  /** lmforge's --max-wait-ms when batching. */
  waitMs: number;
  /** Intra-op threads of both servers. */
  threads: number;
}

export interface ServeBenchRow {
  server: string;
  clients: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Model calls during the row (lmforge's batch-size histogram); null for the baseline. */
  modelCalls: number | null;
  failed: number;
}

/** Sentences of the embedded corpus (8 to 24 words), labelled by topic: the sea or not. */
function sentences(): { text: string; label: string; source: string }[] {
  const lines = embeddedCorpus("moby-dick").join("\n").split(/[.!?]\s+/).map((s) => s.replace(/\s+/g, " ").trim()).filter((s) => s.split(" ").length >= 8 && s.split(" ").length <= 24);
  return lines.map((text, i) => ({ text, label: /whale|sea|ship|boat|ocean|water/i.test(text) ? "sea" : "other", source: `moby-dick:${i}` }));
}

/** A base BERT (WordPiece on the corpus), fine-tuned as a classifier into dir/clf. Returns texts it did not train on. */
async function makeClassifier(dir: string, o: ServeBenchOptions, log: (line: string) => void): Promise<string[]> {
  const data = sentences();
  const tok = trainTokenizerFromTexts(data.slice(0, 3000).map((e) => e.text), { kind: "wordpiece", vocabSize: 2000 });
  torch.manualSeed(0);
  const base = AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: o.hidden, num_hidden_layers: o.layers, num_attention_heads: Math.max(1, o.hidden / 32), intermediate_size: 4 * o.hidden, max_position_embeddings: 128 });
  savePretrained(base, join(dir, "base"));
  saveTokenizer(tok, join(dir, "base"));
  const t0 = performance.now();
  const r = await finetune({ model: join(dir, "base"), train: data.slice(0, 2000), validation: data.slice(2000, 2200), maxSteps: o.steps, batchSize: 16, learningRate: 1e-3, maxLength: 64, seed: 0, patience: 0, out: join(dir, "clf"), evalBatches: 4 });
  log(`fine-tuned ${o.steps} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s: validation ${r.train.best?.metric ?? "metric"} ${r.train.best?.value.toFixed(3) ?? "n/a"}`);
  return data.slice(3000, 3200).map((e) => e.text);
}

interface Running {
  url: string;
  stop: () => Promise<void>;
}

/** Resolves when a line of the child's stdout gives its address; rejects if it exits first. */
function address(child: ChildProcess, find: (line: string) => string | null, what: string): Promise<Running> {
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  let out = "";
  let found = false;
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      if (found) return; // the request log lines that follow are drained, not read
      out += d.toString();
      for (const line of out.split("\n")) {
        const url = find(line);
        if (url && !found) {
          found = true;
          resolve({ url, stop: () => (child.kill("SIGTERM"), exited) });
        }
      }
      out = out.slice(out.lastIndexOf("\n") + 1);
    });
    child.on("exit", (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

/** `lmforge serve` in a child process, as deployed: it logs a JSON line per request (to a pipe here). */
function startLmforge(dir: string, maxBatchSize: number, waitMs: number, threads: number): Promise<Running> {
  const child = spawn(process.execPath, [cli, "serve", "--name", `clf=${dir}`, "--port", "0", "--max-batch-size", String(maxBatchSize), "--max-wait-ms", String(waitMs), "--queue-size", "256", "--threads", String(threads)], { stdio: ["ignore", "pipe", "inherit"] });
  return address(child, (line) => (line.startsWith("{") && (JSON.parse(line) as { msg: string }).msg === "ready" ? (JSON.parse(line) as { address: string }).address : null), "lmforge serve");
}

/** The PyTorch baseline in a child process, with PyTorch's own defaults but the thread count. */
function startTorch(dir: string, threads: number): Promise<Running> {
  const env = peerEnv(torch.runtimeInfo().openblasCoreType);
  const child = spawn(findPython(), [join(PEERS_DIR, "serve_torch.py"), JSON.stringify({ dir, port: 0, threads })], { stdio: ["ignore", "pipe", "inherit"], env });
  return address(child, (line) => (/^ready \d+$/.test(line) ? `http://127.0.0.1:${line.slice(6)}` : null), "serve_torch.py");
}

/** lmforge's model calls so far (its batch-size histogram's count). */
async function modelCalls(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('lmforge_batch_size_count{model="clf",endpoint="classify"}'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

type Probabilities = { results: { label: string; probabilities: Record<string, number>; truncated: boolean }[] };
const classify = async (url: string, texts: string[]): Promise<Probabilities> => (await (await fetch(`${url}/v1/models/clf/classify`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ texts }) })).json()) as Probabilities;

/** Runs the rows; returns them and notes (the model, the parity of the two sides' answers). */
export async function runServeBench(o: ServeBenchOptions, log: (line: string) => void = console.error): Promise<{ rows: ServeBenchRow[]; notes: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "lmforge-serve-bench-"));
  const rows: ServeBenchRow[] = [];
  const notes: string[] = [];
  try {
    const texts = await makeClassifier(dir, o, log);
    const clf = join(dir, "clf");
    const bodies = texts.map((t) => ({ body: JSON.stringify({ texts: [t] }) }));
    const servers: { name: string; start: () => Promise<Running>; lmforge: boolean }[] = [
      { name: `lmforge, batched (max 16, ${o.waitMs} ms)`, start: () => startLmforge(clf, 16, o.waitMs, o.threads), lmforge: true },
      { name: "lmforge, unbatched (max 1)", start: () => startLmforge(clf, 1, 0, o.threads), lmforge: true },
      { name: "PyTorch http.server", start: () => startTorch(clf, o.threads), lmforge: false },
    ];
    const answers: Probabilities[] = [];
    for (const s of servers) {
      const server = await s.start();
      try {
        answers.push(await classify(server.url, texts.slice(0, 16)));
        // warm: connections, allocator, the interpreter
        await autocannon({ url: `${server.url}/v1/models/clf/classify`, connections: 4, duration: 1, method: "POST", headers: { "content-type": "application/json" }, requests: bodies });
        for (const clients of [1, 4, 16]) {
          const before = s.lmforge ? await modelCalls(server.url) : 0;
          const r = await autocannon({ url: `${server.url}/v1/models/clf/classify`, connections: clients, duration: o.duration, method: "POST", headers: { "content-type": "application/json" }, requests: bodies });
          const row = { server: s.name, clients, requestsPerSec: r.requests.total / r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99, modelCalls: s.lmforge ? (await modelCalls(server.url)) - before : null, failed: r.non2xx + r.errors };
          rows.push(row);
          log(formatRow(row));
        }
      } finally {
        await server.stop();
      }
    }
    // the same model on both sides: the probabilities of 16 texts agree
    const diff = Math.max(...answers[0]!.results.flatMap((a, i) => Object.entries(a.probabilities).map(([k, p]) => Math.abs(p - answers[2]!.results[i]!.probabilities[k]!))));
    const sameLabels = answers[0]!.results.every((a, i) => a.label === answers[2]!.results[i]!.label);
    notes.push(`BERT classifier: hidden ${o.hidden}, ${o.layers} layers, max length 64, WordPiece 2000, fine-tuned ${o.steps} steps; one text (8-24 words) per request; ${o.duration} s per row; ${o.threads} intra-op thread(s) on both sides`);
    notes.push(`parity on 16 texts: labels ${sameLabels ? "equal" : "DIFFER"}, largest probability difference ${diff.toExponential(1)}`);
    notes.push("both sides: JSON in, WordPiece tokenisation, truncation, forward, softmax, JSON out per request; lmforge also runs drift monitoring, metrics and validation; only lmforge batches across requests");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, notes };
}

const HEADER = `${"server".padEnd(32)}${"clients".padStart(8)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"model calls".padStart(13)}${"failed".padStart(8)}`;
function formatRow(r: ServeBenchRow): string {
  return `${r.server.padEnd(32)}${String(r.clients).padStart(8)}${r.requestsPerSec.toFixed(0).padStart(9)}${r.p50Ms.toFixed(1).padStart(9)}${r.p99Ms.toFixed(1).padStart(9)}${(r.modelCalls === null ? "-" : String(r.modelCalls)).padStart(13)}${String(r.failed).padStart(8)}`;
}

/** The table, rows grouped by clients. */
export function formatServeBench(rows: readonly ServeBenchRow[]): string {
  const sorted = [...rows].sort((a, b) => a.clients - b.clients);
  return [HEADER, ...sorted.map(formatRow)].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: "string", default: "10" }, hidden: { type: "string", default: "128" }, layers: { type: "string", default: "2" }, steps: { type: "string", default: "40" }, "wait-ms": { type: "string", default: "5" }, threads: { type: "string", default: "1" }, json: { type: "boolean", default: false } } });
  const o: ServeBenchOptions = { duration: Number(values.duration), hidden: Number(values.hidden), layers: Number(values.layers), steps: Number(values.steps), waitMs: Number(values["wait-ms"]), threads: Number(values.threads) };
  for (const [k, v] of Object.entries(o)) if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`--${k}: a number >= 0 is expected, got ${v}`);
  const { rows, notes } = await runServeBench(o);
  if (values.json) console.log(JSON.stringify({ rows, notes }));
  else console.log(`${formatServeBench(rows)}\n${notes.join("\n")}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

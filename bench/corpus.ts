// Corpora larger than memory (issue 20): for generated corpora of 200 MB, 1 GB and 2 GB
// (scripts/make-big-corpus.mjs: the embedded corpora's paragraphs repeated and shuffled),
//   1. streaming tokenisation into a token file: throughput (MB/s of text) and peak RSS;
//   2. a second `pretrain --stream` over the same file: the token file reused, time from
//      process start to the first optimizer step, and peak RSS while training (5 steps of a
//      tiny BERT, batches of 8 x 128 tokens read from the file).
// Each phase runs in its own process (this file again, with LMF_CORPUS_PHASE), so that its
// peak RSS (getrusage's maxrss) is its own. Hugging Face `datasets` (the peer, its
// `map(batched=True, num_proc)` tokenisation) is run only where it is installed.
// Run: nice node dist/bench/corpus.js [--sizes 200,1000,2000] [--threads N] [--dir /tmp/lmforge-corpus]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { availableParallelism } from "node:os";
import { embeddedCorpus } from "../src/data/corpora.js";
import { streamTokenize } from "../src/data/stream-tokenize.js";
import { loadTokenizer, saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";

const self = fileURLToPath(import.meta.url);
const root = resolve(self, "..", "..", "..");

interface Phase {
  seconds: number;
  maxRssMb: number;
  tokens?: number;
  firstStepSeconds?: number;
}

async function phase(): Promise<void> {
  const [what, input, tokDir, threads] = process.argv.slice(2) as [string, string, string, string];
  const tok = loadTokenizer(tokDir);
  const started = performance.now();
  const out: Phase = { seconds: 0, maxRssMb: 0 };
  if (what === "tokenise") {
    const r = await streamTokenize([input], tok, tokDir, { threads: Number(threads) });
    out.tokens = r.file.tokens;
    if (r.reused) throw new Error("the token file was already there: the bench measures a first tokenisation");
  } else {
    const { pretrain } = await import("../src/train/index.js");
    let first: number | undefined;
    await pretrain({ model: "bert-tiny", modelConfig: { hidden_size: 64, intermediate_size: 128, num_attention_heads: 2 }, tokenizer: tokDir, input: [input], stream: true, maxSteps: 5, batchSize: 8, seqLen: 128, evalEvery: 5, evalBatches: 2, saveEvery: 1000, out: join(process.env.LMFORGE_CACHE!, "run"), onStep: () => void (first ??= process.uptime()) });
    out.firstStepSeconds = first;
  }
  out.seconds = (performance.now() - started) / 1000;
  out.maxRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify(out));
}

function run(args: string[], env: Record<string, string>): Phase {
  const r = spawnSync(process.execPath, [self, ...args], { env: { ...process.env, ...env, LMF_CORPUS_PHASE: "1", OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE", LMFORGE_NO_PROGRESS: "1" }, encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${args[0]} failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Phase;
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
  };
  const sizes = arg("sizes", "200,1000,2000").split(",").map(Number);
  const threads = Number(arg("threads", String(availableParallelism())));
  const dir = arg("dir", "/tmp/lmforge-corpus");
  mkdirSync(dir, { recursive: true });
  const tokDir = join(dir, "tokenizer");
  if (!existsSync(join(tokDir, "tokenizer.json"))) saveTokenizer(trainTokenizerFromTexts([...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")], { kind: "wordpiece", vocabSize: 8192, lowercase: true }), tokDir);
  const rows: string[] = [];
  for (const mb of sizes) {
    const file = join(dir, `corpus-${mb}mb.txt`);
    if (!existsSync(file)) {
      const g = spawnSync(process.execPath, [join(root, "scripts", "make-big-corpus.mjs"), file, String(mb)], { stdio: "inherit" });
      if (g.status !== 0) throw new Error(`make-big-corpus failed for ${mb} MB`);
    }
    const cache = join(dir, `cache-${mb}`);
    rmSync(cache, { recursive: true, force: true });
    const env = { LMFORGE_CACHE: cache };
    const t = run(["tokenise", file, tokDir, String(threads)], env);
    const bytes = statSync(file).size;
    const second = run(["train", file, tokDir, String(threads)], env);
    rows.push(`| ${(bytes / 1e6).toFixed(0)} MB | ${t.tokens} | ${t.seconds.toFixed(0)} s | ${(bytes / 1e6 / t.seconds).toFixed(2)} | ${t.maxRssMb.toFixed(0)} | ${second.maxRssMb.toFixed(0)} | ${second.firstStepSeconds!.toFixed(1)} s |`);
    console.error(rows[rows.length - 1]);
    rmSync(cache, { recursive: true, force: true });
  }
  const peer = spawnSync("python3", ["-c", "import datasets"], { encoding: "utf8" });
  console.log(`\nStreaming tokenisation (${threads} worker threads, wordpiece 8192) and training from the token file (bert-tiny, 8 x 128)\n`);
  console.log("| corpus | tokens | tokenise | MB/s | peak RSS tokenising (MB) | peak RSS training (MB) | 2nd run: first step |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  console.log(peer.status === 0 ? "\n(Hugging Face datasets is installed: its side is not measured by this version of the bench.)" : "\nHugging Face `datasets` is not installed here: the peer side (datasets.map(batched=True, num_proc)) is skipped.");
}

if (process.env.LMF_CORPUS_PHASE) await phase();
else await main();

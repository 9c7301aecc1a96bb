// Corpora larger than memory (issue 20): the streamed token file holds exactly the in-memory
// tokenisation, whatever the thread count; windows read from it are today's sequences; a
// damaged file is rebuilt and a failed tokenisation leaves none; a streamed pretraining run
// trains on the same batches as the in-memory one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { loadTokenizer, trainTokenizerFromTexts, saveTokenizer } from "../src/tokenizers/index.js";
import { embeddedCorpus } from "../src/data/corpora.js";
import { readDocuments } from "../src/data/text.js";
import { packedExamples, splitDocIndices, splitDocs, tokenizeCorpus } from "../src/data/pretraining.js";
import type { Example } from "../src/data/pretraining.js";
import { TokenFile, tokenDType, tokenFilePaths } from "../src/data/token-file.js";
import { streamTokenize } from "../src/data/stream-tokenize.js";
import { lazyArray, packedWindows } from "../src/data/windows.js";
import { pretrain } from "../src/train/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
process.env.LMFORGE_CACHE = join(dir, "cache");
const chapters = embeddedCorpus("moby-dick").slice(0, 24);
const tok = trainTokenizerFromTexts(chapters, { kind: "wordpiece", vocabSize: 1500, lowercase: true });
const tokDir = join(dir, "tok");
saveTokenizer(tok, tokDir);
const sp = { cls: tok.tokenToId("[CLS]")!, sep: tok.tokenToId("[SEP]")!, pad: tok.tokenToId("[PAD]")!, mask: tok.tokenToId("[MASK]")! };

// Inputs in each form the reader knows: paragraphs split by blank and whitespace-only lines
// (CRLF in one file), a JSONL file with a text field, and a folder of both.
const inputDir = join(dir, "input");
const paragraphs = chapters.slice(0, 16).flatMap((c) => c.split(/\n\s*\n/).slice(0, 6));
writeFileSync(join(dir, "a.txt"), paragraphs.slice(0, 40).join("\n\n") + "\n");
writeFileSync(join(dir, "b.txt"), paragraphs.slice(40).join("\r\n \t\r\n").replace(/\n(?! |\r)/g, "\r\n"));
writeFileSync(join(dir, "c.jsonl"), chapters.slice(16).map((t, i) => JSON.stringify({ text: t, id: i })).join("\n") + "\n\n");
const inputs = [join(dir, "a.txt"), join(dir, "b.txt"), join(dir, "c.jsonl")];
const docs = readDocuments(inputs);
const corpus = tokenizeCorpus(docs, tok, { cache: false });

test("the token file holds the in-memory tokenisation: ids, word and sentence starts, document boundaries", async () => {
  const r = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: inputDir });
  const f = r.file;
  assert.equal(r.reused, false);
  assert.equal(f.documents, docs.length);
  assert.equal(f.tokens, corpus.ids.length);
  assert.equal(f.header.dtype, "uint16");
  assert.equal(readFileSync(tokenFilePaths(inputDir, r.key).ids).byteLength, 2 * corpus.ids.length, "two bytes a token");
  assert.deepEqual(f.ids(0, f.tokens), corpus.ids);
  assert.deepEqual(Uint8Array.from(f.flags(0, f.tokens), (x) => x & 1), corpus.wordStart);
  const sentenceStarts = new Uint8Array(f.tokens);
  for (let s = 0; s < corpus.sentStart.length - 1; s++) sentenceStarts[corpus.sentStart[s]!] = 1;
  assert.deepEqual(Uint8Array.from(f.flags(0, f.tokens), (x) => (x >> 1) & 1), sentenceStarts);
  for (let d = 0; d <= docs.length; d++) assert.equal(f.docOffsets[d], corpus.sentStart[corpus.docStart[d]!], `document ${d}'s start`);
  // a second run finds the file by the inputs' sizes and mtimes and tokenises nothing
  const again = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: inputDir });
  assert.equal(again.reused, true);
  assert.equal(again.key, r.key);
  f.close();
  again.file.close();
});

test("ids take uint16 up to 65536 ids, uint32 above", () => {
  assert.equal(tokenDType(65536), "uint16");
  assert.equal(tokenDType(65537), "uint32");
});

test("worker-thread tokenisation writes the same bytes for 1, 2 and 3 threads as the main thread", async () => {
  const bytes = (d: string, key: string): string[] => Object.values(tokenFilePaths(d, key)).filter((p) => !p.endsWith(".json")).map((p) => readFileSync(p).toString("hex"));
  const ref = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: join(dir, "t0"), chunkChars: 3000 });
  ref.file.close();
  const want = bytes(join(dir, "t0"), ref.key);
  for (const threads of [1, 2, 3]) {
    const r = await streamTokenize(inputs, tok, tokDir, { threads, dir: join(dir, `t${threads}`), chunkChars: 3000 });
    r.file.close();
    assert.deepEqual(bytes(join(dir, `t${threads}`), r.key), want, `${threads} threads`);
  }
});

test("windows read from the token file are today's packed sequences for the same seed (masked and causal)", async () => {
  const r = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: inputDir });
  assert.deepEqual(splitDocIndices(docs.length, 0.1, 7), splitDocs(corpus, 0.1, 7));
  const split = splitDocIndices(docs.length, 0.1, 7);
  const strip = (e: Example): unknown => ({ ...e });
  for (const causal of [false, true]) {
    for (const part of [split.train, split.validation]) {
      const want = packedExamples(corpus, part, 48, sp, { causal });
      const got = packedWindows(r.file, part, 48, sp, { causal });
      assert.equal(got.length, want.length);
      assert.ok(want.length > 10);
      for (let i = 0; i < want.length; i++) assert.deepEqual(strip(got[i]!), strip(want[i]!), `${causal ? "causal" : "masked"} window ${i}`);
    }
  }
  // one short document: a single short block, as packedExamples makes it
  const one = packedWindows(r.file, [0], 100000, sp, { causal: true });
  assert.deepEqual(strip(one[0]!), strip(packedExamples(corpus, [0], 100000, sp, { causal: true })[0]!));
  r.file.close();
});

test("a lazy array reads like an array: length, index, slice, map, spread; writes are refused", () => {
  const a = lazyArray(4, (i) => i * i);
  assert.equal(a.length, 4);
  assert.equal(a[3], 9);
  assert.equal(a[4], undefined);
  assert.deepEqual(a.slice(1, 3), [1, 4]);
  assert.deepEqual(a.map((x) => x + 1), [1, 2, 5, 10]);
  assert.deepEqual([...a], [0, 1, 4, 9]);
  assert.ok(Array.isArray(a));
  assert.throws(() => ((a as number[])[0] = 1), /read-only/);
});

test("a truncated or corrupt token file is rebuilt; a failed tokenisation leaves no file", async () => {
  const d = join(dir, "damage");
  const first = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: d });
  first.file.close();
  const p = tokenFilePaths(d, first.key);
  const whole = readFileSync(p.ids);
  truncateSync(p.ids, whole.byteLength - 2);
  assert.throws(() => TokenFile.open(d, first.key), new RegExp(`${first.key}\\.ids: ${whole.byteLength - 2} bytes, the header says ${whole.byteLength}`));
  const rebuilt = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: d });
  assert.equal(rebuilt.reused, false);
  rebuilt.file.close();
  assert.deepEqual(readFileSync(p.ids), whole);
  writeFileSync(p.header, "{ not json");
  // a part left by a process that is gone is removed when the file is rebuilt
  const deadPid = spawnSync(process.execPath, ["-e", ""]).pid!;
  const stale = join(d, `.${first.key}.ids.tmp-${deadPid}-beef`);
  writeFileSync(stale, "half");
  const again = await streamTokenize(inputs, tok, tokDir, { threads: 0, dir: d });
  assert.equal(again.reused, false);
  again.file.close();
  assert.equal((JSON.parse(readFileSync(p.header, "utf8")) as { tokens: number }).tokens, corpus.ids.length);
  assert.equal(existsSync(stale), false);
  // a bad JSONL line halfway: the error names file:line and nothing is left behind
  const bad = join(dir, "bad.jsonl");
  writeFileSync(bad, `${JSON.stringify({ text: "one document." })}\n{"text": oops}\n`);
  const e = join(dir, "empty-after-failure");
  await assert.rejects(streamTokenize([bad], tok, tokDir, { threads: 2, dir: e }), /bad\.jsonl:2: not valid JSON/);
  assert.deepEqual(existsSync(e) ? readdirSync(e) : [], []);
});

test("a tokenisation killed halfway leaves no token file under its real names; the next run builds it", async () => {
  const big = join(dir, "big.txt");
  writeFileSync(big, Array.from({ length: 30 }, () => paragraphs.join("\n\n")).join("\n\n"));
  const d = join(dir, "killed");
  const moduleUrl = new URL("../src/data/stream-tokenize.js", import.meta.url).href;
  const tokUrl = new URL("../src/tokenizers/index.js", import.meta.url).href;
  const script = `const { streamTokenize } = await import(${JSON.stringify(moduleUrl)}); const { loadTokenizer } = await import(${JSON.stringify(tokUrl)});
let said = false; await streamTokenize([${JSON.stringify(big)}], loadTokenizer(${JSON.stringify(tokDir)}), ${JSON.stringify(tokDir)}, { threads: 1, dir: ${JSON.stringify(d)}, chunkChars: 2000, onProgress: () => { if (!said) { said = true; console.log("started"); } } });
console.log("finished");`;
  writeFileSync(join(dir, "tokenise.mjs"), script);
  const child = spawn(process.execPath, [join(dir, "tokenise.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
  const first = await new Promise<string>((res) => child.stdout.once("data", (b: Buffer) => res(b.toString().trim())));
  assert.equal(first, "started", "the child was to be killed while tokenising");
  child.kill("SIGKILL");
  await new Promise((res) => child.once("exit", res));
  const left = readdirSync(d);
  assert.ok(left.length > 0 && left.every((n) => n.startsWith(".") && n.includes(".tmp-")), `only temporary parts are left: ${left.join(", ")}`);
  // the same tokenizer as the child's (loaded from its files: the key hashes the loaded tokenizer)
  const r = await streamTokenize([big], loadTokenizer(tokDir), tokDir, { threads: 0, dir: d });
  assert.equal(r.reused, false);
  assert.equal(r.file.documents, readDocuments([big]).length);
  r.file.close();
  assert.deepEqual(readdirSync(d).sort(), [".docs", ".flags", ".ids", ".json"].map((e) => r.key + e).sort(), "the stale parts were removed");
});

test("a streamed pretraining run trains on the same batches as the in-memory one (same losses), and says where its data comes from", async () => {
  const small = { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2 };
  const run = async (stream: boolean): Promise<{ losses: number[]; lines: string[]; train: number; validation: number }> => {
    const losses: number[] = [];
    const lines: string[] = [];
    const r = await pretrain({ model: "bert-tiny", modelConfig: small, tokenizer: tokDir, input: inputs, stream, tokenizeThreads: 2, maxSteps: 3, batchSize: 4, seqLen: 32, precision: "fp32", seed: 5, out: join(dir, stream ? "streamed" : "memory"), evalEvery: 3, evalBatches: 2, onStep: (s) => losses.push(s.loss), log: (l) => lines.push(l) });
    return { losses, lines, train: r.trainExamples, validation: r.validationExamples };
  };
  const memory = await run(false);
  const streamed = await run(true);
  assert.equal(streamed.train, memory.train);
  assert.equal(streamed.validation, memory.validation);
  assert.deepEqual(streamed.losses, memory.losses);
  assert.ok(streamed.lines.some((l) => /^token file [0-9a-f]{32} \(uint16, \d+ tokens, \d+ documents\): (tokenised|reused)/.test(l)), streamed.lines.join("\n"));
  await assert.rejects(pretrain({ model: "bert-tiny", modelConfig: small, tokenizer: tokDir, input: inputs, objectives: "mlm,sop", stream: true, maxSteps: 1, out: join(dir, "sop") }), /--stream: cannot stream this task's text \([a-z+]*sop pairs sentences/);
});

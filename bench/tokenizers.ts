// Tokenizer benchmark, side by side with @huggingface/tokenizers (Rust, in this same process):
// encoding Moby Dick in batches of 32 paragraphs with the same tokenizer.json (fresh instances
// each repeat: the word caches start cold), after training a 30,000-piece vocabulary (quick:
// the first 10 chapters, 2,000 pieces).
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { embeddedCorpus } from "../src/data/corpora.js";
import { tokenizerFromJSON, tokenizerToJSON, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { makeRow, peakRssMB, resetPeakRss, race } from "./row.js";
import type { BenchRow, Measured } from "./row.js";

interface TokenizerCase {
  kind: "wordpiece" | "bpe";
  json: ReturnType<typeof tokenizerToJSON>;
  batches: string[][];
}

/** k tokens/s of one encode pass over the batches (encodeBatch answers the batch's token count). */
function timeEncode(batches: string[][], encodeBatch: (b: string[]) => number, count: (n: number) => void): Measured {
  resetPeakRss();
  const t = process.hrtime.bigint();
  let tokens = 0;
  for (const b of batches) tokens += encodeBatch(b);
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  count(tokens);
  return { value: tokens / secs / 1e3, rssMB: peakRssMB() };
}

/** The tokenizer rows: WordPiece and BPE encoding against @huggingface/tokenizers, with the training times as notes. */
export function runTokenizerBench(options: { repeats?: number; quick?: boolean } = {}): { rows: BenchRow[]; notes: string[] } {
  const quick = options.quick ?? false;
  const all = embeddedCorpus("moby-dick");
  const chapters = quick ? all.slice(0, 10) : all;
  const vocabSize = quick ? 2000 : 30000;
  const paragraphs = chapters.flatMap((c) => c.split(/\n\s*\n/)).filter((p) => p.trim().length > 0);
  const batches: string[][] = [];
  for (let i = 0; i < paragraphs.length; i += 32) batches.push(paragraphs.slice(i, i + 32));
  const notes: string[] = [];
  const cases: TokenizerCase[] = (["wordpiece", "bpe"] as const).map((kind) => {
    const t0 = process.hrtime.bigint();
    const trained = trainTokenizerFromTexts(chapters, { kind, vocabSize, minFrequency: 1, lowercase: kind === "wordpiece" });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    notes.push(`${kind}: trained a ${trained.vocabSize}-piece vocabulary on Moby Dick (${(chapters.join("").length / 1e6).toFixed(1)} M characters) in ${secs.toFixed(2)} s`);
    return { kind, json: tokenizerToJSON(trained), batches };
  });
  const counts = new Map<string, number[]>();
  const count = (key: string) => (n: number): void => void counts.set(key, [...(counts.get(key) ?? []), n]);
  const ours = (c: TokenizerCase): Measured => {
    const a = tokenizerFromJSON(c.json);
    return timeEncode(c.batches, (b) => a.encodeBatch(b).reduce((n, e) => n + e.ids.length, 0), count(`${c.kind} ours`));
  };
  // the peer runs in this process: its RSS is this process's peak during its pass, as ours
  const theirs = (cs: TokenizerCase[]): { torch: string; results: Measured[] } => ({
    torch: "",
    results: cs.map((c) => {
      const h = new HFTokenizer(c.json, {});
      return { ...timeEncode(c.batches, (b) => b.reduce((n, p) => n + h.encode(p).ids.length, 0), count(`${c.kind} peer`)), variant: "@huggingface/tokenizers encode(), same process" };
    }),
  });
  const { sides } = race(cases, options.repeats ?? 3, ours, theirs);
  const rows = cases.map((c, i) => {
    const [n, m] = [counts.get(`${c.kind} ours`)![0]!, counts.get(`${c.kind} peer`)![0]!];
    if (n !== m) throw new Error(`bench: the two ${c.kind} tokenizers disagree on the token count (${n} vs ${m})`);
    return makeRow({ bench: "tokenizers", name: `${c.kind} encode Moby Dick${quick ? " (10 chapters)" : ""}, batches of 32 (${n} tokens)`, work: "equal", unit: "k tokens/s", higherIsBetter: true }, sides[i]!.ours, sides[i]!.theirs);
  });
  return { rows, notes };
}

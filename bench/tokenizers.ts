// Tokenizer benchmark, side by side with @huggingface/tokenizers in the same run: encoding
// Moby Dick in batches of 32 paragraphs with the same tokenizer.json (fresh instances each
// repeat: the word caches start cold), and training a 30,000-piece vocabulary.
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { embeddedCorpus } from "../src/data/corpora.js";
import { tokenizerFromJSON, tokenizerToJSON, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import type { EngineBenchRow } from "./engine.js";
import { median } from "./peer.js";

export function runTokenizerBench(repeats = 3): { rows: EngineBenchRow[]; notes: string[] } {
  const chapters = embeddedCorpus("moby-dick");
  const paragraphs = chapters.flatMap((c) => c.split(/\n\s*\n/)).filter((p) => p.trim().length > 0);
  const batches: string[][] = [];
  for (let i = 0; i < paragraphs.length; i += 32) batches.push(paragraphs.slice(i, i + 32));
  const rows: EngineBenchRow[] = [];
  const notes: string[] = [];
  for (const kind of ["wordpiece", "bpe"] as const) {
    const t0 = process.hrtime.bigint();
    const trained = trainTokenizerFromTexts(chapters, { kind, vocabSize: 30000, minFrequency: 1, lowercase: kind === "wordpiece" });
    const trainSecs = Number(process.hrtime.bigint() - t0) / 1e9;
    notes.push(`${kind}: trained a ${trained.vocabSize}-piece vocabulary on Moby Dick (${(chapters.join("").length / 1e6).toFixed(1)} M characters) in ${trainSecs.toFixed(2)} s`);
    const json = tokenizerToJSON(trained);
    const ours: number[] = [];
    const theirs: number[] = [];
    let tokens = 0;
    for (let r = 0; r < repeats; r++) {
      const a = tokenizerFromJSON(json);
      let t = process.hrtime.bigint();
      let n = 0;
      for (const b of batches) for (const e of a.encodeBatch(b)) n += e.ids.length;
      ours.push(Number(process.hrtime.bigint() - t) / 1e9);
      const h = new HFTokenizer(json, {});
      t = process.hrtime.bigint();
      let m = 0;
      for (const b of batches) for (const p of b) m += h.encode(p).ids.length;
      theirs.push(Number(process.hrtime.bigint() - t) / 1e9);
      if (n !== m) throw new Error(`bench: the two tokenizers disagree on the token count (${n} vs ${m})`);
      tokens = n;
    }
    rows.push({
      name: `${kind} encode Moby Dick, batches of 32 (${tokens} tokens) vs @huggingface/tokenizers`,
      unit: "k tokens/s",
      lmforge: tokens / median(ours) / 1e3,
      pytorch: tokens / median(theirs) / 1e3,
      speedup: median(theirs) / median(ours),
    });
  }
  return { rows, notes };
}

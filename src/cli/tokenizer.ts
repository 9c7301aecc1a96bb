// `lmforge tokenizer train`
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TOKENIZER_TRAIN_DEFAULTS, saveTokenizer, trainTokenizer } from "../tokenizers/index.js";
import { embeddedCorpus } from "../data/corpora.js";
import { defineOptions } from "../io/options.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";

/** The command's options; the tokenizer trainer's defaults are its own (TOKENIZER_TRAIN_DEFAULTS). */
export const TOKENIZER_TRAIN_OPTIONS = defineOptions([
  { flag: "input", key: "input", type: "strings", arg: "FILE", help: "text files to learn from, as well as FILE arguments (default: the embedded corpora)" },
  { flag: "kind", key: "kind", type: "string", choices: ["wordpiece", "bpe", "unigram"], required: true, help: "WordPiece (BERT), byte-level BPE (GPT-2, RoBERTa) or Unigram (T5, SentencePiece's EM)" },
  { flag: "vocab-size", key: "vocabSize", type: "int", min: 1, required: true, help: "pieces in the vocabulary, special tokens included" },
  { flag: "min-frequency", key: "minFrequency", type: "int", min: 1, default: TOKENIZER_TRAIN_DEFAULTS.minFrequency, help: "WordPiece and BPE: pairs seen fewer times are not merged" },
  { flag: "lowercase", key: "lowercase", type: "boolean", default: TOKENIZER_TRAIN_DEFAULTS.lowercase, help: "WordPiece: lowercase and strip accents (uncased)" },
  { flag: "special-tokens", key: "specialTokens", type: "string", arg: "A,B,...", parse: (t: string) => t.split(",").map((s) => s.trim()).filter(Boolean), help: "default [PAD],[UNK],[CLS],[SEP],[MASK] (WordPiece), <s>,<pad>,</s>,<unk>,<mask> (BPE) or <pad>,</s>,<unk> (Unigram)" },
  { flag: "sentinels", key: "sentinels", type: "int", min: 0, max: 1000, default: 0, help: "Unigram: add N sentinels <extra_id_0..N-1> after the vocabulary (beyond --vocab-size; <extra_id_0> the highest id, as T5), for pretrain --objectives span-corruption; T5 has 100" },
  { flag: "limit-alphabet", key: "limitAlphabet", type: "int", min: 1, help: "WordPiece: keep only the N most frequent characters" },
  { flag: "remove-stop-words", key: "removeStopWords", type: "boolean", help: "the classic recipe: drop English stop words (off: it hurts subword models)" },
  { flag: "stem", key: "stem", type: "boolean", help: "the classic recipe: Porter-stem words (off: it hurts subword models)" },
  { flag: "out", key: "out", type: "string", arg: "DIR", required: true, help: "folder for tokenizer.json, vocab.txt or vocab.json + merges.txt (not for Unigram), tokenizer_config.json" },
]);

export async function tokenizerTrain(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  const [verb, ...files] = positionals;
  if (verb !== "train") throw new UsageError(`tokenizer: unknown action "${verb ?? ""}"; usage: lmforge tokenizer train --kind wordpiece|bpe|unigram --vocab-size N --out DIR`);
  let inputs = [...((v.input as string[] | undefined) ?? []), ...files];
  for (const f of inputs) if (!existsSync(f)) throw new UsageError(`${f}: no such file`);
  let tmp: string | null = null;
  if (inputs.length === 0) {
    tmp = mkdtempSync(join(tmpdir(), "lmforge-corpus-"));
    const file = join(tmp, "embedded.txt");
    writeFileSync(file, [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")].join("\n\n"));
    inputs = [file];
    console.error("tokenizer: no input given: training on the embedded corpora (Moby Dick, State of the Union)");
  }
  const progress = new Progress("reading", "bytes");
  const started = Date.now();
  const kind = v.kind as "wordpiece" | "bpe" | "unigram";
  const vocabSize = v.vocabSize as number;
  const minFrequency = (v.minFrequency as number | undefined) ?? TOKENIZER_TRAIN_DEFAULTS.minFrequency;
  try {
    const tok = await trainTokenizer(inputs, {
      kind,
      vocabSize,
      minFrequency,
      lowercase: Boolean(v.lowercase ?? TOKENIZER_TRAIN_DEFAULTS.lowercase),
      ...(v.specialTokens ? { specialTokens: v.specialTokens as string[] } : {}),
      ...(v.sentinels ? { sentinels: v.sentinels as number } : {}),
      ...(v.limitAlphabet !== undefined ? { limitAlphabet: v.limitAlphabet as number } : {}),
      ...(v.removeStopWords || v.stem ? { classic: { removeStopWords: Boolean(v.removeStopWords), stem: Boolean(v.stem) } } : {}),
      onProgress: (d, t) => progress.update(d, t),
      onRound: (pieces, target) => {
        progress.done();
        console.error(`unigram: ${pieces.toLocaleString("en-US")} candidate pieces after EM and pruning (stops at ${target.toLocaleString("en-US")}), ${((Date.now() - started) / 1000).toFixed(0)} s`);
      },
    });
    progress.done();
    const out = v.out as string;
    const written = saveTokenizer(tok, out);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`trained a ${kind} tokenizer of ${tok.vocabSize} tokens in ${secs} s; wrote ${written.map((f) => join(out, f)).join(", ")}`);
    if (tok.vocabSize < vocabSize) console.log(`(the corpus supports only ${tok.vocabSize} tokens at --min-frequency ${minFrequency})`);
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

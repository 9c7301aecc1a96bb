// --extend-vocab N: the task's most frequent words that the tokenizer splits (or cannot cover)
// become tokens, and the checkpoint grows to match. The resizing works on the checkpoint's
// tensors, not on a built model, so it serves every architecture and head alike: every tensor
// indexed by vocabulary id (input embeddings, an untied output projection, the output bias)
// gets one row per new token, the mean of the rows of the pieces the word was cut into before
// (Hewitt 2021, "Initializing new word embeddings"; Hugging Face's resize_token_embeddings
// draws them at random instead). A tied output projection is the input embedding and grows with it.
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { extendVocabulary, saveTokenizer, splitWords } from "../tokenizers/index.js";
import type { AddedWord, Tokenizer } from "../tokenizers/index.js";
import { readCheckpoint, saveCheckpoint } from "../io/index.js";

/**
 * Tensors indexed by vocabulary id, by name (with the first dimension vocab_size): BERT's and
 * lmforge's word_embeddings, GPT-2's wte, Llama's embed_tokens, T5's shared, and the output
 * side's decoder / lm_head / predictions weights and biases. Position and token-type tables never.
 */
const VOCABULARY_TENSOR = /(word_embeddings|\bwte|embed_tokens|^shared|decoder|lm_head|predictions)\./;

/**
 * Writes a copy of the checkpoint folder `src` into `out` with `added`'s rows appended to every
 * vocabulary-indexed tensor (each the mean of its initFrom rows) and config.json's vocab_size
 * grown to cover the tokenizer; the tokenizer is saved beside it. Returns the tensors resized.
 */
export function resizeCheckpointVocabulary(src: string, out: string, tokenizer: Tokenizer, added: readonly AddedWord[]): { vocabSize: number; resized: string[] } {
  const ck = readCheckpoint(src);
  const oldVocab = ck.config.vocab_size;
  if (typeof oldVocab !== "number") throw new Error(`${join(src, "config.json")}: vocab_size must be a number to extend the vocabulary`);
  const vocabSize = Math.max(oldVocab, tokenizer.vocabSize);
  const tensors = new Map<string, Tensor>();
  const resized: string[] = [];
  try {
    for (const name of ck.names()) {
      const t = ck.get(name);
      if (t.shape[0] !== oldVocab || !VOCABULARY_TENSOR.test(name)) {
        tensors.set(name, t);
        continue;
      }
      tensors.set(name, torch.scope(() => withNewRows(t, vocabSize, added)));
      t.dispose();
      resized.push(name);
    }
    if (!resized.some((n) => !/bias$/.test(n))) throw new Error(`${src}: no input embedding of ${oldVocab} rows found among its tensors (${ck.names().slice(0, 5).join(", ")}, ...)`);
    saveCheckpoint(out, { ...ck.config, vocab_size: vocabSize }, tensors);
    saveTokenizer(tokenizer, out);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { vocabSize, resized };
}

/** t (V, ...) -> (vocabSize, ...): rows past V zero, then each added id's row the mean of its initFrom rows. */
function withNewRows(t: Tensor, vocabSize: number, added: readonly AddedWord[]): Tensor {
  const [rows, ...rest] = t.shape as number[];
  const grown = vocabSize > rows! ? torch.cat([t, torch.zeros([vocabSize - rows!, ...rest], { dtype: t.dtype })], 0) : t;
  if (added.length === 0) return grown.clone();
  const means = added.map((a) => torch.mean(torch.indexSelect(t, 0, torch.tensor(a.initFrom, { dtype: "int64" })), 0, true)); // (1, ...)
  return torch.indexCopy(grown, 0, torch.tensor(added.map((a) => a.id), { dtype: "int64" }), torch.cat(means, 0));
}

/** What --extend-vocab did, for the log and the saved metrics. */
export interface VocabularyExtension {
  /** The folder holding the grown checkpoint and its tokenizer. */
  dir: string;
  tokenizer: Tokenizer;
  words: { word: string; count: number; id: number; was: string[] }[];
  vocabSize: number;
  resized: string[];
}

/**
 * Adds the `n` most frequent words of `texts` that the tokenizer does not keep whole, grows the
 * checkpoint `modelDir` to match, and writes both into `out` (see extendVocabulary and
 * resizeCheckpointVocabulary).
 */
export function extendModelVocabulary(modelDir: string, tok: Tokenizer, texts: readonly string[], n: number, out: string): VocabularyExtension {
  if (!existsSync(join(modelDir, "config.json"))) throw new Error(`${modelDir}: no config.json (a checkpoint folder is expected)`);
  const chosen = splitWords(tok, texts, n);
  const { tokenizer, added } = extendVocabulary(tok, chosen.map((w) => w.word));
  const { vocabSize, resized } = resizeCheckpointVocabulary(modelDir, out, tokenizer, added);
  return { dir: out, tokenizer, words: chosen.map((w, i) => ({ word: w.word, count: w.count, id: added[i]!.id, was: w.pieces })), vocabSize, resized };
}

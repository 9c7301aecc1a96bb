// One chunk of documents tokenised as tokenizeCorpus does it (sentences split, encoded
// without special tokens, empty sentences dropped), in the token file's flat layout: the
// shared step of the in-process and the worker-thread tokenisation, so both give the same ids.
import type { Tokenizer } from "../tokenizers/index.js";
import { splitSentences } from "./pretraining.js";
import { SENTENCE_START, WORD_START } from "./token-file.js";

/** Documents' tokens, flat: ids (T), flags (T: WORD_START | SENTENCE_START) and each document's token count (D). */
export interface DocTokens {
  ids: Int32Array;
  flags: Uint8Array;
  docLengths: Int32Array;
}

/** Tokenises documents into the token file's layout (see the file comment). */
export function tokenizeDocuments(docs: readonly string[], tok: Tokenizer): DocTokens {
  const ids: number[] = [];
  const flags: number[] = [];
  const docLengths = new Int32Array(docs.length);
  docs.forEach((doc, d) => {
    const before = ids.length;
    for (const s of splitSentences(doc)) {
      const e = tok.encode(s, null, { addSpecialTokens: false });
      e.ids.forEach((id, i) => {
        ids.push(id);
        // a word starts where the word id changes (as tokenizeCorpus marks it)
        const word = i === 0 || e.wordIds[i] !== e.wordIds[i - 1] ? WORD_START : 0;
        flags.push(word | (i === 0 ? SENTENCE_START : 0));
      });
    }
    docLengths[d] = ids.length - before;
  });
  return { ids: Int32Array.from(ids), flags: Uint8Array.from(flags), docLengths };
}

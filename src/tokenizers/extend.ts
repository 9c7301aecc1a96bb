// How well a tokenizer covers a task's text, and extending it with the task's own words.
//
// A tokenizer trained on other text (books, say) splits a domain's frequent words into many
// pieces or, where a character is missing, into [UNK]. The unknown-token rate and pieces per word
// measure that; extendVocabulary adds the most frequent such words as single tokens, and says
// which old pieces each new token replaces so that its embedding can start as their mean.
import { Tokenizer } from "./tokenizer.js";
import { WordPiece } from "./models.js";
import type { AddedToken } from "./tokenizer.js";

/** How a tokenizer cuts a body of text. */
export interface TokenizationStats {
  /** Texts read (a pair's two texts count as two). */
  texts: number;
  /** Words, as the tokenizer pre-tokenizes (BERT: whitespace and punctuation; GPT-2: its regex). */
  words: number;
  /** Pieces produced, special tokens ([CLS], [SEP]) not counted. */
  tokens: number;
  /** Pieces that are the unknown token. */
  unknown: number;
  /** unknown / tokens (0 for a tokenizer without an unknown token, as byte-level BPE). */
  unknownRate: number;
  /** tokens / words: 1 when every word is one piece. */
  piecesPerWord: number;
}

/**
 * Counts words, pieces and unknown pieces over texts, untruncated and without special tokens.
 * Example: a BERT tokenizer without "ü" on "grüß dich" gives 2 words, 2 pieces, 1 unknown.
 */
export function tokenizationStats(tok: Tokenizer, texts: readonly string[]): TokenizationStats {
  const unk = tok.specialTokens.unk;
  const unkId = unk === undefined ? -1 : tok.tokenToId(unk)!;
  let words = 0;
  let tokens = 0;
  let unknown = 0;
  for (const text of texts) {
    const e = tok.encode(text, null, { addSpecialTokens: false });
    const seen = new Set<number>();
    e.ids.forEach((id, i) => {
      if (e.specialTokensMask[i]) return;
      tokens++;
      if (id === unkId) unknown++;
      const w = e.wordIds[i];
      if (w !== null && w !== undefined) seen.add(w);
    });
    words += seen.size;
  }
  return { texts: texts.length, words, tokens, unknown, unknownRate: tokens ? unknown / tokens : 0, piecesPerWord: words ? tokens / words : 0 };
}

/** A word the tokenizer does not keep whole, with how often the texts use it. */
export interface SplitWord {
  word: string;
  count: number;
  /** Its pieces now (one [UNK] for a WordPiece word it cannot cover). */
  pieces: string[];
}

/**
 * The words of the texts (pre-tokenized as the tokenizer does) that it does not have as one piece
 * (unknown, or split in several), most frequent first; ties in first-seen order. `limit` keeps the
 * first N. Byte-level BPE: only words that follow a space (see extendVocabulary).
 */
export function splitWords(tok: Tokenizer, texts: readonly string[], limit = Infinity): SplitWord[] {
  const counts = new Map<string, number>();
  for (const text of texts) for (const w of tok.words(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const unk = tok.specialTokens.unk;
  const wordPiece = tok.spec.model instanceof WordPiece ? tok.spec.model : null;
  const byteLevel = tok.spec.preTokenizer === "byte-level";
  const out: SplitWord[] = [];
  // a stable sort keeps first-seen order among equal counts: the choice is deterministic
  for (const [word, count] of [...counts].sort((a, b) => b[1] - a[1])) {
    if (out.length >= limit) break;
    // WordPiece calls a word longer than this [UNK] before looking it up: adding it would not help
    if (wordPiece && [...word].length > wordPiece.config.maxInputCharsPerWord) continue;
    // byte-level: only words after a space (" spam"); an added token without it would also match
    // inside other words ("spam" in "antispam"), and whitespace runs are not words
    if (byteLevel && (!word.startsWith(" ") || word.trim() === "")) continue;
    const pieces = tok.tokenize(word);
    if (pieces.length === 1 && pieces[0] !== unk) continue;
    out.push({ word, count, pieces });
  }
  return out;
}

/** A token extendVocabulary added. */
export interface AddedWord {
  word: string;
  /** The token as the vocabulary holds it (the word; byte-level: the word as typed, its space included). */
  token: string;
  id: number;
  /** The old pieces' ids whose embeddings' mean starts the new one (see extendVocabulary). */
  initFrom: number[];
}

/**
 * Adds words to a tokenizer as single tokens, with ids from its vocabulary size up.
 * - WordPiece: whole words in the vocabulary itself (vocab.txt grows), so greedy longest match
 *   takes the word as one piece, and a longer word starting with it keeps it as its first piece.
 * - Byte-level BPE: added (not special) tokens, matched in the raw text before pre-tokenization
 *   as Hugging Face's added tokens are; a word keeps its leading space (" spam"), so it matches
 *   after a space, also at the start of a longer word.
 * - Unigram (SentencePiece) is refused.
 * Each new token's initFrom is the ids of its old pieces; for a WordPiece word that was [UNK],
 * the pieces of its characters that the vocabulary has (the first as a word start, the rest as
 * ##continuations), or the [UNK] id when it has none of them.
 */
export function extendVocabulary(tok: Tokenizer, words: readonly string[]): { tokenizer: Tokenizer; added: AddedWord[] } {
  const model = tok.spec.model;
  if (tok.kind === "unigram") throw new Error("extending the vocabulary: Unigram (SentencePiece) tokenizers are not supported, only WordPiece and byte-level BPE");
  if (new Set(words).size !== words.length) throw new Error("extending the vocabulary: a word is given twice");
  const unk = tok.specialTokens.unk;
  const unkId = unk === undefined ? undefined : tok.tokenToId(unk);
  const added: AddedWord[] = words.map((word, i) => {
    if (tok.tokenToId(word) !== undefined) throw new Error(`extending the vocabulary: "${word}" is already a token`);
    const pieces = tok.encode(word, null, { addSpecialTokens: false }).ids;
    let initFrom = pieces;
    if (model instanceof WordPiece && pieces.every((p) => p === unkId)) {
      const prefix = model.config.continuingSubwordPrefix;
      const chars = [...word].map((c, k) => tok.tokenToId(k === 0 ? c : prefix + c)).filter((id): id is number => id !== undefined);
      initFrom = chars.length ? chars : pieces.slice(0, 1);
    }
    return { word, token: word, id: tok.vocabSize + i, initFrom };
  });
  if (model instanceof WordPiece) {
    const vocab = new Map(model.config.vocab);
    for (const a of added) vocab.set(a.token, a.id);
    return { tokenizer: new Tokenizer({ ...tok.spec, model: new WordPiece({ ...model.config, vocab }) }), added };
  }
  const tokens: AddedToken[] = added.map((a) => ({ id: a.id, content: a.token, special: false, lstrip: false, rstrip: false, singleWord: false, normalized: false }));
  return { tokenizer: new Tokenizer({ ...tok.spec, addedTokens: [...tok.spec.addedTokens, ...tokens] }), added };
}

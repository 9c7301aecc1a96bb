// The tokenizer's fit to a task (unknown-token rate, pieces per word) and vocabulary extension,
// on hand-made vocabularies whose every count below is worked out by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BPE, Tokenizer, extendVocabulary, loadTokenizer, saveTokenizer, splitWords, tokenizationStats, tokenizerFromVocabTxt } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
// ids are line numbers: [UNK] 1, the 5, cat 6, ##s 10, d 11, ##g 12
const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "d", "##g", "a", "##t"];
writeFileSync(join(dir, "vocab.txt"), VOCAB.join("\n") + "\n");
const wordPiece = (): Tokenizer => tokenizerFromVocabTxt(join(dir, "vocab.txt"));
// "cats" -> cat ##s; "dog" -> [UNK] (d, then no ##o: no full cover); "The" is lowercased
const TEXTS = ["The cats sat on the mat", "the dog", "cats sat"];

test("the unknown-token rate and pieces per word, counted by hand", () => {
  const s = tokenizationStats(wordPiece(), TEXTS);
  // words 6 + 2 + 2; pieces: the|cat ##s|sat|on|the|mat = 7, the|[UNK] = 2, cat ##s|sat = 3
  assert.deepEqual(s, { texts: 3, words: 10, tokens: 12, unknown: 1, unknownRate: 1 / 12, piecesPerWord: 1.2 });
  assert.deepEqual(tokenizationStats(wordPiece(), []), { texts: 0, words: 0, tokens: 0, unknown: 0, unknownRate: 0, piecesPerWord: 0 });
});

test("the words chosen: split or unknown ones, most frequent first, ties in first-seen order", () => {
  const tok = wordPiece();
  assert.deepEqual(tok.words("The cats, sat!"), ["the", "cats", ",", "sat", "!"]);
  // counts: the 3, cats 2, sat 2, on 1, mat 1, dog 1; only cats and dog are not one piece
  assert.deepEqual(splitWords(tok, TEXTS), [
    { word: "cats", count: 2, pieces: ["cat", "##s"] },
    { word: "dog", count: 1, pieces: ["[UNK]"] },
  ]);
  assert.deepEqual(splitWords(tok, TEXTS, 1).map((w) => w.word), ["cats"]);
});

test("WordPiece: new whole-word tokens, each starting from its old pieces (or its characters', or [UNK])", () => {
  const { tokenizer, added } = extendVocabulary(wordPiece(), ["cats", "dog", "zzz"]);
  assert.deepEqual(added, [
    { word: "cats", token: "cats", id: 15, initFrom: [6, 10] }, // cat ##s
    { word: "dog", token: "dog", id: 16, initFrom: [11, 12] }, // [UNK]: d and ##g exist, ##o does not
    { word: "zzz", token: "zzz", id: 17, initFrom: [1] }, // no piece of its characters: [UNK]
  ]);
  assert.equal(tokenizer.vocabSize, 18);
  assert.deepEqual(tokenizer.tokenize("The cats dog zzz catsg"), ["the", "cats", "dog", "zzz", "cats", "##g"]);
  assert.deepEqual(tokenizationStats(tokenizer, TEXTS), { texts: 3, words: 10, tokens: 10, unknown: 0, unknownRate: 0, piecesPerWord: 1 });
  assert.throws(() => extendVocabulary(wordPiece(), ["cat"]), /"cat" is already a token/);
  assert.throws(() => extendVocabulary(wordPiece(), ["dog", "dog"]), /given twice/);

  // saved and loaded again (vocab.txt and tokenizer.json), the new words stay one piece
  const saved = join(dir, "extended");
  saveTokenizer(tokenizer, saved);
  for (const reloaded of [loadTokenizer(saved), tokenizerFromVocabTxt(join(saved, "vocab.txt"))]) {
    assert.deepEqual(reloaded.encode("cats dog zzz").ids, [2, 15, 16, 17, 3]);
  }
});

test("byte-level BPE: words after a space become added tokens, matched in the raw text", () => {
  const chars = ["Ġ", "h", "i", "t", "e", "r", "hi"]; // ids 0..6
  const tok = new Tokenizer({
    normalizer: null,
    preTokenizer: "byte-level",
    addPrefixSpace: false,
    trimOffsets: true,
    model: new BPE({ vocab: new Map(chars.map((c, i) => [c, i])), merges: [["h", "i"]], unkToken: null }),
    postProcessor: { type: "none", single: [], pair: [] },
    addedTokens: [],
  });
  // words: "hi" " there" " hi" / "hi" " hi": the space-less "hi" is left out; no [UNK] in byte-level BPE
  assert.deepEqual(splitWords(tok, ["hi there hi", "hi hi"]), [
    { word: " hi", count: 2, pieces: ["Ġ", "hi"] },
    { word: " there", count: 1, pieces: ["Ġ", "t", "h", "e", "r", "e"] },
  ]);
  const { tokenizer, added } = extendVocabulary(tok, [" hi"]);
  assert.deepEqual(added, [{ word: " hi", token: " hi", id: 7, initFrom: [0, 6] }]); // Ġ hi
  assert.deepEqual(tokenizer.encode("hi there hi").tokens, ["hi", "Ġ", "t", "h", "e", "r", "e", " hi"]);
  assert.equal(tokenizer.decode(tokenizer.encode("hi there hi").ids), "hi there hi");
  assert.equal(tokenizationStats(tokenizer, ["hi hi"]).tokens, 2);
});

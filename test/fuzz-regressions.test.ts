// Regression tests for what fuzzing found (test/fuzz.test.ts), one minimal file each. Before
// the fix each one crashed, hung or leaked an internal error; now each is refused with an
// error naming the file and the field (or loads as it should).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "../src/io/index.js";
import { Tokenizer, TokenizerFileError, WordPiece, loadTokenizer, tokenizerFromVocabMerges } from "../src/tokenizers/index.js";
import { configFromPretrained } from "../src/models/auto.js";
import { ConfigError } from "../src/models/config.js";
import { readLabelled } from "../src/data/labelled.js";
import { fixture, tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-fuzz-regressions-");
let n = 0;

/** Writes a file of the given content under a fresh name ending in `name`. */
function put(name: string, content: string | Buffer | object): string {
  const p = join(dir, `${n++}-${name}`);
  writeFileSync(p, typeof content === "string" || Buffer.isBuffer(content) ? content : JSON.stringify(content));
  return p;
}

/** The smallest tokenizer.json lmforge loads: WordPiece over {[UNK]}, BERT's pre-tokenizer. */
const minimal = { model: { type: "WordPiece", vocab: { "[UNK]": 0, a: 1 } }, pre_tokenizer: { type: "BertPreTokenizer" } };

function refusedTokenizer(json: object, message: RegExp): void {
  const p = put("tokenizer.json", json);
  assert.throws(() => loadTokenizer(p), (e: Error) => {
    assert.ok(e instanceof TokenizerFileError, `${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${p}: `), e.message);
    assert.match(e.message, message);
    return true;
  });
}

test("tokenizer.json: an added token with empty content is refused (encoding looped, allocating until the heap ran out)", () => {
  assert.doesNotThrow(() => loadTokenizer(put("tokenizer.json", minimal)).encode("a"));
  refusedTokenizer({ ...minimal, added_tokens: [{ id: 0, content: [] }] }, /added_tokens\[0\]\.content must be a non-empty string, got \[\]/);
  refusedTokenizer({ ...minimal, added_tokens: [{ id: 0, content: "" }] }, /added_tokens\[0\]\.content must be a non-empty string, got ""/);
  // and the Tokenizer itself refuses one, whatever built its spec
  const model = new WordPiece({ vocab: new Map([["[UNK]", 0]]), unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 });
  const spec = { normalizer: null, preTokenizer: "bert" as const, addPrefixSpace: false, trimOffsets: false, model, postProcessor: { type: "none" as const, single: [], pair: [] } };
  assert.throws(() => new Tokenizer({ ...spec, addedTokens: [{ id: 0, content: "", special: true, lstrip: false, rstrip: false, singleWord: false, normalized: false }] }), /added token 0 has empty content/);
});

test("tokenizer.json: an added token whose id disagrees with the vocabulary names the file (it did not)", () => {
  refusedTokenizer({ ...minimal, added_tokens: [{ id: 5, content: "[UNK]" }] }, /tokenizer: added token "\[UNK\]" has id 5 but the vocabulary gives it 0/);
  refusedTokenizer({ ...minimal, added_tokens: [{ content: "[UNK]" }] }, /added_tokens\[0\]\.id must be a non-negative integer below 2\^31, got undefined/);
});

test("tokenizer.json: post_processor BertProcessing without cls, and a null template item, are refused (TypeError)", () => {
  refusedTokenizer({ ...minimal, post_processor: { type: "BertProcessing", sep: ["[SEP]", 1] } }, /post_processor\.cls must be \[token, id\], got undefined/);
  refusedTokenizer({ ...minimal, post_processor: { type: "TemplateProcessing", single: [null], pair: [] } }, /post_processor\.single\[0\] is no template item/);
  refusedTokenizer({ ...minimal, post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: 3 } }], pair: [] } }, /post_processor\.single\[0\]\.SpecialToken\.id must be a string, got 3/);
});

test("tokenizer.json: a type that is an object without a callable toString is reported, not a TypeError", () => {
  refusedTokenizer({ model: { type: { toString: 1 } } }, /model type "\{"toString":1\}" is not supported/);
  refusedTokenizer({ ...minimal, normalizer: { type: "Sequence", normalizers: [null] } }, /normalizer\.normalizers\[0\] must be an object/);
});

test("vocab.json: token ids must be non-negative integers below 2^31", () => {
  const merges = put("merges.txt", "#version: 0.2\n");
  for (const id of [-1, 2 ** 31, 1.5]) {
    const vocab = put("vocab.json", { a: id });
    assert.throws(() => tokenizerFromVocabMerges(vocab, merges), new RegExp(`${vocab}: model\\.vocab\\["a"\\] is not a token id`));
  }
});

test("config.json: an unknown activation is a ConfigError naming the file (the message named no file)", async () => {
  const folder = join(dir, "config");
  mkdirSync(folder);
  const config = JSON.parse(readFileSync(fixture("hf-tiny/bert/config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(folder, "config.json"), JSON.stringify({ ...config, hidden_act: "nope" }));
  await assert.rejects(configFromPretrained(folder), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, new RegExp(`^${join(folder, "config.json")}: unknown activation "nope"`));
    return true;
  });
  copyFileSync(fixture("hf-tiny/bert/config.json"), join(folder, "config.json"));
  assert.equal((await configFromPretrained(folder)).hidden_act, config.hidden_act);
});

test("labelled JSONL: a line that is JSON but no object is a bad row (TypeError on null)", () => {
  const p = put("data.jsonl", 'null\n{"text": "ok", "label": {"toString": 1}}\n[1]\n{"text": "fine", "label": 1}\n');
  assert.throws(() => readLabelled(p), new RegExp(`${p}:1: expected a JSON object with "text" and "label"$`));
  const r = readLabelled(p, { skipBadRows: true });
  assert.deepEqual(r.examples.map((e) => [e.text, e.label]), [["fine", "1"]]);
  assert.deepEqual(r.skipped.map((s) => s.source), [`${p}:1`, `${p}:2`, `${p}:3`]);
  assert.equal(r.skipped[1]!.reason, 'field "label" must be a string or a number');
});

test("labelled CSV: a file of line breaks only is refused (TypeError on the missing header)", () => {
  const p = put("data.csv", "\r");
  assert.throws(() => readLabelled(p), new RegExp(`${p}: no records \\(the file holds only line breaks\\)$`));
});

test("safetensors: a __metadata__ key named __proto__ is kept as a key (assignment dropped it)", () => {
  const header = Buffer.from('{"__metadata__":{"__proto__":"x","format":"pt"}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const p = put("m.safetensors", Buffer.concat([len, header]));
  const f = SafetensorsFile.open(p);
  assert.ok(Object.hasOwn(f.metadata, "__proto__"));
  assert.equal(f.metadata["__proto__"], "x");
  assert.equal(f.metadata.format, "pt");
  assert.equal(Object.getPrototypeOf(f.metadata), Object.prototype);
});

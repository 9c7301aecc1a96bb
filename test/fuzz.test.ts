// Hostile and broken inputs, fuzzed: valid files of every format lmforge reads are mutated
// (bytes flipped, set, inserted, deleted, duplicated, the file cut; JSON fields replaced,
// deleted or renamed) and loaded. Every case must load, or be refused with an Error of the
// format's typed kind naming the file, within a time bound; never a TypeError or RangeError
// leaking from inside, never a crash or a hang. Files declaring terabytes cost no memory.
//
// Seeded: LMFORGE_FUZZ_SEED=<n> (or "random") replays or varies the runs, LMFORGE_FUZZ_RUNS=<n>
// sets the cases per format (CI defaults below). fast-check prints the seed, the path and the
// shrunk counterexample of a failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import * as torch from "../src/torch/index.js";
import { SafetensorsError, SafetensorsFile, saveSafetensors } from "../src/io/index.js";
import { PathEscapeError } from "../src/io/paths.js";
import { readCheckpoint } from "../src/io/checkpoint.js";
import { TokenizerFileError, loadTokenizer, tokenizerFromVocabMerges, tokenizerFromVocabTxt, tokenizerToJSON } from "../src/tokenizers/index.js";
import type { Tokenizer } from "../src/tokenizers/index.js";
import { configFromPretrained } from "../src/models/auto.js";
import { ConfigError } from "../src/models/config.js";
import { readLabelled } from "../src/data/labelled.js";
import { readTagged } from "../src/data/conll.js";
import { SquadFormatError, readSquad } from "../src/data/squad.js";
import { IdxFormatError, readIdx } from "../src/data/idx.js";
import { FUZZ_SEED, attempt, attemptAsync, params, summary, tally, use } from "./fuzz/check.js";
import { applyJsonEdits, applyMutations, jsonEditsArb, mutationsArb } from "./fuzz/mutate.js";
import { fixture, tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-fuzz-");
const LIMIT = { timeout: 120_000 };
console.log(`# fuzz seed ${FUZZ_SEED} (replay with LMFORGE_FUZZ_SEED=${FUZZ_SEED})`);

/**
 * A case's input: the file's bytes, from byte mutations of one base or JSON edits of another.
 * With `lines`, the bases are JSON Lines: the edits apply to the array of lines.
 */
function bytesOrJson(bases: Buffer[], docs: unknown[], lines = false): fc.Arbitrary<Buffer> {
  const byBytes = fc.tuple(fc.nat({ max: bases.length - 1 }), mutationsArb).map(([i, ms]) => applyMutations(bases[i]!, ms));
  if (lines) docs = bases.map((b) => b.toString().split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as unknown));
  if (docs.length === 0) return byBytes;
  const serialize = (doc: unknown): string => (lines && Array.isArray(doc) ? doc.map((x) => JSON.stringify(x) ?? "").join("\n") : (JSON.stringify(doc) ?? "null"));
  const byJson = fc.tuple(fc.nat({ max: docs.length - 1 }), jsonEditsArb).map(([i, edits]) => Buffer.from(serialize(applyJsonEdits(docs[i], edits))));
  return fc.oneof(byBytes, byJson);
}

// --- safetensors ----------------------------------------------------------------------------------

function safetensorsBase(): Buffer {
  const p = join(dir, "base.safetensors");
  torch.scope(() =>
    saveSafetensors(
      p,
      {
        w: torch.tensor([[1, 2, 3], [4, 5, 6]], { dtype: "float32" }),
        ids: torch.tensor([7, -8]),
        h: torch.tensor([0.5, 1, 2], { dtype: "bfloat16" }),
        mask: torch.tensor([true, false]),
        empty: torch.zeros([0, 4]),
      },
      { format: "pt" },
    ),
  );
  return readFileSync(p);
}

/** Rebuilds a safetensors file from a header object (any JSON) and a data section. */
function safetensorsFile(header: unknown, data: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header) ?? "null");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

test("fuzz: safetensors (bytes mutated, header fields edited)", LIMIT, (t) => {
  const base = safetensorsBase();
  const n = Number(base.readBigUInt64LE(0));
  const header = JSON.parse(base.subarray(8, 8 + n).toString()) as unknown;
  const data = base.subarray(8 + n);
  const file = join(dir, "model.safetensors");
  const tl = tally();
  const input = fc.oneof(
    fc.tuple(fc.constant(base), mutationsArb).map(([b, ms]) => applyMutations(b, ms)),
    fc.tuple(jsonEditsArb, fc.integer({ min: -4, max: 4 })).map(([edits, extra]) => safetensorsFile(applyJsonEdits(header, edits), extra >= 0 ? Buffer.concat([data, Buffer.alloc(extra)]) : data.subarray(0, data.length + extra))),
  );
  fc.assert(
    fc.property(input, (bytes) => {
      writeFileSync(file, bytes);
      attempt(tl, file, () => {
        const f = SafetensorsFile.open(file);
        torch.scope(() => {
          for (const name of f.names()) {
            const x = f.get(name);
            assert.deepEqual([...x.shape], f.info(name).shape);
          }
        });
      }, [SafetensorsError], (e) => (e instanceof SafetensorsError ? e.rule : e.constructor.name), bytes);
    }),
    params(1500),
  );
  t.diagnostic(`safetensors: ${summary(tl)}`);
  assert.ok(tl.kinds.size >= 15, `the mutations reached only ${tl.kinds.size} rules`);
});

test("fuzz: checkpoint folders (model.safetensors.index.json and config.json edited)", LIMIT, (t) => {
  const folder = join(dir, "ckpt");
  mkdirSync(folder);
  copyFileSync(fixture("hf-tiny/bert/config.json"), join(folder, "config.json"));
  torch.scope(() => saveSafetensors(join(folder, "model-00001-of-00002.safetensors"), { a: torch.tensor([1, 2], { dtype: "float32" }) }));
  torch.scope(() => saveSafetensors(join(folder, "model-00002-of-00002.safetensors"), { b: torch.tensor([3], { dtype: "float32" }) }));
  const index = { metadata: { total_size: 12 }, weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } };
  const indexBytes = Buffer.from(JSON.stringify(index));
  const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8")) as unknown;
  const indexPath = join(folder, "model.safetensors.index.json");
  const tl = tally();
  fc.assert(
    fc.property(bytesOrJson([indexBytes], [index]), fc.option(bytesOrJson([Buffer.from(JSON.stringify(config))], [config]), { freq: 4 }), (indexFile, configFile) => {
      writeFileSync(indexPath, indexFile);
      writeFileSync(join(folder, "config.json"), configFile ?? JSON.stringify(config));
      attempt(tl, folder, () => {
        const ck = readCheckpoint(folder);
        torch.scope(() => ck.names().forEach((name) => ck.get(name)));
      }, [PathEscapeError, SafetensorsError], undefined, indexFile);
    }),
    params(1000),
  );
  t.diagnostic(`checkpoint index: ${summary(tl)}`);
});

// --- tokenizers -----------------------------------------------------------------------------------

const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "##at", "c", "s", "m", "##t", ",", "!", "hello", "world"];
const SAMPLE = "Hello, the cats sat on the mat! naïve 東京 🎉";

/** Encodes and decodes with a loaded tokenizer: it may refuse the text, never break. */
function exercise(tok: Tokenizer): void {
  use(() => {
    const e = tok.encode(SAMPLE, "the cat", { maxLength: 16, truncation: "longest_first", returnOverflowing: true, stride: 2 });
    tok.decode(e.ids);
  });
}

function tokenizerBases(): { files: Buffer[]; docs: unknown[]; vocabTxt: Buffer; vocabJson: Buffer; merges: Buffer } {
  const vocabTxt = Buffer.from(VOCAB.join("\n") + "\n");
  writeFileSync(join(dir, "vocab.txt"), vocabTxt);
  const wordpiece = tokenizerToJSON(tokenizerFromVocabTxt(join(dir, "vocab.txt")));
  const bpeVocab: Record<string, number> = { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4 };
  for (const t of ["t", "h", "e", "Ġ", "c", "a", "th", "the", "Ġthe", "at", "cat", "Ġcat", "s", "Ġs"]) bpeVocab[t] = Object.keys(bpeVocab).length;
  const vocabJson = Buffer.from(JSON.stringify(bpeVocab));
  const merges = Buffer.from("#version: 0.2\nt h\nth e\nĠ the\na t\nc at\nĠ cat\nĠ s\n");
  writeFileSync(join(dir, "vocab.json"), vocabJson);
  writeFileSync(join(dir, "merges.txt"), merges);
  const bpe = tokenizerToJSON(tokenizerFromVocabMerges(join(dir, "vocab.json"), join(dir, "merges.txt")));
  const unigram = {
    version: "1.0",
    added_tokens: [{ id: 0, content: "<unk>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: { type: "Sequence", normalizers: [{ type: "Precompiled", precompiled_charsmap: null }, { type: "NFKC" }] },
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true }] },
    post_processor: { type: "TemplateProcessing", single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }], pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }], special_tokens: {} },
    decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
    model: { type: "Unigram", unk_id: 0, byte_fallback: false, vocab: [["<unk>", 0], ["</s>", 0], ["▁the", -1], ["▁", -2], ["c", -3], ["a", -3], ["t", -3], ["s", -3], ["at", -2.5], ["▁cat", -2]] },
  };
  const docs = [wordpiece, bpe, unigram];
  return { files: docs.map((d) => Buffer.from(JSON.stringify(d))), docs, vocabTxt, vocabJson, merges };
}

test("fuzz: tokenizer.json, vocab.txt, vocab.json + merges.txt", LIMIT, (t) => {
  const bases = tokenizerBases();
  const allowed = [TokenizerFileError];
  const json = join(dir, "tokenizer.json");
  const tl = tally();
  fc.assert(
    fc.property(bytesOrJson(bases.files, bases.docs), (bytes) => {
      writeFileSync(json, bytes);
      attempt(tl, json, () => exercise(loadTokenizer(json)), allowed, undefined, bytes);
    }),
    params(1000),
  );
  t.diagnostic(`tokenizer.json: ${summary(tl)}`);
  const txt = join(dir, "fuzz-vocab.txt");
  const tv = tally();
  fc.assert(
    fc.property(bytesOrJson([bases.vocabTxt], []), (bytes) => {
      writeFileSync(txt, bytes);
      attempt(tv, txt, () => exercise(tokenizerFromVocabTxt(txt)), allowed, undefined, bytes);
    }),
    params(1000),
  );
  t.diagnostic(`vocab.txt: ${summary(tv)}`);
  const vj = join(dir, "fuzz-vocab.json");
  const mt = join(dir, "fuzz-merges.txt");
  const tm = tally();
  fc.assert(
    fc.property(fc.boolean(), bytesOrJson([bases.vocabJson], [JSON.parse(bases.vocabJson.toString())]), bytesOrJson([bases.merges], []), (which, vocab, merges) => {
      writeFileSync(vj, which ? vocab : bases.vocabJson);
      writeFileSync(mt, which ? bases.merges : merges);
      attempt(tm, which ? vj : mt, () => exercise(tokenizerFromVocabMerges(vj, mt)), allowed, undefined, which ? vocab : merges);
    }),
    params(1000),
  );
  t.diagnostic(`vocab.json + merges.txt: ${summary(tm)}`);
});

// --- config.json ----------------------------------------------------------------------------------

test("fuzz: config.json", LIMIT, async (t) => {
  const configs = ["bert", "gpt2"].map((m) => readFileSync(fixture(`hf-tiny/${m}/config.json`)));
  const folder = join(dir, "config");
  mkdirSync(folder);
  const file = join(folder, "config.json");
  const tl = tally();
  await fc.assert(
    fc.asyncProperty(bytesOrJson(configs, configs.map((c) => JSON.parse(c.toString()) as unknown)), async (bytes) => {
      writeFileSync(file, bytes);
      await attemptAsync(tl, file, async () => void (await configFromPretrained(folder)), [ConfigError], undefined, bytes);
    }),
    params(1000),
  );
  t.diagnostic(`config.json: ${summary(tl)}`);
});

// --- data files -----------------------------------------------------------------------------------

test("fuzz: labelled TSV, CSV and JSONL", LIMIT, (t) => {
  const bases: [string, string[]][] = [
    ["tsv", ["sentence\tlabel\nthe cat sat\t1\na dog\t0\n\"quoted\" text\t1\n", "first\tsecond\tentailment\nno header here\tat all\tneutral\n"]],
    ["csv", ['text,label\n"a, quoted ""comma"" text",pos\nplain,neg\n"multi\nline",pos\n']],
    ["jsonl", ['{"text": "good film", "label": "pos"}\n{"text": "bad", "label": 0}\n\n{"text": "ok", "label": "neu"}\n']],
  ];
  for (const [ext, texts] of bases) {
    const file = join(dir, `labelled.${ext}`);
    const tl = tally();
    fc.assert(
      fc.property(bytesOrJson(texts.map((x) => Buffer.from(x)), [], ext === "jsonl"), fc.boolean(), (bytes, skipBadRows) => {
        writeFileSync(file, bytes);
        attempt(tl, file, () => void readLabelled(file, { skipBadRows }), ["BadRow"], undefined, bytes);
      }),
      params(1000),
    );
    t.diagnostic(`labelled .${ext}: ${summary(tl)}`);
  }
});

test("fuzz: CoNLL and JSONL tagged sentences", LIMIT, (t) => {
  const bases: [string, string][] = [
    ["conll", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"],
    ["jsonl", '{"tokens": ["Ann", "met", "Bob"], "tags": ["B-PER", "O", "S-PER"]}\n{"tokens": ["x"], "ner_tags": ["O"]}\n'],
  ];
  for (const [ext, text] of bases) {
    const file = join(dir, `tagged.${ext}`);
    const tl = tally();
    fc.assert(
      fc.property(bytesOrJson([Buffer.from(text)], [], ext === "jsonl"), fc.boolean(), (bytes, skipBadRows) => {
        writeFileSync(file, bytes);
        attempt(tl, file, () => void readTagged(file, { skipBadRows }), ["BadLine"], undefined, bytes);
      }),
      params(1000),
    );
    t.diagnostic(`tagged .${ext}: ${summary(tl)}`);
  }
});

test("fuzz: SQuAD JSON and JSONL", LIMIT, (t) => {
  const docs = ["v1.1.json", "v2.0.json"].map((f) => readFileSync(fixture(`squad/${f}`)));
  const jsonl = readFileSync(fixture("squad/train.jsonl"));
  const cases: [string, fc.Arbitrary<Buffer>][] = [
    ["json", bytesOrJson(docs, docs.map((d) => JSON.parse(d.toString()) as unknown))],
    ["jsonl", bytesOrJson([jsonl], [], true)],
  ];
  for (const [ext, arb] of cases) {
    const file = join(dir, `squad.${ext}`);
    const tl = tally();
    fc.assert(
      fc.property(arb, fc.boolean(), (bytes, skipBadRows) => {
        writeFileSync(file, bytes);
        attempt(tl, file, () => void readSquad(file, { skipBadRows }), [SquadFormatError], undefined, bytes);
      }),
      params(1000),
    );
    t.diagnostic(`SQuAD .${ext}: ${summary(tl)}`);
  }
});

/** 00 00 type ndims, big-endian dims, then the data. */
function idx(type: number, dims: number[], data: Buffer): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

test("fuzz: IDX files, plain and gzip-compressed", LIMIT, (t) => {
  const images = idx(0x08, [3, 4, 4], Buffer.from(Array.from({ length: 48 }, (_, i) => (i * 37) % 256)));
  const floats = idx(0x0d, [2, 3], Buffer.alloc(24, 0x3f));
  const bases = [images, floats, gzipSync(images), gzipSync(floats)];
  const file = join(dir, "images.idx");
  const tl = tally();
  fc.assert(
    fc.property(bytesOrJson(bases, []), (bytes) => {
      writeFileSync(file, bytes);
      attempt(tl, file, () => void readIdx(file), [IdxFormatError], (e) => (e instanceof IdxFormatError ? e.field.replace(/\[\d+\]/, "[]") : e.constructor.name), bytes);
    }),
    params(1500),
  );
  t.diagnostic(`IDX: ${summary(tl)}`);
});

// --- memory -----------------------------------------------------------------------------------------

test("files declaring terabytes are refused early, within their size + 64 MiB of memory", LIMIT, () => {
  const tb = 2 ** 40;
  const tensorHeader = { huge: { dtype: "F32", shape: [1024, 1024, 1024, 256], data_offsets: [0, tb] } };
  // each refused by the check that runs before any allocation: the reason is part of the test
  const cases: [string, Buffer, (p: string) => void, RegExp][] = [
    ["tb.safetensors", safetensorsFile(tensorHeader, Buffer.alloc(64)), (p) => SafetensorsFile.open(p), /safetensors data-outside-file: tensor "huge": data_offsets \[0, 1099511627776\] run past the 64-byte data section/],
    ["tb-header.safetensors", Buffer.from([0, 0, 0, 0, 0, 1, 0, 0]), (p) => SafetensorsFile.open(p), /safetensors header-too-large: the header length 1099511627776 exceeds/],
    ["tb-images.idx", idx(0x08, [1 << 20, 1 << 20], Buffer.alloc(64)), (p) => readIdx(p), /IDX data: dimensions \[1048576, 1048576\] of uint8 need 1099511627788 bytes with the header; the file holds 76/],
    ["tb-images.idx.gz", gzipSync(idx(0x0e, [1 << 16, 1 << 16, 1 << 8], Buffer.alloc(1 << 16))), (p) => readIdx(p), /IDX dims: dimensions \[65536, 65536, 256\] declare 8796093022224 bytes, more than \d+ compressed bytes can hold/],
    // a real gzip bomb: 64 MiB of zeros in ~64 KiB, declaring 24 bytes (8 of header, 16 of data): inflation stops there
    ["bomb.idx.gz", gzipSync(Buffer.concat([idx(0x08, [16], Buffer.alloc(16)), Buffer.alloc(64 << 20)])), (p) => readIdx(p), /IDX data: inflates to more than the 24 bytes its header declares/],
  ];
  const gc = (globalThis as { gc?: () => void }).gc;
  for (const [name, bytes, load, reason] of cases) {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    gc?.();
    const rss = process.memoryUsage().rss;
    const maxRss = process.resourceUsage().maxRSS * 1024; // the process's peak so far (KiB)
    assert.throws(() => load(p), reason, name);
    const bound = bytes.length + 64 * 2 ** 20;
    const grown = process.memoryUsage().rss - rss;
    const peakGrown = process.resourceUsage().maxRSS * 1024 - maxRss;
    assert.ok(grown < bound && peakGrown < bound, `${name}: RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB (peak by ${(peakGrown / 2 ** 20).toFixed(1)} MiB) for a ${bytes.length}-byte file`);
  }
});

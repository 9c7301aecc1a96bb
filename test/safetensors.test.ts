// safetensors: round trips for every dtype, Hugging Face's files, and a corpus of malformed
// files, each breaking one rule of the specification and each refused with its own error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { tensor as T } from "../src/torch/index.js";
import { SafetensorsError, SafetensorsFile, loadSafetensors, saveSafetensors } from "../src/io/index.js";
import { fixture, tempDir } from "./helpers.js";

const dir = await tempDir();
let n = 0;
const path = (): string => join(dir, `f${n++}.safetensors`);

test("every dtype round-trips, with zero-element and scalar tensors and metadata", () => {
  const tensors = new Map<string, torch.Tensor>([
    ["f64", T([[1.5, -2], [3, 4]], { dtype: "float64" })],
    ["f32", T([0.1, 0.2, 0.3], { dtype: "float32" })],
    ["f16", T([0.5, 65504], { dtype: "float16" })],
    ["bf16", T([1, -3.5], { dtype: "bfloat16" })],
    ["i64", T([2 ** 40, -1])],
    ["i32", T([7], { dtype: "int32" })],
    ["i16", T([-300], { dtype: "int16" })],
    ["i8", T([-5, 5], { dtype: "int8" })],
    ["u8", T([0, 255], { dtype: "uint8" })],
    ["bool", T([true, false, true])],
    ["empty", torch.zeros([0, 3])],
    ["scalar", T(42.5, { dtype: "float32" })],
  ]);
  const p = path();
  saveSafetensors(p, tensors, { format: "pt", note: "round trip" });
  const f = SafetensorsFile.open(p);
  assert.deepEqual(f.metadata, { format: "pt", note: "round trip" });
  const back = f.loadAll();
  assert.deepEqual([...back.keys()].sort(), [...tensors.keys()].sort());
  for (const [name, t] of tensors) {
    const b = back.get(name)!;
    assert.equal(b.dtype, t.dtype, name);
    assert.deepEqual([...b.shape], [...t.shape], name);
    assert.ok(b.equal(t), name);
  }
  // the header is padded to 8 bytes, so every tensor is aligned to its element size
  const headerLen = Number(readFileSync(p).readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0);
  for (const info of f.header.tensors.values()) assert.equal((8 + headerLen + info.begin) % torch.DTYPES[info.dtype].itemSize, 0, info.name);
});

test("non-contiguous tensors are written in logical order", () => {
  const p = path();
  const t = torch.arange(0, 6, 1, { dtype: "float32" }).reshape([2, 3]).t();
  saveSafetensors(p, { t });
  assert.deepEqual(loadSafetensors(p).get("t")!.toArray(), [[0, 3], [1, 4], [2, 5]]);
});

test("bfloat16 and float16 files load into float32 and back", () => {
  const p = path();
  saveSafetensors(p, { w: T([0.1, -2.75, 1000], { dtype: "float32" }).to("bfloat16") });
  const f32 = SafetensorsFile.open(p).get("w", { dtype: "float32" });
  assert.equal(f32.dtype, "float32");
  assert.deepEqual(f32.toArray(), [0.10009765625, -2.75, 1000]);
  const p2 = path();
  saveSafetensors(p2, { w: f32.to("float16") });
  assert.deepEqual(SafetensorsFile.open(p2).get("w", { dtype: "float32" }).toArray(), [0.10009765625, -2.75, 1000]);
});

test("unaligned data offsets are accepted on read", () => {
  // header of odd length, no padding: the F32 data starts at an odd byte
  let json = JSON.stringify({ a: { dtype: "U8", shape: [1], data_offsets: [0, 1] }, b: { dtype: "F32", shape: [2], data_offsets: [1, 9] } });
  if (json.length % 2 === 0) json += " ";
  const header = Buffer.from(json);
  assert.notEqual(header.length % 2, 0);
  const data = Buffer.alloc(9);
  data[0] = 7;
  data.writeFloatLE(1.25, 1);
  data.writeFloatLE(-8, 5);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const p = path();
  writeFileSync(p, Buffer.concat([len, header, data]));
  const m = loadSafetensors(p);
  assert.deepEqual(m.get("b")!.toArray(), [1.25, -8]);
  assert.deepEqual(m.get("a")!.toArray(), [7]);
});

test("Hugging Face's own files load: every tensor, the right shapes and values", () => {
  const f = SafetensorsFile.open(fixture("hf-tiny/bert/model.safetensors"));
  assert.equal(f.names().length, 63);
  assert.deepEqual(f.info("bert.embeddings.word_embeddings.weight").shape, [1000, 48]);
  assert.equal(f.metadata.format, "pt");
  const g = SafetensorsFile.open(fixture("hf-tiny/gpt2/model.safetensors"));
  assert.equal(g.names().length, 40);
  assert.deepEqual(g.info("transformer.h.0.attn.c_attn.weight").shape, [48, 144]); // Conv1D: (in, out)
  const ln = f.get("bert.embeddings.LayerNorm.weight");
  assert.equal(ln.dtype, "float32");
  assert.ok(ln.sub(1).abs().max().item() > 0); // perturbed, not the trivial init
  // written back by lmforge, the same tensors come back bit for bit
  const p = path();
  const all = f.loadAll();
  saveSafetensors(p, all, f.metadata);
  const again = loadSafetensors(p);
  for (const [name, t] of all) assert.ok(again.get(name)!.equal(t), name);
});

test("a pickle checkpoint is refused, with how to convert it", () => {
  assert.throws(() => SafetensorsFile.open(fixture("hf-tiny/bert/pytorch_model.bin")), (e: Error) => {
    assert.ok(e instanceof SafetensorsError);
    assert.equal(e.rule, "not-safetensors");
    assert.match(e.message, /never reads pickle.*save_pretrained\(DIR, safe_serialization=True\)/);
    return true;
  });
});

test("loading a large file needs about its size in memory, not twice", () => {
  const p = path();
  const mb = 192;
  torch.scope(() => saveSafetensors(p, { big: torch.ones([mb * 262144]) }));
  assert.ok(statSync(p).size > mb * 1048576);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().rss;
  const t = SafetensorsFile.open(p).get("big");
  const grown = (process.memoryUsage().rss - before) / 1048576;
  assert.equal(t.sum().item(), mb * 262144);
  t.dispose();
  assert.ok(grown < mb * 1.5, `RSS grew by ${grown.toFixed(0)} MiB to load a ${mb} MiB tensor`);
});

// --- the malformed corpus ---------------------------------------------------------------------------
function file(header: string | object, data: Buffer | number = 0, lengthOverride?: bigint): Buffer {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, typeof data === "number" ? Buffer.alloc(data) : data]);
}
const ok = (dtype = "F32", shape: number[] = [2], offsets: number[] = [0, 8]): object => ({ dtype, shape, data_offsets: offsets });

const corpus: [string, string, Buffer][] = [
  ["file-too-small", "a 5-byte file", Buffer.alloc(5)],
  ["header-empty", "header length 0", file("", 0, 0n)],
  ["header-too-large", "header length over 100 MB", file("{}", 0, 200_000_000n)],
  ["header-outside-file", "header length past the end", file("{}", 0, 50n)],
  ["header-utf8", "invalid UTF-8 in the header", Buffer.concat([file("{}", 0, 4n).subarray(0, 8), Buffer.from([0x7b, 0xff, 0xfe, 0x7d])])],
  ["header-start", "header not starting with {", file(' {"a":1}')],
  ["header-json", "truncated JSON", file('{"a": {"dtype": "F32"')],
  ["header-trailing", "trailing garbage after the JSON", file('{}x')],
  ["header-trailing", "header padded with NUL bytes instead of spaces", file("{}\0\0\0\0\0\0")],
  ["header-bom", "header starting with a UTF-8 byte-order mark", file("\ufeff{}")],
  ["header-unicode", "a tensor name holding a lone surrogate escape", file('{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)],
  ["header-number", "an offset written as 8.0", file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', 8)],
  ["header-number", "a dimension written as 2e0", file('{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', 8)],
  ["header-start", "header is an array", file("[1]")],
  ["header-depth", "header nested 50 levels deep", file(`{"__metadata__":${"[".repeat(50)}${"]".repeat(50)}}`)],
  ["duplicate-name", "a tensor named twice", file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2)],
  ["duplicate-key", "a tensor entry holding dtype twice", file('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)],
  ["duplicate-name", "__metadata__ twice", file('{"__metadata__":{},"__metadata__":{}}')],
  ["metadata-object", "__metadata__ is a string", file({ __metadata__: "x" })],
  ["metadata-string", "__metadata__ value is a number", file({ __metadata__: { k: 1 } })],
  ["entry-object", "a tensor entry is a number", file({ a: 5 })],
  ["entry-fields", "a tensor entry with an unknown field", file({ a: { ...ok(), extra: 1 } }, 8)],
  ["dtype-missing", "no dtype", file({ a: { shape: [2], data_offsets: [0, 8] } }, 8)],
  ["dtype-string", "dtype is a number", file({ a: { dtype: 4, shape: [2], data_offsets: [0, 8] } }, 8)],
  ["dtype-unsupported", "dtype F8_E4M3", file({ a: ok("F8_E4M3", [2], [0, 2]) }, 2)],
  ["dtype-unsupported", "dtype C64", file({ a: ok("C64", [1], [0, 8]) }, 8)],
  ["shape-array", "shape is a number", file({ a: { dtype: "F32", shape: 2, data_offsets: [0, 8] } }, 8)],
  ["shape-missing", "no shape", file({ a: { dtype: "F32", data_offsets: [0, 8] } }, 8)],
  ["shape-negative", "negative dimension", file({ a: ok("F32", [-2], [0, 8]) }, 8)],
  ["header-number", "fractional dimension", file({ a: ok("F32", [1.5], [0, 6]) }, 6)],
  ["shape-integer", "a dimension beyond 2^53", file('{"a":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,1]}}', 1)],
  ["shape-integer", "a dimension that is a string", file({ a: ok("U8", ["1" as unknown as number], [0, 1]) }, 1)],
  ["shape-rank", "65 dimensions", file({ a: ok("U8", new Array(65).fill(1), [0, 1]) }, 1)],
  ["size-overflow", "element count overflows", file({ a: ok("F32", [2 ** 30, 2 ** 30, 2 ** 30], [0, 8]) }, 8)],
  ["bytes-overflow", "element count fits, byte size overflows", file({ a: ok("F64", [2 ** 51], [0, 8]) }, 8)],
  ["offsets-missing", "no data_offsets", file({ a: { dtype: "F32", shape: [2] } }, 8)],
  ["offsets-pair", "data_offsets with three numbers", file({ a: ok("F32", [2], [0, 4, 8]) }, 8)],
  ["offsets-integer", "an offset of 2^64", file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}}', 8)],
  ["offsets-pair", "data_offsets with one number", file({ a: { dtype: "F32", shape: [2], data_offsets: [0] } }, 8)],
  ["offsets-integer", "negative offset", file({ a: ok("F32", [2], [-8, 0]) }, 8)],
  ["offsets-order", "end before begin", file({ a: ok("F32", [0], [8, 0]) }, 8)],
  ["size-mismatch", "offsets shorter than the shape needs", file({ a: ok("F32", [3], [0, 8]) }, 8)],
  ["size-mismatch", "zero-element tensor with bytes", file({ a: ok("F32", [0], [0, 4]) }, 4)],
  ["data-outside-file", "data past the end of the file", file({ a: ok("F32", [2], [0, 8]) }, 4)],
  ["data-outside-file", "a 1 TiB tensor declared in a small file", file({ a: ok("F32", [1024, 1024, 1024, 256], [0, 2 ** 40]) }, 8)],
  ["offsets-overlap", "a zero-size tensor inside another", file({ a: ok("F32", [2], [0, 8]), b: ok("F32", [0], [4, 4]) }, 8)],
  ["offsets-contiguous", "a hole between tensors", file({ a: ok("F32", [1], [0, 4]), b: ok("F32", [1], [8, 12]) }, 12)],
  ["offsets-contiguous", "data not starting at 0", file({ a: ok("F32", [1], [4, 8]) }, 8)],
  ["offsets-overlap", "two tensors overlapping", file({ a: ok("F32", [2], [0, 8]), b: ok("F32", [1], [4, 8]) }, 8)],
  ["data-trailing", "bytes after the last tensor", file({ a: ok("F32", [2], [0, 8]) }, 12)],
  ["name-empty", "a tensor with an empty name", file({ "": ok() }, 8)],
  ["name-control", "a tensor name with a terminal escape sequence", file({ "a\u001b[2J": ok() }, 8)],
  ["name-control", "a tensor name with a NUL", file({ "a\u0000b": ok() }, 8)],
  ["not-safetensors", "a zip archive (torch.save)", Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(60)])],
  ["not-safetensors", "a protocol-2 pickle (torch.save before 1.6)", Buffer.concat([Buffer.from([0x80, 0x02, 0x8a, 0x0a]), Buffer.alloc(60)])],
];

test(`the malformed corpus: ${corpus.length} files, each refused with its own rule`, () => {
  assert.ok(corpus.length >= 30);
  const rules = new Set<string>();
  for (const [rule, what, bytes] of corpus) {
    const p = path();
    writeFileSync(p, bytes);
    assert.throws(
      () => SafetensorsFile.open(p),
      (e: Error) => {
        assert.ok(e instanceof SafetensorsError, `${what}: not a SafetensorsError: ${e.message}`);
        assert.equal(e.rule, rule, `${what}: expected rule ${rule}, got ${e.rule}: ${e.message}`);
        assert.ok(e.message.startsWith(p), `${what}: the message names the file`);
        return true;
      },
      what,
    );
    rules.add(rule);
  }
  assert.ok(rules.size >= 40, `${rules.size} distinct rules`);
});

test("errors name the tensor at fault", () => {
  const p = path();
  writeFileSync(p, file({ "encoder.weight": ok("F32", [3], [0, 8]) }, 8));
  assert.throws(() => SafetensorsFile.open(p), /tensor "encoder\.weight": F32\[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/);
  assert.throws(() => SafetensorsFile.open(join(dir, "missing.safetensors")), /missing\.safetensors: safetensors file-open: ENOENT/);
});

test("a file truncated after it was opened fails to load with data-read, naming the tensor", () => {
  const p = path();
  saveSafetensors(p, { w: T([1, 2, 3, 4], { dtype: "float32" }) });
  const f = SafetensorsFile.open(p);
  truncateSync(p, statSync(p).size - 4);
  assert.throws(() => f.get("w"), (e: Error) => {
    assert.ok(e instanceof SafetensorsError);
    assert.equal(e.rule, "data-read");
    assert.match(e.message, /tensor "w": .*short read/);
    assert.ok(e.message.startsWith(p));
    return true;
  });
});

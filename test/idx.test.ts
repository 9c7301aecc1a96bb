// IDX (MNIST's format): hand-built files of every element type, gzip-compressed or not, and
// malformed ones, each refused naming the file and the field at fault.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { IdxFormatError, parseIdx, readIdx } from "../src/data/idx.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-idx-");

/** 00 00 type ndims, then the dimensions big-endian, then `data` as given. */
function idx(type: number, dims: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

// a 2x3 ubyte image, as MNIST stores its pixels: 00 00 08 02 | 00 00 00 02 | 00 00 00 03 | 6 bytes
const image = idx(0x08, [2, 3], [0, 1, 127, 128, 254, 255]);

test("a hand-built ubyte file: shape from the big-endian dims, pixels in C order", () => {
  assert.deepEqual([...image.subarray(0, 12)], [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
  const a = parseIdx(image, "image.idx");
  assert.equal(a.dtype, "uint8");
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual([...a.data], [0, 1, 127, 128, 254, 255]);
  const labels = parseIdx(idx(0x08, [4], [7, 2, 1, 0]), "labels.idx"); // idx1-ubyte: one dimension
  assert.deepEqual([...labels.data], [7, 2, 1, 0]);
});

test("every element type is read big-endian", () => {
  assert.deepEqual([...parseIdx(idx(0x09, [2], [0xff, 0x7f])).data], [-1, 127]);
  // 0x0102 = 258, 0xFFFE = -2
  assert.deepEqual([...parseIdx(idx(0x0b, [2], [0x01, 0x02, 0xff, 0xfe])).data], [258, -2]);
  // 0x01020304 = 16909060, 0xFFFFFFFF = -1
  assert.deepEqual([...parseIdx(idx(0x0c, [2], [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff])).data], [16909060, -1]);
  // IEEE 754: 0x3FC00000 = 1.5, 0xC0200000 = -2.5
  const f = parseIdx(idx(0x0d, [2], [0x3f, 0xc0, 0, 0, 0xc0, 0x20, 0, 0]));
  assert.equal(f.dtype, "float32");
  assert.deepEqual([...f.data], [1.5, -2.5]);
  // 0xC000000000000000 = -2
  const d = parseIdx(idx(0x0e, [1, 1], [0xc0, 0, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual([d.dtype, d.shape, [...d.data]], ["float64", [1, 1], [-2]]);
  // zero dimensions: one element; a zero dimension: none
  assert.deepEqual([...parseIdx(idx(0x08, [], [42])).data], [42]);
  assert.deepEqual(parseIdx(idx(0x08, [3, 0], [])).shape, [3, 0]);
});

test("gzip-compressed files (1f 8b) are inflated; readIdx reads files of both kinds", () => {
  const gz = gzipSync(image);
  assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b]);
  assert.deepEqual([...parseIdx(gz, "image.idx.gz").data], [0, 1, 127, 128, 254, 255]);
  const plain = join(dir, "t10k-images-idx3-ubyte");
  writeFileSync(plain, image);
  writeFileSync(`${plain}.gz`, gz);
  assert.deepEqual(readIdx(plain).shape, [2, 3]);
  assert.deepEqual([...readIdx(`${plain}.gz`).data], [...readIdx(plain).data]);
  // a larger file whose header lies past the first 64 compressed bytes (a long gzip file name)
  const named = Buffer.concat([gz.subarray(0, 3), Buffer.from([gz[3]! | 0x08]), gz.subarray(4, 10), Buffer.from("x".repeat(300) + "\0"), gz.subarray(10)]);
  assert.deepEqual(parseIdx(named, "named.gz").shape, [2, 3]);
});

test("malformed files: each refused naming the file and the field", () => {
  const gz = gzipSync(image);
  const corruptGz = Buffer.from(gz);
  corruptGz[12] = corruptGz[12]! ^ 0xff;
  const cases: [string, Buffer, string, RegExp][] = [
    ["empty", Buffer.alloc(0), "magic", /the file has 0 bytes/],
    ["bad magic", Buffer.from([1, 0, 8, 1, 0, 0, 0, 1, 5]), "magic", /must begin with 0x00 0x00, found 0x01 0x00/],
    ["unknown type", idx(0x0a, [1], [5]), "dtype", /unknown element type 0x0A/],
    ["header cut short", idx(0x08, [2, 3], []).subarray(0, 9), "dims", /2 dimensions need a 12-byte header; the file has 9 bytes/],
    ["data cut short", image.subarray(0, 15), "data", /need 18 bytes with the header; the file holds 15/],
    ["trailing bytes", Buffer.concat([image, Buffer.from([9, 9])]), "data", /2 bytes follow the 18/],
    // 65536 * 65536 * 256 doubles = 2^43 bytes, plus a 16-byte header
    ["a terabyte declared", idx(0x0e, [65536, 65536, 256], []), "data", /need 8796093022224 bytes with the header; the file holds 16/],
    ["more than 2^53 bytes declared", idx(0x0e, [0xffffffff, 0xffffffff], []), "dims[1]", /more than 2\^53 bytes/],
    ["gzip data corrupted", corruptGz, "gzip", /cannot inflate/],
    ["gzip cut short", gz.subarray(0, gz.length - 10), "gzip", /cannot inflate/],
    ["gzip declaring more than deflate can hold", gzipSync(idx(0x08, [1 << 30, 64], [])), "dims", /more than \d+ compressed bytes can hold/],
    ["gzip holding more than declared", gzipSync(Buffer.concat([image, Buffer.alloc(1000)])), "data", /inflates to more than the 18 bytes its header declares/],
  ];
  for (const [what, bytes, field, reason] of cases) {
    const file = join(dir, `${what.replace(/\W+/g, "-")}.idx`);
    writeFileSync(file, bytes);
    for (const load of [() => readIdx(file), () => parseIdx(bytes, file)]) {
      assert.throws(load, (e: Error) => {
        assert.ok(e instanceof IdxFormatError, `${what}: ${e.message}`);
        assert.equal(e.file, file);
        assert.equal(e.field, field, `${what}: ${e.message}`);
        assert.ok(e.message.startsWith(`${file}: IDX ${field}: `), e.message);
        assert.match(e.message, reason, what);
        return true;
      });
    }
  }
  assert.throws(() => readIdx(join(dir, "missing")), /missing: IDX file: cannot open \(ENOENT\)/);
  assert.throws(() => readIdx(dir), /IDX file: not a regular file/);
});

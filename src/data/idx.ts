// IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
//
//   bytes 0-1  0x00 0x00
//   byte  2    the element type: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
//   byte  3    the number of dimensions, d
//   4 * d      the dimensions, unsigned 32-bit big-endian
//   the rest   the elements, big-endian, C order (the last dimension varies fastest)
//
// The files usually travel gzip-compressed (train-images-idx3-ubyte.gz); those are detected by
// gzip's magic bytes 1f 8b and inflated here. Memory stays proportional to the file: the size
// the header declares is checked against the file (or, compressed, against the most deflate can
// expand it to) before anything is allocated, and inflation stops at the declared size.
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from "node:fs";
import { constants as zlibConstants, gunzipSync } from "node:zlib";

export type IdxDType = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

export interface IdxArray {
  dtype: IdxDType;
  /** The dimensions, outermost first: [60000, 28, 28] for MNIST's training images. */
  shape: number[];
  /** The elements in C order, in the platform's byte order. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** A malformed IDX file: `file`, the `field` at fault (magic, dtype, dims, dims[i], data, gzip) and why. */
export class IdxFormatError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    reason: string,
  ) {
    super(`${file}: IDX ${field}: ${reason}`);
  }
}

const DTYPES: Readonly<Record<number, { dtype: IdxDType; size: number }>> = {
  0x08: { dtype: "uint8", size: 1 },
  0x09: { dtype: "int8", size: 1 },
  0x0b: { dtype: "int16", size: 2 },
  0x0c: { dtype: "int32", size: 4 },
  0x0d: { dtype: "float32", size: 4 },
  0x0e: { dtype: "float64", size: 8 },
};

/** Deflate expands at most 1032:1 (zlib's technical details); a declared size beyond that is a lie. */
const MAX_DEFLATE_RATIO = 1032;

interface IdxHeader {
  dtype: IdxDType;
  itemSize: number;
  shape: number[];
  headerBytes: number;
  /** Header plus data: the size the whole (uncompressed) file must have. */
  totalBytes: number;
}

/**
 * Parses the header from the first bytes of an (uncompressed) IDX file. Returns null when more
 * bytes are needed to see the whole header, unless `complete` says there are no more.
 */
function parseIdxHeader(head: Uint8Array, file: string, complete: boolean): IdxHeader | null {
  const fail = (field: string, reason: string): never => {
    throw new IdxFormatError(file, field, reason);
  };
  if (head.length < 4) return complete ? fail("magic", `the file has ${head.length} bytes; the 4-byte magic number is missing`) : null;
  if (head[0] !== 0 || head[1] !== 0) fail("magic", `the file must begin with 0x00 0x00, found 0x${hex(head[0]!)} 0x${hex(head[1]!)}`);
  const type = DTYPES[head[2]!];
  if (!type) return fail("dtype", `unknown element type 0x${hex(head[2]!)} (known: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double)`);
  const ndims = head[3]!;
  const headerBytes = 4 + 4 * ndims;
  if (head.length < headerBytes) return complete ? fail("dims", `${ndims} dimensions need a ${headerBytes}-byte header; the file has ${head.length} bytes`) : null;
  const view = new DataView(head.buffer, head.byteOffset, headerBytes);
  const shape: number[] = [];
  let elements = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    elements *= d; // exact: a product of 32-bit numbers leaves the safe range only past 2^53, checked below
    if (!Number.isSafeInteger(elements * type.size)) fail(`dims[${i}]`, `dimensions [${shape.join(", ")}...] declare more than 2^53 bytes`);
  }
  return { dtype: type.dtype, itemSize: type.size, shape, headerBytes, totalBytes: headerBytes + elements * type.size };
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0").toUpperCase();
}

/** Big-endian element bytes into a typed array in the platform's order. */
function decodeElements(bytes: Uint8Array, header: IdxHeader): IdxArray["data"] {
  const n = (header.totalBytes - header.headerBytes) / header.itemSize;
  const view = new DataView(bytes.buffer, bytes.byteOffset + header.headerBytes, n * header.itemSize);
  switch (header.dtype) {
    case "uint8":
      return new Uint8Array(bytes.buffer, bytes.byteOffset + header.headerBytes, n).slice();
    case "int8":
      return new Int8Array(bytes.buffer, bytes.byteOffset + header.headerBytes, n).slice();
    case "int16": {
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, false);
      return out;
    }
    case "float32": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, false);
      return out;
    }
  }
}

function checkSize(header: IdxHeader, actual: number, file: string): void {
  if (actual < header.totalBytes) throw new IdxFormatError(file, "data", `dimensions [${header.shape.join(", ")}] of ${header.dtype} need ${header.totalBytes} bytes with the header; the file holds ${actual}`);
  if (actual > header.totalBytes) throw new IdxFormatError(file, "data", `${actual - header.totalBytes} bytes follow the ${header.totalBytes} that dimensions [${header.shape.join(", ")}] of ${header.dtype} declare`);
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Inflates a gzip-compressed IDX file: first just enough of it to read the header (a prefix,
 * flushed; its output is bounded by deflate's ratio), then the whole with the declared size as
 * the limit.
 */
function inflateIdx(compressed: Uint8Array, file: string): { header: IdxHeader; bytes: Uint8Array } {
  const inflate = (input: Uint8Array, options: { maxOutputLength: number; partial: boolean }): Buffer => {
    try {
      return gunzipSync(input, { maxOutputLength: Math.max(1, options.maxOutputLength), ...(options.partial ? { finishFlush: zlibConstants.Z_SYNC_FLUSH } : {}) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ERR_BUFFER_TOO_LARGE") throw new IdxFormatError(file, "data", `inflates to more than the ${options.maxOutputLength} bytes its header declares`);
      throw new IdxFormatError(file, "gzip", `cannot inflate (${code ?? (e as Error).message})`);
    }
  };
  let header: IdxHeader | null = null;
  for (let prefix = 64; header === null; prefix *= 2) {
    const whole = prefix >= compressed.length;
    const part = inflate(compressed.subarray(0, prefix), { maxOutputLength: MAX_DEFLATE_RATIO * Math.min(prefix, compressed.length) + 1024, partial: true });
    header = parseIdxHeader(part, file, whole);
  }
  const limit = MAX_DEFLATE_RATIO * compressed.length + 1024;
  if (header.totalBytes > limit) throw new IdxFormatError(file, "dims", `dimensions [${header.shape.join(", ")}] declare ${header.totalBytes} bytes, more than ${compressed.length} compressed bytes can hold`);
  const bytes = inflate(compressed, { maxOutputLength: header.totalBytes, partial: false });
  checkSize(header, bytes.length, file);
  return { header, bytes };
}

/**
 * Parses IDX bytes (gzip-compressed or not); `file` names the source in errors.
 *
 * @example parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]), "tiny.idx") // { dtype: "uint8", shape: [2], data: Uint8Array [7, 9] }
 */
export function parseIdx(bytes: Uint8Array, file = "<IDX bytes>"): IdxArray {
  if (isGzip(bytes)) {
    const { header, bytes: raw } = inflateIdx(bytes, file);
    return { dtype: header.dtype, shape: header.shape, data: decodeElements(raw, header) };
  }
  const header = parseIdxHeader(bytes, file, true)!;
  checkSize(header, bytes.length, file);
  return { dtype: header.dtype, shape: header.shape, data: decodeElements(bytes, header) };
}

/**
 * Reads an IDX file (train-images-idx3-ubyte, or its .gz). The header is checked against the
 * file's size before the file is read, so a file declaring terabytes costs nothing.
 */
export function readIdx(path: string): IdxArray {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    throw new IdxFormatError(path, "file", `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new IdxFormatError(path, "file", "not a regular file");
    const readAt = (n: number): Buffer => {
      const b = Buffer.alloc(n);
      let got = 0;
      while (got < n) {
        const r = readSync(fd, b, got, n - got, got);
        if (r <= 0) throw new IdxFormatError(path, "file", `short read at byte ${got} of ${n} (the file changed while read)`);
        got += r;
      }
      return b;
    };
    const head = readAt(Math.min(stat.size, 4 + 4 * 255));
    if (!isGzip(head)) {
      const header = parseIdxHeader(head, path, true)!;
      checkSize(header, stat.size, path);
    }
    return parseIdx(readAt(stat.size), path);
  } finally {
    closeSync(fd);
  }
}

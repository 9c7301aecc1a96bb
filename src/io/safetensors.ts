// The safetensors format (https://github.com/huggingface/safetensors), read and written
// exactly as its specification says: an 8-byte little-endian header length N, N bytes of
// JSON header, then the tensors' bytes, contiguous, in the order of their offsets.
//
// Reading validates the whole header before allocating anything: every violation is a
// SafetensorsError naming its rule and the tensor at fault. Tensors are read straight from
// the file into their memory (pread), so loading needs no second copy of the file.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import * as torch from "../torch/index.js";
import type { DType, Tensor } from "../torch/index.js";
import { native } from "../torch/native.js";
import { parseStrictJson, JsonError } from "./strict-json.js";
import type { Json } from "./strict-json.js";
import { writeAll, writeFileAtomic, writeFileSynced } from "./atomic.js";

/** safetensors dtype names and the lmforge dtypes they map to. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};
const TO_SAFETENSORS: Readonly<Record<DType, string>> = Object.fromEntries(
  Object.entries(SAFETENSORS_DTYPES).map(([k, v]) => [v, k]),
) as Record<DType, string>;

/** The largest header read (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(
    /** The rule broken, e.g. "offsets-contiguous". */
    readonly rule: string,
    message: string,
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ""}safetensors ${rule}: ${message}`);
  }
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  /** The dtype as the file names it (F32, BF16, ...). */
  fileDtype: string;
  shape: number[];
  /** Byte offsets into the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  headerLength: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

const PICKLE_HINT =
  "lmforge never reads pickle checkpoints (.bin, .pt, .pth): unpickling can run arbitrary code. " +
  "Convert it once with Python: `from transformers import AutoModel; AutoModel.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)` " +
  "or `from safetensors.torch import save_file; import torch; save_file(torch.load(FILE), 'model.safetensors')`";

function isPickleOrZip(first: Uint8Array): boolean {
  const pickle = first[0] === 0x80 && first[1]! >= 2 && first[1]! <= 5;
  const zip = first[0] === 0x50 && first[1] === 0x4b && first[2] === 0x03 && first[3] === 0x04;
  return pickle || zip;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

/** C0 and C1 control characters: a tensor name holding them could rewrite a terminal that prints it. */
const CONTROL_CHAR = /[\u0000-\u001f\u007f-\u009f]/;

/** The rule a JSON parse failure of the header breaks. */
function jsonRule(e: JsonError): [string, string] {
  switch (e.kind) {
    case "duplicate-key":
      return e.depth <= 1 ? ["duplicate-name", "the header names a tensor twice"] : ["duplicate-key", "a header entry holds a key twice"];
    case "depth":
      return ["header-depth", "the header is nested too deeply"];
    case "lone-surrogate":
      return ["header-unicode", "the header is no valid Unicode"];
    case "number":
      return ["header-number", "shapes and offsets must be written as integers"];
    case "trailing":
      return ["header-trailing", "the header holds bytes after its JSON object other than space padding"];
    default:
      return ["header-json", "the header is not valid JSON"];
  }
}

/**
 * Validates a header against the specification, given its bytes and the file's size.
 * Nothing is allocated here beyond the parsed header.
 */
export function parseHeader(first8: Uint8Array, readHeader: (n: number) => Uint8Array, fileSize: number, file?: string): SafetensorsHeader {
  const err = (rule: string, msg: string): never => {
    throw new SafetensorsError(rule, msg, file);
  };
  if (fileSize < 8) err("file-too-small", `the file has ${fileSize} bytes; the 8-byte header length is missing`);
  if (isPickleOrZip(first8)) err("not-safetensors", `this is a PyTorch pickle or zip checkpoint. ${PICKLE_HINT}`);
  const n64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n64 === 0n) err("header-empty", "the header length is 0");
  if (n64 > BigInt(MAX_HEADER_BYTES)) err("header-too-large", `the header length ${n64} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const n = Number(n64);
  if (8 + n > fileSize) err("header-outside-file", `the header length ${n} runs past the end of the ${fileSize}-byte file`);
  const bytes = readHeader(n);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) err("header-bom", "the header begins with a UTF-8 byte-order mark; it must begin with '{'");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return err("header-utf8", "the header is not valid UTF-8");
  }
  if (!text.startsWith("{")) err("header-start", `the header must start with '{', found ${JSON.stringify(text.slice(0, 10))}`);
  // The header may be padded with trailing spaces (writers align the data to 8 bytes).
  const trimmed = text.replace(/ +$/, "");
  let json: Json;
  try {
    json = parseStrictJson(trimmed, 8, { integersOnly: true });
  } catch (e) {
    if (!(e instanceof JsonError)) throw e;
    const [rule, what] = jsonRule(e);
    return err(rule, `${what}: ${e.message}`);
  }
  // (a header that starts with '{' and parses is an object)
  const metadata: [string, string][] = [];
  const tensors = new Map<string, TensorInfo>();
  const dataSize = fileSize - 8 - n;
  for (const [name, entry] of Object.entries(json as Record<string, Json>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) err("metadata-object", "__metadata__ must be an object of strings");
      for (const [k, v] of Object.entries(entry as Record<string, Json>)) {
        if (typeof v !== "string") err("metadata-string", `__metadata__[${JSON.stringify(k)}] must be a string, got ${JSON.stringify(v)}`);
        metadata.push([k, v as string]);
      }
      continue;
    }
    if (name.length === 0) err("name-empty", "a tensor has an empty name");
    if (CONTROL_CHAR.test(name)) err("name-control", `tensor ${JSON.stringify(name)} has a control character in its name`);
    const at = `tensor "${name}"`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return err("entry-object", `${at} must be an object with dtype, shape and data_offsets`);
    const e = entry as Record<string, Json>;
    for (const key of Object.keys(e)) {
      if (key !== "dtype" && key !== "shape" && key !== "data_offsets") err("entry-fields", `${at} has an unknown field ${JSON.stringify(key)}`);
    }
    if (!("dtype" in e)) err("dtype-missing", `${at} has no dtype`);
    if (typeof e.dtype !== "string") err("dtype-string", `${at}: dtype must be a string, got ${JSON.stringify(e.dtype)}`);
    const dtype = SAFETENSORS_DTYPES[e.dtype as string];
    if (dtype === undefined) err("dtype-unsupported", `${at} has dtype ${JSON.stringify(e.dtype)}, which lmforge does not load (supported: ${Object.keys(SAFETENSORS_DTYPES).join(" ")})`);
    if (!("shape" in e)) err("shape-missing", `${at} has no shape`);
    if (!Array.isArray(e.shape)) return err("shape-array", `${at}: shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const shape = e.shape as Json[];
    if (shape.length > 64) err("shape-rank", `${at} has ${shape.length} dimensions`);
    let numel = 1;
    for (const d of shape) {
      if (typeof d === "number" && d < 0) err("shape-negative", `${at}: shape ${JSON.stringify(shape)} has a negative dimension`);
      if (!isNonNegInt(d)) err("shape-integer", `${at}: shape must be an array of integers below 2^53, got ${JSON.stringify(shape)}`);
      numel *= d as number;
      if (!Number.isSafeInteger(numel)) err("size-overflow", `${at}: the element count of shape ${JSON.stringify(shape)} overflows 2^53`);
    }
    if (!("data_offsets" in e)) err("offsets-missing", `${at} has no data_offsets`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2) return err("offsets-pair", `${at}: data_offsets must be a pair [begin, end], got ${JSON.stringify(offs)}`);
    if (!isNonNegInt(offs[0]) || !isNonNegInt(offs[1])) return err("offsets-integer", `${at}: data_offsets must be non-negative integers below 2^53, got ${JSON.stringify(offs)}`);
    const [begin, end] = offs as [number, number];
    if (begin > end) err("offsets-order", `${at}: data_offsets [${begin}, ${end}] ends before it begins`);
    const nbytes = numel * torch.DTYPES[dtype!].itemSize;
    if (!Number.isSafeInteger(nbytes)) err("bytes-overflow", `${at}: the byte size of ${e.dtype as string}${JSON.stringify(shape)} overflows 2^53`);
    if (end - begin !== nbytes) {
      err("size-mismatch", `${at}: ${e.dtype as string}${JSON.stringify(shape)} needs ${nbytes} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    if (end > dataSize) err("data-outside-file", `${at}: data_offsets [${begin}, ${end}] run past the ${dataSize}-byte data section`);
    tensors.set(name, { name, dtype: dtype!, fileDtype: e.dtype as string, shape: shape as number[], begin, end });
  }
  // The data section is covered exactly: sorted by offset, each tensor starts where the last
  // ended (no holes, no overlaps, no trailing bytes: the bytes cannot hide a second file).
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.begin > pos) err("offsets-contiguous", `a hole of ${t.begin - pos} bytes lies before tensor "${t.name}" (at data offset ${pos})`);
    if (t.begin < pos) err("offsets-overlap", `tensor "${t.name}" [${t.begin}, ${t.end}] overlaps tensor "${prev!.name}" [${prev!.begin}, ${prev!.end}]`);
    pos = t.end;
    prev = t;
  }
  if (pos !== dataSize) err("data-trailing", `the data section has ${dataSize} bytes but the tensors cover ${pos}`);
  // fromEntries keeps a "__proto__" key as a key (assignment would drop it)
  return { headerLength: n, metadata: Object.fromEntries(metadata) as Record<string, string>, tensors };
}

/** An open safetensors file: the validated header, and tensors loaded on request. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    readonly header: SafetensorsHeader,
  ) {}

  /** Opens and validates a file; no tensor is read yet. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      // non-blocking: a FIFO in place of the file must not hang the open
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new SafetensorsError("file-open", (e as Error).message, path);
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new SafetensorsError("file-open", "not a regular file", path);
      const size = stat.size;
      const first = Buffer.alloc(8);
      readSync(fd, first, 0, Math.min(8, size), 0);
      const header = parseHeader(first, (n) => {
        const b = Buffer.alloc(n);
        let got = 0;
        while (got < n) {
          const r = readSync(fd, b, got, n - got, 8 + got);
          if (r <= 0) throw new SafetensorsError("header-outside-file", "short read of the header", path);
          got += r;
        }
        return b;
      }, size, path);
      return new SafetensorsFile(path, header);
    } finally {
      closeSync(fd);
    }
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError("tensor-missing", `no tensor named "${name}"`, this.path);
    return t;
  }

  /** Reads one tensor (converted to dtype if given), straight from the file into its memory. */
  get(name: string, options: { dtype?: DType } = {}): Tensor {
    const info = this.info(name);
    const t = torch.empty(info.shape, { dtype: info.dtype });
    try {
      if (info.end > info.begin) native.readFileInto(t._h, this.path, 8 + this.header.headerLength + info.begin);
    } catch (e) {
      // the file changed since open (truncated, replaced) or cannot be read any more
      t.dispose();
      throw new SafetensorsError("data-read", `tensor "${name}": ${(e as Error).message}`, this.path);
    }
    if (options.dtype && options.dtype !== info.dtype) {
      const c = t.to(options.dtype);
      t.dispose();
      return c;
    }
    return t;
  }

  /** Reads every tensor. */
  loadAll(options: { dtype?: DType } = {}): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const name of this.names()) out.set(name, this.get(name, options));
    return out;
  }
}

/** Reads every tensor of a file: `loadSafetensors("model.safetensors")`. */
export function loadSafetensors(path: string, options: { dtype?: DType } = {}): Map<string, Tensor> {
  return SafetensorsFile.open(path).loadAll(options);
}

/** Tensors of at least this many bytes are written from their own memory, without a copy. */
const ZERO_COPY_BYTES = 1 << 20;

/**
 * Writes tensors (any device or layout) to a safetensors file, atomically. Tensors are laid
 * out by decreasing element size, then name, and the header is padded to 8 bytes, so that
 * every tensor's data is aligned to its element size. `atomic: false` writes in place (with
 * fsync), for a file inside a folder that is renamed into place as a whole.
 */
export function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}, options: { atomic?: boolean } = {}): void {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))];
  for (const [name, t] of entries) {
    if (name.length === 0 || name === "__metadata__") throw new SafetensorsError("name-reserved", `cannot save a tensor named "${name}"`, path);
    if (t.isDisposed) throw new SafetensorsError("tensor-disposed", `tensor "${name}" was disposed`, path);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new SafetensorsError("metadata-string", `metadata "${k}" must be a string`, path);
  }
  entries.sort(([a, x], [b, y]) => torch.DTYPES[y.dtype].itemSize - torch.DTYPES[x.dtype].itemSize || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const nbytes = t.numel * torch.DTYPES[t.dtype].itemSize;
    header[name] = { dtype: TO_SAFETENSORS[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(headerBytes.byteLength));
  (options.atomic ?? true ? writeFileAtomic : writeFileSynced)(path, (fd) => {
    writeAll(fd, lengthBytes);
    writeAll(fd, headerBytes);
    for (const [, t] of entries) {
      if (t.numel === 0) continue;
      torch.scope(() => {
        const src = t.device === "cpu" && t.isContiguous ? t : t.detach().to("cpu").contiguous();
        // Below 1 MiB the bytes are copied: a zero-copy view is an external ArrayBuffer whose
        // N-API finalizer runs only when the event loop turns, so a synchronous training loop
        // that saves often (Trainer.train()) would pile up ~1 kB of them per tensor per save.
        writeAll(fd, new Uint8Array(src.toBuffer(src.numel * torch.DTYPES[src.dtype].itemSize < ZERO_COPY_BYTES)));
      });
    }
  });
}

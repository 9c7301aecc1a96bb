// A strict JSON parser for file headers: unlike JSON.parse it refuses duplicate keys (a
// safetensors header with two entries of one name is malformed, and JSON.parse would keep
// the last silently), strings holding a lone UTF-16 surrogate (\ud800 escapes, which are no
// Unicode text; Rust's serde_json, the reference reader, refuses them too), and bounds the
// nesting depth. On request it also refuses numbers with a fraction or an exponent.

/** What a JsonError is about; "syntax" for everything that is not one of the others. */
export type JsonErrorKind = "syntax" | "duplicate-key" | "depth" | "lone-surrogate" | "number" | "trailing";

export class JsonError extends Error {
  constructor(
    message: string,
    readonly position: number,
    readonly kind: JsonErrorKind = "syntax",
    /** How deep the fault lies: 1 for a key of the top-level object. */
    readonly depth = 0,
  ) {
    super(`${message} at character ${position}`);
  }
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface StrictJsonOptions {
  /** Refuse numbers written with a fraction or an exponent (8.0, 1e3): a header of integers. */
  integersOnly?: boolean;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Parses JSON text strictly (see the file comment); objects come back without a prototype. */
export function parseStrictJson(text: string, maxDepth = 16, options: StrictJsonOptions = {}): Json {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  };
  const fail = (msg: string, kind: JsonErrorKind = "syntax", depth = 0): never => {
    throw new JsonError(msg, i, kind, depth);
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text[i]!;
      if (c === '"') break;
      if (c < " ") fail("control character in string");
      if (c === "\\") {
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (e !== undefined && e in simple) {
          out += simple[e];
          i += 2;
        } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail("bad escape in string");
      } else {
        out += c;
        i++;
      }
    }
    i++;
    if (i - start > 1 << 20) fail("string too long");
    if (LONE_SURROGATE.test(out)) {
      i = start;
      fail("a string holds a lone UTF-16 surrogate escape, which is no Unicode text", "lone-surrogate");
    }
    return out;
  };
  const value = (depth: number): Json => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`, "depth", depth);
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: { [key: string]: Json } = Object.create(null) as { [key: string]: Json };
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const keyPos = i;
        const key = str();
        if (Object.prototype.hasOwnProperty.call(obj, key)) throw new JsonError(`duplicate key "${key}"`, keyPos, "duplicate-key", depth + 1);
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        obj[key] = value(depth + 1);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: Json[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m) {
      if (options.integersOnly && (m[2] !== undefined || m[3] !== undefined)) fail(`the number ${m[0]} is not written as an integer`, "number");
      i += m[0].length;
      return Number(m[0]);
    }
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail("unexpected character");
  };
  const result = value(0);
  ws();
  if (i !== text.length) fail("trailing characters after the JSON value", "trailing");
  return result;
}

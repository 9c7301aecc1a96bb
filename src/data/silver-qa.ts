// SILVER extractive questions (SQuAD v2.0 layout) from Debian's English package descriptions:
// the questions come from a few high-precision sentence patterns, not from people. They stand in
// for SQuAD, which no package here ships, so that extractive QA fine-tuning can be shown to learn.
//
// Source: the Translation-en index that `apt-get update -o Acquire::Languages=en` stores in
// /var/lib/apt/lists (lz4- or gzip-compressed, or plain). A record reads
//   Package: 0ad-data
//   Description-md5: 26581e...
//   Description-en: <short description>
//    <long description, continuation lines start with one space; " ." is a paragraph break>
// The context of a question is the long description: wrapped lines joined by spaces, paragraphs
// and indented (verbatim, list) lines by newlines. Every answer is the context's exact substring.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { Rng } from "./random.js";

export interface SquadAnswer {
  text: string;
  answer_start: number;
}

export interface SquadQuestion {
  id: string;
  question: string;
  answers: SquadAnswer[];
  is_impossible: boolean;
}

/** A SQuAD v2.0 file: articles (here one per package) of paragraphs with their questions. */
export interface SquadDataset {
  version: "v2.0";
  data: { title: string; paragraphs: { context: string; qas: SquadQuestion[] }[] }[];
}

export interface DebianDescription {
  package: string;
  short: string;
  context: string;
  /** "file:line" of the Package: field. */
  source: string;
}

export interface DebianQaOptions {
  /** A Translation-en file (default: findTranslationFile()). */
  file?: string;
  /** Seeds the split of packages and the choice of unanswerable questions (default 0). */
  seed?: number;
  /** Caps the questions over all splits, each split keeping its share (default: no cap). */
  maxExamples?: number;
}

const APT_LISTS = "/var/lib/apt/lists";
export const FETCH_TRANSLATIONS = "apt-get update -o Acquire::Languages=en";

// ---- reading the index -----------------------------------------------------------------------

/** The largest Translation-en index in /var/lib/apt/lists (the main archive's), or null. */
export function findTranslationFile(dir: string = APT_LISTS): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir)
    .filter((f) => /_i18n_Translation-en(\.\w+)?$/.test(f))
    .map((f) => join(dir, f));
  files.sort((a, b) => statSync(b).size - statSync(a).size);
  return files[0] ?? null;
}

/** The text of a Translation-en file: lz4 (through the `lz4` command), gzip, or plain. */
export function readTranslationFile(path: string): string {
  if (!existsSync(path)) throw new Error(`${path}: no such file; fetch the Debian descriptions with \`${FETCH_TRANSLATIONS}\` (as root)`);
  if (path.endsWith(".lz4")) {
    const run = spawnSync("lz4", ["-dc", path], { maxBuffer: 1 << 30, encoding: "utf8" });
    if (run.error) throw new Error(`${path}: cannot run the lz4 command to decompress it (${run.error.message}); install it with \`apt-get install lz4\``);
    if (run.status !== 0) throw new Error(`${path}: lz4 -dc failed (exit ${run.status}): ${run.stderr.trim()}`);
    return run.stdout;
  }
  if (path.endsWith(".gz")) return gunzipSync(readFileSync(path)).toString("utf8");
  if (/\.(xz|bz2|zst)$/.test(path)) throw new Error(`${path}: compression not supported here; decompress it first (xz -dk / bzip2 -dk / zstd -d)`);
  return readFileSync(path, "utf8");
}

/** Parses Translation-en records (the first record of a package wins; later ones are other versions). */
export function parseDescriptions(text: string, file = "Translation-en"): DebianDescription[] {
  const out: DebianDescription[] = [];
  const seen = new Set<string>();
  const lines = text.split("\n");
  let pkg = "";
  let pkgLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("Package:")) [pkg, pkgLine] = [line.slice(8).trim(), i + 1];
    if (!line.startsWith("Description-en:")) continue;
    if (!pkg) throw new Error(`${file}:${i + 1}: Description-en before any Package: field`);
    const long: string[] = [];
    while (i + 1 < lines.length && lines[i + 1]!.startsWith(" ")) long.push(lines[++i]!.slice(1));
    if (!seen.has(pkg)) out.push({ package: pkg, short: line.slice(15).trim(), context: joinLongDescription(long), source: `${file}:${pkgLine}` });
    seen.add(pkg);
    pkg = "";
  }
  return out;
}

/** Wrapped lines join with a space; paragraph breaks (".") and indented lines start new lines. */
export function joinLongDescription(lines: string[]): string {
  const out: string[] = [];
  let current = "";
  const flush = (): void => {
    if (current) out.push(current);
    current = "";
  };
  for (const line of lines) {
    if (line.trim() === ".") flush();
    else if (/^\s/.test(line)) {
      flush();
      out.push(line.trim()); // a list item or verbatim line
    } else current = current ? `${current} ${line.trim()}` : line.trim();
  }
  flush();
  return out.join("\n");
}

// ---- patterns ----------------------------------------------------------------------------------

const LANGUAGES = "C\\+\\+|C#|Objective-C|Common Lisp|Emacs Lisp|JavaScript|TypeScript|CoffeeScript|Python|Perl|Java|Ruby|Go|Rust|Haskell|OCaml|Lua|PHP|Tcl|Scheme|Erlang|Elixir|Fortran|Ada|Pascal|Vala|Scala|Kotlin|Clojure|Julia|Prolog|Smalltalk|Nim|Crystal|Zig|Racket|Guile|Shell|Bash|C|R|D";
const LANGUAGE_NAMES = new RegExp(`\\b(?:${LANGUAGES.replace(/\|C\|R\|D$/, "")})(?![\\w+#])`);

/** Where the sentence that holds `at` starts (after ". " or a line break), in context. */
function sentenceStart(context: string, at: number): number {
  const before = context.slice(0, at);
  const m = /(?:[.!?]\s+|\n)(?=[^\n]*$)/.exec(before);
  return m ? m.index + m[0].length : 0;
}

/** Where the sentence that runs through `from` ends: ". ", "; ", "!", "?", a line break or the end. */
function sentenceEnd(context: string, from: number): number {
  const re = /[.;!?:](?=\s|$)|\n/g;
  re.lastIndex = from;
  for (let m = re.exec(context); m; m = re.exec(context)) {
    // "e.g. ", "i.e. ", "etc. ", "vs. " and initials do not end a sentence
    if (m[0] === "." && /(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|al)|\b\p{L})$/u.test(context.slice(Math.max(from, m.index - 6), m.index))) continue;
    return m.index;
  }
  return context.length;
}

interface Pattern {
  name: string;
  /** The question for package `pkg` (with `subject` for "What is X?"). */
  question: (pkg: string, subject: string) => string;
  /** The answer span [start, end) and the subject, or null. */
  find: (context: string, pkg: string) => { start: number; end: number; subject: string } | null;
  /** A context without this cue may be asked the question as unanswerable (null: never). */
  cue: RegExp | null;
}

// The sentence's subject must be the package: "It", "This package/library/...", or its name.
function aboutPackage(subjectText: string, pkg: string): boolean {
  const subject = subjectText.trim().toLowerCase();
  const bare = pkg.toLowerCase().replace(/^(lib|python3?-|ruby-|golang-|node-|r-cran-|lib.*-perl$)/, "");
  return /^(it|this (package|library|program|tool|module|application|software|plugin|utility|version|extension))$/.test(subject) || subject === pkg.toLowerCase() || subject === bare;
}

const COORDINATED_VERB = /,? (?:and |but )?(?:it |is |are |has |have |can |uses |runs |provides |supports |works |allows |includes |offers |comes |requires |also |which |that |so |while |whereas )/;

// A clause that runs to the end of its sentence: "This package contains <the shared library>."
// When the opening captures a subject (group 1), it must be the package.
function clause(opening: RegExp): Pattern["find"] {
  return (context, pkg) => {
    const m = opening.exec(context);
    if (!m || (m[1] !== undefined && !aboutPackage(m[1], pkg))) return null;
    const start = m.index + m[0].length;
    let end = sentenceEnd(context, start);
    // "It supports [regular expressions] and is capable of ...": a second verb ends the object
    const verb = context.slice(start, end).search(COORDINATED_VERB);
    if (verb > 0) end = start + verb;
    const text = context.slice(start, end);
    const balanced = (text.match(/\(/g) ?? []).length === (text.match(/\)/g) ?? []).length;
    // a list follows ("contains:"), an unfinished clause, or an answer too long to be a span
    if (context[end] === ":" || !balanced || text.length < 3 || text.length > 120) return null;
    return { start, end, subject: "" };
  };
}

const PATTERNS: Pattern[] = [
  {
    name: "contains",
    question: (pkg) => `What does the ${pkg} package contain?`,
    find: clause(/\bThis package (?:also )?contains (?!:)/),
    cue: /contain/i,
  },
  {
    name: "includes",
    question: (pkg) => `What does the ${pkg} package include?`,
    find: clause(/\bThis package (?:also )?includes (?!:)/),
    cue: /includ/i,
  },
  {
    name: "provides",
    question: (pkg) => `What does the ${pkg} package provide?`,
    find: clause(/\bThis package (?:also )?provides (?!:)/),
    cue: /provid/i,
  },
  {
    name: "supports",
    question: (pkg) => `What does ${pkg} support?`,
    find: clause(/(?<=^|[.!?]\s+|\n)([\w .+-]{1,40}?) (?:also )?supports (?!:)/),
    cue: /support/i,
  },
  {
    name: "based-on",
    question: (pkg) => `What is ${pkg} based on?`,
    find: (context, pkg) => {
      const m = /(?<=^|[.!?]\s+|\n)([\w .+-]{1,40}?) (?:is|was) (?:also )?(?:largely |loosely |originally |heavily )?based on (?!:)/.exec(context);
      if (!m || !aboutPackage(m[1]!, pkg)) return null;
      const start = m.index + m[0].length;
      // a noun phrase: up to the first clause boundary
      const rest = context.slice(start, sentenceEnd(context, start));
      const cut = rest.search(/,|;| (?:and|with|which|that|to|for|but|in order|so|using|as well) /);
      const text = cut < 0 ? rest : rest.slice(0, cut);
      return text.length >= 2 && text.length <= 80 ? { start, end: start + text.length, subject: "" } : null;
    },
    cue: /based|\bfork|derived|on top of/i,
  },
  {
    name: "language",
    question: (pkg) => `What programming language is ${pkg} written in?`,
    find: (context, pkg) => {
      const re = new RegExp(`\\b(?:written|implemented) (?:entirely |purely |mostly |mainly |completely )?in (?:pure |plain |portable |standard |modern |ANSI )?(${LANGUAGES})(?![\\w+#-])`);
      const m = re.exec(context);
      if (!m) return null;
      // in the first sentence (the package's own definition), or said of the package itself
      const from = sentenceStart(context, m.index);
      const verb = context.indexOf(" is ", from);
      if (from !== 0 && !(verb >= 0 && verb < m.index && aboutPackage(context.slice(from, verb), pkg))) return null;
      const start = m.index + m[0].length - m[1]!.length;
      return { start, end: m.index + m[0].length, subject: "" };
    },
    cue: new RegExp(`[Ww]ritten|[Ii]mplement|[Ll]anguage|[Pp]rogramm|${LANGUAGE_NAMES.source}`),
  },
  {
    name: "definition",
    question: (_pkg, subject) => `What is ${subject}?`,
    find: (context) => {
      // the first sentence: "<Name> is a(n) <answer>[, which ...|.]", Name of one to four words
      const m = /^((?!(?:This|That|These|It|There|Here|The|A|An|Each|All|Some)\b)[\p{Lu}\d][\w.+-]*(?: [\p{Lu}\d][\w.+-]*){0,3}) is (?=an? )/u.exec(context);
      if (!m) return null;
      const start = m[0].length;
      let end = sentenceEnd(context, start);
      const rel = context.slice(start, end).search(/,? (?:which|that|where|whose) /);
      if (rel > 0) end = start + rel;
      if (context[end] === ":" || end - start > 150 || end - start < 6) return null;
      return { start, end, subject: m[1]! };
    },
    cue: null,
  },
];

/** The answerable questions for one description, and the patterns it may be asked as unanswerable. */
export function extractQuestions(d: DebianDescription): { answerable: SquadQuestion[]; unanswerable: string[] } {
  const answerable: SquadQuestion[] = [];
  const unanswerable: string[] = [];
  for (const p of PATTERNS) {
    const hit = p.find(d.context, d.package);
    if (hit) {
      const text = d.context.slice(hit.start, hit.end);
      answerable.push({ id: `${d.package}/${p.name}`, question: p.question(d.package, hit.subject), answers: [{ text, answer_start: hit.start }], is_impossible: false });
    } else if (p.cue && !p.cue.test(d.context)) unanswerable.push(p.name);
  }
  return { answerable, unanswerable };
}

/** The unanswerable question of pattern `name` for a description. */
function impossible(d: DebianDescription, name: string): SquadQuestion {
  const p = PATTERNS.find((x) => x.name === name)!;
  return { id: `${d.package}/${name}`, question: p.question(d.package, ""), answers: [], is_impossible: true };
}

// ---- splits ------------------------------------------------------------------------------------

export interface DebianQa {
  train: SquadDataset;
  validation: SquadDataset;
  test: SquadDataset;
}

/**
 * SQuAD v2.0 splits from descriptions, split by package (80/10/10, seeded). Packages that open
 * with the same paragraph (foo, foo-data, foo-doc) go to the same split, so that no context is
 * seen in training and again at test time. About a third of the questions are unanswerable:
 * a pattern's question asked of a package whose description has none of the pattern's cue words.
 */
export function squadFromDescriptions(descriptions: DebianDescription[], options: { seed?: number; maxExamples?: number } = {}): DebianQa {
  const seed = options.seed ?? 0;
  const max = options.maxExamples ?? Infinity;
  if (!(max >= 1)) throw new Error(`debianQa: maxExamples must be at least 1, got ${max}`);
  const families = new Map<string, DebianDescription[]>();
  for (const d of descriptions.filter((x) => x.context.length > 0)) {
    const key = d.context.split("\n")[0]!;
    families.set(key, [...(families.get(key) ?? []), d]);
  }
  const order = new Rng(seed, 0x9a).shuffle([...families.keys()].sort());
  const nHeld = order.length >= 3 ? Math.max(1, Math.round(order.length * 0.1)) : 0;
  const parts = [order.slice(2 * nHeld), order.slice(nHeld, 2 * nHeld), order.slice(0, nHeld)].map((keys) => keys.flatMap((k) => families.get(k)!));

  const built = parts.map((ds, salt) => {
    const rng = new Rng(seed, salt, 0x0a);
    const qas = new Map<DebianDescription, SquadQuestion[]>();
    const candidates: [DebianDescription, string][] = [];
    for (const d of ds) {
      const { answerable, unanswerable } = extractQuestions(d);
      if (answerable.length > 0) qas.set(d, answerable);
      if (unanswerable.length > 0) candidates.push([d, unanswerable[rng.int(unanswerable.length)]!]);
    }
    const nAnswerable = [...qas.values()].reduce((n, q) => n + q.length, 0);
    for (const [d, name] of rng.shuffle(candidates).slice(0, Math.round(nAnswerable / 2))) qas.set(d, [...(qas.get(d) ?? []), impossible(d, name)]);
    return qas;
  });
  const total = built.reduce((n, qas) => n + [...qas.values()].reduce((m, q) => m + q.length, 0), 0);
  const [train, validation, test] = built.map((qas, salt) => {
    // Over the cap, each split keeps whole packages, in a seeded order, up to its share.
    let budget = total > max ? Math.floor((max * [...qas.values()].reduce((m, q) => m + q.length, 0)) / total) : Infinity;
    const kept = new Set<DebianDescription>();
    for (const d of new Rng(seed, salt, 0x0b).shuffle([...qas.keys()])) {
      const n = qas.get(d)!.length;
      if (n > budget) continue;
      kept.add(d);
      budget -= n;
    }
    const data = [...kept].sort((a, b) => (a.package < b.package ? -1 : 1)).map((d) => ({ title: d.package, paragraphs: [{ context: d.context, qas: qas.get(d)! }] }));
    return { version: "v2.0" as const, data };
  });
  return { train: train!, validation: validation!, test: test! };
}

/**
 * The silver Debian QA splits, read from the system's Translation-en index.
 *
 * @example const { train, validation } = debianQa({ seed: 0, maxExamples: 20000 });
 */
export function debianQa(options: DebianQaOptions = {}): DebianQa {
  const file = options.file ?? findTranslationFile();
  if (!file) throw new Error(`no Debian Translation-en file in ${APT_LISTS}; fetch the English package descriptions with \`${FETCH_TRANSLATIONS}\` (as root)`);
  return squadFromDescriptions(parseDescriptions(readTranslationFile(file), file), options);
}

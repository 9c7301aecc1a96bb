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
import { Rng } from "./random.js";
import { APT_LISTS, FETCH_TRANSLATIONS, findTranslationFile, joinLongDescription, parseTranslation, readTranslationFile } from "./debian.js";

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

// ---- reading the index (shared with the description corpora: debian.ts) ----------------------

export { FETCH_TRANSLATIONS, findTranslationFile, joinLongDescription, readTranslationFile } from "./debian.js";

/** Parses Translation-en records (the first record of a package wins; later ones are other versions). */
export function parseDescriptions(text: string, file = "Translation-en"): DebianDescription[] {
  const out: DebianDescription[] = [];
  const seen = new Set<string>();
  for (const r of parseTranslation(text, file)) {
    if (r.language !== "en" || seen.has(r.package)) continue;
    seen.add(r.package);
    out.push({ package: r.package, short: r.short, context: joinLongDescription(r.lines), source: r.source });
  }
  return out;
}

// ---- patterns ----------------------------------------------------------------------------------

const LANGUAGES = "C\\+\\+|C#|Objective-C|Common Lisp|Emacs Lisp|JavaScript|TypeScript|CoffeeScript|Python|Perl|Java|Ruby|Go|Rust|Haskell|OCaml|Lua|PHP|Tcl|Scheme|Erlang|Elixir|Fortran|Ada|Pascal|Vala|Scala|Kotlin|Clojure|Julia|Prolog|Smalltalk|Nim|Crystal|Zig|Racket|Guile|Shell|Bash|C|R|D";
const LANGUAGE_CUE = new RegExp(`[Ww]ritten|[Ii]mplement|[Ll]anguage|[Pp]rogramm|[Ss]cript|[Ss]hell|\\b(?:${LANGUAGES})(?![\\w+#])`);
const LANGUAGE_PACKAGE = /python|perl|ruby|golang|rust|java|php|lua|haskell|ghc|ocaml|node|(^|-)js|r-cran|elpa|tcl|erlang|elixir|guile|scheme|lisp|julia|fortran/;

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
  /**
   * Whether the description may answer the question in some words (its cue words); where it
   * cannot, the question is asked as unanswerable. null: never asked unanswerable, because every
   * description says in some way what its package contains, includes or provides, or what it is.
   */
  cue: ((context: string, pkg: string) => boolean) | null;
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
    cue: null,
  },
  {
    name: "includes",
    question: (pkg) => `What does the ${pkg} package include?`,
    find: clause(/\bThis package (?:also )?includes (?!:)/),
    cue: null,
  },
  {
    name: "provides",
    question: (pkg) => `What does the ${pkg} package provide?`,
    find: clause(/\bThis package (?:also )?provides (?!:)/),
    cue: null,
  },
  {
    name: "supports",
    question: (pkg) => `What does ${pkg} support?`,
    find: clause(/(?<=^|[.!?]\s+|\n)([\w .+-]{1,40}?) (?:also )?supports (?!:)/),
    cue: (context) => /support|compatib|handl|works with|features|formats|protocols/i.test(context),
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
    cue: (context) => /based|fork|derived|on top of|built (?:on|upon|with|using)|\buses?\b|using|wrapper|binding|port of|implementation of|version of/i.test(context),
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
    // any language named, or a package name that says it (python3-foo, librust-foo-dev)
    cue: (context, pkg) => LANGUAGE_CUE.test(context) || LANGUAGE_PACKAGE.test(pkg),
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

/**
 * The answerable questions for one description (at most one per pattern), the patterns it may be
 * asked as unanswerable (none of their cue words appear), and the name it defines, if any.
 */
export function extractQuestions(d: DebianDescription): { answerable: SquadQuestion[]; unanswerable: string[]; defines: string | null } {
  const answerable: SquadQuestion[] = [];
  const unanswerable: string[] = [];
  let defines: string | null = null;
  for (const p of PATTERNS) {
    const hit = p.find(d.context, d.package);
    if (hit) {
      const text = d.context.slice(hit.start, hit.end);
      answerable.push({ id: `${d.package}/${p.name}`, question: p.question(d.package, hit.subject), answers: [{ text, answer_start: hit.start }], is_impossible: false });
      if (p.name === "definition") defines = hit.subject;
    } else if (p.cue && !p.cue(d.context, d.package)) unanswerable.push(p.name);
  }
  return { answerable, unanswerable, defines };
}

// Adds unanswerable questions: up to half as many as the answerable ones (a third of all), and of
// each kind never more than its answerable questions, so that the kind does not give the answer away:
//  - language, supports, based-on: asked of a package whose description has none of the cue words;
//  - definition: "What is <Name>?" for a Name another package of the split defines, absent here.
function addUnanswerable(found: Map<DebianDescription, ReturnType<typeof extractQuestions>>, rng: Rng): Map<DebianDescription, SquadQuestion[]> {
  const qas = new Map<DebianDescription, SquadQuestion[]>();
  const answerable = new Map<string, number>(); // pattern → questions
  for (const [d, r] of found) {
    if (r.answerable.length > 0) qas.set(d, [...r.answerable]);
    for (const q of r.answerable) {
      const name = q.id.split("/")[1]!;
      answerable.set(name, (answerable.get(name) ?? 0) + 1);
    }
  }
  const names = [...found.values()].map((r) => r.defines).filter((n): n is string => n !== null);
  const candidates = new Map<string, [DebianDescription, SquadQuestion][]>();
  const add = (d: DebianDescription, name: string, subject: string): void => {
    const question = PATTERNS.find((x) => x.name === name)!.question(d.package, subject);
    if (!candidates.has(name)) candidates.set(name, []);
    candidates.get(name)!.push([d, { id: `${d.package}/${name}/unanswerable`, question, answers: [], is_impossible: true }]);
  };
  for (const [d, r] of found) {
    for (const name of r.unanswerable) add(d, name, "");
    const other = names.length > 0 ? names[rng.int(names.length)]! : null;
    const absent = (x: string): boolean => !d.context.toLowerCase().includes(x.toLowerCase()) && !d.package.includes(x.toLowerCase());
    if (other && r.defines === null && absent(other)) add(d, "definition", other);
  }
  const pool = rng.shuffle([...candidates].flatMap(([name, list]) => rng.shuffle(list).slice(0, answerable.get(name) ?? 0)));
  const target = Math.round([...answerable.values()].reduce((n, k) => n + k, 0) / 2);
  const asked = new Set<DebianDescription>(); // one unanswerable question per package
  for (const [d, q] of pool) {
    if (asked.size >= target || asked.has(d)) continue;
    asked.add(d);
    qas.set(d, [...(qas.get(d) ?? []), q]);
  }
  return qas;
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
 * seen in training and again at test time. Up to a third of the questions are unanswerable (see
 * addUnanswerable).
 */
export function squadFromDescriptions(descriptions: DebianDescription[], options: { seed?: number; maxExamples?: number } = {}): DebianQa {
  const seed = options.seed ?? 0;
  const max = options.maxExamples ?? Infinity;
  if (!(max >= 1)) throw new Error(`debianQa: maxExamples must be at least 1, got ${max}`);
  const families = new Map<string, DebianDescription[]>();
  for (const d of descriptions.filter((x) => x.context.length > 0)) {
    const key = d.context.split("\n")[0]!;
    if (!families.has(key)) families.set(key, []);
    families.get(key)!.push(d);
  }
  const order = new Rng(seed, 0x9a).shuffle([...families.keys()].sort());
  const nHeld = order.length >= 3 ? Math.max(1, Math.round(order.length * 0.1)) : 0;
  const parts = [order.slice(2 * nHeld), order.slice(nHeld, 2 * nHeld), order.slice(0, nHeld)].map((keys) => keys.flatMap((k) => families.get(k)!));

  const built = parts.map((ds, salt) => addUnanswerable(new Map(ds.map((d) => [d, extractQuestions(d)])), new Rng(seed, salt, 0x0a)));
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

// Real summarisation and translation data from Debian's package descriptions (debian.ts reads
// them): people wrote every synopsis and long description, and the Debian Description Translation
// Project's volunteers translated them.
//
//   summarization/{train,validation,test}.jsonl     {"document": long description, "summary": synopsis, "package"}
//   translation-en-de/{train,validation,test}.jsonl {"translation": {"en", "de"}, "package", "part": "synopsis" | "description"}
//   translation-en-zh/...                           likewise, from Translation-zh_CN
//   stats.json                                      counts, options, and the source files with their dates
//
// Translation pairs: records of two languages with the same Description-md5 (the md5 of the
// English text) translate one description. Each pair gives its synopses ("part": "synopsis") and,
// where both have one, its whole long descriptions ("part": "description"); paragraphs are not
// paired one by one, because translators sometimes merge or split them.
//
// Splits go by package family, so that a model is never tested on a package whose sibling it
// trained on (foo, foo-doc, libfoo1, libfoo-dev, python3-foo: familyKey). Families are further
// joined when they share a description (one md5), a first paragraph (libgtk-3-0 and
// gir1.2-gtk-3.0 both open "GTK is a multi-platform toolkit...") or a synopsis of four words or
// more, so that no document, opening paragraph or such synopsis appears in two splits. A joined group goes to a split by a seeded hash of
// its smallest family key: the same packages land in the same split in every data set.
import { mkdirSync, statSync, readFileSync, existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { defineOptions, resolveOptions } from "../io/options.js";
import { writeTextAtomic } from "../io/index.js";
import { APT_LISTS, fetchTranslationsCommand, joinLongDescription, parseTranslation, readTranslationFile, translationFiles } from "./debian.js";
import type { TranslationRecord } from "./debian.js";

/** The options of `lmforge data debian-descriptions`, declared once (defaults, ranges, help). */
export const DEBIAN_DESCRIPTIONS_OPTIONS = defineOptions([
  { flag: "out", key: "out", type: "string", arg: "DIR", required: true, help: "folder for summarization/, translation-en-XX/ (train, validation, test .jsonl) and stats.json" },
  { flag: "languages", key: "languages", type: "string", arg: "en,de,zh_CN", default: "en,de,zh_CN", help: "Translation languages to read (en always is); each other one gives a translation-en-XX set" },
  { flag: "seed", key: "seed", type: "int", default: 0, help: "seeds the assignment of package families to splits" },
  { flag: "split", key: "split", type: "string", arg: "TRAIN,VAL,TEST", default: "0.9,0.05,0.05", help: "fractions of the package families in train, validation and test (they sum to 1)" },
  { flag: "min-words", key: "minWords", type: "int", min: 0, default: 10, arg: "N", help: "summarisation: skip descriptions whose long text has fewer words" },
  { flag: "lists", key: "lists", type: "string", arg: "DIR", default: APT_LISTS, help: "apt's lists folder, where the Translation-XX indexes are" },
] as const);

export interface DebianDescriptionsOptions {
  out: string;
  /** "en,de,zh_CN" or a list; en first or not, it is always read. */
  languages?: string | readonly string[];
  seed?: number;
  /** "0.9,0.05,0.05" or [train, validation, test]. */
  split?: string | readonly [number, number, number];
  minWords?: number;
  lists?: string;
  /**
   * When a language's index is missing: run `apt-get update -o Acquire::Languages=...` (true), or
   * fail naming that command (false). Default: whether this process runs as root.
   */
  fetch?: boolean;
  /** The apt-get to run (tests give a stand-in). */
  aptGet?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export type SplitName = "train" | "validation" | "test";
export const SPLIT_NAMES: readonly SplitName[] = ["train", "validation", "test"];

export interface SummarizationExample {
  document: string;
  summary: string;
  package: string;
}

export interface TranslationExample {
  /** Keyed by language: "en" and the other's base code ("de", "zh"). */
  translation: Record<string, string>;
  package: string;
  part: "synopsis" | "description";
}

// ---- options -------------------------------------------------------------------------------------

/** "0.9,0.05,0.05" → [0.9, 0.05, 0.05]: three fractions >= 0 that sum to 1; throws with the reason. */
export function parseSplit(text: string | readonly number[]): [number, number, number] {
  const parts = typeof text === "string" ? text.split(",").map((s) => (s.trim() === "" ? NaN : Number(s))) : [...text];
  const sum = parts.reduce((a, b) => a + b, 0);
  if (parts.length !== 3 || parts.some((p) => !(p >= 0 && p <= 1)) || Math.abs(sum - 1) > 1e-6 || parts[0] === 0) {
    throw new Error(`split must be three fractions TRAIN,VALIDATION,TEST, each in [0, 1], train above 0, summing to 1 (like 0.9,0.05,0.05), got ${JSON.stringify(text)}`);
  }
  return parts as [number, number, number];
}

/** "en,de,zh_CN" → ["en", "de", "zh_CN"], en first; throws on a code that is not a language. */
export function parseLanguages(text: string | readonly string[]): string[] {
  const list = (typeof text === "string" ? text.split(",") : [...text]).map((s) => s.trim()).filter(Boolean);
  for (const l of list) if (!/^[a-z]{2,3}(_[A-Z]{2})?$/.test(l)) throw new Error(`languages: "${l}" is not a Debian language code (en, de, zh_CN, pt_BR)`);
  return ["en", ...new Set(list.filter((l) => l !== "en"))];
}

/** The folder's language code for a Translation language: zh_CN → zh, unless another requested one shares "zh". */
function shortCode(language: string, all: readonly string[]): string {
  const base = language.split("_")[0]!;
  return all.filter((l) => l.split("_")[0] === base).length > 1 ? language.toLowerCase().replace("_", "-") : base;
}

// ---- package families ----------------------------------------------------------------------------

// Ecosystem prefixes (python3-foo, r-cran-foo, golang-github-owner-foo, gir1.2-foo-1.0) and lib.
const PREFIX = /^(?:python3?|pypy3?|ruby|node|libjs|php|lua|elpa|r-cran|r-bioc|r-other|haskell|libghc|ocaml|libocaml|tcl|perl|gir1\.2|fonts|xfonts|ttf|otf|librust|golang-(?:(?:github|gitlab|bitbucket)-[a-z0-9.]+|gopkg|google|golang-x|go)|golang)-|^lib(?=[a-z0-9])/;
// What a package of a family adds to its name: parts, data, docs, languages' bindings, builds.
const SUFFIX = /-(?:(?:l10n|i18n|help|locale)-[a-z]{2,3}(?:-[a-z]{2,4})?|dev|doc|docs|data|common|dbg|dbgsym|utils?|bin|tools|examples|perl|java|jni|cil|prof|static|runtime|tests?|l10n|i18n|locales?|headers|source|src|extras?|core|base|full|minimal|nox|gtk[23]?|qt[56]?|gui|cli|server|client|daemon|plugins?|modules?|libs?|bindings?|python3?|ruby|lua|php|ocaml|shared|manpages|html|all|t64)$/;
// A version or soname at the end: libfoo1, libgtk-3-0, libglib2.0-0, libqt5core5a, gcc-12, python3.11.
const VERSION = /[-_.]?\d[\d.\-_]*[a-z]?$/;

/**
 * The family a package belongs to: the name without its ecosystem prefix, lib, soname or version,
 * and part suffix, repeated until nothing changes (libfoo-1.0-dev → foo). Two families that are
 * one project merged by mistake cost nothing; a project split in two would leak across splits.
 *
 * @example familyKey("python3-foo-doc") === "foo"; familyKey("libgtk-3-0") === "gtk"
 */
export function familyKey(pkg: string): string {
  let key = pkg.toLowerCase();
  if (key.startsWith("librust-")) key = key.replace(/\+[^-]*(?=-dev$|$)/, ""); // a crate's feature package
  for (;;) {
    const before = key;
    for (const re of [PREFIX, SUFFIX, VERSION]) {
      const next = key.replace(re, "");
      if (next !== "") key = next; // never strip a name to nothing ("lib", "python3")
    }
    if (key === before) return key;
  }
}

/** Union-find over names: groups of packages that must share a split. */
class Groups {
  private parent = new Map<string, string>();
  find(x: string): string {
    let root = x;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root)!;
    this.parent.set(x, root);
    return root;
  }
  union(a: string, b: string): void {
    const [ra, rb] = [this.find(a), this.find(b)];
    // the smaller name is the root, so the root of a group is its smallest member whatever the order
    if (ra < rb) this.parent.set(rb, ra);
    else if (rb < ra) this.parent.set(ra, rb);
  }
}

/** Which split a group (by its smallest family key) goes to: a seeded hash against the cumulative fractions. */
export function splitOf(groupKey: string, seed: number, split: readonly [number, number, number]): SplitName {
  const u = createHash("sha256").update(`${seed}\0${groupKey}`).digest().readUInt32BE(0) / 2 ** 32;
  return u < split[0] ? "train" : u < split[0] + split[1] ? "validation" : "test";
}

// ---- building ------------------------------------------------------------------------------------

export interface DebianCorpus {
  summarization: Record<SplitName, SummarizationExample[]>;
  /** By the folder's language code ("de", "zh"). */
  translation: Record<string, Record<SplitName, TranslationExample[]>>;
  stats: {
    englishDescriptions: number;
    /** English records whose Description-md5 is not the md5 of their text (kept; counted as a check). */
    md5Mismatches: number;
    families: number;
    /** Groups after joining families that share a description, a first paragraph or a synopsis of four words or more. */
    groups: number;
    largestGroup: { key: string; packages: number };
    /** tooShort: descriptions under minWords words (or without a synopsis), left out. */
    summarization: Record<SplitName, number> & { tooShort: number };
    translation: Record<string, Record<SplitName, number> & { descriptions: number; unpaired: number; duplicates: number }>;
  };
}

const words = (text: string): number => text.split(/\s+/).filter(Boolean).length;

/** The first record of each md5 (records without one are left out), in the order given. */
function byMd5(records: readonly TranslationRecord[]): Map<string, TranslationRecord> {
  const out = new Map<string, TranslationRecord>();
  for (const r of records) if (r.md5 && !out.has(r.md5)) out.set(r.md5, r);
  return out;
}

/**
 * The data sets from parsed records (every archive's, any order), by language. Deterministic:
 * examples are sorted by a seeded hash of their md5, the same order on every run with that seed.
 */
export function buildDebianCorpus(records: Record<string, readonly TranslationRecord[]>, options: { seed?: number; split?: string | readonly [number, number, number]; minWords?: number } = {}): DebianCorpus {
  const seed = options.seed ?? 0;
  const split = parseSplit(options.split ?? "0.9,0.05,0.05");
  const minWords = options.minWords ?? 10;
  const english = byMd5([...(records.en ?? [])].sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0)));
  const languages = Object.keys(records).filter((l) => l !== "en");

  // group: package family ∪ shared md5 ∪ shared first paragraph ∪ shared synopsis (>= 4 words)
  const groups = new Groups();
  const families = new Set<string>();
  const shared = new Map<string, string>(); // an opening paragraph or synopsis → the first family that has it
  for (const list of Object.values(records)) for (const r of list) families.add(familyKey(r.package));
  for (const list of Object.values(records))
    for (const r of list) {
      const en = r.md5 ? english.get(r.md5) : undefined;
      if (en) groups.union(familyKey(r.package), familyKey(en.package));
    }
  let md5Mismatches = 0;
  const documents = new Map<string, string>(); // md5 → English long description
  for (const [md5, r] of english) {
    if (r.md5Matches === false) md5Mismatches++;
    const document = joinLongDescription(r.lines, "en");
    documents.set(md5, document);
    // the same opening paragraph, or the same synopsis of four words or more ("configuration
    // settings framework for Qt": libkf5configcore5 and libkf5config-dev), is one project
    const opening = document.split("\n")[0]!;
    const synopsis = words(r.short) >= 4 ? r.short : "";
    for (const [kind, text] of [["opening", opening], ["synopsis", synopsis]] as const) {
      const key = `${kind}\0${text.toLowerCase().replace(/\s+/g, " ").trim()}`;
      if (!text.trim()) continue;
      const had = shared.get(key);
      if (had) groups.union(had, familyKey(r.package));
      else shared.set(key, familyKey(r.package));
    }
  }
  const sizes = new Map<string, number>();
  for (const f of families) sizes.set(groups.find(f), (sizes.get(groups.find(f)) ?? 0) + 1);
  const packagesPerGroup = new Map<string, Set<string>>();
  for (const r of records.en ?? []) {
    const g = groups.find(familyKey(r.package));
    if (!packagesPerGroup.has(g)) packagesPerGroup.set(g, new Set());
    packagesPerGroup.get(g)!.add(r.package);
  }
  const largest = [...packagesPerGroup].reduce<[string, number]>((best, [k, s]) => (s.size > best[1] || (s.size === best[1] && k < best[0]) ? [k, s.size] : best), ["", 0]);
  const splitOfPackage = (pkg: string): SplitName => splitOf(groups.find(familyKey(pkg)), seed, split);
  const order = (md5: string, part = ""): string => createHash("sha256").update(`${seed}\0${md5}\0${part}`).digest("hex");
  const empty = <T>(): Record<SplitName, T[]> => ({ train: [], validation: [], test: [] });
  const sorted = <T>(parts: Record<SplitName, [string, T][]>): Record<SplitName, T[]> => {
    const out = empty<T>();
    for (const s of SPLIT_NAMES) out[s] = parts[s].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, x]) => x);
    return out;
  };

  // summarisation: one example per English description long enough
  const summaries = empty<[string, SummarizationExample]>();
  let tooShort = 0;
  for (const [md5, r] of english) {
    const document = documents.get(md5)!;
    if (words(document) < Math.max(1, minWords) || !r.short) {
      tooShort++;
      continue;
    }
    summaries[splitOfPackage(r.package)].push([order(md5), { document, summary: r.short, package: r.package }]);
  }

  // translation: per language, pairs by md5; an identical pair of texts is kept once
  const translation: DebianCorpus["translation"] = {};
  const translationStats: DebianCorpus["stats"]["translation"] = {};
  for (const language of languages) {
    const code = shortCode(language, ["en", ...languages]);
    const parts = empty<[string, TranslationExample]>();
    const seen = new Set<string>();
    let [unpaired, duplicates, descriptions] = [0, 0, 0];
    const add = (md5: string, pkg: string, part: TranslationExample["part"], en: string, other: string): void => {
      const key = `${en}\0${other}`;
      if (seen.has(key)) return void duplicates++;
      seen.add(key);
      if (part === "description") descriptions++;
      parts[splitOfPackage(pkg)].push([order(md5, part), { translation: { en, [code]: other }, package: pkg, part }]);
    };
    const theirs = [...byMd5(records[language] ?? [])].sort((a, b) => (a[1].package < b[1].package ? -1 : 1));
    for (const [md5, r] of theirs) {
      const en = english.get(md5);
      if (!en) {
        unpaired++; // a translation of a description no index of ours has (an older version's)
        continue;
      }
      if (en.short && r.short) add(md5, en.package, "synopsis", en.short, r.short);
      const other = joinLongDescription(r.lines, language);
      if (documents.get(md5) && other) add(md5, en.package, "description", documents.get(md5)!, other);
    }
    translation[code] = sorted(parts);
    translationStats[code] = { ...counts(translation[code]), descriptions, unpaired, duplicates };
  }

  const summarization = sorted(summaries);
  return {
    summarization,
    translation,
    stats: {
      englishDescriptions: english.size,
      md5Mismatches,
      families: families.size,
      groups: sizes.size,
      largestGroup: { key: largest[0], packages: largest[1] },
      summarization: { ...counts(summarization), tooShort },
      translation: translationStats,
    },
  };
}

function counts(parts: Record<SplitName, unknown[]>): Record<SplitName, number> {
  return { train: parts.train.length, validation: parts.validation.length, test: parts.test.length };
}

// ---- the indexes on this system --------------------------------------------------------------------

export interface SourceFile {
  path: string;
  language: string;
  records: number;
  bytes: number;
  /** When apt wrote it (ISO 8601). */
  modified: string;
  /** The Date: of its archive's InRelease (the archive's own date), when apt kept that file. */
  archiveDate: string | null;
}

// deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en.lz4 → ..._dists_bookworm_InRelease
function archiveDate(path: string): string | null {
  const m = /^(.*_dists_[^_]+)_/.exec(basename(path));
  const release = m ? join(dirname(path), `${m[1]}_InRelease`) : "";
  if (!release || !existsSync(release)) return null;
  const date = /^Date: (.+)$/m.exec(readFileSync(release, "utf8"));
  return date ? new Date(date[1]!).toISOString() : null;
}

/**
 * The indexes of the languages, fetched with apt-get when some are missing and `fetch` allows.
 * English is required; another language still missing afterwards is skipped, with the reason.
 */
export function ensureTranslations(languages: readonly string[], options: { lists?: string; fetch?: boolean; aptGet?: string; log?: (line: string) => void } = {}): { files: Record<string, string[]>; skipped: Record<string, string> } {
  const lists = options.lists ?? APT_LISTS;
  const log = options.log ?? (() => {});
  const find = (): Record<string, string[]> => Object.fromEntries(languages.map((l) => [l, translationFiles(l, lists)]));
  let files = find();
  const command = fetchTranslationsCommand(languages);
  const missing = languages.filter((l) => files[l]!.length === 0);
  if (missing.length === 0) return { files, skipped: {} };
  const fetch = options.fetch ?? process.getuid?.() === 0;
  const names = missing.map((l) => `Translation-${l}`).join(", ");
  if (!fetch) throw new Error(`no Debian ${names} index in ${lists}; fetch the descriptions as root with \`${command}\``);
  log(`${names} missing in ${lists}: running \`${command}\` (downloads the descriptions from the configured Debian mirror)`);
  const aptGet = options.aptGet ?? "apt-get";
  const run = spawnSync(aptGet, ["update", "-o", `Acquire::Languages=${languages.join(",")}`], { stdio: ["ignore", 2, 2] });
  const failure = run.error ? `${aptGet} could not run (${run.error.message})` : run.status !== 0 ? `\`${command}\` failed (exit ${run.status ?? run.signal})` : null;
  files = find();
  if (files.en!.length === 0) throw new Error(`no Debian Translation-en index in ${lists} ${failure ? `: ${failure}` : `after \`${command}\``}; run it as root and check apt's sources`);
  const skipped: Record<string, string> = {};
  for (const l of languages) if (files[l]!.length === 0) skipped[l] = failure ?? `the mirror has no Translation-${l} for these archives (${command} fetched none)`;
  return { files, skipped };
}

/**
 * Builds the data sets from this system's Translation indexes and writes them (each file
 * atomically) under options.out, with stats.json and corpus.txt (the training split's text, in
 * every language, documents separated by blank lines: for tokenizers and pretraining). Returns
 * what was written.
 *
 * @example writeDebianDescriptions({ out: "data/debian", languages: "en,de,zh_CN" })
 */
export function writeDebianDescriptions(options: DebianDescriptionsOptions): { corpus: DebianCorpus; sources: SourceFile[]; skipped: Record<string, string>; written: string[] } {
  const o = resolveOptions(DEBIAN_DESCRIPTIONS_OPTIONS, { ...options } as unknown as Record<string, unknown>) as unknown as DebianDescriptionsOptions & { out: string; lists: string; seed: number; minWords: number };
  const languages = parseLanguages(o.languages ?? "en,de,zh_CN");
  const split = parseSplit(o.split ?? "0.9,0.05,0.05");
  const log = options.log ?? (() => {});
  const { files, skipped } = ensureTranslations(languages, { lists: o.lists, log, ...(options.fetch !== undefined ? { fetch: options.fetch } : {}), ...(options.aptGet ? { aptGet: options.aptGet } : {}) });
  for (const [l, why] of Object.entries(skipped)) log(`translation-en-${shortCode(l, languages)} skipped: ${why}`);

  const records: Record<string, TranslationRecord[]> = {};
  const sources: SourceFile[] = [];
  for (const language of languages.filter((l) => !skipped[l])) {
    records[language] = [];
    for (const path of files[language]!) {
      const parsed = parseTranslation(readTranslationFile(path, fetchTranslationsCommand(languages)), path).filter((r) => r.language === language);
      records[language].push(...parsed);
      const st = statSync(path);
      sources.push({ path, language, records: parsed.length, bytes: st.size, modified: st.mtime.toISOString(), archiveDate: archiveDate(path) });
      log(`read ${parsed.length} records from ${path}`);
    }
  }
  const corpus = buildDebianCorpus(records, { seed: o.seed, split, minWords: o.minWords });

  const written: string[] = [];
  const writeSet = (name: string, parts: Record<SplitName, unknown[]>): void => {
    mkdirSync(join(o.out, name), { recursive: true });
    for (const s of SPLIT_NAMES) {
      const path = join(o.out, name, `${s}.jsonl`);
      writeTextAtomic(path, parts[s].map((x) => JSON.stringify(x)).join("\n") + (parts[s].length ? "\n" : ""));
      written.push(path);
    }
  };
  writeSet("summarization", corpus.summarization);
  for (const [code, parts] of Object.entries(corpus.translation)) writeSet(`translation-en-${code}`, parts);
  // Unlabelled text for tokenizers and pretraining: the training split only (English synopsis and
  // description, then each other language's training side), so held-out text is never seen.
  const corpusPath = join(o.out, "corpus.txt");
  const texts = [...corpus.summarization.train.map((e) => `${e.summary}\n${e.document}`)];
  for (const [code, parts] of Object.entries(corpus.translation)) for (const e of parts.train) texts.push(e.translation[code] ?? "");
  writeTextAtomic(corpusPath, texts.filter((t) => t.trim()).join("\n\n") + "\n");
  written.push(corpusPath);
  const stats = { created: new Date().toISOString(), options: { languages, seed: o.seed, split, minWords: o.minWords }, sources, skipped, ...corpus.stats };
  const statsPath = join(o.out, "stats.json");
  writeTextAtomic(statsPath, JSON.stringify(stats, null, 2) + "\n");
  written.push(statsPath);
  return { corpus, sources, skipped, written };
}

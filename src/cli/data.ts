// `lmforge data debian-descriptions`: summarisation and translation JSONL from the Debian
// package descriptions on this system (src/data/debian-descriptions.ts, whose declarations give
// the flags). The one network step, when an index is missing and we run as root, is apt-get's.
import { DEBIAN_DESCRIPTIONS_OPTIONS, SPLIT_NAMES, parseLanguages, parseSplit, writeDebianDescriptions } from "../data/debian-descriptions.js";
import { UsageError } from "./errors.js";

/** The command's flags: the library's declarations. */
export const DATA_OPTIONS = DEBIAN_DESCRIPTIONS_OPTIONS;

const DATASETS = ["debian-descriptions"];

/** Runs `lmforge data NAME`: checks the flags, builds the sets, prints their counts. */
export async function dataCommand(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  const [name, ...extra] = positionals;
  if (!name || !DATASETS.includes(name)) throw new UsageError(`${name ? `unknown data set "${name}"` : "which data set?"}; known: ${DATASETS.join(", ")} (lmforge data debian-descriptions --out DIR)`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (typeof v.out !== "string") throw new UsageError("--out DIR is required");
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

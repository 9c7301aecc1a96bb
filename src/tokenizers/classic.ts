// The classic recipe's text normalisation, for users who want it: English stop-word removal
// (the maintained list of the `stopword` package) and Porter stemming (`stemmer`). Both are
// off by default: they hurt subword models, which learn from the full text.
import { eng } from "stopword";
import { stemmer } from "stemmer";
import type { Word } from "./pretokenizers.js";

export interface ClassicTextOptions {
  removeStopWords?: boolean;
  stem?: boolean;
}

const STOP = new Set<string>(eng as string[]);

/** Drops stop words and/or stems words (case-insensitively for the stop-word test). */
export function applyClassicOptions(words: Word[], o: ClassicTextOptions): Word[] {
  let out = words;
  if (o.removeStopWords) out = out.filter((w) => !STOP.has(w.text.trim().toLowerCase()));
  if (o.stem) {
    out = out.map((w) => {
      const lead = /^\s*/.exec(w.text)![0];
      const core = w.text.slice(lead.length);
      if (!/^\p{L}+$/u.test(core)) return w;
      const s = stemmer(core.toLowerCase());
      const stemmed = core === core.toLowerCase() ? s : core[0] === core[0]!.toUpperCase() ? s[0]!.toUpperCase() + s.slice(1) : s;
      return { text: lead + stemmed, start: w.start, end: w.end };
    });
  }
  return out;
}

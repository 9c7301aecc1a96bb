// `lmforge tokenizer train`
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveTokenizer, trainTokenizer } from "../tokenizers/index.js";
import { embeddedCorpus } from "../data/corpora.js";
import { choiceArg, intArg, stringArg } from "./args.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";

export async function tokenizerTrain(values: Record<string, unknown>, positionals: string[]): Promise<void> {
  const [verb, ...files] = positionals;
  if (verb !== "train") throw new UsageError(`tokenizer: unknown action "${verb ?? ""}"; usage: lmforge tokenizer train --kind wordpiece|bpe --vocab-size N --out DIR`);
  const kind = choiceArg(values, "kind", ["wordpiece", "bpe"] as const);
  const vocabSize = intArg(values, "vocab-size", { min: 1 });
  const minFrequency = intArg(values, "min-frequency", { min: 1, default: 2 });
  const limitAlphabet = values["limit-alphabet"] === undefined ? undefined : intArg(values, "limit-alphabet", { min: 1 });
  const out = stringArg(values, "out");
  const specialTokens = typeof values["special-tokens"] === "string" ? (values["special-tokens"] as string).split(",").map((s) => s.trim()).filter(Boolean) : undefined;
  let inputs = [...((values.input as string[] | undefined) ?? []), ...files];
  for (const f of inputs) if (!existsSync(f)) throw new UsageError(`${f}: no such file`);
  let tmp: string | null = null;
  if (inputs.length === 0) {
    tmp = mkdtempSync(join(tmpdir(), "lmforge-corpus-"));
    const file = join(tmp, "embedded.txt");
    writeFileSync(file, [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")].join("\n\n"));
    inputs = [file];
    console.error("tokenizer: no --input given: training on the embedded corpora (Moby Dick, State of the Union)");
  }
  const progress = new Progress("reading", "bytes");
  const started = Date.now();
  try {
    const tok = await trainTokenizer(inputs, {
      kind,
      vocabSize,
      minFrequency,
      lowercase: Boolean(values.lowercase),
      ...(specialTokens ? { specialTokens } : {}),
      ...(limitAlphabet !== undefined ? { limitAlphabet } : {}),
      ...(values["remove-stop-words"] || values.stem ? { classic: { removeStopWords: Boolean(values["remove-stop-words"]), stem: Boolean(values.stem) } } : {}),
      onProgress: (d, t) => progress.update(d, t),
    });
    progress.done();
    const written = saveTokenizer(tok, out);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`trained a ${kind} tokenizer of ${tok.vocabSize} tokens in ${secs} s; wrote ${written.map((f) => join(out, f)).join(", ")}`);
    if (tok.vocabSize < vocabSize) console.log(`(the corpus supports only ${tok.vocabSize} tokens at --min-frequency ${minFrequency})`);
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

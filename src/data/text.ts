// Reading pretraining text: files and folders (one document per file, or documents separated
// by blank lines), JSONL with a text field, and the embedded corpora.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { EMBEDDED_CORPORA, embeddedCorpus } from "./corpora.js";
import type { CorpusName } from "./corpora.js";

export interface ReadTextOptions {
  /** JSONL: the field that holds the text (default "text"). */
  textField?: string;
}

/** Splits a plain-text file into documents at blank lines. */
export function splitDocuments(text: string): string[] {
  return text
    .split(/\r?\n\s*\r?\n/)
    .map((d) => d.trim())
    .filter((d) => d.length > 0);
}

function readJsonl(path: string, field: string): string[] {
  const docs: string[] = [];
  readFileSync(path, "utf8")
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (line.trim() === "") return;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
      const t = (obj as Record<string, unknown>)[field];
      if (typeof t !== "string") throw new Error(`${path}:${i + 1}: no string field "${field}"`);
      if (t.trim()) docs.push(t);
    });
  return docs;
}

/**
 * Documents from files, folders (every .txt/.jsonl file inside, one document per .txt file
 * unless it has blank-line separated documents) or embedded corpus names ("moby-dick", "sotu").
 */
export function readDocuments(inputs: string[], options: ReadTextOptions = {}): string[] {
  if (inputs.length === 0) return [...embeddedCorpus("moby-dick"), ...embeddedCorpus("sotu")];
  const docs: string[] = [];
  for (const input of inputs) {
    if ((EMBEDDED_CORPORA as readonly string[]).includes(input) && !existsSync(input)) {
      docs.push(...embeddedCorpus(input as CorpusName));
      continue;
    }
    if (!existsSync(input)) throw new Error(`${input}: no such file or folder (embedded corpora: ${EMBEDDED_CORPORA.join(", ")})`);
    const files = statSync(input).isDirectory()
      ? readdirSync(input)
          .filter((f) => [".txt", ".jsonl", ".text", ""].includes(extname(f)))
          .sort()
          .map((f) => join(input, f))
          .filter((f) => statSync(f).isFile())
      : [input];
    for (const f of files) {
      if (f.endsWith(".jsonl")) docs.push(...readJsonl(f, options.textField ?? "text"));
      else docs.push(...splitDocuments(readFileSync(f, "utf8")));
    }
  }
  if (docs.length === 0) throw new Error(`${inputs.join(", ")}: no text found`);
  return docs;
}

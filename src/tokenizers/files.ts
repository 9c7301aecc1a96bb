// Tokenizer files: Hugging Face's tokenizer.json, BERT's vocab.txt, GPT-2's vocab.json and
// merges.txt. What lmforge writes loads in Hugging Face tokenizers, and back in lmforge.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BPE, WordPiece } from "./models.js";
import { Tokenizer } from "./tokenizer.js";
import type { AddedToken, PostProcessor, TemplateItem, TokenizerSpec } from "./tokenizer.js";
import type { BertNormalizerOptions } from "./normalizer.js";

type J = Record<string, unknown>;

export class TokenizerFileError extends Error {}

function fail(file: string, msg: string): never {
  throw new TokenizerFileError(`${file}: ${msg}`);
}

// --- tokenizer.json -------------------------------------------------------------------------

function parseNormalizer(n: unknown, file: string): BertNormalizerOptions | null {
  if (n === null || n === undefined) return null;
  const o = n as J;
  if (o.type === "BertNormalizer") {
    return {
      cleanText: (o.clean_text as boolean) ?? true,
      handleChineseChars: (o.handle_chinese_chars as boolean) ?? true,
      stripAccents: (o.strip_accents as boolean | null) ?? null,
      lowercase: (o.lowercase as boolean) ?? true,
    };
  }
  return fail(file, `normalizer "${String(o.type)}" is not supported (supported: BertNormalizer, none)`);
}

function parsePreTokenizer(p: unknown, file: string): { kind: "bert" | "byte-level"; addPrefixSpace: boolean; trimOffsets: boolean } {
  const o = (p ?? {}) as J;
  if (o.type === "BertPreTokenizer") return { kind: "bert", addPrefixSpace: false, trimOffsets: false };
  if (o.type === "ByteLevel") return { kind: "byte-level", addPrefixSpace: Boolean(o.add_prefix_space), trimOffsets: o.trim_offsets !== false };
  if (o.type === "Sequence" && Array.isArray(o.pretokenizers) && o.pretokenizers.length === 1) return parsePreTokenizer(o.pretokenizers[0], file);
  return fail(file, `pre_tokenizer "${String(o.type)}" is not supported (supported: BertPreTokenizer, ByteLevel)`);
}

function parseTemplate(items: unknown, file: string): TemplateItem[] {
  if (!Array.isArray(items)) fail(file, "post_processor template must be an array");
  return (items as J[]).map((it) => {
    if (it.SpecialToken) {
      const s = it.SpecialToken as J;
      return { special: String(s.id), typeId: Number(s.type_id ?? 0) };
    }
    if (it.Sequence) {
      const s = it.Sequence as J;
      return { sequence: s.id === "B" ? "B" : "A", typeId: Number(s.type_id ?? 0) };
    }
    return fail(file, `unknown template item ${JSON.stringify(it)}`);
  });
}

function bertTemplate(cls: string, sep: string): PostProcessor {
  return {
    type: "template",
    single: [{ special: cls, typeId: 0 }, { sequence: "A", typeId: 0 }, { special: sep, typeId: 0 }],
    pair: [{ special: cls, typeId: 0 }, { sequence: "A", typeId: 0 }, { special: sep, typeId: 0 }, { sequence: "B", typeId: 1 }, { special: sep, typeId: 1 }],
  };
}

function robertaTemplate(cls: string, sep: string): PostProcessor {
  // <s> A </s></s> B </s>; RoBERTa has one token type, so every type id is 0.
  return {
    type: "roberta",
    single: [{ special: cls, typeId: 0 }, { sequence: "A", typeId: 0 }, { special: sep, typeId: 0 }],
    pair: [{ special: cls, typeId: 0 }, { sequence: "A", typeId: 0 }, { special: sep, typeId: 0 }, { special: sep, typeId: 0 }, { sequence: "B", typeId: 0 }, { special: sep, typeId: 0 }],
  };
}

function parsePostProcessor(p: unknown, file: string): PostProcessor {
  if (p === null || p === undefined) return { type: "none", single: [], pair: [] };
  const o = p as J;
  switch (o.type) {
    case "TemplateProcessing":
      return { type: "template", single: parseTemplate(o.single, file), pair: parseTemplate(o.pair, file) };
    case "BertProcessing":
      return bertTemplate(String((o.cls as unknown[])[0]), String((o.sep as unknown[])[0]));
    case "RobertaProcessing":
      return robertaTemplate(String((o.cls as unknown[])[0]), String((o.sep as unknown[])[0]));
    case "ByteLevel":
      return { type: "none", single: [], pair: [] };
    default:
      return fail(file, `post_processor "${String(o.type)}" is not supported`);
  }
}

function parseMerges(m: unknown, file: string): [string, string][] {
  if (!Array.isArray(m)) fail(file, "model.merges must be an array");
  return (m as unknown[]).map((x, i) => {
    if (Array.isArray(x) && x.length === 2) return [String(x[0]), String(x[1])];
    if (typeof x === "string") {
      const sp = x.indexOf(" ");
      if (sp > 0) return [x.slice(0, sp), x.slice(sp + 1)];
    }
    return fail(file, `model.merges[${i}] is not a pair: ${JSON.stringify(x)}`);
  });
}

function vocabMap(v: unknown, file: string): Map<string, number> {
  if (typeof v !== "object" || v === null) fail(file, "model.vocab must be an object of token -> id");
  const m = new Map<string, number>();
  for (const [tok, id] of Object.entries(v as J)) {
    if (!Number.isInteger(id)) fail(file, `model.vocab["${tok}"] is not an integer id`);
    m.set(tok, id as number);
  }
  return m;
}

/** Builds a tokenizer from the parsed content of a Hugging Face tokenizer.json. */
export function tokenizerFromJSON(json: unknown, file = "tokenizer.json"): Tokenizer {
  if (typeof json !== "object" || json === null) fail(file, "not a JSON object");
  const j = json as J;
  const model = j.model as J | undefined;
  if (!model || typeof model !== "object") fail(file, "no model");
  if (model.type !== "WordPiece" && model.type !== "BPE" && !(model.type === undefined && model.merges)) {
    fail(file, `model type "${String(model.type)}" is not supported (supported: WordPiece, BPE)`);
  }
  const pre = parsePreTokenizer(j.pre_tokenizer, file);
  let m: WordPiece | BPE;
  if (model.type === "WordPiece") {
    m = new WordPiece({
      vocab: vocabMap(model.vocab, file),
      unkToken: String(model.unk_token ?? "[UNK]"),
      continuingSubwordPrefix: String(model.continuing_subword_prefix ?? "##"),
      maxInputCharsPerWord: Number(model.max_input_chars_per_word ?? 100),
    });
  } else if (model.type === "BPE" || (model.type === undefined && model.merges)) {
    m = new BPE({ vocab: vocabMap(model.vocab, file), merges: parseMerges(model.merges, file), unkToken: (model.unk_token as string | null) ?? null });
  } else {
    return fail(file, `model type "${String(model.type)}" is not supported (supported: WordPiece, BPE)`);
  }
  const added: AddedToken[] = ((j.added_tokens as J[] | undefined) ?? []).map((t) => ({
    id: Number(t.id),
    content: String(t.content),
    special: Boolean(t.special),
    lstrip: Boolean(t.lstrip),
    rstrip: Boolean(t.rstrip),
    singleWord: Boolean(t.single_word),
    normalized: Boolean(t.normalized),
  }));
  const spec: TokenizerSpec = {
    normalizer: parseNormalizer(j.normalizer, file),
    preTokenizer: pre.kind,
    addPrefixSpace: pre.addPrefixSpace,
    trimOffsets: pre.trimOffsets,
    model: m,
    postProcessor: parsePostProcessor(j.post_processor, file),
    addedTokens: added,
  };
  return new Tokenizer(spec);
}

function templateToJSON(items: TemplateItem[]): J[] {
  return items.map((it) => ("special" in it ? { SpecialToken: { id: it.special, type_id: it.typeId } } : { Sequence: { id: it.sequence, type_id: it.typeId } }));
}

/** The Hugging Face tokenizer.json content of a tokenizer (key order fixed: the file is deterministic). */
export function tokenizerToJSON(tok: Tokenizer): J {
  const s = tok.spec;
  const vocab: J = {};
  for (const [t, id] of [...s.model.config.vocab].sort((a, b) => a[1] - b[1])) vocab[t] = id;
  const byteLevel = { type: "ByteLevel", add_prefix_space: s.addPrefixSpace, trim_offsets: s.trimOffsets, use_regex: true };
  let post: J | null;
  const pp = s.postProcessor;
  if (pp.type === "none") post = s.preTokenizer === "byte-level" ? { ...byteLevel, trim_offsets: false } : null;
  else if (pp.type === "roberta") {
    const cls = (pp.single[0] as { special: string }).special;
    const sep = (pp.single[2] as { special: string }).special;
    post = { type: "RobertaProcessing", sep: [sep, tok.tokenToId(sep)], cls: [cls, tok.tokenToId(cls)], trim_offsets: s.trimOffsets, add_prefix_space: s.addPrefixSpace };
  } else {
    const specials: J = {};
    for (const it of [...pp.single, ...pp.pair]) {
      if ("special" in it) specials[it.special] = { id: it.special, ids: [tok.tokenToId(it.special)], tokens: [it.special] };
    }
    post = { type: "TemplateProcessing", single: templateToJSON(pp.single), pair: templateToJSON(pp.pair), special_tokens: specials };
  }
  const model: J =
    s.model instanceof WordPiece
      ? {
          type: "WordPiece",
          unk_token: s.model.config.unkToken,
          continuing_subword_prefix: s.model.config.continuingSubwordPrefix,
          max_input_chars_per_word: s.model.config.maxInputCharsPerWord,
          vocab,
        }
      : {
          type: "BPE",
          dropout: null,
          unk_token: s.model.config.unkToken,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: false,
          byte_fallback: false,
          vocab,
          merges: s.model.config.merges.map(([a, b]) => `${a} ${b}`),
        };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: s.addedTokens.map((t) => ({
      id: t.id,
      content: t.content,
      single_word: t.singleWord,
      lstrip: t.lstrip,
      rstrip: t.rstrip,
      normalized: t.normalized,
      special: t.special,
    })),
    normalizer: s.normalizer
      ? { type: "BertNormalizer", clean_text: s.normalizer.cleanText, handle_chinese_chars: s.normalizer.handleChineseChars, strip_accents: s.normalizer.stripAccents, lowercase: s.normalizer.lowercase }
      : null,
    pre_tokenizer: s.preTokenizer === "bert" ? { type: "BertPreTokenizer" } : byteLevel,
    post_processor: post,
    decoder: s.model instanceof WordPiece ? { type: "WordPiece", prefix: s.model.config.continuingSubwordPrefix, cleanup: true } : byteLevel,
    model,
  };
}

// --- folders ----------------------------------------------------------------------------------

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return fail(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(path, `not valid JSON (${(e as Error).message})`);
  }
}

/** BERT's vocab.txt: one token per line, the id is the line number. */
export function tokenizerFromVocabTxt(path: string, options: { lowercase?: boolean } = {}): Tokenizer {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) fail(path, "empty vocabulary");
  const vocab = new Map<string, number>();
  lines.forEach((t, i) => {
    if (!vocab.has(t)) vocab.set(t, i);
  });
  for (const s of ["[UNK]", "[CLS]", "[SEP]"]) if (!vocab.has(s)) fail(path, `the vocabulary has no ${s}`);
  const added: AddedToken[] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    .filter((t) => vocab.has(t))
    .map((t) => ({ id: vocab.get(t)!, content: t, special: true, lstrip: false, rstrip: false, singleWord: false, normalized: false }));
  return new Tokenizer({
    normalizer: { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: options.lowercase ?? true },
    preTokenizer: "bert",
    addPrefixSpace: false,
    trimOffsets: false,
    model: new WordPiece({ vocab, unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 }),
    postProcessor: bertTemplate("[CLS]", "[SEP]"),
    addedTokens: added,
  });
}

/** GPT-2's vocab.json and merges.txt (RoBERTa's template when <s> and </s> are present). */
export function tokenizerFromVocabMerges(vocabPath: string, mergesPath: string): Tokenizer {
  const vocab = vocabMap(readJson(vocabPath), vocabPath);
  const lines = readFileSync(mergesPath, "utf8").split(/\r?\n/).filter((l) => l.length > 0 && !l.startsWith("#version"));
  const merges = parseMerges(lines, mergesPath);
  const specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"].filter((t) => vocab.has(t));
  const roberta = vocab.has("<s>") && vocab.has("</s>");
  return new Tokenizer({
    normalizer: null,
    preTokenizer: "byte-level",
    addPrefixSpace: false,
    trimOffsets: true,
    model: new BPE({ vocab, merges, unkToken: vocab.has("<unk>") ? "<unk>" : null }),
    postProcessor: roberta ? robertaTemplate("<s>", "</s>") : { type: "none", single: [], pair: [] },
    addedTokens: specials.map((t) => ({ id: vocab.get(t)!, content: t, special: true, lstrip: t === "<mask>", rstrip: false, singleWord: false, normalized: false })),
  });
}

/** Loads a tokenizer from a folder (tokenizer.json, or vocab.txt, or vocab.json + merges.txt) or a tokenizer.json file. */
/**
 * Hugging Face's habit: `await AutoTokenizer.fromPretrained(dir)` loads a folder's
 * tokenizer.json (or vocab.txt, or vocab.json + merges.txt), as loadTokenizer does.
 */
export const AutoTokenizer = {
  fromPretrained: async (path: string): Promise<Tokenizer> => loadTokenizer(path),
};

export function loadTokenizer(path: string): Tokenizer {
  const tok = loadTokenizerFiles(path);
  const configPath = path.endsWith(".json") ? null : join(path, "tokenizer_config.json");
  if (configPath && existsSync(configPath)) {
    const classic = (readJson(configPath) as J).lmforge_classic;
    if (classic && typeof classic === "object") tok.spec.classic = classic as TokenizerSpec["classic"];
  }
  return tok;
}

function loadTokenizerFiles(path: string): Tokenizer {
  if (path.endsWith(".json") && existsSync(path)) return tokenizerFromJSON(readJson(path), path);
  if (path.endsWith(".txt") && existsSync(path)) return tokenizerFromVocabTxt(path);
  if (!existsSync(path)) fail(path, "no such file or folder");
  if (existsSync(join(path, "tokenizer.json"))) return tokenizerFromJSON(readJson(join(path, "tokenizer.json")), join(path, "tokenizer.json"));
  const config = existsSync(join(path, "tokenizer_config.json")) ? (readJson(join(path, "tokenizer_config.json")) as J) : {};
  if (existsSync(join(path, "vocab.txt"))) return tokenizerFromVocabTxt(join(path, "vocab.txt"), { lowercase: (config.do_lower_case as boolean | undefined) ?? true });
  if (existsSync(join(path, "vocab.json")) && existsSync(join(path, "merges.txt"))) return tokenizerFromVocabMerges(join(path, "vocab.json"), join(path, "merges.txt"));
  return fail(path, "no tokenizer.json, vocab.txt, or vocab.json + merges.txt");
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * Writes tokenizer.json (and vocab.txt for WordPiece, vocab.json + merges.txt for BPE, and a
 * tokenizer_config.json) into a folder. Returns the files written.
 */
export function saveTokenizer(tok: Tokenizer, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string): void => {
    writeAtomic(join(dir, name), text);
    files.push(name);
  };
  put("tokenizer.json", JSON.stringify(tokenizerToJSON(tok), null, 2) + "\n");
  const byId = [...tok.spec.model.config.vocab].sort((a, b) => a[1] - b[1]);
  if (tok.spec.model instanceof WordPiece) {
    put("vocab.txt", byId.map(([t]) => t).join("\n") + "\n");
  } else {
    put("vocab.json", JSON.stringify(Object.fromEntries(byId)) + "\n");
    put("merges.txt", "#version: 0.2\n" + tok.spec.model.config.merges.map(([a, b]) => `${a} ${b}`).join("\n") + "\n");
  }
  const sp = tok.specialTokens;
  const config: J = {
    tokenizer_class: tok.kind === "wordpiece" ? "BertTokenizerFast" : tok.spec.postProcessor.type === "roberta" ? "RobertaTokenizerFast" : "GPT2TokenizerFast",
    do_lower_case: tok.spec.normalizer?.lowercase ?? false,
    model_max_length: 512,
    ...(sp.cls ? { cls_token: sp.cls } : {}),
    ...(sp.sep ? { sep_token: sp.sep } : {}),
    ...(sp.pad ? { pad_token: sp.pad } : {}),
    ...(sp.mask ? { mask_token: sp.mask } : {}),
    ...(sp.unk ? { unk_token: sp.unk } : {}),
    ...(tok.spec.classic && (tok.spec.classic.removeStopWords || tok.spec.classic.stem) ? { lmforge_classic: tok.spec.classic } : {}),
  };
  put("tokenizer_config.json", JSON.stringify(config, null, 2) + "\n");
  return files;
}

// Tokenizer files: Hugging Face's tokenizer.json, BERT's vocab.txt, GPT-2's vocab.json and
// merges.txt. What lmforge writes loads in Hugging Face tokenizers, and back in lmforge.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeTextAtomic } from "../io/atomic.js";
import { BPE, WordPiece } from "./models.js";
import { Unigram } from "./unigram.js";
import { PrecompiledCharsmap } from "./spm.js";
import type { MetaspaceOptions, SpmNormalizerStep } from "./spm.js";
import { Tokenizer } from "./tokenizer.js";
import type { AddedToken, PostProcessor, TemplateItem, TokenizerSpec } from "./tokenizer.js";
import type { BertNormalizerOptions } from "./normalizer.js";

type J = Record<string, unknown>;

export class TokenizerFileError extends Error {}

function fail(file: string, msg: string): never {
  throw new TokenizerFileError(`${file}: ${msg}`);
}

/** A value from the file, for a message (String() of a hostile object can throw). */
function show(v: unknown): string {
  return typeof v === "string" ? v : (JSON.stringify(v) ?? typeof v);
}

function isObject(v: unknown): v is J {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// --- tokenizer.json -------------------------------------------------------------------------

const SUPPORTED_NORMALIZERS = "BertNormalizer, Precompiled, NFKC, a Sequence of Precompiled and NFKC, none";

/** SentencePiece's normalizer steps: Precompiled (an empty charsmap is the identity), NFKC, Sequences of them. */
function parseSpmSteps(o: J, file: string, where: string): SpmNormalizerStep[] {
  if (o.type === "NFKC") return [{ type: "NFKC" }];
  if (o.type === "Precompiled") {
    const map = o.precompiled_charsmap;
    if (map === null || map === undefined || map === "") return [];
    if (typeof map !== "string") return fail(file, `${where}.precompiled_charsmap must be a base64 string`);
    try {
      new PrecompiledCharsmap(map, `${where}.precompiled_charsmap`);
    } catch (e) {
      return fail(file, (e as Error).message);
    }
    return [{ type: "Precompiled", precompiledCharsmap: map }];
  }
  if (o.type === "Sequence" && Array.isArray(o.normalizers)) {
    return (o.normalizers as unknown[]).flatMap((x, i) => (isObject(x) ? parseSpmSteps(x, file, `${where}.normalizers[${i}]`) : fail(file, `${where}.normalizers[${i}] must be an object`)));
  }
  return fail(file, `${where} "${show(o.type)}" is not supported (supported: ${SUPPORTED_NORMALIZERS})`);
}

function parseNormalizer(n: unknown, file: string): BertNormalizerOptions | SpmNormalizerStep[] | null {
  if (n === null || n === undefined) return null;
  const o = n as J;
  if (o.type !== "BertNormalizer") {
    const steps = parseSpmSteps(o, file, "normalizer");
    return steps.length ? steps : null;
  }
  return {
    cleanText: (o.clean_text as boolean) ?? true,
    handleChineseChars: (o.handle_chinese_chars as boolean) ?? true,
    stripAccents: (o.strip_accents as boolean | null) ?? null,
    lowercase: (o.lowercase as boolean) ?? true,
  };
}

interface PreTokenizerSpec {
  kind: "bert" | "byte-level" | "metaspace";
  addPrefixSpace: boolean;
  trimOffsets: boolean;
  metaspace?: MetaspaceOptions;
}

/** Metaspace's settings: prepend_scheme, or the older add_prefix_space (true: always). */
function parseMetaspace(o: J, file: string, whitespaceSplit: boolean): PreTokenizerSpec {
  const replacement = o.replacement ?? "\u2581";
  if (typeof replacement !== "string" || [...replacement].length !== 1) fail(file, `pre_tokenizer Metaspace: replacement must be one character, got ${JSON.stringify(replacement)}`);
  const scheme = o.prepend_scheme ?? (o.add_prefix_space === false ? "never" : "always");
  if (scheme !== "always" && scheme !== "first" && scheme !== "never") fail(file, `pre_tokenizer Metaspace: prepend_scheme must be always, first or never, got ${JSON.stringify(scheme)}`);
  const metaspace: MetaspaceOptions = { replacement: replacement as string, prependScheme: scheme as MetaspaceOptions["prependScheme"], split: o.split !== false, whitespaceSplit };
  return { kind: "metaspace", addPrefixSpace: false, trimOffsets: false, metaspace };
}

function parsePreTokenizer(p: unknown, file: string): PreTokenizerSpec {
  const o = (p ?? {}) as J;
  if (o.type === "BertPreTokenizer") return { kind: "bert", addPrefixSpace: false, trimOffsets: false };
  if (o.type === "ByteLevel") return { kind: "byte-level", addPrefixSpace: Boolean(o.add_prefix_space), trimOffsets: o.trim_offsets !== false };
  if (o.type === "Metaspace") return parseMetaspace(o, file, false);
  if (o.type === "Sequence" && Array.isArray(o.pretokenizers) && o.pretokenizers.length === 1) return parsePreTokenizer(o.pretokenizers[0], file);
  // T5's: WhitespaceSplit, then Metaspace
  const seq = o.pretokenizers as J[] | undefined;
  if (o.type === "Sequence" && Array.isArray(seq) && seq.length === 2 && seq[0]?.type === "WhitespaceSplit" && seq[1]?.type === "Metaspace") return parseMetaspace(seq[1], file, true);
  return fail(file, `pre_tokenizer "${show(o.type)}" is not supported (supported: BertPreTokenizer, ByteLevel, Metaspace, Sequence [WhitespaceSplit, Metaspace])`);
}

function parseTemplate(items: unknown, file: string, where: string): TemplateItem[] {
  if (!Array.isArray(items)) fail(file, `${where} must be an array`);
  return (items as unknown[]).map((it, i) => {
    const typeId = (x: J): number => {
      const id = x.type_id ?? 0;
      if (!Number.isInteger(id) || (id as number) < 0) fail(file, `${where}[${i}].type_id must be a non-negative integer, got ${show(id)}`);
      return id as number;
    };
    if (isObject(it) && isObject(it.SpecialToken)) {
      const s = it.SpecialToken;
      if (typeof s.id !== "string") fail(file, `${where}[${i}].SpecialToken.id must be a string, got ${show(s.id)}`);
      return { special: s.id as string, typeId: typeId(s) };
    }
    if (isObject(it) && isObject(it.Sequence)) {
      const s = it.Sequence;
      return { sequence: s.id === "B" ? "B" : "A", typeId: typeId(s) };
    }
    return fail(file, `${where}[${i}] is no template item ({SpecialToken} or {Sequence}): ${show(it)}`);
  });
}

/** BertProcessing's and RobertaProcessing's cls and sep: [token, id]. */
function specialPair(o: J, key: "cls" | "sep", file: string): string {
  const v = o[key];
  if (!Array.isArray(v) || typeof v[0] !== "string") return fail(file, `post_processor.${key} must be [token, id], got ${show(v)}`);
  return v[0];
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
      return { type: "template", single: parseTemplate(o.single, file, "post_processor.single"), pair: parseTemplate(o.pair, file, "post_processor.pair") };
    case "BertProcessing":
      return bertTemplate(specialPair(o, "cls", file), specialPair(o, "sep", file));
    case "RobertaProcessing":
      return robertaTemplate(specialPair(o, "cls", file), specialPair(o, "sep", file));
    case "ByteLevel":
      return { type: "none", single: [], pair: [] };
    default:
      return fail(file, `post_processor "${show(o.type)}" is not supported`);
  }
}

function parseMerges(m: unknown, file: string): [string, string][] {
  if (!Array.isArray(m)) fail(file, "model.merges must be an array");
  return (m as unknown[]).map((x, i) => {
    if (Array.isArray(x) && x.length === 2 && typeof x[0] === "string" && typeof x[1] === "string") return [x[0], x[1]];
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
    if (!isTokenId(id)) fail(file, `model.vocab[${JSON.stringify(tok)}] is not a token id (a non-negative integer below 2^31): ${JSON.stringify(id)}`);
    m.set(tok, id as number);
  }
  return m;
}

/** model.vocab [[piece, log probability], ...], unk_id (or null), byte_fallback. */
function parseUnigram(model: J, file: string): { pieces: [string, number][]; unkId: number | null; byteFallback: boolean } {
  if (!Array.isArray(model.vocab)) fail(file, "model.vocab of a Unigram model must be an array of [piece, score]");
  const pieces = (model.vocab as unknown[]).map((x, i): [string, number] => {
    if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== "string" || typeof x[1] !== "number") return fail(file, `model.vocab[${i}] is not [piece, score]: ${JSON.stringify(x)}`);
    return [x[0], x[1]];
  });
  const unk = model.unk_id ?? null;
  if (unk !== null && (!Number.isInteger(unk) || (unk as number) < 0 || (unk as number) >= pieces.length)) fail(file, `model.unk_id ${JSON.stringify(unk)} is not an id of the ${pieces.length} pieces`);
  return { pieces, unkId: unk as number | null, byteFallback: model.byte_fallback === true };
}

/** The normalizer of a tokenizer.json: BERT's, or SentencePiece's steps (one, or a Sequence). */
function normalizerToJSON(n: TokenizerSpec["normalizer"]): J | null {
  if (n === null) return null;
  if (Array.isArray(n)) {
    const steps = n.map((st): J => (st.type === "NFKC" ? { type: "NFKC" } : { type: "Precompiled", precompiled_charsmap: st.precompiledCharsmap }));
    return steps.length === 1 ? steps[0]! : { type: "Sequence", normalizers: steps };
  }
  return { type: "BertNormalizer", clean_text: n.cleanText, handle_chinese_chars: n.handleChineseChars, strip_accents: n.stripAccents, lowercase: n.lowercase };
}

function metaspaceToJSON(o: MetaspaceOptions): J {
  return { type: "Metaspace", replacement: o.replacement, prepend_scheme: o.prependScheme, split: o.split };
}

function metaspacePreTokenizerToJSON(o: MetaspaceOptions): J {
  return o.whitespaceSplit ? { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, metaspaceToJSON(o)] } : metaspaceToJSON(o);
}

/** Metaspace, after ByteFallback where the model falls back to bytes (the order lmforge decodes in). */
function unigramDecoderToJSON(m: Unigram, o: MetaspaceOptions): J {
  return m.config.byteFallback ? { type: "Sequence", decoders: [{ type: "ByteFallback" }, metaspaceToJSON(o)] } : metaspaceToJSON(o);
}

/** added_tokens: [{id, content, special, ...}], each with a non-negative integer id and non-empty content. */
function parseAddedTokens(a: unknown, file: string): AddedToken[] {
  if (a === undefined || a === null) return [];
  if (!Array.isArray(a)) return fail(file, "added_tokens must be an array");
  return a.map((t: unknown, i) => {
    if (typeof t !== "object" || t === null || Array.isArray(t)) return fail(file, `added_tokens[${i}] must be an object`);
    const o = t as J;
    if (!isTokenId(o.id)) fail(file, `added_tokens[${i}].id must be a non-negative integer below 2^31, got ${JSON.stringify(o.id)}`);
    if (typeof o.content !== "string" || o.content === "") fail(file, `added_tokens[${i}].content must be a non-empty string, got ${JSON.stringify(o.content)}`);
    return {
      id: o.id as number,
      content: o.content as string,
      special: Boolean(o.special),
      lstrip: Boolean(o.lstrip),
      rstrip: Boolean(o.rstrip),
      singleWord: Boolean(o.single_word),
      normalized: Boolean(o.normalized),
    };
  });
}

/** Token ids index embedding rows: non-negative 31-bit integers. */
function isTokenId(x: unknown): x is number {
  return Number.isInteger(x) && (x as number) >= 0 && (x as number) < 2 ** 31;
}

/** Runs a constructor whose errors (an unknown token missing, ids that disagree) must name the file. */
function build<T>(file: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof TokenizerFileError) throw e;
    return fail(file, (e as Error).message);
  }
}

/** Builds a tokenizer from the parsed content of a Hugging Face tokenizer.json. */
export function tokenizerFromJSON(json: unknown, file = "tokenizer.json"): Tokenizer {
  if (typeof json !== "object" || json === null) fail(file, "not a JSON object");
  const j = json as J;
  const model = j.model as J | undefined;
  if (!model || typeof model !== "object") fail(file, "no model");
  if (model.type !== "WordPiece" && model.type !== "BPE" && model.type !== "Unigram" && !(model.type === undefined && model.merges)) {
    fail(file, `model type "${show(model.type)}" is not supported (supported: WordPiece, BPE, Unigram)`);
  }
  const pre = parsePreTokenizer(j.pre_tokenizer, file);
  if ((pre.kind === "metaspace") !== (model.type === "Unigram")) {
    fail(file, `a ${show(model.type)} model with the ${pre.kind} pre-tokenizer is not supported (Metaspace goes with Unigram, and Unigram with Metaspace)`);
  }
  let m: WordPiece | BPE | Unigram;
  const text = (key: string, fallback: string | null): string | null => {
    const v = model[key] ?? fallback;
    if (v !== null && typeof v !== "string") fail(file, `model.${key} must be a string, got ${JSON.stringify(v)}`);
    return v as string | null;
  };
  if (model.type === "WordPiece") {
    const maxChars = model.max_input_chars_per_word ?? 100;
    if (!Number.isSafeInteger(maxChars) || (maxChars as number) < 1) fail(file, `model.max_input_chars_per_word must be a positive integer, got ${JSON.stringify(maxChars)}`);
    const vocab = vocabMap(model.vocab, file);
    const config = { vocab, unkToken: text("unk_token", "[UNK]")!, continuingSubwordPrefix: text("continuing_subword_prefix", "##")!, maxInputCharsPerWord: maxChars as number };
    m = build(file, () => new WordPiece(config));
  } else if (model.type === "Unigram") {
    const config = parseUnigram(model, file);
    m = build(file, () => new Unigram(config));
  } else if (model.type === "BPE" || (model.type === undefined && model.merges)) {
    const config = { vocab: vocabMap(model.vocab, file), merges: parseMerges(model.merges, file), unkToken: text("unk_token", null) };
    m = build(file, () => new BPE(config));
  } else {
    return fail(file, `model type "${show(model.type)}" is not supported (supported: WordPiece, BPE)`);
  }
  const added = parseAddedTokens(j.added_tokens, file);
  const spec: TokenizerSpec = {
    normalizer: parseNormalizer(j.normalizer, file),
    preTokenizer: pre.kind,
    ...(pre.metaspace ? { metaspace: pre.metaspace } : {}),
    addPrefixSpace: pre.addPrefixSpace,
    trimOffsets: pre.trimOffsets,
    model: m,
    postProcessor: parsePostProcessor(j.post_processor, file),
    addedTokens: added,
  };
  return build(file, () => new Tokenizer(spec));
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
  const m = s.model;
  const model: J =
    m instanceof Unigram
      ? { type: "Unigram", unk_id: m.config.unkId, vocab: m.config.pieces.map(([p, score]) => [p, score]), byte_fallback: m.config.byteFallback }
      : m instanceof WordPiece
      ? {
          type: "WordPiece",
          unk_token: m.config.unkToken,
          continuing_subword_prefix: m.config.continuingSubwordPrefix,
          max_input_chars_per_word: m.config.maxInputCharsPerWord,
          vocab,
        }
      : {
          type: "BPE",
          dropout: null,
          unk_token: m.config.unkToken,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: false,
          byte_fallback: false,
          vocab,
          merges: m.config.merges.map(([a, b]) => `${a} ${b}`),
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
    normalizer: normalizerToJSON(s.normalizer),
    pre_tokenizer: s.preTokenizer === "bert" ? { type: "BertPreTokenizer" } : s.preTokenizer === "metaspace" ? metaspacePreTokenizerToJSON(s.metaspace!) : byteLevel,
    post_processor: post,
    decoder: m instanceof WordPiece ? { type: "WordPiece", prefix: m.config.continuingSubwordPrefix, cleanup: true } : m instanceof Unigram ? unigramDecoderToJSON(m, s.metaspace!) : byteLevel,
    model,
  };
}

// --- folders ----------------------------------------------------------------------------------

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    return fail(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function readJson(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(path, `not valid JSON (${(e as Error).message})`);
  }
}

/** BERT's vocab.txt: one token per line, the id is the line number. */
export function tokenizerFromVocabTxt(path: string, options: { lowercase?: boolean } = {}): Tokenizer {
  const lines = readText(path).split(/\r?\n/);
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
  return build(path, () => new Tokenizer({
    normalizer: { cleanText: true, handleChineseChars: true, stripAccents: null, lowercase: options.lowercase ?? true },
    preTokenizer: "bert",
    addPrefixSpace: false,
    trimOffsets: false,
    model: new WordPiece({ vocab, unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 }),
    postProcessor: bertTemplate("[CLS]", "[SEP]"),
    addedTokens: added,
  }));
}

/** GPT-2's vocab.json and merges.txt (RoBERTa's template when <s> and </s> are present). */
export function tokenizerFromVocabMerges(vocabPath: string, mergesPath: string): Tokenizer {
  const vocab = vocabMap(readJson(vocabPath), vocabPath);
  const lines = readText(mergesPath).split(/\r?\n/).filter((l) => l.length > 0 && !l.startsWith("#version"));
  const merges = parseMerges(lines, mergesPath);
  const specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"].filter((t) => vocab.has(t));
  const roberta = vocab.has("<s>") && vocab.has("</s>");
  // the model and the tokenizer check the two files against each other: their errors name both
  return build(`${vocabPath} + ${mergesPath}`, () => new Tokenizer({
    normalizer: null,
    preTokenizer: "byte-level",
    addPrefixSpace: false,
    trimOffsets: true,
    model: new BPE({ vocab, merges, unkToken: vocab.has("<unk>") ? "<unk>" : null }),
    postProcessor: roberta ? robertaTemplate("<s>", "</s>") : { type: "none", single: [], pair: [] },
    addedTokens: specials.map((t) => ({ id: vocab.get(t)!, content: t, special: true, lstrip: t === "<mask>", rstrip: false, singleWord: false, normalized: false })),
  }));
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

/**
 * Writes tokenizer.json (and vocab.txt for WordPiece, vocab.json + merges.txt for BPE, and a
 * tokenizer_config.json) into a folder. Returns the files written.
 */
export function saveTokenizer(tok: Tokenizer, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string): void => {
    writeTextAtomic(join(dir, name), text);
    files.push(name);
  };
  put("tokenizer.json", JSON.stringify(tokenizerToJSON(tok), null, 2) + "\n");
  const byId = [...tok.spec.model.config.vocab].sort((a, b) => a[1] - b[1]);
  const model = tok.spec.model;
  if (model instanceof WordPiece) {
    put("vocab.txt", byId.map(([t]) => t).join("\n") + "\n");
  } else if (model instanceof BPE) {
    put("vocab.json", JSON.stringify(Object.fromEntries(byId)) + "\n");
    put("merges.txt", "#version: 0.2\n" + model.config.merges.map(([a, b]) => `${a} ${b}`).join("\n") + "\n");
  }
  if (model instanceof Unigram) {
    // tokenizer.json holds the whole Unigram model (no sentencepiece .model file is written)
    const has = (t: string): boolean => tok.vocab.has(t);
    const config: J = {
      tokenizer_class: has("</s>") && has("<pad>") && has("<unk>") ? "T5TokenizerFast" : "PreTrainedTokenizerFast",
      model_max_length: 512,
      ...(has("</s>") ? { eos_token: "</s>" } : {}),
      ...(model.config.unkId !== null ? { unk_token: model.config.pieces[model.config.unkId]![0] } : {}),
      ...(has("<pad>") ? { pad_token: "<pad>" } : {}),
    };
    put("tokenizer_config.json", JSON.stringify(config, null, 2) + "\n");
    return files;
  }
  const sp = tok.specialTokens;
  const norm = tok.spec.normalizer;
  const config: J = {
    tokenizer_class: tok.kind === "wordpiece" ? "BertTokenizerFast" : tok.spec.postProcessor.type === "roberta" ? "RobertaTokenizerFast" : "GPT2TokenizerFast",
    do_lower_case: norm !== null && !Array.isArray(norm) ? norm.lowercase : false,
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

// The tokenizer pipeline, as Hugging Face's: added tokens are split out first, then each piece
// of text is normalised, pre-tokenised into words, and the words into subword pieces; a
// template adds the special tokens; truncation and padding come last. Offsets are UTF-16
// positions in the original text (what String.prototype.slice takes).
import { bertNormalize, identity } from "./normalizer.js";
import type { BertNormalizerOptions, Normalized } from "./normalizer.js";
import { bertPreTokenize, byteLevelPreTokenize, toByteChars } from "./pretokenizers.js";
import type { Word } from "./pretokenizers.js";
import { BPE, WordPiece, cached } from "./models.js";
import type { Piece } from "./models.js";
import { Unigram } from "./unigram.js";
import { PrecompiledCharsmap, decodeByteFallback, decodeMetaspace, metaspacePreTokenize, spmNormalize } from "./spm.js";
import type { MetaspaceOptions, SpmNormalizerStep } from "./spm.js";
import { CHAR_TO_BYTE } from "./unicode.js";
import { isWhitespace } from "./unicode.js";
import { applyClassicOptions } from "./classic.js";
import type { ClassicTextOptions } from "./classic.js";

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  /** Absorb whitespace on the left / right of a match (RoBERTa's <mask> has lstrip). */
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
  normalized: boolean;
}

/** One item of a post-processing template: a special token, or sequence A or B. */
export type TemplateItem = { special: string; typeId: number } | { sequence: "A" | "B"; typeId: number };

export interface PostProcessor {
  type: "template" | "roberta" | "none";
  single: TemplateItem[];
  pair: TemplateItem[];
}

export interface TokenizerSpec {
  /** BERT's normaliser, or SentencePiece's steps (Precompiled, NFKC), or none. */
  normalizer: BertNormalizerOptions | SpmNormalizerStep[] | null;
  preTokenizer: "bert" | "byte-level" | "metaspace";
  /** The Metaspace pre-tokeniser's (and decoder's) settings, with preTokenizer "metaspace". */
  metaspace?: MetaspaceOptions;
  /** Byte-level: prepend a space to the text, as RoBERTa's option. */
  addPrefixSpace: boolean;
  /** Byte-level: offsets exclude the whitespace that tokens carry. */
  trimOffsets: boolean;
  model: WordPiece | BPE | Unigram;
  postProcessor: PostProcessor;
  addedTokens: AddedToken[];
  /** lmforge's classic-recipe options (stop words, stemming); off by default. */
  classic?: ClassicTextOptions;
}

export interface Encoding {
  ids: number[];
  tokens: string[];
  typeIds: number[];
  attentionMask: number[];
  specialTokensMask: number[];
  /** [start, end) in the original text (UTF-16 units); [0, 0] for added special tokens. */
  offsets: [number, number][];
  /** Index of the word each token comes from, within its sequence; null for special tokens. */
  wordIds: (number | null)[];
  /** 0 or 1 for the sequence each token belongs to; null for special tokens. */
  sequenceIds: (number | null)[];
  /** Further windows of a truncated input (with stride), for question answering. */
  overflowing: Encoding[];
}

export type TruncationStrategy = "longest_first" | "only_first" | "only_second";

export interface EncodeOptions {
  addSpecialTokens?: boolean;
  /** Truncate to this many tokens (special tokens included). */
  maxLength?: number;
  truncation?: TruncationStrategy | boolean;
  /** Tokens shared by consecutive overflowing windows. */
  stride?: number;
  returnOverflowing?: boolean;
  /** "longest" pads a batch to its longest member; "max_length" to maxLength. */
  padding?: "longest" | "max_length" | false;
  paddingSide?: "right" | "left";
  padToMultipleOf?: number;
}

interface Raw {
  ids: number[];
  tokens: string[];
  offsets: [number, number][];
  wordIds: (number | null)[];
  special: number[];
}

function emptyRaw(): Raw {
  return { ids: [], tokens: [], offsets: [], wordIds: [], special: [] };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export class Tokenizer {
  readonly vocab: Map<string, number>;
  private readonly idToTokenMap: string[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedPattern: RegExp | null;
  private readonly charsmaps: (PrecompiledCharsmap | null)[];

  constructor(readonly spec: TokenizerSpec) {
    if (spec.preTokenizer === "metaspace" && !spec.metaspace) throw new Error("tokenizer: the metaspace pre-tokenizer needs its settings (spec.metaspace)");
    if ((spec.preTokenizer === "metaspace") !== spec.model instanceof Unigram) throw new Error("tokenizer: the Metaspace pre-tokenizer goes with a Unigram model, and a Unigram model with it");
    this.charsmaps = Array.isArray(spec.normalizer) ? spec.normalizer.map((st) => (st.type === "Precompiled" ? new PrecompiledCharsmap(st.precompiledCharsmap) : null)) : [];
    this.vocab = new Map(spec.model.config.vocab);
    for (const t of spec.addedTokens) {
      // an empty added token would match everywhere: splitting text on it never advances
      if (t.content === "") throw new Error(`tokenizer: added token ${t.id} has empty content`);
      const existing = this.vocab.get(t.content);
      if (existing !== undefined && existing !== t.id) {
        throw new Error(`tokenizer: added token "${t.content}" has id ${t.id} but the vocabulary gives it ${existing}`);
      }
      this.vocab.set(t.content, t.id);
      this.addedById.set(t.id, t);
    }
    this.idToTokenMap = [];
    for (const [tok, id] of this.vocab) this.idToTokenMap[id] = tok;
    const added = [...spec.addedTokens].sort((a, b) => b.content.length - a.content.length);
    this.addedPattern = added.length ? new RegExp(added.map((t) => escapeRegExp(t.content)).join("|"), "g") : null;
    for (const item of [...spec.postProcessor.single, ...spec.postProcessor.pair]) {
      if ("special" in item && !this.vocab.has(item.special)) {
        throw new Error(`tokenizer: the post-processor's special token "${item.special}" is not in the vocabulary`);
      }
    }
  }

  get vocabSize(): number {
    return this.idToTokenMap.length;
  }

  get kind(): "wordpiece" | "bpe" | "unigram" {
    return this.spec.model instanceof WordPiece ? "wordpiece" : this.spec.model instanceof Unigram ? "unigram" : "bpe";
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenMap[id];
  }

  /** The special tokens by role, found by their usual names. */
  get specialTokens(): { cls?: string; sep?: string; pad?: string; mask?: string; unk?: string; bos?: string; eos?: string } {
    const has = (...names: string[]): string | undefined => names.find((n) => this.vocab.has(n));
    return {
      cls: has("[CLS]", "<s>"),
      sep: has("[SEP]", "</s>"),
      pad: has("[PAD]", "<pad>", "<|endoftext|>"),
      mask: has("[MASK]", "<mask>"),
      unk: has("[UNK]", "<unk>"),
      bos: has("<s>", "<|endoftext|>", "[CLS]"),
      eos: has("</s>", "<|endoftext|>", "[SEP]"),
    };
  }

  /** Ids of every special added token ([CLS], [SEP], [PAD], [MASK], ...). */
  get specialIds(): Set<number> {
    return new Set(this.spec.addedTokens.filter((t) => t.special).map((t) => t.id));
  }

  // --- one sequence, no special tokens -------------------------------------------------------

  private normalize(text: string, base: number): Normalized {
    const n = this.spec.normalizer;
    if (Array.isArray(n)) return spmNormalize(text, n, this.charsmaps, base);
    return n ? bertNormalize(text, n, base) : identity(text, base);
  }

  /** first: the text starts the input (Metaspace's prepend scheme "first"). */
  private preTokenize(text: string, first: boolean): Word[] {
    if (this.spec.preTokenizer === "metaspace") return metaspacePreTokenize(text, this.spec.metaspace!, first);
    return this.spec.preTokenizer === "bert" ? bertPreTokenize(text) : byteLevelPreTokenize(text);
  }

  /** Splits out added tokens (matched in the raw text), then tokenises the rest. */
  private encodeRaw(text: string): Raw {
    const raw = emptyRaw();
    let word = 0;
    const pushText = (segment: string, base: number, first: boolean): void => {
      if (segment.length === 0) return;
      let src = segment;
      let srcBase = base;
      let prefixAdded = false;
      if (this.spec.preTokenizer === "byte-level" && this.spec.addPrefixSpace && first && !segment.startsWith(" ")) {
        src = " " + segment;
        srcBase = base - 1;
        prefixAdded = true;
      }
      const norm = this.normalize(src, srcBase);
      let words = this.preTokenize(norm.text, first);
      if (this.spec.classic) words = applyClassicOptions(words, this.spec.classic);
      for (const w of words) {
        this.encodeWord(w, norm, raw, word, prefixAdded, base);
        word++;
      }
    };
    if (this.addedPattern === null) {
      pushText(text, 0, true);
      return raw;
    }
    let last = 0;
    this.addedPattern.lastIndex = 0;
    for (let m = this.addedPattern.exec(text); m !== null; m = this.addedPattern.exec(text)) {
      const tok = this.spec.addedTokens.find((t) => t.content === m![0])!;
      let start = m.index;
      let end = start + m[0].length;
      if (tok.lstrip) while (start > last && isWhitespace(text.charCodeAt(start - 1))) start--;
      if (tok.rstrip) while (end < text.length && isWhitespace(text.charCodeAt(end))) end++;
      pushText(text.slice(last, start), last, last === 0);
      raw.ids.push(tok.id);
      raw.tokens.push(tok.content);
      raw.offsets.push([m.index, m.index + m[0].length]);
      raw.wordIds.push(word++);
      raw.special.push(tok.special ? 1 : 0);
      last = end;
      this.addedPattern.lastIndex = end;
    }
    pushText(text.slice(last), last, last === 0);
    return raw;
  }

  /** Appends a span of the normalised text, mapped back to the original text. */
  private static pushSpan(raw: Raw, norm: Normalized, a: number, b: number, prefixAdded: boolean, base: number): void {
    let s = norm.start === null ? norm.base + a : norm.start[a]!;
    let e = norm.end === null ? norm.base + b : norm.end[b - 1]!;
    if (prefixAdded) {
      if (s < base) s = base;
      if (e < base) e = base;
    }
    raw.offsets.push([s, e]);
  }

  private encodeWord(w: Word, norm: Normalized, raw: Raw, wordId: number, prefixAdded: boolean, base: number): void {
    const model = this.spec.model;
    if (model instanceof Unigram) {
      // the prepended "▁" stands on the word's first character, as Hugging Face aligns it
      const shift = w.prefixed ? 1 : 0;
      const first = norm.text.codePointAt(w.start)! > 0xffff ? 2 : 1;
      for (const p of model.encodeWord(w.text)) {
        const a = w.start + Math.max(0, p.start - shift);
        const b = w.start + Math.max(shift ? first : 0, p.end - shift);
        raw.ids.push(p.id);
        raw.tokens.push(p.token);
        Tokenizer.pushSpan(raw, norm, a, Math.min(b, w.end), prefixAdded, base);
        raw.wordIds.push(wordId);
        raw.special.push(0);
      }
      return;
    }
    if (model instanceof WordPiece) {
      for (const p of model.encodeWord(w.text)) {
        raw.ids.push(p.id);
        raw.tokens.push(p.token);
        Tokenizer.pushSpan(raw, norm, w.start + p.start, w.start + p.end, prefixAdded, base);
        raw.wordIds.push(wordId);
        raw.special.push(0);
      }
      return;
    }
    for (const p of this.byteLevelPieces(w.text)) {
      let a = w.start + p.start;
      let b = w.start + p.end;
      if (this.spec.trimOffsets) {
        while (a < b - 1 && norm.text.charCodeAt(a) === 32) a++;
        while (b > a + 1 && norm.text.charCodeAt(b - 1) === 32) b--;
      }
      raw.ids.push(p.id);
      raw.tokens.push(p.token);
      Tokenizer.pushSpan(raw, norm, a, b, prefixAdded, base);
      raw.wordIds.push(wordId);
      raw.special.push(0);
    }
  }

  private readonly byteCache = new Map<string, Piece[]>();

  /** A word's BPE pieces with spans in the word's own characters (cached by word). */
  private byteLevelPieces(word: string): Piece[] {
    return cached(this.byteCache, word, (w) => {
      const bytes = toByteChars(w);
      return (this.spec.model as BPE).encodeWord(bytes.chars).map((p) => ({
        id: p.id,
        token: p.token,
        start: bytes.byteStart[p.start]!,
        end: bytes.byteEnd[p.end - 1]!,
      }));
    });
  }


  /**
   * The words of a text as the subword model sees them: normalised and pre-tokenised (and the
   * classic options applied); added tokens are not split out first. Vocabulary analysis reads
   * these (src/tokenizers/extend.ts): `tokenize(word)` gives a word's pieces.
   */
  words(text: string): string[] {
    const words = this.preTokenize(this.normalize(text, 0).text, true);
    return (this.spec.classic ? applyClassicOptions(words, this.spec.classic) : words).map((w) => w.text);
  }

  /** The subword tokens of a text, without special tokens. */
  tokenize(text: string): string[] {
    return this.encodeRaw(text).tokens;
  }

  // --- full encodings ----------------------------------------------------------------------------

  private numSpecial(pair: boolean): number {
    return (pair ? this.spec.postProcessor.pair : this.spec.postProcessor.single).filter((i) => "special" in i).length;
  }

  private assemble(a: Raw, b: Raw | null, addSpecial: boolean): Encoding {
    const enc: Encoding = {
      ids: [],
      tokens: [],
      typeIds: [],
      attentionMask: [],
      specialTokensMask: [],
      offsets: [],
      wordIds: [],
      sequenceIds: [],
      overflowing: [],
    };
    const pushSeq = (r: Raw, seq: number, typeId: number): void => {
      for (let i = 0; i < r.ids.length; i++) {
        enc.ids.push(r.ids[i]!);
        enc.tokens.push(r.tokens[i]!);
        enc.typeIds.push(typeId);
        enc.attentionMask.push(1);
        enc.specialTokensMask.push(r.special[i]!);
        enc.offsets.push(r.offsets[i]!);
        enc.wordIds.push(r.wordIds[i]!);
        enc.sequenceIds.push(seq);
      }
    };
    if (!addSpecial || this.spec.postProcessor.type === "none") {
      pushSeq(a, 0, 0);
      if (b) pushSeq(b, 1, 1); // as the reference: the second sequence has type id 1
      return enc;
    }
    for (const item of b ? this.spec.postProcessor.pair : this.spec.postProcessor.single) {
      if ("special" in item) {
        enc.ids.push(this.vocab.get(item.special)!);
        enc.tokens.push(item.special);
        enc.typeIds.push(item.typeId);
        enc.attentionMask.push(1);
        enc.specialTokensMask.push(1);
        enc.offsets.push([0, 0]);
        enc.wordIds.push(null);
        enc.sequenceIds.push(null);
      } else {
        pushSeq(item.sequence === "A" ? a : b!, item.sequence === "A" ? 0 : 1, item.typeId);
      }
    }
    return enc;
  }

  /**
   * Encodes a text, or a pair of texts (question and context, two sentences), with special
   * tokens, truncation and overflowing windows as asked.
   */
  encode(text: string, pair?: string | null, options: EncodeOptions = {}): Encoding {
    if (typeof text !== "string") throw new TypeError(`encode: text must be a string, got ${typeof text}`);
    const addSpecial = options.addSpecialTokens ?? true;
    const a = this.encodeRaw(text);
    const b = pair === undefined || pair === null ? null : this.encodeRaw(pair);
    const truncation = options.truncation === true ? "longest_first" : options.truncation || (options.maxLength !== undefined ? "longest_first" : false);
    if (!truncation || options.maxLength === undefined) return this.assemble(a, b, addSpecial);
    const budget = options.maxLength - (addSpecial ? this.numSpecial(b !== null) : 0);
    if (budget < 1) throw new Error(`encode: maxLength ${options.maxLength} leaves no room beside the special tokens`);
    const stride = options.stride ?? 0;
    if (stride < 0) throw new RangeError(`encode: stride must be >= 0, got ${stride}`);
    const total = a.ids.length + (b?.ids.length ?? 0);
    if (total <= budget) return this.assemble(a, b, addSpecial);

    // Which sequence is windowed, and how long each window may be.
    let target: "a" | "b";
    let keepOther: number;
    if (truncation === "only_first" || (b === null && truncation !== "only_second")) {
      target = "a";
      keepOther = b?.ids.length ?? 0;
    } else if (truncation === "only_second") {
      if (b === null) throw new Error("encode: truncation only_second needs a pair of texts");
      target = "b";
      keepOther = a.ids.length;
    } else {
      // longest_first: shorten the longer one first, one token at a time (ties: the second)
      let la = a.ids.length;
      let lb = b!.ids.length;
      while (la + lb > budget) {
        if (la > lb) la--;
        else lb--;
      }
      const enc = this.assemble(slice(a, 0, la), slice(b!, 0, lb), addSpecial);
      if (options.returnOverflowing) {
        // the overflow of the longer sequence, in windows, paired with the other truncated
        const longerIsA = a.ids.length - la >= b!.ids.length - lb;
        const seq = longerIsA ? a : b!;
        const keep = longerIsA ? la : lb;
        for (const w of windows(seq.ids.length, keep, stride).slice(1)) {
          enc.overflowing.push(longerIsA ? this.assemble(slice(a, w[0], w[1]), slice(b!, 0, lb), addSpecial) : this.assemble(slice(a, 0, la), slice(b!, w[0], w[1]), addSpecial));
        }
      }
      return enc;
    }
    const seq = target === "a" ? a : b!;
    const room = budget - keepOther;
    if (room < 1) throw new Error(`encode: maxLength ${options.maxLength} leaves no room for the ${target === "a" ? "first" : "second"} sequence`);
    if (stride >= room) throw new RangeError(`encode: stride (${stride}) must be smaller than the room for the truncated sequence (${room})`);
    const ws = windows(seq.ids.length, room, stride);
    const make = (w: [number, number]): Encoding =>
      target === "a" ? this.assemble(slice(a, w[0], w[1]), b, addSpecial) : this.assemble(a, slice(b!, w[0], w[1]), addSpecial);
    const enc = make(ws[0]!);
    if (options.returnOverflowing) for (const w of ws.slice(1)) enc.overflowing.push(make(w));
    return enc;
  }

  /** Encodes many texts (or pairs) and pads them together. */
  encodeBatch(inputs: (string | [string, string])[], options: EncodeOptions = {}): Encoding[] {
    const encs = inputs.map((x) => (Array.isArray(x) ? this.encode(x[0], x[1], options) : this.encode(x, null, options)));
    if (options.padding) this.pad(encs, options);
    return encs;
  }

  /** Pads encodings in place to a common length (the longest, or maxLength). */
  pad(encs: Encoding[], options: EncodeOptions = {}): void {
    const padToken = this.specialTokens.pad;
    if (padToken === undefined) throw new Error("pad: this tokenizer has no padding token ([PAD], <pad>)");
    const padId = this.vocab.get(padToken)!;
    const all = encs.flatMap((e) => [e, ...e.overflowing]);
    let len = options.padding === "max_length" ? options.maxLength ?? 0 : Math.max(0, ...all.map((e) => e.ids.length));
    if (options.padding === "max_length" && options.maxLength === undefined) throw new Error('pad: padding "max_length" needs maxLength');
    const m = options.padToMultipleOf;
    if (m && len % m) len += m - (len % m);
    const left = options.paddingSide === "left";
    for (const e of all) {
      const n = len - e.ids.length;
      if (n <= 0) continue;
      const fill = <T>(arr: T[], v: T): void => {
        const pad = new Array<T>(n).fill(v);
        if (left) arr.unshift(...pad);
        else arr.push(...pad);
      };
      fill(e.ids, padId);
      fill(e.tokens, padToken);
      fill(e.typeIds, 0);
      fill(e.attentionMask, 0);
      fill(e.specialTokensMask, 1);
      fill<[number, number]>(e.offsets, [0, 0]);
      fill<number | null>(e.wordIds, null);
      fill<number | null>(e.sequenceIds, null);
    }
  }

  // --- decoding ------------------------------------------------------------------------------------

  /** Turns ids back into text; WordPiece's "##" pieces are joined, byte-level bytes decoded, "▁" made a space. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const special = this.specialIds;
    const tokens: string[] = [];
    for (const id of ids) {
      if (options.skipSpecialTokens && special.has(id)) continue;
      const t = this.idToTokenMap[id];
      if (t === undefined) throw new RangeError(`decode: id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      tokens.push(t);
    }
    if (this.spec.model instanceof WordPiece) {
      const prefix = this.spec.model.config.continuingSubwordPrefix;
      let out = "";
      tokens.forEach((t, i) => {
        if (t.startsWith(prefix)) out += t.slice(prefix.length);
        else out += (i > 0 ? " " : "") + t;
      });
      return cleanup(out);
    }
    if (this.spec.model instanceof Unigram) {
      const pieces = this.spec.model.config.byteFallback ? decodeByteFallback(tokens) : tokens;
      return this.spec.metaspace ? decodeMetaspace(pieces, this.spec.metaspace) : pieces.join("");
    }
    // Byte-level: map the characters back to bytes (added tokens are plain text), decode UTF-8.
    const parts: number[] = [];
    const enc = new TextEncoder();
    for (const t of tokens) {
      if (this.vocab.get(t) !== undefined && this.addedById.has(this.vocab.get(t)!)) {
        parts.push(...enc.encode(t));
        continue;
      }
      for (const ch of t) {
        const b = CHAR_TO_BYTE.get(ch);
        if (b === undefined) parts.push(...enc.encode(ch));
        else parts.push(b);
      }
    }
    return new TextDecoder("utf-8").decode(Uint8Array.from(parts));
  }
}

function slice(r: Raw, from: number, to: number): Raw {
  return {
    ids: r.ids.slice(from, to),
    tokens: r.tokens.slice(from, to),
    offsets: r.offsets.slice(from, to),
    wordIds: r.wordIds.slice(from, to),
    special: r.special.slice(from, to),
  };
}

/** Windows of a sequence of n tokens: size `size`, each starting size - stride after the last. */
function windows(n: number, size: number, stride: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; ; start += size - stride) {
    out.push([start, Math.min(n, start + size)]);
    if (start + size >= n) break;
  }
  return out;
}

/** Hugging Face's clean_up_tokenization: no space before punctuation and common contractions. */
function cleanup(s: string): string {
  return s
    .replace(/ \./g, ".")
    .replace(/ \?/g, "?")
    .replace(/ !/g, "!")
    .replace(/ ,/g, ",")
    .replace(/ ' /g, "'")
    .replace(/ n't/g, "n't")
    .replace(/ 'm/g, "'m")
    .replace(/ 's/g, "'s")
    .replace(/ 've/g, "'ve")
    .replace(/ 're/g, "'re");
}

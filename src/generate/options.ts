// Generation options, declared once (src/io/options.ts): generate() fills its defaults and
// checks its arguments from these declarations, `lmforge generate` makes its flags and --help
// from them, and a checkpoint's generation_config.json is read through them. Defaults are
// Hugging Face's GenerationConfig's.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Tensor } from "../torch/index.js";
import { defineOptions, resolveOptions } from "../io/options.js";

export const GENERATE_OPTIONS = defineOptions([
  { flag: "max-new-tokens", key: "maxNewTokens", type: "int", min: 0, default: 20, arg: "N", help: "tokens to generate after the prompt" },
  { flag: "min-new-tokens", key: "minNewTokens", type: "int", min: 0, default: 0, arg: "N", help: "the end-of-sequence token is forbidden until this many tokens are generated" },
  { flag: "do-sample", key: "doSample", type: "boolean", default: false, help: "sample each token instead of taking the most likely (greedy) one" },
  { flag: "temperature", key: "temperature", type: "number", min: 0, exclusiveMin: true, default: 1, help: "divide the logits by this before sampling (lower: more conservative)" },
  { flag: "top-k", key: "topK", type: "int", min: 0, default: 50, arg: "K", help: "sample among the K most likely tokens only (0: all)" },
  { flag: "top-p", key: "topP", type: "number", min: 0, exclusiveMin: true, max: 1, default: 1, arg: "P", help: "sample among the most likely tokens whose probabilities sum to P (nucleus sampling)" },
  { flag: "repetition-penalty", key: "repetitionPenalty", type: "number", min: 0, exclusiveMin: true, default: 1, help: "divide the score of every token already in the sequence by this (CTRL; 1 = none)" },
  { flag: "no-repeat-ngram-size", key: "noRepeatNgramSize", type: "int", min: 0, default: 0, arg: "N", help: "forbid any n-gram of this size from occurring twice (0 = off)" },
  { flag: "num-beams", key: "numBeams", type: "int", min: 1, default: 1, arg: "N", help: "beam search with this many beams (1 = greedy or sampling)" },
  { flag: "length-penalty", key: "lengthPenalty", type: "number", default: 1, help: "beam search: a finished beam scores sum(log p) / length^X (> 0 favours longer ones)" },
  { flag: "early-stopping", key: "earlyStopping", type: "string", choices: ["false", "true", "never"], default: "false", help: "beam search stops: true, once num-beams beams have finished; false, when a better one is unlikely; never, when none can be better" },
  { flag: "num-return-sequences", key: "numReturnSequences", type: "int", min: 1, default: 1, arg: "N", help: "sequences returned per prompt (the best beams, or independent samples)" },
  { flag: "seed", key: "seed", type: "int", min: 0, arg: "S", help: "seed the sampler first (default: the random state as it is)" },
] as const);

/** Everything generate() takes: the declared options, plus what only a library caller can give. */
export interface GenerateOptions {
  maxNewTokens?: number;
  minNewTokens?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  noRepeatNgramSize?: number;
  numBeams?: number;
  lengthPenalty?: number;
  /** true, false (heuristic) or "never" (canonical beam search), as Hugging Face's early_stopping. */
  earlyStopping?: boolean | "true" | "false" | "never";
  numReturnSequences?: number;
  seed?: number;
  /** Token(s) that end a row (default: the model config's eos_token_id; null: none). */
  eosTokenId?: number | number[] | null;
  /** Fills finished rows and left padding (default: the config's pad_token_id, else the first eos). */
  padTokenId?: number | null;
  /** Encoder-decoders: the decoder's first token (default: the config's decoder_start_token_id, else pad). */
  decoderStartTokenId?: number;
  /** (B, T) 1 for prompt tokens, 0 for left padding (default: all ones). */
  attentionMask?: Tensor;
  /** Feed one token per step through a key/value cache (default true), or the whole sequence each step. */
  useCache?: boolean;
  /** Keep each step's processed next-token scores (B·n, V), as Hugging Face's output_scores. */
  outputScores?: boolean;
  /** Called after each greedy or sampling step with the new token of every row (pad for finished rows): streaming. */
  onStep?: (tokens: number[], step: number) => void;
  /** Observes every model call (tests read the positions fed). */
  onForward?: (inputs: { inputIds: Tensor; positionIds: Tensor; attentionMask: Tensor | null }) => void;
}

/** The options with every default filled in and checked. */
export interface ResolvedGenerateOptions extends Required<Omit<GenerateOptions, "seed" | "eosTokenId" | "padTokenId" | "decoderStartTokenId" | "attentionMask" | "onStep" | "onForward" | "earlyStopping">> {
  seed?: number;
  earlyStopping: boolean | "never";
  /** The tokens that end a row ([] for none). */
  eos: number[];
  pad: number;
  /** Encoder-decoders: the decoder's first token. */
  decoderStart: number;
  attentionMask?: Tensor;
  onStep?: (tokens: number[], step: number) => void;
  onForward?: GenerateOptions["onForward"];
}

const asIds = (v: unknown): number[] => (v === null || v === undefined ? [] : Array.isArray(v) ? (v as number[]) : [v as number]);

/**
 * Fills the declared defaults, checks every value (the error names the option), takes eos and
 * pad from the model's config where not given, and refuses combinations that mean nothing.
 */
export function resolveGenerateOptions(given: GenerateOptions, config: Record<string, unknown> = {}): ResolvedGenerateOptions {
  const early = given.earlyStopping;
  const o = resolveOptions(GENERATE_OPTIONS, { ...given, earlyStopping: typeof early === "boolean" ? String(early) : early } as unknown as Record<string, unknown>) as unknown as GenerateOptions & { earlyStopping: string };
  const eos = asIds(given.eosTokenId !== undefined ? given.eosTokenId : config.eos_token_id);
  for (const e of eos) if (!Number.isInteger(e) || e < 0) throw new RangeError(`eosTokenId must be token ids, got ${JSON.stringify(given.eosTokenId ?? config.eos_token_id)}`);
  const pad = given.padTokenId ?? (config.pad_token_id as number | null | undefined) ?? eos[0] ?? 0;
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`padTokenId must be a token id, got ${JSON.stringify(pad)}`);
  const decoderStart = given.decoderStartTokenId ?? (config.decoder_start_token_id as number | null | undefined) ?? pad;
  if (!Number.isInteger(decoderStart) || decoderStart < 0) throw new RangeError(`decoderStartTokenId must be a token id, got ${JSON.stringify(decoderStart)}`);
  const numBeams = o.numBeams!;
  const n = o.numReturnSequences!;
  if (numBeams > 1 && o.doSample) throw new RangeError("doSample with numBeams > 1 (beam sampling) is not supported: sample with numBeams 1, or search with doSample false");
  if (numBeams > 1 && n > numBeams) throw new RangeError(`numReturnSequences (${n}) cannot exceed numBeams (${numBeams}): beam search returns its best beams`);
  if (numBeams === 1 && !o.doSample && n > 1) throw new RangeError(`numReturnSequences ${n} with greedy search would return ${n} identical sequences; sample (doSample) or search with numBeams >= ${n}`);
  return {
    ...(o as unknown as ResolvedGenerateOptions),
    earlyStopping: o.earlyStopping === "never" ? "never" : o.earlyStopping === "true",
    eos,
    pad,
    decoderStart,
    useCache: given.useCache ?? true,
    outputScores: given.outputScores ?? false,
  };
}

/**
 * A checkpoint folder's generation_config.json as generate() options: every declared option by
 * its snake_case key (max_new_tokens, do_sample, top_p, ...), and eos_token_id, pad_token_id,
 * decoder_start_token_id.
 * Keys it does not know (max_length, bos_token_id, ...) are left out. {} without the file.
 */
export function generationConfig(dir: string): GenerateOptions {
  const path = join(dir, "generation_config.json");
  if (!existsSync(path)) return {};
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const out: Record<string, unknown> = {};
  for (const s of GENERATE_OPTIONS) {
    const v = raw[s.flag.replace(/-/g, "_")];
    if (v !== undefined && v !== null) out[s.key] = s.key === "earlyStopping" ? String(v) : v;
  }
  if (raw.eos_token_id !== undefined) out.eosTokenId = raw.eos_token_id;
  if (raw.pad_token_id !== undefined) out.padTokenId = raw.pad_token_id;
  if (typeof raw.decoder_start_token_id === "number") out.decoderStartTokenId = raw.decoder_start_token_id;
  return out as GenerateOptions;
}

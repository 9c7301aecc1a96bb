// generate(): one entry for every causal LM (GPT-2, Llama, ...) and encoder-decoder (T5): greedy
// search, sampling or beam search over a batch of prompts (left-padded, with their attention
// mask) or encoder inputs, a key/value cache throughout, each row stopping at its
// end-of-sequence token. Models' own generate() methods come here too (src/models/generation.ts).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { architecture, knownModelTypes, setGenerateEngine } from "../models/index.js";
import { beamSearch } from "./beam.js";
import { causalDecoder, seq2seqDecoder } from "./decoder.js";
import type { CausalModel } from "./decoder.js";
import { resolveGenerateOptions } from "./options.js";
import type { GenerateOptions } from "./options.js";
import { greedyOrSample } from "./search.js";

export interface GenerateOutput {
  /**
   * (B·n, T + new) int64: each prompt (padding kept) and its continuation; finished rows padded
   * with the pad token. Encoder-decoders: (B·n, 1 + new), the decoder's tokens from its start token, as Hugging Face.
   */
  sequences: Tensor;
  /** With outputScores (greedy and sampling): each step's processed next-token scores, (B·n, V). */
  scores?: Tensor[];
  /** Beam search: each returned sequence's score, sum(log p) / generated length^lengthPenalty. */
  sequenceScores?: number[];
}

/** The heads generate() serves. */
export type GenerationHead = "causal-lm" | "seq2seq-lm";

/**
 * Whether a model generates as a causal LM or as an encoder-decoder: its class's head in the
 * architecture registry (a model the registry does not know: its config's is_encoder_decoder).
 * Any other head is an error naming the classes that generate.
 */
export function generationHead(model: CausalModel): GenerationHead {
  const type = model.config.model_type;
  if (typeof type !== "string" || !knownModelTypes().includes(type)) return model.config.is_encoder_decoder === true ? "seq2seq-lm" : "causal-lm";
  const hit = Object.entries(architecture(type).classes).find(([, [, cls]]) => model.constructor === cls);
  if (!hit) return model.config.is_encoder_decoder === true ? "seq2seq-lm" : "causal-lm";
  const head = hit[1][0];
  if (head !== "causal-lm" && head !== "seq2seq-lm") {
    const generative = knownModelTypes().flatMap((t) => Object.entries(architecture(t).classes).filter(([, [task]]) => task === "causal-lm" || task === "seq2seq-lm").map(([name]) => name));
    throw new Error(`generate: ${hit[0]} is a ${head} model; generation needs a causal LM or an encoder-decoder (${generative.join(", ")})`);
  }
  return head;
}

/**
 * Continues each prompt row of inputIds (B, T) int64 and returns the sequences with, on request,
 * the scores. Greedy by default; doSample samples (temperature, topK, topP); numBeams > 1 runs
 * beam search. Left padding needs attentionMask (0 at the padding); positions then count each
 * row's own tokens, so a padded row generates what it generates alone. An encoder-decoder
 * (T5) reads inputIds with its encoder (padding on either side, said by attentionMask) and
 * generates the decoder's tokens from decoder_start_token_id, which start its sequences, as
 * Hugging Face's (onForward observes causal LMs only).
 *
 * @example
 * const out = generateOutput(model, torch.tensor([[0, 5, 9], [4, 7, 2]]), { attentionMask: torch.tensor([[0, 1, 1], [1, 1, 1]]), maxNewTokens: 8, numBeams: 4 });
 * const t5out = generateOutput(t5, encoderIds, { attentionMask, maxNewTokens: 32 }); // t5out.sequences[i][0] is decoder_start_token_id
 */
export function generateOutput(model: CausalModel, inputIds: Tensor, options: GenerateOptions = {}): GenerateOutput {
  const o = resolveGenerateOptions(options, model.config);
  if (inputIds.ndim !== 2 || inputIds.shape[1]! < 1) throw new RangeError(`generate: inputIds must be (B, T) with T >= 1, got [${inputIds.shape.join(", ")}]`);
  if (inputIds.dtype !== "int64" && inputIds.dtype !== "int32") throw new TypeError(`generate: inputIds must hold token ids (int64), got ${inputIds.dtype}`);
  const [B, T] = inputIds.shape as [number, number];
  if (o.attentionMask && (o.attentionMask.shape[0] !== B || o.attentionMask.shape[1] !== T)) throw new RangeError(`generate: attentionMask [${o.attentionMask.shape.join(", ")}] does not match inputIds [${B}, ${T}]`);
  const seq2seq = generationHead(model) === "seq2seq-lm";
  if (o.seed !== undefined) torch.manualSeed(o.seed);
  // the decoder's prompt: a causal LM's is the prompt, an encoder-decoder's its start token
  const prompts = seq2seq ? Array.from({ length: B }, () => [o.decoderStart]) : (inputIds.toArray() as number[][]);
  const width = prompts[0]!.length;
  if (o.maxNewTokens === 0) return { sequences: seq2seq ? torch.tensor(prompts.flat(), { dtype: "int64", shape: [B, 1] }) : inputIds.long().clone(), ...(o.outputScores ? { scores: [] } : {}) };
  const wasTraining = model.training;
  model.eval();
  const decoder = seq2seq
    ? seq2seqDecoder(model, inputIds.long(), { attentionMask: o.attentionMask ?? null, useCache: o.useCache, decoderStartTokenId: o.decoderStart })
    : causalDecoder(model, inputIds.long(), { attentionMask: o.attentionMask ?? null, useCache: o.useCache, capacity: T + o.maxNewTokens, ...(o.onForward ? { onForward: o.onForward } : {}) });
  try {
    return torch.noGrad(() => {
      // every prompt runs once, then its row is copied for its beams or samples
      const copies = o.numBeams > 1 ? o.numBeams : o.numReturnSequences;
      const rows = Array.from({ length: B * copies }, (_, r) => Math.floor(r / copies));
      let first = decoder.start(); // (B, V)
      if (copies > 1) {
        decoder.reorder(rows);
        const expanded = torch.scope(() => first.indexSelect(0, torch.tensor(rows, { dtype: "int64" })));
        first.dispose();
        first = expanded;
      }
      const expandedPrompts = rows.map((r) => prompts[r]!);
      if (o.numBeams > 1) {
        const r = beamSearch(decoder, first, expandedPrompts, o);
        const picked = r.generated.map((g, i) => [...prompts[Math.floor(i / o.numReturnSequences)]!, ...g]);
        const longest = Math.max(...picked.map((p) => p.length));
        const padded = picked.flatMap((p) => [...p, ...new Array<number>(longest - p.length).fill(o.pad)]);
        return { sequences: torch.tensor(padded, { dtype: "int64", shape: [picked.length, longest] }), sequenceScores: r.scores };
      }
      const r = greedyOrSample(decoder, first, expandedPrompts, o);
      const steps = r.generated[0]!.length;
      const flat = expandedPrompts.flatMap((p, i) => [...p, ...r.generated[i]!]);
      return { sequences: torch.tensor(flat, { dtype: "int64", shape: [expandedPrompts.length, width + steps] }), ...(o.outputScores ? { scores: r.scores } : {}) };
    });
  } finally {
    decoder.dispose();
    if (wasTraining) model.train();
  }
}

/** generateOutput()'s sequences alone, (B·n, T + new) (encoder-decoders: (B·n, 1 + new)): what model.generate() returns. */
export function generate(model: CausalModel, inputIds: Tensor, options: GenerateOptions = {}): Tensor {
  const out = generateOutput(model, inputIds, { ...options, outputScores: false });
  return out.sequences;
}

// model.generate() methods (GPT-2's, Llama's) reach generate() through the models' hook
setGenerateEngine(generate as (model: never, inputIds: Tensor, options: object) => Tensor);

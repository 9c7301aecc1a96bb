// generate(): one entry for every causal LM (GPT-2, Llama, ...): greedy search, sampling or beam
// search over a batch of prompts (left-padded, with their attention mask), a key/value cache
// throughout, each row stopping at its end-of-sequence token. Models' own generate() methods
// come here too (src/models/generation.ts).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { architecture, knownModelTypes, setGenerateEngine } from "../models/index.js";
import { beamSearch } from "./beam.js";
import { causalDecoder } from "./decoder.js";
import type { CausalModel } from "./decoder.js";
import { resolveGenerateOptions } from "./options.js";
import type { GenerateOptions } from "./options.js";
import { greedyOrSample } from "./search.js";

export interface GenerateOutput {
  /** (B·n, T + new) int64: each prompt (padding kept) and its continuation; finished rows padded with the pad token. */
  sequences: Tensor;
  /** With outputScores (greedy and sampling): each step's processed next-token scores, (B·n, V). */
  scores?: Tensor[];
  /** Beam search: each returned sequence's score, sum(log p) / generated length^lengthPenalty. */
  sequenceScores?: number[];
}

/** A model the registry knows must be a causal LM; the error names the classes that are. */
function checkCausal(model: CausalModel): void {
  const type = model.config.model_type;
  if (typeof type !== "string" || !knownModelTypes().includes(type)) return;
  const hit = Object.entries(architecture(type).classes).find(([, [, cls]]) => model.constructor === cls);
  if (hit && hit[1][0] !== "causal-lm") {
    const causal = knownModelTypes().flatMap((t) => Object.entries(architecture(t).classes).filter(([, [task]]) => task === "causal-lm").map(([name]) => name));
    throw new Error(`generate: ${hit[0]} is a ${hit[1][0]} model; generation needs a causal LM (${causal.join(", ")})`);
  }
}

/**
 * Continues each prompt row of inputIds (B, T) int64 and returns the sequences with, on request,
 * the scores. Greedy by default; doSample samples (temperature, topK, topP); numBeams > 1 runs
 * beam search. Left padding needs attentionMask (0 at the padding); positions then count each
 * row's own tokens, so a padded row generates what it generates alone.
 *
 * @example
 * const out = generateOutput(model, torch.tensor([[0, 5, 9], [4, 7, 2]]), { attentionMask: torch.tensor([[0, 1, 1], [1, 1, 1]]), maxNewTokens: 8, numBeams: 4 });
 */
export function generateOutput(model: CausalModel, inputIds: Tensor, options: GenerateOptions = {}): GenerateOutput {
  const o = resolveGenerateOptions(options, model.config);
  if (inputIds.ndim !== 2 || inputIds.shape[1]! < 1) throw new RangeError(`generate: inputIds must be (B, T) with T >= 1, got [${inputIds.shape.join(", ")}]`);
  if (inputIds.dtype !== "int64" && inputIds.dtype !== "int32") throw new TypeError(`generate: inputIds must hold token ids (int64), got ${inputIds.dtype}`);
  const [B, T] = inputIds.shape as [number, number];
  if (o.attentionMask && (o.attentionMask.shape[0] !== B || o.attentionMask.shape[1] !== T)) throw new RangeError(`generate: attentionMask [${o.attentionMask.shape.join(", ")}] does not match inputIds [${B}, ${T}]`);
  checkCausal(model);
  if (o.seed !== undefined) torch.manualSeed(o.seed);
  const prompts = inputIds.toArray() as number[][];
  if (o.maxNewTokens === 0) return { sequences: inputIds.long().clone(), ...(o.outputScores ? { scores: [] } : {}) };
  const wasTraining = model.training;
  model.eval();
  const decoder = causalDecoder(model, inputIds.long(), { attentionMask: o.attentionMask ?? null, useCache: o.useCache, capacity: T + o.maxNewTokens, ...(o.onForward ? { onForward: o.onForward } : {}) });
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
        const width = Math.max(...picked.map((p) => p.length));
        const padded = picked.flatMap((p) => [...p, ...new Array<number>(width - p.length).fill(o.pad)]);
        return { sequences: torch.tensor(padded, { dtype: "int64", shape: [picked.length, width] }), sequenceScores: r.scores };
      }
      const r = greedyOrSample(decoder, first, expandedPrompts, o);
      const steps = r.generated[0]!.length;
      const flat = expandedPrompts.flatMap((p, i) => [...p, ...r.generated[i]!]);
      return { sequences: torch.tensor(flat, { dtype: "int64", shape: [expandedPrompts.length, T + steps] }), ...(o.outputScores ? { scores: r.scores } : {}) };
    });
  } finally {
    decoder.dispose();
    if (wasTraining) model.train();
  }
}

/** generateOutput()'s sequences alone, (B·n, T + new): what model.generate() returns. */
export function generate(model: CausalModel, inputIds: Tensor, options: GenerateOptions = {}): Tensor {
  const out = generateOutput(model, inputIds, { ...options, outputScores: false });
  return out.sequences;
}

// model.generate() methods (GPT-2's, Llama's) reach generate() through the models' hook
setGenerateEngine(generate as (model: never, inputIds: Tensor, options: object) => Tensor);

// Greedy search and sampling: one token per row per step, from the processed scores (greedy:
// the most likely; sampling: a draw from the warped distribution). A row that produces an
// end-of-sequence token is finished: it is filled with the pad token from then on, and the
// search stops early once every row is finished, as Hugging Face's greedy_search and sample.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Decoder } from "./decoder.js";
import type { ResolvedGenerateOptions } from "./options.js";
import { processScores, warpScores } from "./processors.js";

export interface SearchResult {
  /** The tokens generated for each row (as many per row: finished rows hold pad tokens). */
  generated: number[][];
  /** With outputScores: each step's processed scores (R, V), before warping. */
  scores: Tensor[];
}

/**
 * Greedy search (doSample false) or sampling over R rows whose prompts are `prompts` (R, T),
 * starting from the decoder's first logits (R, V).
 */
export function greedyOrSample(decoder: Decoder, first: Tensor, prompts: readonly (readonly number[])[], o: ResolvedGenerateOptions): SearchResult {
  const R = prompts.length;
  const generated: number[][] = prompts.map(() => []);
  const finished = new Array<boolean>(R).fill(false);
  const scores: Tensor[] = [];
  const rows = (): number[][] => prompts.map((p, i) => [...p, ...generated[i]!]);
  let logits = first;
  for (let step = 0; step < o.maxNewTokens; step++) {
    const tokens = torch.scope(() => {
      const processed = processScores(logits, rows, step, o); // (R, V)
      if (o.outputScores) scores.push(torch.keep(processed.clone()));
      const next = o.doSample ? warpScores(processed, o).softmax(-1).multinomial(1).squeeze(1) : processed.argmax(-1); // (R)
      return next.toArray() as number[];
    });
    logits.dispose();
    for (let r = 0; r < R; r++) {
      if (finished[r]) tokens[r] = o.pad;
      else if (o.eos.includes(tokens[r]!)) finished[r] = true;
      generated[r]!.push(tokens[r]!);
    }
    o.onStep?.(tokens, step);
    if (step === o.maxNewTokens - 1 || finished.every(Boolean)) return { generated, scores };
    logits = decoder.step(tokens);
  }
  logits.dispose();
  return { generated, scores };
}

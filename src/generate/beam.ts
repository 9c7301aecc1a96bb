// Beam search, as Hugging Face's BeamSearchScorer (with the lengths of transformers >= 4.36:
// a hypothesis is scored on the tokens it generated, its end-of-sequence token included, not
// on the prompt). Each prompt keeps numBeams running beams; each step ranks the 2·numBeams best
// continuations of all of them (log-probability sums); a continuation that ends with an eos
// token becomes a finished hypothesis (if it ranks within numBeams), scored
// sum(log p) / length^lengthPenalty, and the numBeams best others run on. A prompt is done
// when early stopping says so; at the end its running beams join its hypotheses, and the best
// numReturnSequences are returned.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Decoder } from "./decoder.js";
import type { ResolvedGenerateOptions } from "./options.js";
import { processScores } from "./processors.js";

/** A prompt's best finished hypotheses, at most numBeams of them. */
export class BeamHypotheses {
  readonly beams: { score: number; tokens: number[] }[] = [];
  worstScore = 1e9;

  constructor(readonly numBeams: number, readonly lengthPenalty: number, readonly earlyStopping: boolean | "never", readonly maxNewTokens: number) {}

  /** Adds a hypothesis of `tokens` (generated ones) whose log-probabilities sum to sumLogprobs, if it is among the best. */
  add(tokens: number[], sumLogprobs: number): void {
    const score = sumLogprobs / tokens.length ** this.lengthPenalty;
    if (this.beams.length < this.numBeams || score > this.worstScore) {
      this.beams.push({ score, tokens });
      if (this.beams.length > this.numBeams) {
        const ranked = this.beams.map((b, i) => [b.score, i] as const).sort((a, b) => a[0] - b[0]);
        this.beams.splice(ranked[0]![1], 1);
        this.worstScore = ranked[1]![0];
      } else {
        this.worstScore = Math.min(score, this.worstScore);
      }
    }
  }

  /** Whether no running beam can beat the worst kept hypothesis any more (per early stopping), at `generated` tokens. */
  isDone(bestRunning: number, generated: number): boolean {
    if (this.beams.length < this.numBeams) return false;
    if (this.earlyStopping === true) return true;
    // false: the best running beam scored at its current length (a heuristic when lengthPenalty > 0);
    // "never": at the length that flatters it most, so that no better hypothesis can be missed
    const length = this.earlyStopping === "never" && this.lengthPenalty > 0 ? this.maxNewTokens : generated;
    return this.worstScore >= bestRunning / length ** this.lengthPenalty;
  }
}

export interface BeamResult {
  /** The generated tokens of the best numReturnSequences hypotheses of each prompt, best first (B·n rows). */
  generated: number[][];
  /** Their scores. */
  scores: number[];
}

/**
 * Beam search over B prompts whose rows (B·numBeams, beams of a prompt together) start from the
 * decoder's first logits; `prompts` (B·numBeams, T) are the rows' prompt tokens.
 */
export function beamSearch(decoder: Decoder, first: Tensor, prompts: readonly (readonly number[])[], o: ResolvedGenerateOptions): BeamResult {
  const nb = o.numBeams;
  const B = prompts.length / nb;
  const V = first.shape[1]!;
  const hyps = Array.from({ length: B }, () => new BeamHypotheses(nb, o.lengthPenalty, o.earlyStopping, o.maxNewTokens));
  const done = new Array<boolean>(B).fill(false);
  let beams: number[][] = prompts.map(() => []);
  // only the first beam of each prompt starts live, so that the first step does not pick the same token nb times
  let beamScores = Float32Array.from(prompts, (_, r) => (r % nb === 0 ? 0 : -1e9));
  let logits = first;
  for (let step = 0; step < o.maxNewTokens; step++) {
    const [topScores, topIds] = torch.scope(() => {
      const logp = logits.logSoftmax(-1); // (B·nb, V)
      const processed = processScores(logp, () => prompts.map((p, r) => [...p, ...beams[r]!]), step, o);
      const total = processed.add(torch.tensor(beamScores, { shape: [B * nb, 1] })).view([B, nb * V]);
      const [values, ids] = total.topk(2 * nb, 1, true, true); // (B, 2·nb)
      return [values.toArray() as number[][], ids.toArray() as number[][]];
    });
    logits.dispose();
    const nextScores = new Float32Array(B * nb);
    const nextTokens: number[] = new Array<number>(B * nb).fill(o.pad);
    const source: number[] = Array.from({ length: B * nb }, (_, r) => r);
    for (let b = 0; b < B; b++) {
      if (done[b]) continue; // its rows run on, filled with pad, and are never read
      let kept = 0;
      for (let rank = 0; rank < 2 * nb && kept < nb; rank++) {
        const id = topIds[b]![rank]!;
        const score = topScores[b]![rank]!;
        const token = id % V;
        const from = b * nb + Math.floor(id / V);
        if (o.eos.includes(token)) {
          if (rank < nb) hyps[b]!.add([...beams[from]!, token], score); // an eos ranked below the beams is not a hypothesis
        } else {
          nextScores[b * nb + kept] = score;
          nextTokens[b * nb + kept] = token;
          source[b * nb + kept] = from;
          kept++;
        }
      }
      done[b] = hyps[b]!.isDone(Math.max(...topScores[b]!), step + 1);
    }
    beams = source.map((from, r) => [...beams[from]!, nextTokens[r]!]);
    beamScores = nextScores;
    if (step === o.maxNewTokens - 1 || done.every(Boolean)) break;
    decoder.reorder(source);
    logits = decoder.step(nextTokens);
  }
  // prompts still searching: their running beams compete with the finished hypotheses
  for (let b = 0; b < B; b++) {
    if (done[b]) continue;
    for (let j = 0; j < nb; j++) hyps[b]!.add(beams[b * nb + j]!, beamScores[b * nb + j]!);
  }
  const generated: number[][] = [];
  const scores: number[] = [];
  for (const h of hyps) {
    const best = [...h.beams].sort((a, z) => z.score - a.score).slice(0, o.numReturnSequences);
    for (const { tokens, score } of best) {
      generated.push(tokens);
      scores.push(score);
    }
  }
  return { generated, scores };
}

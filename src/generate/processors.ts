// Next-token score processors, as Hugging Face's logits processors and warpers: each takes
// scores (R, V) float32 for R rows and returns new ones. Processors (repetition penalty, no
// repeated n-grams, a minimum length) shape the scores every strategy ranks; warpers
// (temperature, top-k, top-p) reshape the distribution that sampling draws from.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { ResolvedGenerateOptions } from "./options.js";

/**
 * CTRL's repetition penalty (Keskar et al. 2019): the score of every token already in a row
 * (prompt and padding included, as Hugging Face) is divided by the penalty when positive and
 * multiplied by it when negative. `sequences` (R, L) int64.
 */
export function repetitionPenalty(scores: Tensor, sequences: Tensor, penalty: number): Tensor {
  return torch.scope(() => {
    const seen = scores.gather(1, sequences); // (R, L)
    const penalised = torch.where(seen.lt(0), seen.mul(penalty), seen.div(penalty));
    return scores.scatter(1, sequences, penalised);
  });
}

/**
 * The tokens that would repeat an n-gram of a row: for each row, every token that followed an
 * earlier occurrence of the row's last n - 1 tokens (Hugging Face's NoRepeatNGramLogitsProcessor).
 */
export function bannedNgramTokens(rows: readonly (readonly number[])[], n: number): number[][] {
  return rows.map((row) => {
    const L = row.length;
    if (n < 1 || L + 1 < n) return [];
    const banned = new Set<number>();
    const prefixStart = L - n + 1; // the n - 1 tokens the next one would complete
    for (let s = 0; s + n <= L; s++) {
      let match = true;
      for (let j = 0; j < n - 1 && match; j++) match = row[s + j] === row[prefixStart + j];
      if (match) banned.add(row[s + n - 1]!);
    }
    return [...banned];
  });
}

/** Sets the listed tokens of each row to -inf. */
export function banTokens(scores: Tensor, banned: readonly (readonly number[])[]): Tensor {
  const width = Math.max(0, ...banned.map((b) => b.length));
  if (width === 0) return scores;
  return torch.scope(() => {
    // a (R, width) index padded with token 0 whose added value is 0: scatterAdd then adds -inf once per ban
    const index = banned.flatMap((b) => [...b, ...new Array<number>(width - b.length).fill(0)]);
    const values = banned.flatMap((b) => [...b.map(() => -Infinity), ...new Array<number>(width - b.length).fill(0)]);
    const R = banned.length;
    const penalty = torch.zeros(scores.shape as number[], { dtype: scores.dtype }).scatterAdd(1, torch.tensor(index, { dtype: "int64", shape: [R, width] }), torch.tensor(values, { dtype: scores.dtype, shape: [R, width] }));
    return scores.add(penalty);
  });
}

/**
 * Every processor the options ask for, in Hugging Face's order: repetition penalty, no repeated
 * n-grams, then end-of-sequence forbidden before minNewTokens. `rows` gives the sequences so far
 * (prompt included; asked for only by the processors that read them), `step` the number of tokens generated.
 */
export function processScores(scores: Tensor, rows: () => readonly (readonly number[])[], step: number, o: ResolvedGenerateOptions): Tensor {
  return torch.scope(() => {
    let s = scores;
    if (o.repetitionPenalty !== 1) {
      const r = rows();
      s = repetitionPenalty(s, torch.tensor(r.flat(), { dtype: "int64", shape: [r.length, r[0]!.length] }), o.repetitionPenalty);
    }
    if (o.noRepeatNgramSize > 0) s = banTokens(s, bannedNgramTokens(rows(), o.noRepeatNgramSize));
    if (step < o.minNewTokens && o.eos.length) s = banTokens(s, new Array<number[]>(s.shape[0]!).fill(o.eos));
    return s;
  });
}

/** Temperature, then top-k, then top-p (nucleus), in Hugging Face's order; removed tokens get -inf. */
export function warpScores(scores: Tensor, o: Pick<ResolvedGenerateOptions, "temperature" | "topK" | "topP">): Tensor {
  return torch.scope(() => {
    let s = o.temperature === 1 ? scores : scores.div(o.temperature);
    const V = s.shape[1]!;
    if (o.topK > 0 && o.topK < V) {
      const kth = s.topk(o.topK, -1)[0].narrow(1, o.topK - 1, 1); // (R, 1)
      s = s.maskedFill(s.lt(kth), -Infinity);
    }
    if (o.topP < 1) {
      // ascending: the tail whose total probability is at most 1 - p goes; the most likely token always stays
      const [sorted, order] = s.sort(-1, false);
      const remove = sorted.softmax(-1).cumsum(-1).le(1 - o.topP);
      remove.narrow(1, V - 1, 1).fill_(false);
      s = s.maskedFill(remove.scatter(1, order, remove), -Infinity);
    }
    return s;
  });
}

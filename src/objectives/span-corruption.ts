// T5's span corruption (Raffel et al. 2020, section 3.1.4; google-research/text-to-text-
// transfer-transformer, t5/data/preprocessors.py: span_corruption):
// - random_spans_noise_mask: of a sequence of n tokens, round(n x density) are noise (at
//   least 1, at most n - 1), in round(noise / mean span length) spans (at least 1); the noise
//   tokens and the other tokens are each cut at random into that many non-empty spans, and the
//   spans alternate, starting with a non-noise one (so the sequence always ends in noise).
//   Rounding is half to even, in float32, as tf.round on float32 tensors.
// - noise_span_to_unique_sentinel: the inputs keep the non-noise tokens, each noise span
//   replaced by one sentinel, <extra_id_0>, <extra_id_1>, ... in order; the targets are the
//   same with the roles swapped (each non-noise span a sentinel), so they read
//   <extra_id_0> span0 <extra_id_1> span1 ... span(k-1): no closing sentinel (T5's code adds
//   none; its paper's figure shows one). Both end with EOS, as T5's output features append it.
// - random_spans_helper: the raw length of a sequence is the longest whose corrupted inputs
//   (EOS included) fit the encoder length: --seq-len 512 takes 568 corpus tokens and makes
//   targets of 114.
// Noise is drawn from (seed, epoch, index): new each epoch, the same for evaluation (epoch -1).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { summariseSums } from "../models/index.js";
import type { Batch, Objective, PretrainedModel } from "../models/index.js";
import type { Example } from "../data/pretraining.js";
import { countTargets, pad2d, paddingMask } from "../data/collate.js";
import { Rng } from "../data/random.js";
import type { ObjectiveEntry } from "./registry.js";

/** T5's defaults (span_corruption's arguments). */
export const SPAN_CORRUPTION_DEFAULTS = { noiseDensity: 0.15, meanSpanLength: 3 } as const;

export interface SpanCorruptionOptions {
  /** Share of tokens dropped (0.15). */
  noiseDensity: number;
  /** Mean length of a dropped span, in tokens (3). */
  meanSpanLength: number;
  seed: number;
}

/** Python's and TensorFlow's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * How many noise tokens and noise spans a sequence of `length` tokens gets, as
 * random_spans_noise_mask counts them (float32, as its tf.float32 casts).
 */
export function noiseCounts(length: number, noiseDensity: number, meanSpanLength: number): { noiseTokens: number; noiseSpans: number } {
  const n = Math.max(length, 2); // T5 lengthens to 2 "to avoid degeneracy", then cuts the mask back
  const f32 = Math.fround;
  const noiseTokens = Math.min(Math.max(roundHalfEven(f32(f32(n) * f32(noiseDensity))), 1), n - 1);
  const noiseSpans = Math.max(roundHalfEven(f32(noiseTokens / f32(meanSpanLength))), 1);
  return { noiseTokens, noiseSpans };
}

/** numItems cut into numSegments non-empty segments, every cut equally likely (T5's _random_segmentation): their lengths. */
function randomSegmentation(numItems: number, numSegments: number, rng: Rng): number[] {
  // a shuffled 0/1 flag per gap between items: 1 starts a new segment
  const gaps = rng.shuffle(Array.from({ length: numItems - 1 }, (_, i) => (i < numSegments - 1 ? 1 : 0)));
  const lengths: number[] = [];
  let current = 1;
  for (const g of gaps) {
    if (g) {
      lengths.push(current);
      current = 1;
    } else current++;
  }
  lengths.push(current);
  return lengths;
}

/**
 * T5's random_spans_noise_mask: 1 at the noise positions of a sequence of `length` tokens.
 * Spans alternate non-noise, noise, ..., starting with non-noise and ending with noise. Where
 * T5 would fail (more spans than non-noise tokens: very short sequences at a high density),
 * the spans are capped at the non-noise tokens.
 */
export function randomSpansNoiseMask(length: number, noiseDensity: number, meanSpanLength: number, rng: Rng): Uint8Array {
  const mask = new Uint8Array(length);
  if (noiseDensity === 0 || length === 0) return mask;
  const n = Math.max(length, 2);
  const { noiseTokens, noiseSpans: wanted } = noiseCounts(length, noiseDensity, meanSpanLength);
  const noiseSpans = Math.min(wanted, noiseTokens, n - noiseTokens);
  const noise = randomSegmentation(noiseTokens, noiseSpans, rng);
  const kept = randomSegmentation(n - noiseTokens, noiseSpans, rng);
  let p = 0;
  for (let s = 0; s < noiseSpans; s++) {
    p += kept[s]!;
    for (let i = 0; i < noise[s]!; i++, p++) if (p < length) mask[p] = 1;
  }
  return mask;
}

/**
 * T5's noise_span_to_unique_sentinel: the tokens with each run of masked positions replaced by
 * one sentinel, sentinels[0] for the first run, sentinels[1] for the next, ...
 */
export function spansToSentinels(ids: ArrayLike<number>, mask: ArrayLike<number>, sentinels: readonly number[]): number[] {
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < ids.length; i++) {
    if (!mask[i]) out.push(ids[i]!);
    else if (i === 0 || !mask[i - 1]) {
      const s = sentinels[k++];
      if (s === undefined) throw new RangeError(`span corruption: ${k} spans but only ${sentinels.length} sentinel tokens`);
      out.push(s);
    }
  }
  return out;
}

/** Inputs (noise spans as sentinels, then EOS) and targets (each sentinel and its span, then EOS) of a sequence and its noise mask. */
export function corruptSpans(ids: ArrayLike<number>, mask: ArrayLike<number>, sentinels: readonly number[], eosId: number): { inputs: Int32Array; targets: Int32Array } {
  const inverse = Array.from(mask, (m) => (m ? 0 : 1));
  return {
    inputs: Int32Array.from([...spansToSentinels(ids, mask, sentinels), eosId]),
    targets: Int32Array.from([...spansToSentinels(ids, inverse, sentinels), eosId]),
  };
}

/**
 * T5's random_spans_helper (one sentinel per span in inputs and targets, EOS on both): the
 * corpus tokens per sequence whose corrupted inputs fill inputsLength, and the targets' length.
 * (512, 0.15, 3) -> 568 tokens, targets 114.
 */
export function spanCorruptionLengths(inputsLength: number, noiseDensity: number, meanSpanLength: number): { tokensLength: number; inputsLength: number; targetsLength: number } {
  // the helper computes in Python floats (float64), unlike the mask
  const lengths = (tokens: number): [number, number] => {
    const noise = roundHalfEven(tokens * noiseDensity);
    const spans = roundHalfEven(noise / meanSpanLength);
    return [tokens - noise + spans + 1, noise + spans + 1];
  };
  let tokensLength = inputsLength - 1;
  while (lengths(tokensLength + 1)[0] <= inputsLength) tokensLength++;
  const [inputs, targets] = lengths(tokensLength);
  // T5's "minor hack" so that targets are not longer than inputs at density 0.5
  if (noiseDensity === 0.5 && targets > inputs) return { tokensLength: tokensLength - 1, inputsLength: inputs, targetsLength: targets - 1 };
  return { tokensLength, inputsLength: inputs, targetsLength: targets };
}

/** The ids of <extra_id_0>, <extra_id_1>, ... as far as the tokenizer has them; none is an error saying how to get them. */
export function sentinelIds(tok: Tokenizer, where = "the tokenizer"): number[] {
  const ids: number[] = [];
  for (let k = 0; ; k++) {
    const id = tok.tokenToId(`<extra_id_${k}>`);
    if (id === undefined) break;
    ids.push(id);
  }
  if (ids.length === 0) {
    throw new Error(
      `${where} has no sentinel tokens (<extra_id_0>, <extra_id_1>, ...), which span corruption puts in place of each dropped span; ` +
        `train one with them: lmforge tokenizer train --kind unigram --sentinels 100 (trainTokenizer: { kind: "unigram", sentinels: 100 }), or use a T5 tokenizer`,
    );
  }
  return ids;
}

/** A span corruption micro-batch: corrupted inputs, and the dropped spans as the decoder's labels. */
export interface SpanCorruptionBatch extends Batch {
  /** (B, S) 1 over each row's inputs. */
  attentionMask: Tensor;
  /** (B, T) targets, -100 after each row's EOS. */
  labels: Tensor;
}

/** T5's span corruption for an encoder-decoder: the encoder reads the corrupted text, the decoder writes the dropped spans. */
export class SpanCorruption implements Objective<Example, SpanCorruptionBatch> {
  readonly name = "span-corruption";

  constructor(
    readonly options: SpanCorruptionOptions,
    /** Sentinel ids, <extra_id_0> first. */
    readonly sentinels: readonly number[],
    readonly eosId: number,
    readonly padId: number,
  ) {
    const { noiseDensity, meanSpanLength } = options;
    if (!(noiseDensity > 0 && noiseDensity < 1)) throw new RangeError(`span corruption: the noise density must be in (0, 1), got ${noiseDensity}`);
    if (!(meanSpanLength >= 1) || !Number.isFinite(meanSpanLength)) throw new RangeError(`span corruption: the mean span length must be a number >= 1, got ${meanSpanLength}`);
    if (sentinels.length === 0) throw new RangeError("span corruption: no sentinel ids");
  }

  /** The noise mask of example `index` (epoch -1: evaluation's fixed one). */
  noiseMask(length: number, index: number, epoch: number): Uint8Array {
    return randomSpansNoiseMask(length, this.options.noiseDensity, this.options.meanSpanLength, new Rng(this.options.seed, epoch, index, 0x5a7c));
  }

  batch(examples: readonly Example[], indices: number[], epoch: number): SpanCorruptionBatch {
    const rows = indices.map((i) => {
      const ids = examples[i]!.ids;
      const { noiseSpans } = noiseCounts(ids.length, this.options.noiseDensity, this.options.meanSpanLength);
      if (noiseSpans > this.sentinels.length) {
        throw new RangeError(`span corruption: a sequence of ${ids.length} tokens has ${noiseSpans} noise spans but the tokenizer has ${this.sentinels.length} sentinels; lower --seq-len or add sentinels`);
      }
      return corruptSpans(ids, this.noiseMask(ids.length, i, epoch), this.sentinels, this.eosId);
    });
    const labels = rows.map((r) => r.targets);
    return {
      inputIds: pad2d(rows.map((r) => r.inputs), this.padId),
      attentionMask: paddingMask(rows.map((r) => r.inputs)),
      labels: pad2d(labels, -100),
      targets: countTargets(labels),
    };
  }

  loss(model: PretrainedModel, b: SpanCorruptionBatch): { loss: Tensor; metrics: Record<string, number> } {
    // the model shifts the labels right behind decoder_start_token_id to make the decoder's inputs
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, labels: b.labels });
    if (!out.loss) throw new Error("span-corruption: the model returned no loss (is it an encoder-decoder, T5ForConditionalGeneration?)");
    if (model.training) return { loss: out.loss, metrics: {} };
    // evaluation: how many target tokens the model predicts right (teacher forced)
    const { correct, total } = torch.noGrad(() =>
      torch.scope(() => {
        const mask = b.labels.ne(-100);
        return { correct: out.logits.argmax(-1).eq(b.labels).logicalAnd(mask).sum().item(), total: mask.sum().item() };
      }),
    );
    return { loss: out.loss, metrics: { target_correct: correct, target_total: total } };
  }

  /** Loss, perplexity of the targets (exp of the mean loss per target token), target_accuracy. */
  summarise(sums: Record<string, number>): Record<string, number> {
    const out = summariseSums(sums);
    return { ...out, perplexity: Math.exp(out.loss!) };
  }
}

/** span-corruption in the objective registry. */
export const objectives: ObjectiveEntry[] = [
  {
    name: "span-corruption",
    summary: "T5's span corruption: noise spans replaced by sentinels, the decoder writes them (encoder-decoder; --noise-density, --mean-span-length)",
    head: "seq2seq-lm",
    sequences: "spans",
    needsMask: false,
    supports: { perturb: false, auxiliary: false, adversarial: false, mixing: true },
    checkTokenizer: (tok, where) => {
      sentinelIds(tok, where);
      if (tok.specialTokens.eos === undefined) throw new Error(`${where} has no end-of-sequence token (</s>), which span corruption appends to inputs and targets`);
    },
    sequenceTokens: (seqLen, c) => {
      const l = spanCorruptionLengths(seqLen, c.noiseDensity, c.meanSpanLength);
      const spans = noiseCounts(l.tokensLength, c.noiseDensity, c.meanSpanLength).noiseSpans;
      const have = sentinelIds(c.tokenizer).length;
      if (spans > have) throw new Error(`span corruption: --seq-len ${seqLen} makes sequences of ${l.tokensLength} tokens with ${spans} noise spans, but the tokenizer has ${have} sentinels; lower --seq-len or train the tokenizer with more --sentinels`);
      return { tokens: l.tokensLength, note: `span corruption: ${l.tokensLength} corpus tokens per sequence -> inputs of ${l.inputsLength} and targets of ${l.targetsLength} tokens (EOS included)` };
    },
    create: (c) => {
      const tok = c.tokenizer;
      const eos = tok.specialTokens.eos;
      if (eos === undefined) throw new Error("span-corruption: the tokenizer has no end-of-sequence token (</s>)");
      return new SpanCorruption({ noiseDensity: c.noiseDensity, meanSpanLength: c.meanSpanLength, seed: c.masking.seed }, sentinelIds(tok), tok.tokenToId(eos)!, c.padId);
    },
  },
];

// SetFit's sentence pairs (Tunstall et al. 2022, setfit's sentence_pairs_generation): from a few
// labelled examples, for each of R iterations, every example is paired once with a random
// example of its own label (target 1) and once with a random example of another label (target 0).
// N examples give 2 N R pairs, half positive. As in the reference, the positive partner is drawn
// from the whole class, the example itself included (a pair the loss already satisfies).
import { Rng } from "./random.js";

/** A pair of examples by index, and its cosine-similarity target. */
export interface ContrastivePair {
  first: number;
  second: number;
  /** 1 when both have the same label, 0 when not. */
  target: 0 | 1;
}

/**
 * The pairs of SetFit's contrastive phase, in order: iteration by iteration, example by example,
 * its positive pair then its negative one. Seeded: the same labels, iterations and seed give the
 * same pairs; each iteration draws from its own stream (seed, iteration).
 * @param labels one label per example (any comparable values: names or class indices)
 * @param iterations R, how many positive and negative partners each example gets
 * @example contrastivePairs(["a", "a", "b"], 1, 0) // 6 pairs; those of example 2 are (2, 2, 1) and (2, 0 or 1, 0)
 */
export function contrastivePairs<L>(labels: readonly L[], iterations: number, seed: number): ContrastivePair[] {
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`contrastivePairs: iterations must be a positive integer, got ${iterations}`);
  const byLabel = new Map<L, number[]>();
  labels.forEach((l, i) => byLabel.set(l, [...(byLabel.get(l) ?? []), i]));
  if (byLabel.size < 2) throw new RangeError(`contrastivePairs: the examples have ${byLabel.size} label(s); negative pairs need at least 2`);
  // for each label, the examples of every other label, in index order
  const others = new Map([...byLabel.keys()].map((l) => [l, labels.flatMap((m, i) => (m === l ? [] : [i]))]));
  const pairs: ContrastivePair[] = [];
  for (let r = 0; r < iterations; r++) {
    const rng = new Rng(seed, 0x5e7f17, r);
    labels.forEach((l, i) => {
      const same = byLabel.get(l)!;
      const different = others.get(l)!;
      pairs.push({ first: i, second: same[rng.int(same.length)]!, target: 1 });
      pairs.push({ first: i, second: different[rng.int(different.length)]!, target: 0 });
    });
  }
  return pairs;
}

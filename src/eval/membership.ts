// Membership inference by loss threshold (Yeom et al. 2018, "Privacy Risk in Machine Learning"):
// an attacker who sees an example's loss under the model guesses "it was in the training set"
// when the loss is low. How well that separates training examples (members) from held-out ones
// is what training leaked about its examples; differential privacy bounds it.
//
// The attack's AUC: the probability that a random member has a lower loss than a random
// non-member, ties counted half (the Mann-Whitney rank formula, rocAuc with score −loss). 0.5 is
// no leak. The advantage is the best threshold's TPR − FPR (Yeom et al.'s membership advantage),
// which ε-DP bounds by e^ε − 1 (and the AUC by the same route). Pure TypeScript.
import { rocAuc } from "./metrics.js";

export interface MembershipResult {
  /** P(loss of a member < loss of a non-member), ties half: 0.5 means nothing leaks. */
  auc: number;
  /** max over thresholds of TPR − FPR. */
  advantage: number;
  /** The loss threshold that attains it (members are guessed at or below it). */
  threshold: number;
  members: number;
  nonMembers: number;
  memberMeanLoss: number;
  nonMemberMeanLoss: number;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The loss-threshold attack on per-example losses of training (member) and held-out (non-member) examples. */
export function lossThresholdAttack(memberLosses: readonly number[], nonMemberLosses: readonly number[]): MembershipResult {
  if (memberLosses.length === 0 || nonMemberLosses.length === 0) throw new Error(`membership inference needs members and non-members; got ${memberLosses.length} and ${nonMemberLosses.length}`);
  const bad = [...memberLosses, ...nonMemberLosses].find((l) => Number.isNaN(l));
  if (bad !== undefined) throw new Error("membership inference: a loss is NaN");
  const truth = [...memberLosses.map(() => 1), ...nonMemberLosses.map(() => 0)];
  const auc = rocAuc(truth, [...memberLosses, ...nonMemberLosses].map((l) => -l));
  // sweep the thresholds: every distinct loss, guessing "member" at or below it
  const all = [...memberLosses.map((l) => [l, 1] as const), ...nonMemberLosses.map((l) => [l, 0] as const)].sort((a, b) => a[0] - b[0]);
  let tp = 0;
  let fp = 0;
  let advantage = 0;
  let threshold = -Infinity;
  for (let i = 0; i < all.length; i++) {
    if (all[i]![1] === 1) tp++;
    else fp++;
    if (i + 1 < all.length && all[i + 1]![0] === all[i]![0]) continue; // ties go together
    const a = tp / memberLosses.length - fp / nonMemberLosses.length;
    if (a > advantage) {
      advantage = a;
      threshold = all[i]![0];
    }
  }
  return { auc, advantage, threshold, members: memberLosses.length, nonMembers: nonMemberLosses.length, memberMeanLoss: mean(memberLosses), nonMemberMeanLoss: mean(nonMemberLosses) };
}

/** Per-example cross-entropy −log p(true label) from predicted probabilities (floored at 1e-12). */
export function classificationLosses(labels: readonly string[], probabilities: readonly Readonly<Record<string, number>>[]): number[] {
  if (labels.length !== probabilities.length) throw new Error(`${labels.length} labels but ${probabilities.length} predictions`);
  return labels.map((label, i) => {
    const p = probabilities[i]![label];
    if (p === undefined) throw new Error(`example ${i + 1}: the model has no label "${label}" (it knows ${Object.keys(probabilities[i]!).join(", ")})`);
    return -Math.log(Math.max(p, 1e-12));
  });
}

// The loss-threshold membership attack: AUC by the rank formula with ties counted half, and the
// best threshold's advantage, on cases worked out by hand; per-example losses from probabilities.
import { test } from "node:test";
import assert from "node:assert/strict";
import { classificationLosses, lossThresholdAttack } from "../src/eval/membership.js";

test("separable losses: AUC 1, advantage 1 at the largest member loss", () => {
  const r = lossThresholdAttack([0.1, 0.2, 0.3], [0.4, 0.5]);
  assert.equal(r.auc, 1);
  assert.equal(r.advantage, 1);
  assert.equal(r.threshold, 0.3);
  assert.equal(r.members, 3);
  assert.equal(r.nonMembers, 2);
  assert.ok(Math.abs(r.memberMeanLoss - 0.2) < 1e-15);
  assert.equal(r.nonMemberMeanLoss, 0.45);
});

test("ties count half: members [1, 2] against [1, 3]", () => {
  // pairs (member, non-member) where the member's loss is lower: (1,1) tie ½, (1,3) 1, (2,1) 0, (2,3) 1 → 2.5 / 4
  const r = lossThresholdAttack([1, 2], [1, 3]);
  assert.equal(r.auc, 0.625);
  // thresholds 1: TPR ½ − FPR ½ = 0; 2: 1 − ½ = ½; 3: 1 − 1 = 0
  assert.equal(r.advantage, 0.5);
  assert.equal(r.threshold, 2);
});

test("the same losses on both sides: AUC ½, no advantage; reversed: AUC 0", () => {
  const same = lossThresholdAttack([0.3, 0.7, 0.7], [0.7, 0.3, 0.7]);
  assert.equal(same.auc, 0.5);
  assert.equal(same.advantage, 0);
  assert.equal(lossThresholdAttack([2, 3], [0.5, 1]).auc, 0);
  assert.throws(() => lossThresholdAttack([], [1]), /needs members and non-members; got 0 and 1/);
});

test("per-example cross-entropy from predicted probabilities", () => {
  const l = classificationLosses(["spam", "ham"], [{ spam: 0.8, ham: 0.2 }, { spam: 0.75, ham: 0.25 }]);
  assert.deepEqual(l, [-Math.log(0.8), -Math.log(0.25)]);
  assert.equal(classificationLosses(["ham"], [{ ham: 0, spam: 1 }])[0], -Math.log(1e-12));
  assert.throws(() => classificationLosses(["eggs"], [{ ham: 1 }]), /example 1: the model has no label "eggs" \(it knows ham\)/);
});

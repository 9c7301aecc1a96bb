// DP-SGD: per-sample gradients of a tiny BERT classifier from one batched pass equal those of a
// loop over single examples (every parameter: Linear, LayerNorm, word, position and token-type
// embeddings with padding); the ghost norm of an embedding equals the built one; clipping bounds
// every example's contribution by C; the noise has standard deviation σC / expected batch;
// Poisson sampling draws about q n examples; unsupported parameters are refused by name.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { AutoModelForSequenceClassification } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { DpSgd, PerSampleGradients, defaultDelta, materialise, perSampleNorms, planDp } from "../src/train/privacy/dp-sgd.js";
import { epsilonFor } from "../src/train/privacy/accountant.js";

const B = 5;

function tinyBert(): PretrainedModel {
  torch.manualSeed(3);
  const model = AutoModelForSequenceClassification.fromConfig({ model_type: "bert", vocab_size: 23, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 24, max_position_embeddings: 16, num_labels: 3, pad_token_id: 0 });
  model.eval(); // no dropout: the batched pass and the loop must see the same function
  return model;
}

// ids with padding (0) at the ends of some rows, repeated ids within rows (the ghost norm's cross terms)
const IDS = [
  [2, 5, 5, 9, 3, 0, 0],
  [2, 7, 8, 8, 8, 4, 3],
  [2, 11, 3, 0, 0, 0, 0],
  [2, 6, 12, 6, 19, 22, 3],
  [2, 9, 9, 3, 0, 0, 0],
];
const LABELS = [0, 2, 1, 1, 0];

function lossOf(model: PretrainedModel, rows: number[]): Tensor {
  const ids = torch.tensor(rows.map((r) => IDS[r]!), { dtype: "int64" });
  const mask = ids.ne(0).to("int64");
  const types = torch.tensor(rows.map((r) => IDS[r]!.map((_, t) => (t >= 4 ? 1 : 0))), { dtype: "int64" });
  const logits = model.forward({ inputIds: ids, attentionMask: mask, tokenTypeIds: types }).logits;
  return torch.crossEntropy(logits, torch.tensor(rows.map((r) => LABELS[r]!), { dtype: "int64" }));
}

test("per-sample gradients from one pass equal a loop over single examples (tiny BERT, every parameter)", () => {
  const model = tinyBert();
  torch.scope(() => {
    const { contributions } = new PerSampleGradients(model).run(B, () => lossOf(model, [0, 1, 2, 3, 4]));
    const named = [...model.namedParameters()];
    assert.equal(contributions.size, named.length, "every parameter has per-sample gradients");
    const batched = new Map(named.map(([name, p]) => [name, contributions.get(p)!.map((c) => materialise(c, p.shape)).reduce((a, b) => a.add(b))]));
    for (let b = 0; b < B; b++) {
      model.zeroGrad();
      lossOf(model, [b]).backward();
      for (const [name, p] of named) {
        const expected = p.grad ?? torch.zeros(p.shape);
        const got = batched.get(name)!.select(0, b);
        const diff = got.sub(expected).abs().max().item();
        assert.ok(diff < 1e-5, `${name}, example ${b}: max difference ${diff}`);
      }
    }
    model.zeroGrad();
    // the ghost norm of the embeddings equals the norm of the built per-sample gradients
    const built = named.map(([, p]) => contributions.get(p)!.map((c) => materialise(c, p.shape)).reduce((a, b) => a.add(b)).reshape([B, -1]).square().sum(1)).reduce((a, b) => a.add(b)).sqrt();
    const ghost = perSampleNorms(contributions);
    assert.ok(ghost.sub(built).abs().max().item() < 1e-5 * built.max().item());
  });
});

test("clipping: each example contributes at most C; without noise the step's gradient is the clipped mean", () => {
  const model = tinyBert();
  const C = 0.05; // below every example's norm here: all are clipped
  const dp = new DpSgd(model, { maxGradNorm: C, noiseMultiplier: 0, sampleRate: 0.5, delta: 1e-5 }, B);
  const norms = torch.scope(() => perSampleNorms(new PerSampleGradients(model).run(B, () => lossOf(model, [0, 1, 2, 3, 4])).contributions).toArray() as number[]);
  assert.ok(norms.every((n) => n > C), `norms ${norms.join(", ")}`);
  // one example at a time: its contribution alone has norm C (clipped), so after finish() the grads have norm C / B
  for (let b = 0; b < B; b++) {
    dp.accumulate(1, () => lossOf(model, [b]));
    const r = dp.finish();
    assert.equal(r.clippedShare, 1);
    const total = Math.sqrt(model.parameters().reduce((s, p) => s + p.grad!.square().sum().item(), 0));
    assert.ok(Math.abs(total - C / B) < 1e-6 * C, `example ${b}: ${total}`);
  }
  // all five at once: the sum of five clipped gradients, each of norm C, has norm at most 5C
  dp.accumulate(B, () => lossOf(model, [0, 1, 2, 3, 4]));
  dp.finish();
  const total = Math.sqrt(model.parameters().reduce((s, p) => s + p.grad!.square().sum().item(), 0));
  assert.ok(total <= C * (1 + 1e-6) && total > 0, `${total}`);
  model.zeroGrad();
});

test("noise: with nothing sampled the gradient is N(0, (σC / L)²) in every coordinate", () => {
  const model = tinyBert();
  const [sigma, C, L] = [1.3, 0.7, 8];
  const dp = new DpSgd(model, { maxGradNorm: C, noiseMultiplier: sigma, sampleRate: 0.1, delta: 1e-5 }, L);
  torch.manualSeed(11);
  const values: number[] = [];
  for (let k = 0; k < 8; k++) {
    dp.finish();
    for (const p of model.parameters()) values.push(...(p.grad!.reshape([-1]).toArray() as number[]));
  }
  // n ≈ 8 × 4,900 draws: the sample standard deviation is within 3% of the true one with
  // probability 1 - 1e-12 or so (its relative standard error is 1/sqrt(2n) ≈ 0.4%), and seeded
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const expected = (sigma * C) / L;
  assert.ok(n > 35000, `${n}`);
  assert.ok(Math.abs(sd / expected - 1) < 0.03, `sd ${sd} vs ${expected}`);
  assert.ok(Math.abs(mean) < (5 * expected) / Math.sqrt(n), `mean ${mean}`);
  model.zeroGrad();
});

test("Poisson sampling: seeded, about q n examples, different per step", () => {
  const model = tinyBert();
  const dp = new DpSgd(model, { maxGradNorm: 1, noiseMultiplier: 1, sampleRate: 0.1, delta: 1e-5 }, 100);
  const a = dp.sample(1000, 42, 7);
  assert.deepEqual(dp.sample(1000, 42, 7), a);
  assert.notDeepEqual(dp.sample(1000, 42, 8), a);
  // Binomial(1000, 0.1): mean 100, sd 9.5; [60, 140] is beyond 4 sd
  assert.ok(a.length > 60 && a.length < 140, `${a.length}`);
  let total = 0;
  for (let s = 0; s < 200; s++) total += dp.sample(1000, 42, s).length;
  assert.ok(Math.abs(total / 200 - 100) < 3, `${total / 200}`); // sd of the mean 0.67
});

test("planning: the noise multiplier lands on the target ε; δ defaults below 1/n; unsupported parameters are named", () => {
  const plan = planDp({ epsilon: 8 }, { examples: 4000, expectedBatch: 40, steps: 300 });
  assert.equal(plan.delta, 1e-5);
  assert.equal(plan.sampleRate, 0.01);
  const eps = epsilonFor(0.01, plan.noiseMultiplier, 300, 1e-5);
  assert.ok(eps <= 8 && eps > 7.99, `${eps}`);
  assert.equal(defaultDelta(60000), 1e-6);
  assert.throws(() => planDp({ noiseMultiplier: 1, delta: 0.01 }, { examples: 1000, expectedBatch: 10, steps: 10 }), /not below 1\/n/);
  assert.throws(() => planDp({}, { examples: 1000, expectedBatch: 10, steps: 10 }), /target epsilon or a noise multiplier/);
  // both: the noise multiplier is used, the target stops the run
  assert.deepEqual(planDp({ epsilon: 2, noiseMultiplier: 1.5, delta: 1e-5 }, { examples: 1000, expectedBatch: 10, steps: 10 }), { maxGradNorm: 1, noiseMultiplier: 1.5, sampleRate: 0.01, delta: 1e-5, targetEpsilon: 2 });
  const model = tinyBert();
  (model as unknown as { registerParameter(n: string, t: Tensor): Tensor }).registerParameter("scale", torch.ones([3]));
  assert.throws(() => new PerSampleGradients(model), /other layers: scale \(freeze them/);
  model.freeze("scale");
  assert.doesNotThrow(() => new PerSampleGradients(model));
});

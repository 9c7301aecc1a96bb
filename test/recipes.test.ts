// The fine-tuning recipes of issue 21, each against values worked out independently: LLRD's
// learning rates listed by hand, re-initialisation touching exactly the top K layers, AdamW
// without bias correction against a hand-computed step, SWA's mean of known weight sets, label
// smoothing and R-Drop's KL against torch (a fixture) and by hand, mixout's formula on a fixed
// mask, its expectation and its identities; then one small fine-tuning run with every flag.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { AdamW } from "../src/optim/index.js";
import { Linear, applyMixout, mixoutWeight, mixoutWithMask, rdropLoss, smoothedCrossEntropy, symmetricKl } from "../src/nn/index.js";
import { AutoModelForMaskedLM, AutoModelForSequenceClassification, savePretrained } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune } from "../src/train/index.js";
import { WeightAverager, averageWeights, finishAveraging, layerIndexOf, layerwiseGroups, reinitTopLayers } from "../src/train/recipes/index.js";
import { assertClose, fixture, flat, tempDir } from "./helpers.js";

const dir = await tempDir();
const tinyBert = (layers = 2, extra: Record<string, unknown> = {}): PretrainedModel =>
  AutoModelForSequenceClassification.fromConfig({ model_type: "bert", vocab_size: 30, hidden_size: 32, num_hidden_layers: layers, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 32, ...extra });

// --- layer-wise learning-rate decay ------------------------------------------------------------------
test("LLRD: a 2-layer BERT's groups, rates listed by hand (lr 1e-3, D 0.5)", () => {
  const model = tinyBert(2);
  const groups = layerwiseGroups(model.namedParameters(), { lr: 1e-3, decay: 0.5, weightDecay: 0.01 });
  const rateOf = new Map(groups.flatMap((g) => g.names.map((n) => [n, g] as const)));
  const expected: [string, number, number][] = [
    ["classifier.weight", 1e-3, 0.01],
    ["classifier.bias", 1e-3, 0],
    ["bert.pooler.dense.weight", 1e-3, 0.01],
    ["bert.encoder.layer.1.attention.self.query.weight", 5e-4, 0.01],
    ["bert.encoder.layer.1.output.LayerNorm.weight", 5e-4, 0],
    ["bert.encoder.layer.0.intermediate.dense.weight", 2.5e-4, 0.01],
    ["bert.encoder.layer.0.attention.output.dense.bias", 2.5e-4, 0],
    ["bert.embeddings.word_embeddings.weight", 1.25e-4, 0.01],
    ["bert.embeddings.position_embeddings.weight", 1.25e-4, 0.01],
    ["bert.embeddings.LayerNorm.bias", 1.25e-4, 0],
  ];
  for (const [name, lr, wd] of expected) {
    const g = rateOf.get(name);
    assert.ok(g, `${name} is in a group`);
    assert.ok(Math.abs(g.lr - lr) < 1e-15, `${name}: lr ${g.lr}, expected ${lr}`);
    assert.equal(g.weightDecay, wd, `${name}: weight decay`);
  }
  // every trainable parameter once; four depths x (decayed, not) = 8 groups; the head's first
  assert.equal(rateOf.size, [...model.namedParameters()].length);
  assert.equal(groups.length, 8);
  assert.equal(groups[0]!.lr, 1e-3);
  assert.deepEqual([...new Set(groups.map((g) => g.lr))], [1e-3, 5e-4, 2.5e-4, 1.25e-4]);
  model.dispose();
});

test("LLRD: layer indices from every family's names; a model without numbered layers is refused", () => {
  assert.equal(layerIndexOf("roberta.encoder.layer.11.output.dense.weight"), 11);
  assert.equal(layerIndexOf("transformer.h.3.attn.c_attn.weight"), 3);
  assert.equal(layerIndexOf("model.layers.7.mlp.up_proj.weight"), 7);
  assert.equal(layerIndexOf("encoder.block.2.layer.0.SelfAttention.q.weight"), 2);
  assert.equal(layerIndexOf("albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"), null);
  const lin = new Linear(2, 2);
  assert.throws(() => layerwiseGroups(lin.namedParameters(), { lr: 1, decay: 0.9, weightDecay: 0 }), /no parameter name has a layer index/);
  assert.throws(() => layerwiseGroups(lin.namedParameters(), { lr: 1, decay: 1.5, weightDecay: 0 }), /must be in \(0, 1\]/);
  lin.dispose();
});

// --- re-initialisation --------------------------------------------------------------------------------
test("reinit: exactly the top K layers and the pooler are drawn afresh, with the model's initialisation", () => {
  const model = tinyBert(3, { initializer_range: 0.5 });
  torch.noGrad(() => {
    for (const p of model.parameters()) p.fill_(0.125);
  });
  const names = reinitTopLayers(model as never, 1);
  const fresh = (n: string): boolean => n.startsWith("bert.encoder.layer.2.") || n.startsWith("bert.pooler.");
  assert.deepEqual(names.sort(), [...model.namedParameters()].map(([n]) => n).filter(fresh).sort());
  for (const [name, p] of model.namedParameters()) {
    const v = flat(p.toArray());
    if (!fresh(name)) assert.ok(v.every((x) => x === 0.125), `${name} is untouched`);
    else if (name.endsWith("LayerNorm.weight")) assert.ok(v.every((x) => x === 1), `${name}: ones`);
    else if (name.endsWith("bias")) assert.ok(v.every((x) => x === 0), `${name}: zeros`);
    else {
      // normal(0, initializer_range): the sample's std within 15% of 0.5 (32x32 = 1024 draws at least)
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      assert.ok(Math.abs(std - 0.5) < 0.075, `${name}: std ${std}, expected about 0.5`);
    }
  }
  assert.throws(() => reinitTopLayers(model as never, 4), /--reinit-layers 4: BertForSequenceClassification has only 3 layers/);
  assert.deepEqual(reinitTopLayers(model as never, 0), []);
  model.dispose();
});

// --- AdamW without bias correction --------------------------------------------------------------------
test("AdamW without bias correction takes BERTAdam's steps, computed by hand (and with it, Adam's)", () => {
  const [lr, b1, b2, eps, wd] = [0.1, 0.9, 0.999, 1e-8, 0.01];
  const grads = [0.5, -0.2, 0.3];
  for (const biasCorrection of [false, true]) {
    const p = torch.tensor([1.0], { dtype: "float64" });
    p.requiresGrad = true;
    const opt = new AdamW([p], { lr, betas: [b1, b2], eps, weightDecay: wd, biasCorrection });
    // by hand: p *= 1 - lr·wd; m, v as Adam's; p -= lr·m̂/(√v̂ + eps), with m̂ = m (no correction) or m/(1 - β1^t)
    let [x, m, v] = [1, 0, 0];
    const first: number[] = [];
    grads.forEach((g, i) => {
      const t = i + 1;
      x *= 1 - lr * wd;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const [mh, vh] = biasCorrection ? [m / (1 - b1 ** t), v / (1 - b2 ** t)] : [m, v];
      x -= (lr * mh) / (Math.sqrt(vh) + eps);
      p.grad = torch.tensor([g], { dtype: "float64" });
      opt.step();
      if (t === 1) first.push(p.item());
      assert.ok(Math.abs(p.item() - x) < 1e-12, `bias correction ${biasCorrection}, step ${t}: ${p.item()}, by hand ${x}`);
    });
    // the first step in numbers: 1·0.999 − 0.1·0.05/(√0.00025 + 1e-8) = 0.682772434 without the
    // correction; 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.899000002 with it (m̂ = g, v̂ = g²)
    assert.ok(Math.abs(first[0]! - (biasCorrection ? 0.899000002 : 0.682772434)) < 1e-9, `first step ${first[0]}`);
    opt.dispose();
    p.dispose();
  }
});

test("AdamW without bias correction: the eager path (non-contiguous) agrees, the state step still counts", () => {
  const base = torch.tensor([[1, 2], [3, 4]], { dtype: "float64" });
  const fused = base.clone();
  const eager = base.t().contiguous().t(); // same values, transposed strides
  assert.equal(eager.isContiguous, false);
  for (const p of [fused, eager]) p.requiresGrad = true;
  const a = new AdamW([fused], { lr: 0.05, biasCorrection: false, weightDecay: 0 });
  const b = new AdamW([eager], { lr: 0.05, biasCorrection: false, weightDecay: 0 });
  for (let s = 0; s < 3; s++) {
    fused.grad = torch.tensor([[0.1, -0.2], [0.3, 0.4]], { dtype: "float64" });
    eager.grad = torch.tensor([[0.1, -0.2], [0.3, 0.4]], { dtype: "float64" }).t().contiguous().t();
    a.step();
    b.step();
  }
  assertClose(eager, fused.toArray() as number[][], 1e-12, "eager vs fused");
  assert.deepEqual(a.stateDict().meta.steps, { 0: 3 });
  assert.equal(a.stateDict().meta.groups[0]!.biasCorrection, false);
  a.dispose();
  b.dispose();
});

// --- SWA ------------------------------------------------------------------------------------------------
test("SWA: the average of two known weight sets; the averager keeps the last K", () => {
  const f = (x: number[] | number[][]): Tensor => torch.tensor(x, { dtype: "float32" });
  const setA = new Map([["a", f([1, 2])], ["b", f([[0, 4]])]]);
  const setB = new Map([["a", f([3, 6])], ["b", f([[2, 0]])]]);
  const avg = averageWeights([setA, setB]);
  assertClose(avg.get("a")!, [2, 4]);
  assertClose(avg.get("b")!, [[1, 2]]);
  assert.throws(() => averageWeights([setA, new Map([["a", f([1, 2, 3])], ["b", f([[0, 0]])]])]), /a is \[3\] in set 1, \[2\] in set 0/);
  const lin = new Linear(2, 1);
  const averager = new WeightAverager(2);
  for (const [step, w] of [[1, [[10, 10]]], [2, [[1, 2]]], [3, [[3, 4]]]] as const) {
    torch.noGrad(() => lin.weight.copy_(torch.tensor(w)));
    averager.record(lin, step);
  }
  assert.deepEqual(averager.steps, [2, 3]);
  const mean = averager.average();
  assertClose(mean.get("weight")!, [[2, 3]]);
  // the end of the run: kept only when strictly better; otherwise the weights are put back
  torch.noGrad(() => lin.weight.copy_(torch.tensor([[7, 7]])));
  const worse = finishAveraging(lin, averager, { metric: "macro_f1", mode: "max", best: 0.9, evaluate: () => ({ val_macro_f1: 0.9 }) });
  assert.equal(worse.kept, false);
  assertClose(lin.weight, [[7, 7]]);
  const better = finishAveraging(lin, averager, { metric: "loss", mode: "min", best: 0.5, evaluate: () => ({ val_loss: lin.weight.sum().item() / 100 }) });
  assert.deepEqual([better.kept, better.averaged], [true, 0.05]);
  assertClose(lin.weight, [[2, 3]]);
  averager.dispose();
  torch.dispose([setA, setB, avg, mean, lin]);
});

// --- label smoothing and R-Drop -----------------------------------------------------------------------
const ref = JSON.parse(readFileSync(fixture("recipes", "losses.json"), "utf8")) as { logits: number[][]; other: number[][]; labels: number[]; smoothed: Record<string, number>; rdrop_kl_sum: number; batch: number };

test("label smoothing equals torch's CrossEntropyLoss(label_smoothing) (fixture) and the formula by hand", () => {
  const logits = torch.tensor(ref.logits, { dtype: "float64" });
  const labels = torch.tensor(ref.labels, { dtype: "int64" });
  for (const [eps, expected] of Object.entries(ref.smoothed)) {
    assert.ok(Math.abs(smoothedCrossEntropy(logits, labels, Number(eps)).item() - expected) < 1e-12, `ε ${eps}`);
  }
  // by hand, one row: logits [1, 2, 3], label 2, ε 0.1: 0.9·(−log p2) + 0.1·mean_c(−log p_c)
  const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  const byHand = 0.9 * (lse - 3) + (0.1 / 3) * (3 * lse - 6);
  assert.ok(Math.abs(smoothedCrossEntropy(torch.tensor([[1, 2, 3]], { dtype: "float64" }), torch.tensor([2], { dtype: "int64" }), 0.1).item() - byHand) < 1e-12);
  assert.throws(() => smoothedCrossEntropy(logits, labels, 1.5), /label smoothing must be in \[0, 1\]/);
});

test("R-Drop: the symmetric KL by hand, against the authors' kl_div sum (fixture), and the whole loss", () => {
  // p1 = [1/4, 3/4], p2 = [1/2, 1/2]: ½·Σ(p1 − p2)(log p1 − log p2) = ½·0.25·(log 1.5 − log 0.5) = ln(3)/8
  const a = torch.tensor([[0, Math.log(3)]], { dtype: "float64" });
  const b = torch.tensor([[0, 0]], { dtype: "float64" });
  assert.ok(Math.abs(symmetricKl(a, b).item() - Math.log(3) / 8) < 1e-12);
  assert.ok(Math.abs(symmetricKl(a, a).item()) < 1e-15);
  const x = torch.tensor(ref.logits, { dtype: "float64" });
  const y = torch.tensor(ref.other, { dtype: "float64" });
  assert.ok(Math.abs(symmetricKl(x, y).item() - ref.rdrop_kl_sum / ref.batch) < 1e-12);
  // the loss: ½(CE1 + CE2) + α·KL; label 1: CE1 = −ln 0.75, CE2 = ln 2
  const loss = rdropLoss(a, b, torch.tensor([1], { dtype: "int64" }), 4).item();
  assert.ok(Math.abs(loss - (0.5 * (-Math.log(0.75) + Math.log(2)) + (4 * Math.log(3)) / 8)) < 1e-12);
});

// --- mixout -----------------------------------------------------------------------------------------------
test("mixout: the paper's formula on a fixed mask, by hand", () => {
  const w = torch.tensor([[1, 2], [3, 4]]);
  const w0 = torch.tensor([[0, 1], [1, 0]]);
  const keep = torch.tensor([[1, 0], [0, 1]]);
  // (M·W + (1 − M)·W0 − p·W0)/(1 − p), p = 0.5: [[(1 − 0)/.5, (1 − .5)/.5], [(1 − .5)/.5, (4 − 0)/.5]]
  assertClose(mixoutWithMask(w, w0, keep, 0.5), [[2, 1], [1, 8]]);
  torch.dispose([w, w0, keep]);
});

test("mixout: a layer's training draw is the formula with some mask, its gradient M/(1 − p); mean over draws ≈ W", () => {
  torch.manualSeed(5);
  const lin = new Linear(4, 3);
  const w0 = lin.weight.detach().clone();
  const p = 0.3;
  const { layers, remove } = applyMixout(lin, p); // W0: the weights now
  torch.noGrad(() => lin.weight.add_(torch.randn([3, 4]))); // then "fine-tuning" moves them
  assert.deepEqual(layers, [""]);
  lin.train();
  // x = I: y = W'ᵀ + b, so the drawn weight is read off the output
  const y = lin.forward(torch.eye(4));
  const drawn = y.sub(lin.bias!).t();
  const keep = torch.noGrad(() => drawn.sub(w0).abs().gt(1e-6).float()); // kept elements moved off W0
  assertClose(drawn, mixoutWithMask(lin.weight, w0, keep, p).toArray() as number[][], 1e-5, "the draw is the formula with its mask");
  y.sum().backward();
  assertClose(lin.weight.grad!, keep.div(1 - p).mul(1).toArray() as number[][], 1e-6, "dW' / dW = M/(1 − p)");
  const kept = flat(keep.toArray()).reduce((a, b) => a + b, 0);
  assert.ok(kept > 0 && kept < 12, `a real mask (${kept} of 12 kept)`);
  // the expectation: the mean over 3000 draws is W (standard error ≈ |W − W0|·√(p/(1 − p)/3000) < 0.02·|W − W0|)
  const mean = torch.noGrad(() => {
    let sum = torch.zerosLike(lin.weight);
    for (let i = 0; i < 3000; i++) sum = torch.scope(() => sum.add(mixoutWeight(lin.weight, w0, p)));
    return sum.div(3000);
  });
  const spread = Math.max(...flat(lin.weight.sub(w0).abs().toArray()));
  assertClose(mean, lin.weight.toArray() as number[][], (0.08 * spread) / Math.max(1, ...flat(lin.weight.abs().toArray())), "E[W'] = W");
  // evaluation mode: the plain layer, exactly
  lin.eval();
  const x = torch.randn([5, 4]);
  assert.deepEqual(lin.forward(x).toArray(), torch.linear(x, lin.weight, lin.bias).toArray());
  remove();
  assert.equal(Object.hasOwn(lin, "forward"), false);
  torch.dispose([w0, y, drawn, keep, mean, x, lin]);
});

test("mixout: p = 0 changes nothing; p out of range is refused", () => {
  const model = tinyBert(2);
  model.train();
  const { layers } = applyMixout(model, 0);
  assert.equal(layers.length, 0);
  assert.ok([...model.namedModules()].every(([, m]) => !Object.hasOwn(m, "forward")));
  assert.throws(() => applyMixout(model, 1), /mixout probability must be in \[0, 1\)/);
  const on = applyMixout(model, 0.2);
  // every Linear of a BERT classifier: 6 per layer x 2, the pooler, the classifier
  assert.equal(on.layers.length, 14);
  on.remove();
  model.dispose();
});

// --- one fine-tuning run with every recipe ------------------------------------------------------------
test("finetune with every recipe: LLRD's rates in the log, SWA's decision in swa.json, the flags checked", async () => {
  const words = { a: "whale sea ship harpoon captain ocean sail", b: "nation state law court people vote union" };
  const synth = (n: number, seed: number): { text: string; label: string; source: string }[] => {
    let s = seed;
    const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    return Array.from({ length: n }, (_, i) => {
      const label = i % 2 ? "a" : "b";
      const vocab = words[label].split(" ");
      return { text: Array.from({ length: 6 }, () => vocab[Math.floor(rnd() * 7)]).join(" "), label, source: `synth:${i}` };
    });
  };
  const train = synth(64, 1);
  const validation = synth(16, 2);
  const modelDir = join(dir, "base");
  const tok = trainTokenizerFromTexts(train.map((e) => e.text), { kind: "wordpiece", vocabSize: 100, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 32 }), modelDir);
  saveTokenizer(tok, modelDir);
  const out = join(dir, "all");
  const lines: string[] = [];
  const r = await finetune({
    model: modelDir, train, validation, out, maxSteps: 6, evalEvery: 2, batchSize: 16, learningRate: 1e-3, maxLength: 12, patience: 0, precision: "fp32", seed: 1,
    layerLrDecay: 0.5, reinitLayers: 1, noBiasCorrection: true, swa: 2, mixout: 0.1, rdrop: 1, labelSmoothing: 0.1, log: (l) => lines.push(l),
  });
  assert.ok(lines.some((l) => l.includes("--layer-lr-decay 0.5: 8 parameter groups, peak learning rates from 0.00100 (head) to 0.000125 (embeddings)")), lines.join("\n"));
  // a layer's 16 tensors and the pooler's 2
  assert.ok(lines.some((l) => l.startsWith("--reinit-layers 1: 18 tensors")), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith("--mixout 0.1: 14 Linear layers")), lines.join("\n"));
  const swa = JSON.parse(readFileSync(join(out, "swa.json"), "utf8")) as { steps: number[]; kept: boolean; averaged: number; best: number };
  assert.deepEqual(swa.steps, [4, 6]);
  assert.equal(swa.best, r.train.best!.value);
  assert.equal(swa.kept, swa.averaged > swa.best);
  // the model saved is plain: no mixout left on its layers
  assert.ok([...r.model.namedModules()].every(([, m]) => !Object.hasOwn(m, "forward")));
  assert.ok(existsSync(join(out, "model.safetensors")));
  r.model.dispose();
  // a resumed run given a new peak rate scales every group's alike: the layer-wise ratios stay
  const resumed = join(dir, "resumed");
  const base = { model: modelDir, train, validation, out: resumed, evalEvery: 2, saveEvery: 2, batchSize: 16, maxLength: 12, patience: 0, precision: "fp32", seed: 1, layerLrDecay: 0.5 } as const;
  (await finetune({ ...base, maxSteps: 2, learningRate: 1e-3 })).model.dispose();
  (await finetune({ ...base, maxSteps: 4, learningRate: 2e-3, resume: true })).model.dispose();
  const state = (step: number): { scheduler: { baseLrs: number[] } } => JSON.parse(readFileSync(join(resumed, `checkpoint-${step}`, "trainer_state.json"), "utf8"));
  assert.deepEqual([...new Set(state(2).scheduler.baseLrs)], [1e-3, 5e-4, 2.5e-4, 1.25e-4]);
  assert.deepEqual([...new Set(state(4).scheduler.baseLrs)], [2e-3, 1e-3, 5e-4, 2.5e-4]);
  await assert.rejects(finetune({ model: modelDir, train, validation, out: join(dir, "bad"), maxSteps: 1, layerLrDecay: 1.5 }), /layerLrDecay must be > 0 and <= 1, got 1.5/);
  await assert.rejects(finetune({ model: modelDir, train, validation, out: join(dir, "bad"), maxSteps: 1, maxLength: 12, reinitLayers: 3 }), /--reinit-layers 3: BertForSequenceClassification has only 2 layers/);
});


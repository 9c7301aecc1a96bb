// Modules: state-dict names, loading, freezing, dtype moves, layers' values and init, LoRA.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import { tensor as T } from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { Conv1d, Dropout, Embedding, LayerNorm, Linear, LoRALinear, Module, ModuleList, RMSNorm, applyLoRA, activation } from "../src/nn/index.js";
import { AdamW } from "../src/optim/index.js";
import { assertClose } from "./helpers.js";

// A miniature of BERT's module tree, to check that paths equal PyTorch's state-dict keys.
class SelfAttention extends Module {
  query = new Linear(8, 8);
  key = new Linear(8, 8);
}
class Attention extends Module {
  self = new SelfAttention();
}
class Layer extends Module {
  attention = new Attention();
  LayerNorm = new LayerNorm(8, 1e-12);
}
class Encoder extends Module {
  layer = new ModuleList([new Layer(), new Layer()]);
}
class Tiny extends Module {
  embeddings = new Embedding(10, 8);
  encoder = new Encoder();
  head = new Linear(8, 10, { bias: false });
  positionIds = this.registerBuffer("position_ids", torch.arange(0, 4).unsqueeze(0));
  constructor(tie = false) {
    super();
    if (tie) this.head.weight = this.tieTo(this.embeddings.weight);
  }
  tieTo(w: Tensor): Tensor {
    this.head.weight.dispose();
    return (this.head as unknown as { registerParameter(n: string, t: Tensor): Tensor }).registerParameter("weight", w);
  }
}

test("state-dict names are PyTorch's dotted paths, in declaration order", () => {
  const m = new Tiny();
  const names = [...m.stateDict().keys()];
  assert.deepEqual(names, [
    "position_ids",
    "embeddings.weight",
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.0.attention.self.query.bias",
    "encoder.layer.0.attention.self.key.weight",
    "encoder.layer.0.attention.self.key.bias",
    "encoder.layer.0.LayerNorm.weight",
    "encoder.layer.0.LayerNorm.bias",
    "encoder.layer.1.attention.self.query.weight",
    "encoder.layer.1.attention.self.query.bias",
    "encoder.layer.1.attention.self.key.weight",
    "encoder.layer.1.attention.self.key.bias",
    "encoder.layer.1.LayerNorm.weight",
    "encoder.layer.1.LayerNorm.bias",
    "head.weight",
  ]);
  assert.equal(m.numParameters(), 10 * 8 + 2 * (2 * (64 + 8) + 16) + 80);
  assert.equal([...m.namedBuffers()].length, 1);
  m.dispose();
});

test("tied weights: listed once by namedParameters, under both names in stateDict", () => {
  const m = new Tiny(true);
  assert.equal(m.stateDict().get("head.weight"), m.stateDict().get("embeddings.weight"));
  const names = [...m.namedParameters()].map(([n]) => n);
  assert.ok(names.includes("embeddings.weight") && !names.includes("head.weight"));
  m.dispose();
});

test("loadStateDict round-trips and reports missing, unexpected and mismatched keys by name", () => {
  torch.manualSeed(1);
  const a = new Tiny();
  const b = new Tiny();
  const r = b.loadStateDict(a.stateDict());
  assert.deepEqual(r, { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
  for (const [name, t] of a.stateDict()) assert.ok(t.equal(b.stateDict().get(name)!), name);

  const partial = new Map(a.stateDict());
  partial.delete("head.weight");
  partial.set("pooler.dense.weight", torch.zeros([2]));
  partial.set("embeddings.weight", torch.zeros([11, 8]));
  const loose = b.loadStateDict(partial, { strict: false });
  assert.deepEqual(loose.missingKeys, ["head.weight"]);
  assert.deepEqual(loose.unexpectedKeys, ["pooler.dense.weight"]);
  assert.deepEqual(loose.mismatchedKeys, ["embeddings.weight: expected [10, 8], got [11, 8]"]);
  assert.throws(() => b.loadStateDict(partial), /missing keys: head\.weight; unexpected keys: pooler\.dense\.weight; shape mismatches: embeddings\.weight: expected \[10, 8\], got \[11, 8\]/);
  a.dispose();
  b.dispose();
});

test("train/eval set the mode everywhere; Dropout is identity in eval", () => {
  const m = new Tiny();
  m.eval();
  assert.ok([...m.namedModules()].every(([, x]) => !x.training));
  const d = new Dropout(0.5);
  d.eval();
  const x = torch.ones([100]);
  assert.equal(d.forward(x), x);
  d.train();
  assert.ok(d.forward(x).eq(0).any().item() === 1);
  m.dispose();
});

test("freezing by name pattern: frozen parameters do not change under training", () => {
  torch.manualSeed(2);
  const m = new Tiny();
  const frozen = m.freeze("embeddings.*", "encoder.layer.0.**");
  assert.deepEqual(frozen, [
    "embeddings.weight",
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.0.attention.self.query.bias",
    "encoder.layer.0.attention.self.key.weight",
    "encoder.layer.0.attention.self.key.bias",
    "encoder.layer.0.LayerNorm.weight",
    "encoder.layer.0.LayerNorm.bias",
  ]);
  assert.equal(m.numParameters({ trainableOnly: true }), m.numParameters() - 80 - (2 * 72 + 16));
  const before = new Map([...m.stateDict()].map(([k, v]) => [k, torch.keep(v.clone())]));
  const opt = new AdamW(m.parameters().filter((p) => p.requiresGrad), { lr: 0.1 });
  for (let i = 0; i < 3; i++) {
    torch.scope(() => {
      let h = m.embeddings.forward(T([[1, 2, 3]]));
      for (const layer of m.encoder.layer) h = layer.LayerNorm.forward(layer.attention.self.query.forward(h).add(layer.attention.self.key.forward(h)));
      m.head.forward(h).square().mean().backward();
    });
    opt.step();
    opt.zeroGrad();
  }
  for (const [name, t] of m.stateDict()) {
    const same = t.equal(before.get(name)!);
    const shouldBeFrozen = frozen.includes(name) || name === "position_ids";
    assert.equal(same, shouldBeFrozen, `${name} ${shouldBeFrozen ? "changed though frozen" : "did not train"}`);
  }
  assert.equal(m.unfreeze(/LayerNorm/).length, 4);
  torch.dispose([...before.values()]);
  opt.dispose();
  m.dispose();
});

test("to(dtype) keeps parameter identity; integer buffers keep their dtype", () => {
  const m = new Tiny();
  const w = m.embeddings.weight;
  m.to("float64");
  assert.equal(m.embeddings.weight, w);
  assert.equal(w.dtype, "float64");
  assert.equal(w.requiresGrad, true);
  assert.equal(m.positionIds.dtype, "int64");
  m.to("bfloat16");
  assert.equal(w.dtype, "bfloat16");
  m.dispose();
});

test("layers compute what their definitions say", () => {
  const lin = new Linear(3, 2);
  torch.noGrad(() => {
    lin.weight.copy_(T([[1, 0, -1], [2, 1, 0]]));
    lin.bias!.copy_(T([0.5, -0.5]));
  });
  assertClose(lin.forward(T([[1, 2, 3]], { dtype: "float32" })), [[-1.5, 3.5]]);
  const emb = new Embedding(4, 3, { paddingIdx: 0 });
  assertClose(emb.weight.select(0, 0), [0, 0, 0]);
  const ln = new LayerNorm(4, 1e-5);
  const x = T([[1, 2, 3, 4]], { dtype: "float32" });
  const sd = Math.sqrt(1.25 + 1e-5);
  assertClose(ln.forward(x), [[-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd]]);
  const rms = new RMSNorm(4, 1e-6);
  const r = Math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6);
  assertClose(rms.forward(x), [[1 / r, 2 / r, 3 / r, 4 / r]]);
  const conv = new Conv1d(2, 4, 3, { padding: 1 });
  assert.deepEqual([...conv.forward(torch.zeros([1, 2, 7])).shape], [1, 4, 7]);
  assertClose(activation("gelu_new")(T([1], { dtype: "float32" })), [0.8411920071]);
  assert.throws(() => activation("mish"), /unknown activation "mish"/);
  for (const m of [lin, emb, ln, rms, conv]) m.dispose();
});

test("default initialisation follows PyTorch: Linear U(±1/sqrt(in)), Embedding N(0,1)", () => {
  torch.manualSeed(3);
  const lin = new Linear(256, 512);
  const bound = 1 / Math.sqrt(256);
  assert.ok(lin.weight.abs().max().item() <= bound);
  const sd = lin.weight.std().item();
  assert.ok(Math.abs(sd - bound / Math.sqrt(3)) < 0.02 * bound, `std ${sd}`);
  assert.ok(lin.bias!.abs().max().item() <= bound);
  const emb = new Embedding(1000, 64);
  assert.ok(Math.abs(emb.weight.std().item() - 1) < 0.02);
  lin.dispose();
  emb.dispose();
});

test("LoRA starts equal to the base, trains only its own weights, and equals its merged weight", () => {
  torch.manualSeed(4);
  class Net extends Module {
    query = new Linear(6, 6);
    value = new Linear(6, 6);
    out = new Linear(6, 2);
    forward(x: Tensor): Tensor {
      return this.out.forward(this.query.forward(x).relu().add(this.value.forward(x)));
    }
  }
  const net = new Net();
  const x = torch.keep(torch.randn([5, 6]));
  const y0 = torch.keep(net.forward(x).detach());
  const replaced = applyLoRA(net, /^(query|value)$/, { r: 2, alpha: 4 });
  assert.deepEqual(replaced, ["query", "value"]);
  assert.ok(net.query instanceof LoRALinear);
  assertClose(net.forward(x), y0.toArray(), 1e-6); // B = 0: same outputs
  const trainable = [...net.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n);
  assert.deepEqual(trainable, ["query.lora_A.weight", "query.lora_B.weight", "value.lora_A.weight", "value.lora_B.weight"]);
  const before = new Map([...net.stateDict()].map(([k, v]) => [k, torch.keep(v.clone())]));
  const opt = new AdamW(net.parameters().filter((p) => p.requiresGrad), { lr: 0.05 });
  for (let i = 0; i < 5; i++) {
    torch.scope(() => net.forward(x).square().mean().backward());
    opt.step();
    opt.zeroGrad();
  }
  for (const [name, t] of net.stateDict()) assert.equal(t.equal(before.get(name)!), !/lora_/.test(name), name);
  const yLora = torch.keep(net.forward(x).detach());
  (net.query as LoRALinear).merge();
  (net.value as LoRALinear).merge();
  assertClose(net.forward(x), yLora.toArray(), 1e-5);
  (net.query as LoRALinear).unmerge();
  assertClose(net.query.weight, before.get("query.weight")!.toArray(), 1e-6);
  torch.dispose([x, y0, yLora, ...before.values()]);
  opt.dispose();
});

// The configurable Transformer (model_type "lmforge"): each switch against an independent
// computation. BERT's and Llama's own modules with copied weights are the strong checks of the
// post-LayerNorm/learned/GELU and pre-RMSNorm/rotary/SwiGLU compositions; the rest are hand
// values (ALiBi's slopes as the paper's code computes them, the norm placements on a 4-vector,
// T5's buckets at short distances), a hand-built band mask, parameter arithmetic, the errors
// that name both keys, a save/reload round trip, and a short pretraining run whose loss falls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { LayerNorm, applyRotary, attention, mergeHeads } from "../src/nn/index.js";
import { AutoModelForMaskedLM, bert, llama, loadReport, savePretrained } from "../src/models/index.js";
import { LmforgeForCausalLM, LmforgeForMaskedLM, LmforgeModel, lmforgeConfig, parseArch } from "../src/models/variants/model.js";
import type { LmforgeConfig } from "../src/models/variants/model.js";
import { SelfAttention, localWindowMask } from "../src/models/variants/attention.js";
import { residual } from "../src/models/variants/norms.js";
import { alibiBias, alibiSlopes, rotaryFor } from "../src/models/variants/positions.js";
import { trainTokenizerFromTexts, saveTokenizer } from "../src/tokenizers/index.js";
import { embeddedCorpus } from "../src/data/index.js";
import { pretrain } from "../src/train/index.js";
import "../src/generate/index.js";
import { assertClose, tempDir } from "./helpers.js";

const dir = await tempDir();
process.env.LMFORGE_CACHE = join(dir, "cache");

// hidden 32, 2 layers, 4 heads (STYLE 9's tiny config)
const TINY = { vocab_size: 50, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 48, max_position_embeddings: 16, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 };
const cfg = (switches: Record<string, unknown> = {}): LmforgeConfig => lmforgeConfig({ ...TINY, ...switches });
const ids = (): Tensor => torch.tensor([[3, 7, 1, 9, 4, 4, 12], [5, 2, 8, 30, 0, 0, 0]], { dtype: "int64" });
const padding = (): Tensor => torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]], { dtype: "int64" });

function maxDiff(a: Tensor, b: Tensor): number {
  return torch.scope(() => a.sub(b).abs().max().item());
}

/** Every parameter drawn afresh, norm weights around 1, so that a wrong mapping or a skipped term shows. */
function randomise(model: { namedParameters(): Iterable<[string, Tensor]> }, seed: number): void {
  torch.manualSeed(seed);
  torch.noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      torch.scope(() => {
        const r = torch.randn([...p.shape]).mul(0.3);
        p.copy_(/(norm|LayerNorm)\.weight$/.test(name) ? r.add(1) : r);
      });
    }
  });
}

/** A state dict renamed by rules (first match wins); unmatched names are dropped. */
function renamed(from: Map<string, Tensor>, rules: [RegExp, string][]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, t] of from) {
    const rule = rules.find(([re]) => re.test(name));
    if (rule) out.set(name.replace(rule[0], rule[1]), t);
  }
  return out;
}

test("RoPE: q·k after rotation depends only on the offset, and at offset 0 equals the plain product", () => {
  torch.manualSeed(1);
  const c = cfg({ positions: "rotary" });
  const D = 8; // hidden 32 / 4 heads
  const q = torch.randn([1, 1, 1, D]);
  const k = torch.randn([1, 1, 1, D]);
  const at = (x: Tensor, pos: number): Tensor => applyRotary(x, rotaryFor(c, torch.tensor([[pos]], { dtype: "int64" })));
  const dot = (m: number, n: number): number => at(q, m).mul(at(k, n)).sum().item();
  const plain = q.mul(k).sum().item();
  for (const p of [0, 3, 11]) assert.ok(Math.abs(dot(p, p) - plain) < 1e-5, `offset 0 at ${p}: ${dot(p, p)} vs ${plain}`);
  assert.ok(Math.abs(dot(3, 1) - dot(9, 7)) < 1e-5, `${dot(3, 1)} vs ${dot(9, 7)}`);
  assert.ok(Math.abs(dot(1, 3) - dot(12, 14)) < 1e-5);
  assert.ok(Math.abs(dot(3, 1) - dot(3, 2)) > 1e-3, "a different offset gives a different product");
});

test("ALiBi slopes as Press et al.'s code: 8 heads 1/2..1/256; 12 heads the 8 of 8 then every other of 16", () => {
  assert.deepEqual(alibiSlopes(8), [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]);
  const twelve = alibiSlopes(12);
  const expected = [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5].map((e) => 2 ** -e);
  assert.equal(twelve.length, 12);
  twelve.forEach((s, i) => assert.ok(Math.abs(s - expected[i]!) < 1e-12, `head ${i}: ${s} vs ${expected[i]}`));
  // 4 heads: 2^(-8/4) = 1/4 and its powers
  assert.deepEqual(alibiSlopes(4), [1 / 4, 1 / 16, 1 / 64, 1 / 256]);
  // the bias: -slope · |i - j|
  assertClose(alibiBias([0.5, 0.25], 3, 3), [[[[0, -0.5, -1], [-0.5, 0, -0.5], [-1, -0.5, 0]], [[0, -0.25, -0.5], [-0.25, 0, -0.25], [-0.5, -0.25, 0]]]]);
});

test("norm placement on x = [1, 2, 3, 4], f(h) = 2h + 1: post LN(x + f(x)), pre x + f(LN(x)), sandwich x + LN(f(LN(x)))", () => {
  const x = torch.tensor([[1, 2, 3, 4]]);
  const norm = new LayerNorm(4, 1e-12);
  const after = new LayerNorm(4, 1e-12);
  const f = (h: Tensor): Tensor => h.mul(2).add(1);
  // LN([1, 2, 3, 4]) = ([1, 2, 3, 4] - 2.5) / sqrt(1.25); LN is blind to 3x + 1 and to 2h + 1
  const n = [-1.5, -0.5, 0.5, 1.5].map((v) => v / Math.sqrt(1.25));
  assertClose(residual("post", x, norm, null, f), [n], 1e-5, "post");
  assertClose(residual("pre", x, norm, null, f), [n.map((v, i) => i + 1 + 2 * v + 1)], 1e-5, "pre");
  assertClose(residual("sandwich", x, norm, after, f), [n.map((v, i) => i + 1 + v)], 1e-5, "sandwich");
  // structure: post norms the embeddings and has no final norm; pre the reverse; sandwich adds a norm per branch
  const names = (s: Record<string, unknown>): string[] => [...new LmforgeModel(cfg(s)).stateDict().keys()];
  const post = names({ norm: "post" });
  const pre = names({ norm: "pre" });
  const sandwich = names({ norm: "sandwich" });
  assert.ok(post.includes("embeddings.norm.weight") && !post.some((k) => k.startsWith("encoder.final_norm")));
  assert.ok(!pre.includes("embeddings.norm.weight") && pre.includes("encoder.final_norm.weight"));
  assert.ok(!pre.some((k) => k.includes("post_norm")));
  assert.deepEqual(sandwich.filter((k) => k.startsWith("encoder.layer.0.") && k.includes("norm.weight")), ["encoder.layer.0.attention_norm.weight", "encoder.layer.0.attention_post_norm.weight", "encoder.layer.0.ffn_norm.weight", "encoder.layer.0.ffn_post_norm.weight"]);
  assert.ok(!names({ norm: "pre", norm_type: "rmsnorm" }).some((k) => k.endsWith("norm.bias")), "RMSNorm has no bias");
});

test("post, layernorm, learned, gelu, softmax with BERT's weights equals BertModel (padding included)", () => {
  const b = new bert.BertModel(bert.bertConfig({ ...TINY, type_vocab_size: 2 }));
  randomise(b, 2);
  b.eval();
  const m = new LmforgeModel(cfg({ norm: "post", norm_type: "layernorm", positions: "learned", ffn: "gelu", attention: "softmax", type_vocab_size: 2 }));
  m.eval();
  const sd = renamed(b.stateDict(), [
    [/^embeddings\.LayerNorm\./, "embeddings.norm."],
    [/^embeddings\./, "embeddings."],
    [/^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\./, "encoder.layer.$1.attention.$2."],
    [/^encoder\.layer\.(\d+)\.attention\.output\.dense\./, "encoder.layer.$1.attention.output."],
    [/^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\./, "encoder.layer.$1.attention_norm."],
    [/^encoder\.layer\.(\d+)\.intermediate\.dense\./, "encoder.layer.$1.ffn.up."],
    [/^encoder\.layer\.(\d+)\.output\.dense\./, "encoder.layer.$1.ffn.down."],
    [/^encoder\.layer\.(\d+)\.output\.LayerNorm\./, "encoder.layer.$1.ffn_norm."],
  ]);
  m.loadStateDict(sd); // strict: every tensor of each side has its counterpart
  const types = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0]], { dtype: "int64" });
  const input = { inputIds: ids(), attentionMask: padding(), tokenTypeIds: types };
  const want = b.forward(input).lastHiddenState;
  const got = m.forward(input).lastHiddenState;
  assert.deepEqual(got.shape, [2, 7, 32]);
  assert.ok(maxDiff(got, want) < 1e-5, `max difference ${maxDiff(got, want)}`);
});

test("pre, rmsnorm, rotary, swiglu, softmax, causal with Llama's weights equals LlamaModel", () => {
  const { hidden_dropout_prob: _h, attention_probs_dropout_prob: _a, ...sizes } = TINY;
  const l = new llama.LlamaModel(llama.llamaConfig({ ...sizes, rms_norm_eps: 1e-6 }));
  randomise(l, 3);
  l.eval();
  const m = new LmforgeModel(cfg({ norm: "pre", norm_type: "rmsnorm", positions: "rotary", ffn: "swiglu", attention: "softmax", causal: true, use_bias: false, type_vocab_size: 0, layer_norm_eps: 1e-6, pad_token_id: null }));
  m.eval();
  const proj: Record<string, string> = { q_proj: "query", k_proj: "key", v_proj: "value", o_proj: "output" };
  const sd = renamed(l.stateDict(), [
    [/^embed_tokens\./, "embeddings.word_embeddings."],
    [/^norm\./, "encoder.final_norm."],
    [/^layers\.(\d+)\.input_layernorm\./, "encoder.layer.$1.attention_norm."],
    [/^layers\.(\d+)\.post_attention_layernorm\./, "encoder.layer.$1.ffn_norm."],
    [/^layers\.(\d+)\.mlp\.(gate|up|down)_proj\./, "encoder.layer.$1.ffn.$2."],
    ...Object.entries(proj).map(([from, to]): [RegExp, string] => [new RegExp(`^layers\\.(\\d+)\\.self_attn\\.${from}\\.`), `encoder.layer.$1.attention.${to}.`]),
  ]);
  m.loadStateDict(sd);
  const want = l.forward({ inputIds: ids(), attentionMask: padding() }).lastHiddenState;
  const got = m.forward({ inputIds: ids(), attentionMask: padding() }).lastHiddenState;
  // the padded row's real positions only (what sits at padding is unused)
  assert.ok(maxDiff(got.narrow(0, 0, 1), want.narrow(0, 0, 1)) < 1e-5, `row 0: ${maxDiff(got.narrow(0, 0, 1), want.narrow(0, 0, 1))}`);
  assert.ok(maxDiff(got.narrow(0, 1, 1).narrow(1, 0, 4), want.narrow(0, 1, 1).narrow(1, 0, 4)) < 1e-5);
  // causal: the first token's output does not move when later tokens change
  const other = torch.tensor([[3, 40, 41, 42, 43, 44, 45]], { dtype: "int64" });
  assert.ok(maxDiff(m.forward({ inputIds: other }).lastHiddenState.narrow(1, 0, 1), got.narrow(0, 0, 1).narrow(1, 0, 1)) < 1e-5);
});

test("attention=local equals softmax attention under a hand-built band mask (both directions, and causal)", () => {
  torch.manualSeed(4);
  const T = 6;
  const x = torch.randn([2, T, 32]);
  for (const causal of [false, true]) {
    const local = new SelfAttention(cfg({ attention: "local", window: 2 }), causal);
    const full = new SelfAttention(cfg(), causal);
    full.loadStateDict(local.stateDict());
    local.eval();
    full.eval();
    // keys j with |i - j| <= 2, and j <= i when causal: written out, not computed by the module's helper
    const band = torch.tensor(Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (Math.abs(i - j) <= 2 && (!causal || j <= i) ? 0 : -1e30)))).view([1, 1, T, T]);
    const ctx = (mask: Tensor) => ({ positions: { rope: null, bias: null }, padding: null, mask, causal: false, returnProbs: false });
    const got = local.forward(x, ctx(localWindowMask(T, T, 2, causal))).out;
    const want = full.forward(x, ctx(band)).out;
    assert.ok(maxDiff(got, want) < 1e-5, `causal ${causal}: ${maxDiff(got, want)}`);
    // and not what unrestricted attention gives
    assert.ok(maxDiff(got, full.forward(x, ctx(torch.zeros([1, 1, T, T]))).out) > 1e-3);
  }
  // the model: one layer with window 1, token 0's output sees tokens 0 and 1 only
  const m = new LmforgeModel(lmforgeConfig({ ...TINY, num_hidden_layers: 1, attention: "local", window: 1 }));
  m.eval();
  const h = (row: number[]) => m.forward({ inputIds: torch.tensor([row], { dtype: "int64" }) }).lastHiddenState.select(1, 0);
  const base = h([3, 7, 1, 9, 4]);
  assert.ok(maxDiff(base, h([3, 7, 20, 21, 22])) < 1e-6, "tokens beyond the window leave token 0 alone");
  assert.ok(maxDiff(base, h([3, 8, 1, 9, 4])) > 1e-4, "the neighbour inside the window counts");
  // the reference attention with the same mask, through nn's attention(): same numbers as the module's path
  const q = torch.randn([1, 4, T, 8]);
  const r1 = mergeHeads(attention(q, q, q, { mask: localWindowMask(T, T, 1, false) }).context);
  const r2 = mergeHeads(attention(q, q, q, { mask: torch.tensor(Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (Math.abs(i - j) <= 1 ? 0 : -1e30)))).view([1, 1, T, T]) }).context);
  assert.ok(maxDiff(r1, r2) < 1e-6);
});

test("positions=relative adds T5's bucketed bias (short distances: bucket |j - i|, +16 ahead); alibi and relative train", () => {
  const m = new LmforgeModel(cfg({ positions: "relative" }));
  const table = m.relative_attention_bias!.relative_attention_bias.weight; // (32, H)
  const bias = m.relative_attention_bias!.forward(3, 3); // (1, H, 3, 3)
  for (const [i, j] of [[0, 0], [0, 2], [2, 0], [1, 2]] as const) {
    const bucket = Math.abs(j - i) + (j > i ? 16 : 0);
    for (let h = 0; h < 4; h++) assert.equal(bias.select(0, 0).select(0, h).select(0, i).select(0, j).item(), table.select(0, bucket).select(0, h).item());
  }
  for (const positions of ["relative", "alibi", "none"]) {
    const mm = new LmforgeForMaskedLM(cfg({ positions, norm: "pre" }));
    const labels = torch.tensor([[-100, 7, -100, -100, 4, -100, -100], [5, -100, -100, -100, -100, -100, -100]], { dtype: "int64" });
    const out = mm.forward({ inputIds: ids(), attentionMask: padding(), labels });
    assert.ok(Number.isFinite(out.loss!.item()), positions);
    out.loss!.backward();
    if (positions === "relative") assert.ok(mm.lmforge.relative_attention_bias!.relative_attention_bias.weight.grad!.abs().sum().item() > 0, "the bias table gets a gradient");
  }
});

test("share_groups: fewer parameters, one block per group, and the same numbers as unshared layers with equal weights", () => {
  const unshared = new LmforgeModel(cfg({ num_hidden_layers: 4 }));
  const shared = new LmforgeModel(cfg({ num_hidden_layers: 4, share_groups: 2 }));
  const block = unshared.encoder.layer.at(0).numParameters();
  assert.equal(shared.encoder.layer.length, 2);
  assert.equal(unshared.numParameters() - shared.numParameters(), 2 * block);
  assert.ok(![...shared.stateDict().keys()].some((k) => k.startsWith("encoder.layer.2.")));
  // one group of two layers against two layers holding the same tensors' values
  const one = new LmforgeModel(cfg({ share_groups: 1 }));
  const two = new LmforgeModel(cfg());
  one.eval();
  two.eval();
  const sd = new Map<string, Tensor>();
  for (const [k, t] of one.stateDict()) {
    sd.set(k, t);
    if (k.startsWith("encoder.layer.0.")) sd.set(k.replace("encoder.layer.0.", "encoder.layer.1."), t);
  }
  two.loadStateDict(sd);
  const a = one.forward({ inputIds: ids(), attentionMask: padding() }).lastHiddenState;
  const b = two.forward({ inputIds: ids(), attentionMask: padding() }).lastHiddenState;
  assert.ok(maxDiff(a, b) < 1e-6);
  // and a single layer alone differs (the shared block really runs twice)
  const single = new LmforgeModel(lmforgeConfig({ ...TINY, num_hidden_layers: 1 }));
  single.loadStateDict(one.stateDict());
  single.eval();
  assert.ok(maxDiff(single.forward({ inputIds: ids() }).lastHiddenState, one.forward({ inputIds: ids() }).lastHiddenState) > 1e-3);
});

test("embedding_size factorises the embeddings: V x E table, E -> C projection, a tied MLM decoder of E", () => {
  const m = new LmforgeForMaskedLM(cfg({ embedding_size: 16 }));
  const e = m.lmforge.embeddings;
  assert.deepEqual(e.word_embeddings.weight.shape, [50, 16]);
  assert.deepEqual(e.position_embeddings!.weight.shape, [16, 16]);
  assert.deepEqual(e.projection!.weight.shape, [32, 16]);
  assert.equal(m.mlm_head.decoder.weight, e.word_embeddings.weight, "tied: the same tensor");
  const out = m.forward({ inputIds: ids() });
  assert.deepEqual(out.lastHiddenState.shape, [2, 7, 32]);
  assert.deepEqual(out.logits.shape, [2, 7, 50]);
  // V·E + P·E + 2·E (types) + 2·E (norm) + E·C + C against V·C + P·C + 2·C + 2·C
  const base = new LmforgeModel(cfg()).embeddings.numParameters();
  assert.equal(base, 50 * 32 + 16 * 32 + 2 * 32 + 2 * 32);
  assert.equal(e.numParameters(), 50 * 16 + 16 * 16 + 2 * 16 + 2 * 16 + 16 * 32 + 32);
  const clm = new LmforgeForCausalLM(cfg({ embedding_size: 16 }));
  assert.deepEqual(clm.forward({ inputIds: ids() }).logits.shape, [2, 7, 50]);
  assert.equal(clm.lm_head.weight, clm.lmforge.embeddings.word_embeddings.weight);
});

test("invalid combinations are errors naming both keys", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ positions: "relative", attention: "performer" }, /positions=relative.*attention=performer/],
    [{ positions: "alibi", attention: "performer" }, /positions=alibi.*attention=performer/],
    [{ causal: true, conv: "parallel", conv_causal: false }, /causal=true.*conv_causal=false/],
    [{ attention: "local" }, /attention=local needs window/],
    [{ window: 4 }, /window=4.*attention=softmax/],
    [{ performer_features: 64 }, /performer_features=64.*attention=softmax/],
    [{ attention: "local", window: 2, performer_redraw_every: 100 }, /performer_redraw_every=100.*attention=local/],
    [{ num_hidden_layers: 4, share_groups: 3 }, /share_groups=3.*num_hidden_layers=4/],
    [{ num_hidden_layers: 4, share_groups: 2, conv_only_layers: 2 }, /share_groups=2.*conv_only_layers=2/],
    [{ num_attention_heads: 32, positions: "rotary" }, /positions=rotary.*num_attention_heads = 1/],
    [{ norm: "middle" }, /norm must be one of post, pre, sandwich, got "middle"/],
    [{ ffn: "mish" }, /ffn must be one of gelu, relu, swiglu, geglu/],
    [{ hidden_layers: 2 }, /unknown key for lmforge: hidden_layers/],
  ];
  for (const [keys, re] of bad) assert.throws(() => cfg(keys), re, JSON.stringify(keys));
  assert.throws(() => new LmforgeForCausalLM(cfg({ causal: false })), /LmforgeForCausalLM needs causal=true, the config has causal=false/);
  assert.throws(() => new LmforgeForCausalLM(cfg({ conv_causal: false, conv: "before" })), /causal=true does not go with conv_causal=false/);
  // --arch text: typed by the schema, unknown keys listed
  assert.deepEqual(parseArch("norm=pre,positions=rotary,ffn=swiglu,window=64,causal=true,share_groups=null"), { norm: "pre", positions: "rotary", ffn: "swiglu", window: 64, causal: true, share_groups: null });
  assert.throws(() => parseArch("normal=pre"), /unknown key "normal"; known: hidden_size, .*norm, norm_type, positions/);
  assert.throws(() => parseArch("window=wide"), /window must be an integer, got "wide"/);
  assert.throws(() => parseArch("causal=yes"), /causal must be true or false/);
});

test("hybrid blocks: where the convolution module sits (before, parallel, conv-only layers); the Performer in the attention", () => {
  // the forward is the convolution module's (src/nn/conv.ts, branch linattn); here the wiring
  const names = (s: Record<string, unknown>): string[] => [...new Set([...new LmforgeModel(cfg({ num_hidden_layers: 4, ...s })).namedModules()].map(([n]) => n))];
  const before = names({ conv: "before", conv_kernel: 5 });
  assert.ok(before.includes("encoder.layer.0.conv") && before.includes("encoder.layer.0.conv_norm") && before.includes("encoder.layer.0.attention"));
  const parallel = names({ conv: "parallel" });
  assert.ok(parallel.includes("encoder.layer.3.conv") && !parallel.includes("encoder.layer.3.conv_norm"), "parallel: the conv reads the attention's normed input");
  assert.ok(!names({}).some((n) => n.endsWith(".conv")));
  // every 2nd layer convolution-only: layers 1 and 3 (counting from 0) lose their attention
  const every2 = new LmforgeModel(cfg({ num_hidden_layers: 4, conv_only_layers: 2 }));
  assert.deepEqual([0, 1, 2, 3].map((i) => every2.encoder.layer.at(i).kind), ["attention", "conv", "attention", "conv"]);
  assert.equal(every2.encoder.layer.at(1).attention, null);
  // attention=performer: the FAVOR+ module (src/nn/performer.ts) in each layer's attention, with rotary positions allowed
  const performer = names({ attention: "performer", positions: "rotary", performer_features: 16 });
  assert.ok(performer.includes("encoder.layer.0.attention.performer"));
  assert.ok(!names({}).some((n) => n.endsWith(".performer")));
});

test("LmforgeForCausalLM.generate: greedy decoding equals the argmax of a full recompute, step by step", () => {
  const m = new LmforgeForCausalLM(cfg({ norm: "pre", positions: "alibi", ffn: "swiglu" }));
  randomise(m, 6);
  m.eval();
  const prompt = torch.tensor([[3, 7, 1]], { dtype: "int64" });
  const got = m.generate(prompt, { maxNewTokens: 3, doSample: false }) as Tensor;
  const row = [3, 7, 1];
  for (let i = 0; i < 3; i++) {
    const logits = torch.noGrad(() => m.forward({ inputIds: torch.tensor([row], { dtype: "int64" }) }).logits);
    row.push(logits.select(1, row.length - 1).argmax(-1).item());
  }
  assert.deepEqual(got.toArray(), [row]);
});

test("savePretrained and fromPretrained round-trip the switches and the numbers", async () => {
  const switches = { norm: "sandwich", norm_type: "rmsnorm", positions: "alibi", ffn: "geglu", attention: "local", window: 2, num_hidden_layers: 4, share_groups: 2, embedding_size: 16 };
  const m = new LmforgeForMaskedLM(cfg(switches));
  randomise(m, 5);
  m.eval();
  const out = join(dir, "roundtrip");
  savePretrained(m, out);
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(saved.model_type, "lmforge");
  assert.deepEqual(saved.architectures, ["LmforgeForMaskedLM"]);
  for (const [k, v] of Object.entries(switches)) assert.equal(saved[k], v, k);
  const back = (await AutoModelForMaskedLM.fromPretrained(out, { verbose: false })) as LmforgeForMaskedLM;
  assert.ok(back instanceof LmforgeForMaskedLM);
  const report = loadReport(back)!;
  assert.deepEqual([report.missingKeys, report.unexpectedKeys, report.mismatchedKeys], [[], [], []]);
  const input = { inputIds: ids(), attentionMask: padding() };
  assert.ok(maxDiff(back.forward(input).logits, m.forward(input).logits) < 1e-6);
});

test("lmforge pretrain --model lmforge-tiny --arch norm=pre,positions=rotary,ffn=swiglu --objectives clm: 20 steps, the loss falls", async () => {
  const docs = embeddedCorpus("moby-dick").slice(0, 8);
  const tok = trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 400, lowercase: true });
  const tdir = join(dir, "tok");
  saveTokenizer(tok, tdir);
  const losses: number[] = [];
  const out = join(dir, "pretrain");
  const r = await pretrain({ model: "lmforge-tiny", arch: parseArch("norm=pre,positions=rotary,ffn=swiglu"), tokenizer: tdir, objectives: "clm", documents: docs, maxSteps: 20, batchSize: 8, seqLen: 32, learningRate: 3e-3, warmupSteps: 2, out, evalEvery: 20, evalBatches: 2, seed: 1, onStep: (s) => losses.push(s.loss) });
  assert.equal(r.steps, 20);
  assert.ok(r.model instanceof LmforgeForCausalLM);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-4)) < mean(losses.slice(0, 4)) - 0.3, `losses ${losses.map((l) => l.toFixed(2)).join(" ")}`);
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
  assert.deepEqual([saved.norm, saved.positions, saved.ffn, saved.causal, saved.architectures], ["pre", "rotary", "swiglu", true, ["LmforgeForCausalLM"]]);
  await assert.rejects(pretrain({ model: "bert-tiny", arch: { norm: "pre" }, tokenizer: tdir, objectives: "mlm", documents: docs, maxSteps: 1, out: join(dir, "bad") }), /--arch sets the switches of a fresh lmforge model: --model must be one of its presets \(lmforge-tiny, lmforge-mini, lmforge-vit-tiny, lmforge-vit-mini\), not bert-tiny/);
});

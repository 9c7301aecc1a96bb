// Llama: parity with Hugging Face's numbers on the hf-ref-v2 checkpoint (logits, hidden states,
// loss, left padding, greedy generation with its scores and positions, the eos override), and
// the switches that fixture cannot show, each against a hand computation: grouped-query
// attention, attention biases, the sliding window, rotary embeddings, checkpoints with and
// without inv_freq buffers, and the key/value cache's blocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { KVCache, applyRotary, inverseFrequencies, rotaryTables, slidingWindowMask } from "../src/nn/index.js";
import { AutoModelForCausalLM, AutoModelForSequenceClassification, architecture, loadReport, llama, presetConfig, savePretrained } from "../src/models/index.js";
import { loadSafetensors, saveSafetensors } from "../src/io/index.js";
import { generate, generateOutput } from "../src/generate/index.js";
import { applyStrategy } from "../src/train/index.js";
import { assertClose, fixture, tempDir } from "./helpers.js";

const dir = await tempDir();
const TOL = 5e-5; // the fixture README's tolerance for float32
const T = (x: unknown): Tensor => torch.tensor(x as number[][], { dtype: "int64" });

type Nested = number | Nested[];
/** Max |a - b|, over the (batch, position) pairs where mask is 1 when given. */
function maxDiff(t: Tensor, expected: Nested, mask?: number[][]): number {
  let m = 0;
  const walk = (x: Nested, y: Nested, path: number[]): void => {
    if (Array.isArray(x)) x.forEach((v, i) => (mask && path.length === 1 && mask[path[0]!]![i] === 0 ? undefined : walk(v, (y as Nested[])[i]!, [...path, i])));
    else m = Math.max(m, Math.abs(x - (y as number)));
  };
  walk(t.toArray() as Nested, expected, []);
  return m;
}

const ref = JSON.parse(readFileSync(fixture("hf-ref-v2/llama.reference.json"), "utf8")) as { inputs: Record<string, number[][]> & { max_new_tokens: number; eos_token_id_override: number }; outputs: Record<string, Nested> };
const modelDir = fixture("hf-ref-v2/llama");
const load = async (d = modelDir) => (await AutoModelForCausalLM.fromPretrained(d, { verbose: false })) as llama.LlamaForCausalLM;

test("Llama parity: logits, hidden states, loss and left-padded logits equal Hugging Face's", async () => {
  const m = await load();
  assert.ok(m instanceof llama.LlamaForCausalLM);
  // the file's rotary_emb.inv_freq buffers are accepted and ignored; nothing is missing
  assert.deepEqual(loadReport(m), { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [], initialized: [] });
  assert.notEqual(m.lm_head.weight, m.model.embed_tokens.weight, "untied head");
  const i = ref.inputs;
  const o = ref.outputs;
  torch.noGrad(() => torch.scope(() => {
    const out = m.forward({ inputIds: T(i.input_ids), labels: T(i.labels), outputHiddenStates: true });
    assert.ok(maxDiff(out.logits, o.logits!) < TOL);
    const hs = o.hidden_states as Nested[];
    assert.equal(out.hiddenStates!.length, hs.length);
    out.hiddenStates!.forEach((h, k) => assert.ok(maxDiff(h, hs[k]!) < TOL, `hidden state ${k}`));
    assert.ok(Math.abs(out.loss!.item() - (o.loss as number)) < TOL);
    const mask = i.left_padded_attention_mask;
    const padded = m.forward({ inputIds: T(i.left_padded_input_ids), attentionMask: T(mask), positionIds: T(i.left_padded_position_ids_generate_style) });
    assert.ok(maxDiff(padded.logits, o.logits_left_padded_generate_positions!, mask) < TOL);
    // without position ids the padded row's tokens sit at 4..11: rotary attention sees only differences
    const arange = m.forward({ inputIds: T(i.left_padded_input_ids), attentionMask: T(mask) });
    assert.ok(maxDiff(arange.logits, o.logits_left_padded_generate_positions!, mask) < TOL);
  }));
});

test("Llama generation parity: greedy tokens and every step's scores, the left-padded batch with the positions fed, the eos override", async () => {
  const m = await load();
  const i = ref.inputs;
  const o = ref.outputs;
  const single = generateOutput(m, T(i.prompt), { maxNewTokens: i.max_new_tokens, outputScores: true });
  assert.deepEqual(single.sequences.toArray(), o.greedy_generate_prompt_then_new_tokens);
  const scores = o.greedy_generate_scores as number[][];
  assert.equal(single.scores!.length, scores.length);
  single.scores!.forEach((s, k) => assert.ok(maxDiff(s, [scores[k]!]) < TOL, `scores at step ${k}`));
  // the closest greedy call is a margin of 0.0054: the scores are right to far better than that
  assert.ok(Math.min(...(o.greedy_generate_top1_minus_top2_logit_per_step as number[])) > 100 * TOL);
  const fed: number[][][] = [];
  const batch = generate(m, T(i.batch_prompt), { attentionMask: T(i.batch_prompt_attention_mask), maxNewTokens: i.max_new_tokens, onForward: (x) => fed.push(x.positionIds.toArray() as number[][]) });
  assert.deepEqual(batch.toArray(), o.greedy_generate_batch_left_padded);
  assert.deepEqual(fed, o.greedy_generate_batch_position_ids_fed_per_step);
  const eos = generate(m, T(i.batch_prompt), { attentionMask: T(i.batch_prompt_attention_mask), maxNewTokens: i.max_new_tokens, eosTokenId: i.eos_token_id_override });
  assert.deepEqual(eos.toArray(), o.greedy_generate_batch_eos_override);
  // the model's own method, and the path without a cache (the whole sequence each step), agree
  assert.deepEqual(m.generate(T(i.batch_prompt), { attentionMask: T(i.batch_prompt_attention_mask), maxNewTokens: i.max_new_tokens, useCache: false }).toArray(), o.greedy_generate_batch_left_padded);
});

test("checkpoints load with and without rotary_emb.inv_freq; savePretrained writes none", async () => {
  const tensors = loadSafetensors(join(modelDir, "model.safetensors"));
  assert.equal([...tensors.keys()].filter((k) => k.endsWith("rotary_emb.inv_freq")).length, 2);
  // the buffer holds what the rotary module computes: 1 / 10000^(2i / 12)
  assertClose(tensors.get("model.layers.0.self_attn.rotary_emb.inv_freq")!, Array.from({ length: 6 }, (_, k) => 1 / 10000 ** ((2 * k) / 12)), 1e-6);
  const without = join(dir, "no-inv-freq");
  const { mkdirSync, copyFileSync } = await import("node:fs");
  mkdirSync(without);
  copyFileSync(join(modelDir, "config.json"), join(without, "config.json"));
  saveSafetensors(join(without, "model.safetensors"), new Map([...tensors].filter(([k]) => !k.endsWith("inv_freq"))));
  const a = await load();
  const b = await load(without);
  assert.deepEqual(loadReport(b), { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [], initialized: [] });
  const ids = T(ref.inputs.input_ids);
  torch.noGrad(() => assert.equal(a.forward({ inputIds: ids }).logits.sub(b.forward({ inputIds: ids }).logits).abs().max().item(), 0));
  const saved = join(dir, "saved");
  savePretrained(b, saved);
  const names = [...loadSafetensors(join(saved, "model.safetensors")).keys()];
  assert.ok(!names.some((n) => n.includes("inv_freq")) && names.includes("lm_head.weight") && names.includes("model.layers.1.mlp.down_proj.weight"), names.join(", "));
});

test("rotary embeddings: Hugging Face's rotate_half layout, by hand", () => {
  assertClose(inverseFrequencies(4, 10000), [1, 0.01], 1e-7);
  const x = torch.tensor([1, 2, 3, 4], { dtype: "float32", shape: [1, 1, 1, 4] });
  const tables = rotaryTables(T([[3]]), inverseFrequencies(4, 10000)); // position 3: angles 3, 0.03 for each half
  // x·cos + (-x3, -x4, x1, x2)·sin
  const [c1, c2, s1, s2] = [Math.cos(3), Math.cos(0.03), Math.sin(3), Math.sin(0.03)];
  assertClose(applyRotary(x, tables), [[[[1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2]]]], 1e-6);
  // a dot product of rotated vectors depends only on the distance between their positions
  const q = torch.randn([1, 1, 1, 8]);
  const k = torch.randn([1, 1, 1, 8]);
  const inv = inverseFrequencies(8, 10000);
  const dot = (pq: number, pk: number): number => applyRotary(q, rotaryTables(T([[pq]]), inv)).mul(applyRotary(k, rotaryTables(T([[pk]]), inv))).sum().item();
  assert.ok(Math.abs(dot(7, 2) - dot(15, 10)) < 1e-5);
  assert.ok(Math.abs(dot(7, 2) - dot(7, 5)) > 1e-3);
});

const tinyConfig = { model_type: "llama", vocab_size: 40, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 64, pad_token_id: 0 };

/** A model of a config whose weights are drawn from a seed (the same seed, the same weights wherever names match). */
function seeded(config: Record<string, unknown>, seed = 7): llama.LlamaForCausalLM {
  torch.manualSeed(seed);
  const m = AutoModelForCausalLM.fromConfig(config) as llama.LlamaForCausalLM;
  torch.noGrad(() => { for (const p of m.parameters()) p.add_(torch.randnLike(p).mul(0.05)); });
  return m.eval();
}

test("grouped-query attention equals multi-head attention whose key/value heads are repeated", () => {
  const gqa = seeded({ ...tinyConfig, num_key_value_heads: 2 });
  const mha = seeded(tinyConfig, 8);
  const D = 8; // head_dim: 32 / 4
  const sd = gqa.stateDict();
  torch.noGrad(() => {
    for (const [name, p] of mha.stateDict()) {
      const src = sd.get(name)!;
      if (/self_attn\.(k|v)_proj\.weight$/.test(name)) {
        // query head h reads key/value head floor(h / 2): rows of head g are rows g·D .. g·D + D of the GQA weight
        const rows = Array.from({ length: 4 * D }, (_, r) => Math.floor(Math.floor(r / D) / 2) * D + (r % D));
        p.copy_(src.indexSelect(0, T(rows).view([-1])));
      } else p.copy_(src);
    }
  });
  assert.deepEqual(gqa.model.layers.at(0).self_attn.k_proj.weight.shape, [16, 32]);
  const ids = T([[1, 5, 9, 2, 33, 7, 7, 4], [0, 0, 3, 8, 21, 5, 6, 1]]);
  const mask = T([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 1]]);
  torch.noGrad(() => {
    const a = gqa.forward({ inputIds: ids, attentionMask: mask }).logits;
    const b = mha.forward({ inputIds: ids, attentionMask: mask }).logits;
    assert.ok(a.sub(b).abs().max().item() < 1e-5);
  });
  // and through the cache, whose buffers hold the 2 key/value heads only
  assert.deepEqual(generate(gqa, ids, { attentionMask: mask, maxNewTokens: 6, eosTokenId: null }).toArray(), generate(mha, ids, { attentionMask: mask, maxNewTokens: 6, eosTokenId: null }).toArray());
});

test("attention_bias: q, k, v and o biases, and what each does to the attention output (v and o by hand)", () => {
  const m = seeded({ ...tinyConfig, attention_bias: true });
  const names = [...m.stateDict().keys()].filter((n) => n.startsWith("model.layers.0.self_attn."));
  assert.deepEqual(names.filter((n) => n.endsWith(".bias")).sort(), ["q_proj", "k_proj", "v_proj", "o_proj"].map((p) => `model.layers.0.self_attn.${p}.bias`).sort());
  const attn = m.model.layers.at(0).self_attn;
  const x = torch.randn([2, 5, 32]);
  const ctx = { rope: rotaryTables(torch.arange(0, 5).unsqueeze(0), inverseFrequencies(8, 10000)), mask: null, causal: true, cache: null, returnProbs: false };
  const run = (): Tensor => torch.noGrad(() => attn.forward(x, ctx).out);
  torch.noGrad(() => [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj].forEach((l) => l.bias!.zero_()));
  const base = run();
  // a value bias b moves every head's context by b (the attention weights sum to 1): the output by W_o b; an o bias adds itself
  const bv = torch.randn([32]);
  const bo = torch.randn([32]);
  torch.noGrad(() => {
    attn.v_proj.bias!.copy_(bv);
    attn.o_proj.bias!.copy_(bo);
  });
  const shift = attn.o_proj.weight.matmul(bv).add(bo);
  assert.ok(run().sub(base).sub(shift).abs().max().item() < 1e-5);
  // query and key biases are rotated with their positions, so both change which keys a query attends to
  // (without rotation a key bias would add q·b to all of a query's scores alike, and change nothing)
  for (const l of [attn.k_proj, attn.q_proj]) {
    const before = run();
    torch.noGrad(() => l.bias!.copy_(torch.randn([32])));
    assert.ok(run().sub(before).abs().max().item() > 1e-3);
  }
});

test("sliding window: the mask by hand; full attention when the window covers the sequence; masked beyond it, with and without the cache", () => {
  // 3 queries after 2 cached positions, window 2: query i (position 2 + i) sees positions 1+i and 2+i
  const allowed = (slidingWindowMask(3, 5, 2).view([3, 5]).toArray() as number[][]).map((r) => r.map((v) => (v === 0 ? 1 : 0)));
  assert.deepEqual(allowed, [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]);
  const ids = T([[3, 9, 14, 2, 8, 30, 5, 11, 6, 19]]);
  const full = seeded(tinyConfig);
  const covering = seeded({ ...tinyConfig, sliding_window: 10 });
  const logits = (m: llama.LlamaForCausalLM, x: Tensor): Tensor => torch.noGrad(() => m.forward({ inputIds: x }).logits);
  assert.equal(logits(full, ids).sub(logits(covering, ids)).abs().max().item(), 0);
  // one layer, window 3: the first token reaches positions 0..2 and no further
  const oneLayer = { ...tinyConfig, num_hidden_layers: 1 };
  const windowed = seeded({ ...oneLayer, sliding_window: 3 });
  const changed = T([[4, 9, 14, 2, 8, 30, 5, 11, 6, 19]]);
  const effect = (logits(windowed, ids).sub(logits(windowed, changed)).abs().amax(-1).toArray() as number[][])[0]!;
  assert.ok(effect.slice(0, 3).every((d) => d > 1e-4), JSON.stringify(effect));
  assert.ok(effect.slice(3).every((d) => d === 0), JSON.stringify(effect));
  const unwindowed = seeded(oneLayer);
  assert.ok(logits(windowed, ids).narrow(1, 3, 7).sub(logits(unwindowed, ids).narrow(1, 3, 7)).abs().max().item() > 1e-4);
  assert.equal(logits(windowed, ids).narrow(1, 0, 3).sub(logits(unwindowed, ids).narrow(1, 0, 3)).abs().max().item(), 0);
  // incremental decoding through the cache (one query, S > window) equals the full forward
  const two = seeded({ ...tinyConfig, sliding_window: 3 });
  const cache = new KVCache({ block: 4 });
  torch.noGrad(() => {
    const all = two.forward({ inputIds: ids }).logits;
    for (let t = 0; t < 10; t++) {
      const step = two.forward({ inputIds: ids.narrow(1, t, 1), kvCache: cache }).logits;
      assert.ok(step.select(1, 0).sub(all.select(1, t)).abs().max().item() < 1e-5, `cached step ${t}`);
    }
  });
  assert.equal(cache.length, 10);
  assert.equal(cache.allocated, 12, "three blocks of 4");
  cache.dispose();
});

test("the key/value cache fills preallocated blocks in place, and reorders rows", () => {
  const cache = new KVCache({ block: 4 });
  const k1 = torch.randn([2, 1, 3, 2]);
  const [a] = cache.update(0, k1, k1.mul(2));
  assert.deepEqual([a.shape, cache.allocated], [[2, 1, 3, 2], 4]);
  const k2 = torch.randn([2, 1, 1, 2]);
  cache.update(0, k2, k2);
  assert.equal(cache.allocated, 4, "the fourth position fits the first block");
  const k3 = torch.randn([2, 1, 2, 2]);
  const [keys, values] = cache.update(0, k3, k3);
  assert.deepEqual([cache.length, cache.allocated], [6, 8]);
  assertClose(keys, torch.cat([k1, k2, k3], 2).toArray(), 0);
  assertClose(values.narrow(2, 0, 3), k1.mul(2).toArray(), 0);
  cache.reorder(T([1, 1, 0]).view([-1]));
  const [after] = cache.update(0, torch.zeros([3, 1, 1, 2]), torch.zeros([3, 1, 1, 2]));
  assertClose(after.narrow(2, 0, 6), torch.cat([k1, k2, k3], 2).indexSelect(0, T([1, 1, 0]).view([-1])).toArray(), 0);
  assert.throws(() => cache.update(0, torch.zeros([2, 1, 1, 2]), torch.zeros([2, 1, 1, 2])), /holds 3 rows, the update has 2/);
  const capacity = new KVCache({ capacity: 50 });
  capacity.update(0, k1, k1);
  assert.equal(capacity.allocated, 50);
  cache.dispose();
  capacity.dispose();
});

test("configs: Hugging Face's defaults, filled-in heads, refusals by name; presets; sequence classification reads the last real token; LoRA and freeze:N from the registry", () => {
  const c = architecture("llama").parseConfig({ model_type: "llama" }, "config.json") as llama.LlamaConfig;
  assert.deepEqual([c.vocab_size, c.hidden_size, c.num_key_value_heads, c.head_dim, c.rope_theta, c.rms_norm_eps, c.tie_word_embeddings, c.bos_token_id, c.eos_token_id], [32000, 4096, 32, 128, 10000, 1e-6, false, 1, 2]);
  assert.throws(() => llama.llamaConfig({ hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 3 }, "c.json"), /c.json: num_attention_heads \(4\) is not a multiple of num_key_value_heads \(3\)/);
  assert.throws(() => llama.llamaConfig({ rope_scaling: { type: "yarn", factor: 4 } }, "c.json"), /rope_scaling of type "yarn" is not supported \(linear only\)/);
  assert.throws(() => llama.llamaConfig({ rotary_dim: 8 }, "c.json"), /c.json: unknown key for llama: rotary_dim/);
  assert.throws(() => llama.llamaConfig({ sliding_window: 0 }, "c.json"), /sliding_window must be >= 1/);
  const tiny = presetConfig("llama-tiny", { vocab_size: 100 });
  assert.equal(tiny.model_type, "llama");
  assert.equal(presetConfig("tinyllama").num_hidden_layers, 22);
  const clf = AutoModelForSequenceClassification.fromConfig({ ...tinyConfig, id2label: { 0: "a", 1: "b", 2: "c" } }) as llama.LlamaForSequenceClassification;
  clf.eval();
  torch.noGrad(() => {
    const alone = clf.forward({ inputIds: T([[5, 6, 7]]) }).logits;
    const right = clf.forward({ inputIds: T([[5, 6, 7, 0, 0]]), attentionMask: T([[1, 1, 1, 0, 0]]) }).logits;
    const left = clf.forward({ inputIds: T([[0, 0, 5, 6, 7]]), attentionMask: T([[0, 0, 1, 1, 1]]), positionIds: T([[1, 1, 0, 1, 2]]) }).logits;
    assert.deepEqual(alone.shape, [1, 3]);
    assert.ok(alone.sub(right).abs().max().item() < 1e-5 && alone.sub(left).abs().max().item() < 1e-5);
  });
  // the registry's LoRA targets and layers pattern fit the tensor names
  const entry = architecture("llama");
  assert.ok(entry.loraTargets!.test("model.layers.3.self_attn.q_proj") && !entry.loraTargets!.test("model.layers.3.self_attn.k_proj"));
  assert.equal(entry.layers!.exec("layers.12.mlp.up_proj.weight")![1], "12");
  const lora = AutoModelForSequenceClassification.fromConfig({ ...tinyConfig, num_key_value_heads: 2 });
  applyStrategy(lora, "lora");
  const trainable = [...lora.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n.replace(/^model\.layers\.\d+\./, ""));
  assert.deepEqual([...new Set(trainable)].sort(), ["score.weight", "self_attn.q_proj.lora_A.weight", "self_attn.q_proj.lora_B.weight", "self_attn.v_proj.lora_A.weight", "self_attn.v_proj.lora_B.weight"]);
  const frozen = AutoModelForSequenceClassification.fromConfig(tinyConfig);
  applyStrategy(frozen, "freeze:1");
  const still = [...frozen.namedParameters()].filter(([, p]) => !p.requiresGrad).map(([n]) => n);
  assert.ok(still.includes("model.embed_tokens.weight") && still.includes("model.layers.0.mlp.down_proj.weight") && !still.some((n) => n.startsWith("model.layers.1.") || n === "model.norm.weight"), still.join(", "));
});

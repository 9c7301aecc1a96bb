// T5: Hugging Face parity on the hf-ref-v2 checkpoints (v1.0: relu, tied head, 16 buckets up to
// distance 12; v1.1: gated-gelu, untied head, inner dim != d_model, 3 decoder layers): encoder
// states, teacher-forced logits, decoder states, loss, greedy generation with per-step scores
// (with the key/value cache and without), eos filling; buckets by hand; config, save, heads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { tensor as T } from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { AutoModel, AutoModelForSeq2SeqLM, AutoModelFromArchitecture, PRESETS, architecture, classFor, loadReport, savePretrained, t5 } from "../src/models/index.js";
import { readCheckpoint } from "../src/io/index.js";
import { fixture, tempDir } from "./helpers.js";

const dir = await tempDir();
type Nested = number | Nested[];
interface Reference {
  inputs: { input_ids: number[][]; attention_mask: number[][]; labels: number[][]; decoder_input_ids: number[][]; max_new_tokens: number; eos_token_id_override: number };
  outputs: Record<string, Nested>;
  safetensors_layout: { tensors: Record<string, { dtype: string; shape: number[] }> };
}

// The fixture README's tolerances: 5e-5 absolute; v1.1's untied logits and scores (|x| up to
// about 30) 2e-4 absolute or 1e-5 relative.
const cases = [
  { name: "t5_v1_0", atol: 5e-5, logitTol: 5e-5 },
  { name: "t5_v1_1", atol: 5e-5, logitTol: 2e-4 },
] as const;

/** The largest |a - e| beyond max(atol, 1e-5 |e|), over rows whose mask (B, T) entry is 1 (all without a mask); 0 when all agree. */
function excess(t: Tensor, expected: Nested, atol: number, mask?: number[][]): number {
  let worst = 0;
  const walk = (x: Nested, y: Nested, path: number[]): void => {
    if (Array.isArray(x)) {
      x.forEach((v, i) => {
        if (mask && path.length === 1 && mask[path[0]!]![i] === 0) return;
        walk(v, (y as Nested[])[i]!, [...path, i]);
      });
    } else {
      const e = y as number;
      worst = Math.max(worst, Math.abs(x - e) - Math.max(atol, 1e-5 * Math.abs(e)));
    }
  };
  walk(t.toArray() as Nested, expected, []);
  return Math.max(0, worst);
}

/**
 * Greedy decoding as Hugging Face's greedy_search: the encoder once, the decoder from
 * decoder_start_token_id; a row that produced eos is fed the pad id after it; stop when every
 * row is done or after maxNew tokens. With the cache each step feeds the last token only.
 */
function greedy(m: t5.T5ForConditionalGeneration, ids: Tensor, mask: Tensor, maxNew: number, eos: number, useCache: boolean): { seq: number[][]; scores: Tensor[]; crossReused: boolean } {
  const c = m.config;
  const encoderOutputs = m.encoder.forward({ inputIds: ids, attentionMask: mask }).lastHiddenState;
  const B = ids.shape[0]!;
  const seq: number[][] = Array.from({ length: B }, () => [c.decoder_start_token_id]);
  const done = new Array<boolean>(B).fill(false);
  const scores: Tensor[] = [];
  let past: [Tensor, Tensor][] | undefined;
  let crossReused = true;
  for (let step = 0; step < maxNew && !done.every(Boolean); step++) {
    const feed = useCache && past ? seq.map((r) => [r[r.length - 1]!]) : seq;
    const out = m.forward({ encoderOutputs, attentionMask: mask, decoderInputIds: T(feed), useCache, ...(past ? { pastKeyValues: past } : {}) });
    const logits = out.logits.select(1, out.logits.shape[1]! - 1); // (B, V)
    scores.push(logits);
    const next = logits.argmax(-1).toArray() as number[];
    next.forEach((tok, b) => {
      seq[b]!.push(done[b] ? c.pad_token_id : tok);
      if (tok === eos) done[b] = true;
    });
    // the cross-attention keys and values are the ones the first step computed
    if (past && out.pastKeyValues) crossReused &&= out.pastKeyValues[1]![0] === past[1]![0] && out.pastKeyValues[3]![1] === past[3]![1];
    past = out.pastKeyValues;
  }
  return { seq, scores, crossReused };
}

for (const { name, atol, logitTol } of cases) {
  const ref = JSON.parse(readFileSync(fixture(`hf-ref-v2/${name}.reference.json`), "utf8")) as Reference;
  const i = ref.inputs;
  const out = ref.outputs;

  test(`${name}: the checkpoint loads whole and gives Hugging Face's encoder states, logits, decoder states and loss`, async () => {
    const m = (await AutoModelForSeq2SeqLM.fromPretrained(fixture(`hf-ref-v2/${name}`), { verbose: false })) as t5.T5ForConditionalGeneration;
    assert.ok(m instanceof t5.T5ForConditionalGeneration);
    assert.deepEqual(loadReport(m), { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [], initialized: [] });
    assert.equal(m.lm_head.weight === m.shared.weight, name === "t5_v1_0", "lm_head tied to shared only with tie_word_embeddings");
    assert.equal(m.encoder.embed_tokens.weight, m.shared.weight);
    assert.equal(m.decoder.embed_tokens.weight, m.shared.weight);
    torch.noGrad(() => torch.scope(() => {
      const labels = T(i.labels);
      assert.deepEqual(t5.shiftRight(labels, m.config).toArray(), i.decoder_input_ids, "labels shifted right, -100 -> pad");
      const r = m.forward({ inputIds: T(i.input_ids), attentionMask: T(i.attention_mask), labels, outputHiddenStates: true });
      assert.equal(excess(r.encoderLastHiddenState!, out.encoder_last_hidden_state!, atol, i.attention_mask), 0, "encoder last hidden state");
      (out.encoder_hidden_states as Nested[]).forEach((h, k) => assert.equal(excess(r.encoderHiddenStates![k]!, h, atol, i.attention_mask), 0, `encoder hidden state ${k}`));
      assert.equal(r.encoderHiddenStates!.length, m.config.num_layers + 1);
      assert.equal(excess(r.logits, out.logits!, logitTol), 0, "logits");
      assert.equal(r.hiddenStates!.length, m.config.num_decoder_layers + 1);
      (out.decoder_hidden_states as Nested[]).forEach((h, k) => assert.equal(excess(r.hiddenStates![k]!, h, atol), 0, `decoder hidden state ${k}`));
      assert.ok(Math.abs(r.loss!.item() - (out.loss as number)) < 1e-5 * (out.loss as number), `loss ${r.loss!.item()} vs ${String(out.loss)}`);
      // the same decoder inputs given directly, and the encoder output given instead of the ids
      const direct = m.forward({ inputIds: T(i.input_ids), attentionMask: T(i.attention_mask), decoderInputIds: T(i.decoder_input_ids) });
      assert.equal(direct.logits.sub(r.logits).abs().max().item(), 0);
      const reused = m.forward({ encoderOutputs: r.encoderLastHiddenState!, attentionMask: T(i.attention_mask), decoderInputIds: T(i.decoder_input_ids) });
      assert.equal(reused.logits.sub(r.logits).abs().max().item(), 0);
    }));
  });

  test(`${name}: greedy generation with and without the KV cache gives Hugging Face's tokens and per-step scores; eos fills a row with pad`, async () => {
    const m = (await AutoModelForSeq2SeqLM.fromPretrained(fixture(`hf-ref-v2/${name}`), { verbose: false })) as t5.T5ForConditionalGeneration;
    const expectedScores = out.greedy_generate_scores as Nested[];
    torch.noGrad(() => {
      const ids = T(i.input_ids);
      const mask = T(i.attention_mask);
      for (const useCache of [true, false]) {
        const g = greedy(m, ids, mask, i.max_new_tokens, m.config.eos_token_id, useCache);
        assert.deepEqual(g.seq, out.greedy_generate_sequences, `sequences (cache ${useCache})`);
        assert.equal(g.scores.length, expectedScores.length);
        g.scores.forEach((s, k) => assert.equal(excess(s, expectedScores[k]!, logitTol), 0, `scores at step ${k} (cache ${useCache})`));
        if (useCache) assert.ok(g.crossReused, "cross-attention keys and values computed once");
        // eos override: row 1 finishes early and is filled with pad; row 0 is unchanged, scores too
        const e = greedy(m, ids, mask, i.max_new_tokens, i.eos_token_id_override, useCache);
        assert.deepEqual(e.seq, out.greedy_generate_eos_override, `eos override (cache ${useCache})`);
        e.scores.forEach((s, k) => assert.equal(excess(s.narrow(0, 0, 1), [(expectedScores[k] as Nested[])[0]!], logitTol), 0, `row 0 scores at step ${k}`));
      }
      // the cache grows one position per step: (B, H, steps, d_kv) for self-attention, (B, H, S, d_kv) for cross
      const enc = m.encoder.forward({ inputIds: ids, attentionMask: mask }).lastHiddenState;
      const a = m.forward({ encoderOutputs: enc, attentionMask: mask, decoderInputIds: T([[0], [0]]), useCache: true });
      const b = m.forward({ encoderOutputs: enc, attentionMask: mask, decoderInputIds: T([[5], [6]]), useCache: true, pastKeyValues: a.pastKeyValues! });
      const c = m.config;
      assert.equal(b.pastKeyValues!.length, 2 * c.num_decoder_layers);
      assert.deepEqual([...b.pastKeyValues![0]![0].shape], [2, c.num_heads, 2, c.d_kv]);
      assert.deepEqual([...b.pastKeyValues![1]![0].shape], [2, c.num_heads, 16, c.d_kv]);
      const full = m.forward({ encoderOutputs: enc, attentionMask: mask, decoderInputIds: T([[0, 5], [0, 6]]) });
      assert.ok(b.logits.select(1, 0).sub(full.logits.select(1, 1)).abs().max().item() < 1e-4);
    });
  });

  test(`${name}: saved as Hugging Face saves it (tied tensors once), and T5EncoderModel reads the encoder`, async () => {
    const m = await AutoModelForSeq2SeqLM.fromPretrained(fixture(`hf-ref-v2/${name}`), { verbose: false });
    const out2 = join(dir, name);
    savePretrained(m, out2);
    const saved = readCheckpoint(out2);
    const layout = ref.safetensors_layout.tensors;
    assert.deepEqual([...saved.names()].sort(), Object.keys(layout).sort());
    for (const [n, t] of Object.entries(layout)) assert.deepEqual(saved.weightFiles.get(n)!.info(n).shape, t.shape, n);
    const config = JSON.parse(readFileSync(join(out2, "config.json"), "utf8")) as Record<string, unknown>;
    const original = JSON.parse(readFileSync(fixture(`hf-ref-v2/${name}/config.json`), "utf8")) as Record<string, unknown>;
    for (const [k, v] of Object.entries(original)) if (k !== "transformers_version") assert.deepEqual(config[k], v, `config.json ${k}`);
    const back = await AutoModelFromArchitecture.fromPretrained(out2, { verbose: false });
    assert.ok(back instanceof t5.T5ForConditionalGeneration);
    const encoder = await AutoModelFromArchitecture.fromPretrained(fixture(`hf-ref-v2/${name}`), { verbose: false, config: { architectures: ["T5EncoderModel"] } });
    assert.ok(encoder instanceof t5.T5EncoderModel);
    assert.deepEqual(loadReport(encoder)!.missingKeys, []);
    assert.ok(loadReport(encoder)!.unexpectedKeys.every((k) => k.startsWith("decoder.") || k === "lm_head.weight"));
    torch.noGrad(() => {
      const h = encoder.forward({ inputIds: T(i.input_ids), attentionMask: T(i.attention_mask) }).lastHiddenState;
      assert.equal(excess(h, out.encoder_last_hidden_state!, atol, i.attention_mask), 0);
    });
  });
}

test("relative position buckets, worked out by hand from the formula", () => {
  const bucket = (rel: number[], bidirectional: boolean, n: number, max: number): number[] => t5.relativePositionBucket(T(rel), bidirectional, n, max).toArray() as number[];
  // encoder, 32 buckets to 128: 16 per sign, 8 exact; beyond, 8 + floor(log(d/8) / log(16) * 8)
  // (d = 16: log 2 / log 16 * 8 = 2 exactly, the bucket edge that float32 must keep)
  assert.deepEqual(bucket([0, -1, 1, -7, -8, -16, 16, -40, -127, -128, -1000, 1000], true, 32, 128), [0, 1, 17, 7, 8, 10, 26, 12, 15, 15, 15, 31]);
  // decoder: later keys are bucket 0; 16 exact, then 16 + floor(log(d/16) / log(8) * 16)
  assert.deepEqual(bucket([3, 0, -1, -15, -16, -32, -100, -1000], false, 32, 128), [0, 0, 1, 15, 16, 21, 30, 31]);
  // t5_v1_0's 16 buckets to 12: 8 per sign, 4 exact; d = 9 -> 4 + floor(log 2.25 / log 3 * 4) = 6; d = 11 gives 7, the last bucket; later keys +8
  assert.deepEqual(bucket([-3, -4, -6, -9, -11, -12, -15, 5], true, 16, 12), [3, 4, 5, 6, 7, 7, 7, 12]);
});

test("T5 configs: v1.0 and v1.1 feed-forwards, defaults, bad values refused by name", () => {
  const v10 = t5.t5Config({});
  assert.equal(v10.dense_act_fn, "relu");
  assert.equal(v10.is_gated_act, false);
  assert.equal(v10.num_decoder_layers, 6);
  const v11 = t5.t5Config({ feed_forward_proj: "gated-gelu", num_layers: 3 });
  assert.deepEqual([v11.dense_act_fn, v11.is_gated_act, v11.num_decoder_layers], ["gelu_new", true, 3]);
  assert.deepEqual([t5.t5Config({ feed_forward_proj: "gated-silu" }).dense_act_fn, t5.t5Config({ feed_forward_proj: "gated-silu" }).is_gated_act], ["silu", true]);
  assert.throws(() => t5.t5Config({ feed_forward_proj: "fancy-gelu" }), /feed_forward_proj "fancy-gelu" must be "ACT" or "gated-ACT"/);
  assert.throws(() => t5.t5Config({ feed_forward_proj: "gated-swoosh" }), /unknown activation "swoosh"/);
  assert.throws(() => t5.t5Config({ d_kv: 0 }), /d_kv must be positive/);
  assert.throws(() => t5.t5Config({ n_embd: 8 }), /unknown key for t5: n_embd/);
  // an old Hub config (t5-small's keys) parses
  t5.t5Config({ d_ff: 2048, d_kv: 64, d_model: 512, decoder_start_token_id: 0, dropout_rate: 0.1, eos_token_id: 1, initializer_factor: 1.0, is_encoder_decoder: true, layer_norm_epsilon: 1e-6, n_positions: 512, num_heads: 8, num_layers: 6, output_past: true, pad_token_id: 0, relative_attention_num_buckets: 32, vocab_size: 32128 });
  assert.deepEqual(PRESETS["t5-small"], { model_type: "t5", d_model: 512, d_ff: 2048, d_kv: 64, num_layers: 6, num_heads: 8, feed_forward_proj: "relu" });
  assert.equal(classFor(architecture("t5"), "seq2seq-lm")[0], "T5ForConditionalGeneration");
});

test("T5 heads from a tiny config: shapes, the loss ignores -100, gradients reach the shared position bias, dropout only in train()", () => {
  torch.manualSeed(3);
  const cfg = { model_type: "t5", vocab_size: 60, d_model: 32, d_ff: 48, d_kv: 8, num_heads: 4, num_layers: 2, num_decoder_layers: 3, feed_forward_proj: "gated-gelu", tie_word_embeddings: false };
  const m = AutoModelForSeq2SeqLM.fromConfig(cfg) as t5.T5ForConditionalGeneration;
  const ids = T([[5, 6, 7, 1], [8, 9, 1, 0]]);
  const mask = T([[1, 1, 1, 1], [1, 1, 1, 0]]);
  const labels = T([[10, 11, 1], [12, 1, -100]]);
  m.eval();
  const out = m.forward({ inputIds: ids, attentionMask: mask, labels });
  assert.deepEqual([...out.logits.shape], [2, 3, 60]);
  // the loss by hand: mean over the 5 labelled positions of -log softmax(logits)[label]
  const logp = out.logits.logSoftmax(-1).toArray() as number[][][];
  const want = [[0, 0, 10], [0, 1, 11], [0, 2, 1], [1, 0, 12], [1, 1, 1]].reduce((s, [b, t, y]) => s - logp[b!]![t!]![y!]!, 0) / 5;
  assert.ok(Math.abs(out.loss!.item() - want) < 1e-5);
  out.loss!.backward();
  const grad = m.encoder.block.at(0).layer.at(0) as t5.T5LayerSelfAttention;
  assert.ok(grad.SelfAttention.relative_attention_bias!.weight.grad!.abs().sum().item() > 0, "bias table of block 0 trained through every block");
  assert.equal((m.encoder.block.at(1).layer.at(0) as t5.T5LayerSelfAttention).SelfAttention.relative_attention_bias, null);
  assert.deepEqual([...m.stateDict().keys()].filter((k) => k.includes("relative_attention_bias")), ["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]);
  // eval is deterministic; train() applies dropout
  torch.noGrad(() => {
    const a = m.forward({ inputIds: ids, attentionMask: mask, labels }).logits;
    assert.ok(a.sub(out.logits).abs().max().item() < 1e-5); // (the fused inference kernel vs the autograd path)
    m.train();
    const b = m.forward({ inputIds: ids, attentionMask: mask, labels }).logits;
    assert.ok(b.sub(a).abs().max().item() > 0);
    m.eval();
    // padding the encoder input changes nothing for the real tokens
    const padded = m.forward({ inputIds: T([[8, 9, 1, 0, 0, 0]]), attentionMask: T([[1, 1, 1, 0, 0, 0]]), labels: T([[12, 1, 2]]) }).logits;
    const alone = m.forward({ inputIds: T([[8, 9, 1]]), labels: T([[12, 1, 2]]) }).logits;
    assert.ok(padded.sub(alone).abs().max().item() < 1e-5);
  });
  const base = AutoModel.fromConfig(cfg);
  assert.ok(base instanceof t5.T5Model);
  const h = base.forward({ inputIds: ids, attentionMask: mask, decoderInputIds: T([[0, 3], [0, 4]]) });
  assert.deepEqual([...h.lastHiddenState.shape], [2, 2, 32]);
  assert.throws(() => m.forward({ inputIds: ids }), /give decoderInputIds or labels/);
});

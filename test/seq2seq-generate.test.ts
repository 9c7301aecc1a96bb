// Encoder-decoder generation through src/generate: greedy search on both T5 fixtures gives
// Hugging Face's tokens and per-step scores (with the cache and without, an eos override
// filling a row with pad), T5ForConditionalGeneration.generate() reaches the same engine, beam
// search on a tiny T5 equals an exhaustive search (a right-padded batch, two length penalties)
// and reorders the cache, the encoder states and their mask together.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { AutoModelForSeq2SeqLM, t5 } from "../src/models/index.js";
import { generateOutput, generationConfig } from "../src/generate/index.js";
import { generationHead } from "../src/generate/generate.js";
import type { CausalModel } from "../src/generate/index.js";
import { fixture } from "./helpers.js";

type Nested = number | Nested[];
const T = (x: unknown): Tensor => torch.tensor(x as number[][], { dtype: "int64" });

/** The largest |a - e| beyond max(atol, 1e-5 |e|); 0 when every value agrees (the fixture README's tolerances). */
function excess(t: Tensor, expected: Nested, atol: number): number {
  const a = (t.toArray() as Nested[]).flat(Infinity as 1) as number[];
  const e = (expected as Nested[]).flat(Infinity as 1) as number[];
  assert.equal(a.length, e.length, "sizes");
  return Math.max(0, ...a.map((x, i) => Math.abs(x - e[i]!) - Math.max(atol, 1e-5 * Math.abs(e[i]!))));
}

for (const { name, logitTol } of [{ name: "t5_v1_0", logitTol: 5e-5 }, { name: "t5_v1_1", logitTol: 2e-4 }]) {
  const ref = JSON.parse(readFileSync(fixture(`hf-ref-v2/${name}.reference.json`), "utf8")) as { inputs: { input_ids: number[][]; attention_mask: number[][]; max_new_tokens: number; eos_token_id_override: number }; outputs: Record<string, Nested> };
  const i = ref.inputs;

  test(`${name}: generateOutput's greedy search gives Hugging Face's sequences and per-step scores, with the cache and without`, async () => {
    const dir = fixture(`hf-ref-v2/${name}`);
    const m = (await AutoModelForSeq2SeqLM.fromPretrained(dir, { verbose: false })) as t5.T5ForConditionalGeneration;
    assert.equal(generationHead(m as unknown as CausalModel), "seq2seq-lm");
    // the checkpoint's generation_config.json: eos 1, pad 0, decoder start 0
    const options = { ...generationConfig(dir), attentionMask: T(i.attention_mask), maxNewTokens: i.max_new_tokens };
    assert.equal(options.decoderStartTokenId, 0);
    const expected = ref.outputs.greedy_generate_scores as Nested[];
    for (const useCache of [true, false]) {
      const out = generateOutput(m as unknown as CausalModel, T(i.input_ids), { ...options, useCache, outputScores: true });
      assert.deepEqual(out.sequences.toArray(), ref.outputs.greedy_generate_sequences, `sequences (cache ${useCache})`);
      assert.equal(out.scores!.length, expected.length);
      out.scores!.forEach((s, k) => assert.equal(excess(s, expected[k]!, logitTol), 0, `scores at step ${k} (cache ${useCache})`));
      // a row whose eos comes early is filled with pad; the other row is unchanged
      const early = generateOutput(m as unknown as CausalModel, T(i.input_ids), { ...options, useCache, eosTokenId: i.eos_token_id_override });
      assert.deepEqual(early.sequences.toArray(), ref.outputs.greedy_generate_eos_override, `eos override (cache ${useCache})`);
    }
    // the model's own generate() reaches the same engine
    assert.deepEqual(m.generate(T(i.input_ids), options).toArray(), ref.outputs.greedy_generate_sequences);
    // nothing outlives the search: the cache, encoder states and mask it held outside scopes are freed
    const live = torch.liveTensors();
    torch.scope(() => void generateOutput(m as unknown as CausalModel, T(i.input_ids), { ...options, numBeams: 3 }));
    assert.equal(torch.liveTensors(), live);
  });
}

/** A random tiny T5 with peaked next-token distributions (weights far from zero), vocabulary V, eos V - 1. */
function tinyT5(V: number, seed: number): t5.T5ForConditionalGeneration {
  torch.manualSeed(seed);
  const m = AutoModelForSeq2SeqLM.fromConfig({ model_type: "t5", vocab_size: V, d_model: 16, d_kv: 8, d_ff: 24, num_layers: 2, num_heads: 2, relative_attention_num_buckets: 8, relative_attention_max_distance: 16, eos_token_id: V - 1, pad_token_id: 0, decoder_start_token_id: 0 }) as t5.T5ForConditionalGeneration;
  torch.noGrad(() => { for (const p of m.parameters()) p.add_(torch.randnLike(p).mul(0.5)); });
  return m.eval();
}

/** Every decoder continuation of up to maxNew tokens (ending at eos or at maxNew) for one encoder input, with its log-probability sum. */
function exhaustive(m: t5.T5ForConditionalGeneration, source: number[], eos: number, maxNew: number): { tokens: number[]; sum: number }[] {
  const V = m.config.vocab_size;
  const out: { tokens: number[]; sum: number }[] = [];
  const extend = (prefix: number[], sum: number): void => {
    const logp = torch.noGrad(() => torch.scope(() => (m.forward({ inputIds: T([source]), decoderInputIds: T([[0, ...prefix]]) }).logits.select(1, prefix.length).logSoftmax(-1).toArray() as number[][])[0]!));
    for (let t = 0; t < V; t++) {
      const s = Math.fround(sum + logp[t]!); // float32 sums, as the beams keep them
      const tokens = [...prefix, t];
      if (t === eos || tokens.length === maxNew) out.push({ tokens, sum: s });
      else extend(tokens, s);
    }
  };
  extend([], 0);
  return out;
}

/** The hypotheses scored as beam search scores them, sum / length^lp, best first. */
const ranked = (all: { tokens: number[]; sum: number }[], lp: number) => all.map((h) => ({ tokens: h.tokens, score: h.sum / h.tokens.length ** lp })).sort((a, b) => b.score - a.score);

test("T5 beam search equals an exhaustive search on a tiny vocabulary (a right-padded batch, two length penalties); cached and uncached agree", () => {
  const m = tinyT5(5, 7);
  const sources = [[1, 2, 3], [3, 1]];
  const model = m as unknown as CausalModel;
  const all = sources.map((src) => exhaustive(m, src, 4, 3));
  for (const lengthPenalty of [1, 0]) {
    // 80 beams hold every continuation the search can reach (16 running beams x 5 tokens at the last step)
    const out = generateOutput(model, T([[1, 2, 3], [3, 1, 0]]), { attentionMask: T([[1, 1, 1], [1, 1, 0]]), numBeams: 80, numReturnSequences: 5, maxNewTokens: 3, lengthPenalty, earlyStopping: "never" });
    const got = out.sequences.toArray() as number[][];
    sources.forEach((_, b) => {
      const best = ranked(all[b]!, lengthPenalty).slice(0, 5);
      best.forEach((h, j) => {
        const seq = got[b * 5 + j]!;
        assert.equal(seq[0], 0, "sequences start with decoder_start_token_id");
        assert.deepEqual(seq.slice(1, 1 + h.tokens.length), h.tokens, `source ${b}, hypothesis ${j} (length penalty ${lengthPenalty})`);
        assert.ok(seq.slice(1 + h.tokens.length).every((t) => t === 0), "padded after its eos");
        assert.ok(Math.abs(out.sequenceScores![b * 5 + j]! - h.score) < 1e-4, `score ${out.sequenceScores![b * 5 + j]} vs ${h.score}`);
      });
    });
  }
  // the beams reorder the cache, the encoder states and the mask: without a cache, the same search
  const opts = { attentionMask: T([[1, 1, 1], [1, 1, 0]]), numBeams: 3, numReturnSequences: 2, maxNewTokens: 5 };
  const cached = generateOutput(model, T([[1, 2, 3], [3, 1, 0]]), opts);
  const uncached = generateOutput(model, T([[1, 2, 3], [3, 1, 0]]), { ...opts, useCache: false });
  assert.deepEqual(cached.sequences.toArray(), uncached.sequences.toArray());
  cached.sequenceScores!.forEach((s, k) => assert.ok(Math.abs(s - uncached.sequenceScores![k]!) < 1e-5));
});

test("generate refuses a model that does not generate, naming the classes that do", () => {
  const enc = AutoModelForSeq2SeqLM.fromConfig({ model_type: "t5", vocab_size: 8, d_model: 8, d_kv: 4, d_ff: 8, num_layers: 1, num_heads: 2 }) as t5.T5ForConditionalGeneration;
  const bare = new t5.T5EncoderModel(enc.config);
  assert.throws(() => generateOutput(bare as unknown as CausalModel, T([[1, 2]])), /generate: T5EncoderModel is a base model; generation needs a causal LM or an encoder-decoder \(.*T5ForConditionalGeneration/);
});

// Generation strategies: beam search against an exhaustive search on a tiny vocabulary, the
// score processors and warpers by hand, sampling's distribution, minimum lengths and repeated
// n-grams on the Llama fixture, left padding on GPT-2, the cache allocated once, streaming
// text, and `lmforge pretrain --model llama-tiny --objectives clm` then `lmforge generate`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { AutoModelForCausalLM, AutoModelForMaskedLM, llama } from "../src/models/index.js";
import type { ModelInputs } from "../src/models/index.js";
import { BeamHypotheses, TextStreamer, bannedNgramTokens, generate, generateOutput, generationConfig, repetitionPenalty, resolveGenerateOptions, warpScores } from "../src/generate/index.js";
import type { CausalModel } from "../src/generate/index.js";
import { embeddedCorpus } from "../src/data/index.js";
import { loadTokenizer, saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { assertClose, fixture, tempDir } from "./helpers.js";

const dir = await tempDir();
const T = (x: unknown): Tensor => torch.tensor(x as number[][], { dtype: "int64" });
const row = (x: number[]): Tensor => torch.tensor([x], { dtype: "float32" });

/** A random tiny Llama with peaked next-token distributions (weights far from zero), vocabulary V. */
function tinyModel(V: number, seed: number): llama.LlamaForCausalLM {
  torch.manualSeed(seed);
  const m = AutoModelForCausalLM.fromConfig({ model_type: "llama", vocab_size: V, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, pad_token_id: 0, eos_token_id: V - 1 }) as llama.LlamaForCausalLM;
  torch.noGrad(() => { for (const p of m.parameters()) p.add_(torch.randnLike(p).mul(0.5)); });
  return m.eval();
}

/** Every continuation of up to maxNew tokens (ending at eos or at maxNew), scored as beam search scores them, best first. */
function exhaustive(m: llama.LlamaForCausalLM, prompt: number[], eos: number, maxNew: number, lp: number): { tokens: number[]; score: number }[] {
  const V = m.config.vocab_size;
  const out: { tokens: number[]; score: number }[] = [];
  const extend = (prefix: number[], sum: number): void => {
    const logp = torch.noGrad(() => (m.forward({ inputIds: T([[...prompt, ...prefix]]) }).logits.select(1, prompt.length + prefix.length - 1).logSoftmax(-1).toArray() as number[][])[0]!);
    for (let t = 0; t < V; t++) {
      const s = Math.fround(sum + logp[t]!); // float32 sums, as the beams keep them
      const tokens = [...prefix, t];
      if (t === eos || tokens.length === maxNew) out.push({ tokens, score: s / tokens.length ** lp });
      else extend(tokens, s);
    }
  };
  extend([], 0);
  return out.sort((a, b) => b.score - a.score);
}

test("beam search equals an exhaustive search on a tiny vocabulary (a left-padded batch, two length penalties)", () => {
  const m = tinyModel(5, 11);
  const prompts = [[1, 2], [3, 1, 2]];
  for (const lengthPenalty of [1, 0]) {
    // 80 beams hold every continuation the search can reach (16 running beams x 5 tokens at the last step)
    const out = generateOutput(m, T([[0, 1, 2], [3, 1, 2]]), { attentionMask: T([[0, 1, 1], [1, 1, 1]]), numBeams: 80, numReturnSequences: 5, maxNewTokens: 3, lengthPenalty, earlyStopping: "never" });
    const got = out.sequences.toArray() as number[][];
    prompts.forEach((p, b) => {
      const best = exhaustive(m, p, 4, 3, lengthPenalty).slice(0, 5);
      best.forEach((h, j) => {
        const seq = got[b * 5 + j]!.slice(3);
        const gen = seq.slice(0, h.tokens.length);
        assert.deepEqual(gen, h.tokens, `prompt ${b}, hypothesis ${j} (length penalty ${lengthPenalty})`);
        assert.ok(seq.slice(h.tokens.length).every((t) => t === 0), "padded after its eos");
        assert.ok(Math.abs(out.sequenceScores![b * 5 + j]! - h.score) < 1e-4, `score ${out.sequenceScores![b * 5 + j]} vs ${h.score}`);
      });
    });
  }
  // the beams reorder their cache rows: without a cache, the same search
  const opts = { numBeams: 3, numReturnSequences: 2, maxNewTokens: 4 };
  const cached = generateOutput(m, T([[1, 2]]), opts);
  const uncached = generateOutput(m, T([[1, 2]]), { ...opts, useCache: false });
  assert.deepEqual(cached.sequences.toArray(), uncached.sequences.toArray());
  cached.sequenceScores!.forEach((s, i) => assert.ok(Math.abs(s - uncached.sequenceScores![i]!) < 1e-5));
});

test("beam hypotheses: the best numBeams kept; done by early stopping true, false (heuristic) and never", () => {
  const h = new BeamHypotheses(2, 1, false, 10);
  h.add([1, 2], -2); // score -1
  h.add([1], -3); // -3
  assert.equal(h.worstScore, -3);
  h.add([1, 2, 3, 4], -2); // -0.5 displaces -3
  assert.deepEqual(h.beams.map((b) => b.score).sort(), [-0.5, -1].sort());
  assert.equal(h.worstScore, -1);
  h.add([5], -5); // -5: worse than both, not kept
  assert.equal(h.beams.length, 2);
  // false: the best running sum at the current length, -1.5 / 2 = -0.75 beats the worst kept (-1); -4 / 2 does not
  assert.equal(h.isDone(-1.5, 2), false);
  assert.equal(h.isDone(-4, 2), true);
  // never (length penalty > 0): at the longest length, -4 / 10 = -0.4 could still beat -1; -20 / 10 cannot
  const never = new BeamHypotheses(2, 1, "never", 10);
  never.add([1, 2], -2);
  never.add([1, 2, 3, 4], -2);
  assert.equal(never.isDone(-4, 2), false);
  assert.equal(never.isDone(-20, 2), true);
  const eager = new BeamHypotheses(2, 1, true, 10);
  eager.add([1], -9);
  assert.equal(eager.isDone(0, 1), false, "one hypothesis of two");
  eager.add([2], -9);
  assert.equal(eager.isDone(0, 1), true);
});

test("processors and warpers by hand: repetition penalty, repeated n-grams, temperature, top-k, top-p and their order", () => {
  assertClose(repetitionPenalty(row([2, -1, 0.5, 3]), T([[0, 1, 1]]), 2), [[1, -2, 0.5, 3]]);
  assert.deepEqual(bannedNgramTokens([[1, 2, 3, 1, 2]], 3), [[3]]);
  assert.deepEqual(bannedNgramTokens([[1, 2, 3, 1, 2]], 2), [[3]]);
  assert.deepEqual(bannedNgramTokens([[5, 5, 5], [4, 6]], 2), [[5], []]);
  assert.deepEqual(bannedNgramTokens([[1, 2, 3]], 1), [[1, 2, 3]]);
  assert.deepEqual(bannedNgramTokens([[1]], 3), [[]]);
  const logp = row([0.1, 0.2, 0.3, 0.4].map(Math.log));
  const kept = (s: Tensor): number[] => (s.toArray() as number[][])[0]!.flatMap((v, i) => (v === -Infinity ? [] : [i]));
  const plain = { temperature: 1, topK: 0, topP: 1 };
  assert.deepEqual(kept(warpScores(logp, { ...plain, topK: 2 })), [2, 3]);
  // top-p drops the least likely tokens whose probabilities sum to at most 1 - p: 0.1 + 0.2 <= 0.5
  assert.deepEqual(kept(warpScores(logp, { ...plain, topP: 0.5 })), [2, 3]);
  assert.deepEqual(kept(warpScores(logp, { ...plain, topP: 0.35 })), [3]);
  assertClose(warpScores(logp, { ...plain, temperature: 2 }), [[0.1, 0.2, 0.3, 0.4].map((p) => Math.log(p) / 2)]);
  // temperature first: at 0.5 the probabilities go as p² (0.03, 0.13, 0.3, 0.53), and top-p 0.5 keeps one token
  assert.deepEqual(kept(warpScores(logp, { ...plain, temperature: 0.5, topP: 0.5 })), [3]);
  // options: defaults are Hugging Face's; nonsense is refused by name
  const o = resolveGenerateOptions({}, { eos_token_id: 2, pad_token_id: null });
  assert.deepEqual([o.maxNewTokens, o.topK, o.topP, o.temperature, o.numBeams, o.earlyStopping, o.eos, o.pad], [20, 50, 1, 1, 1, false, [2], 2]);
  assert.throws(() => resolveGenerateOptions({ topP: 1.5 }), /topP must be > 0 and <= 1, got 1.5/);
  assert.throws(() => resolveGenerateOptions({ numBeams: 2, numReturnSequences: 3 }), /numReturnSequences \(3\) cannot exceed numBeams \(2\)/);
  assert.throws(() => resolveGenerateOptions({ numBeams: 2, doSample: true }), /beam sampling\) is not supported/);
  assert.throws(() => resolveGenerateOptions({ numReturnSequences: 2 }), /greedy search would return 2 identical sequences/);
});

test("sampling draws from the warped distribution: frequencies over 4000 rows, removed tokens never", () => {
  const m = tinyModel(8, 3);
  const prompt = T([[1, 2, 3]]);
  const warp = { temperature: 0.7, topK: 5, topP: 0.9 };
  const expected = torch.noGrad(() => (warpScores(m.forward({ inputIds: prompt }).logits.select(1, 2).float(), warp).softmax(-1).toArray() as number[][])[0]!);
  const N = 4000;
  const out = generate(m, prompt, { doSample: true, ...warp, maxNewTokens: 1, numReturnSequences: N, seed: 5, eosTokenId: null });
  const counts = new Array<number>(8).fill(0);
  for (const r of out.toArray() as number[][]) counts[r[3]!]! += 1;
  expected.forEach((p, t) => {
    if (p === 0) assert.equal(counts[t], 0, `token ${t} was removed`);
    else assert.ok(Math.abs(counts[t]! - N * p) < 4 * Math.sqrt(N * p * (1 - p)) + 1, `token ${t}: ${counts[t]} draws, expected ${N * p}`);
  });
  assert.ok(expected.filter((p) => p === 0).length >= 3, "top-k 5 of 8 removes 3 tokens");
  // the seed reproduces the draws
  assert.deepEqual(generate(m, prompt, { doSample: true, maxNewTokens: 5, seed: 9 }).toArray(), generate(m, prompt, { doSample: true, maxNewTokens: 5, seed: 9 }).toArray());
});

const ref = JSON.parse(readFileSync(fixture("hf-ref-v2/llama.reference.json"), "utf8")) as { inputs: Record<string, number[][]> & { eos_token_id_override: number }; outputs: Record<string, number[][]> };

test("on the Llama fixture: minimum new tokens hold the eos back, repetition penalty scales the seen tokens' scores, no n-gram repeats", async () => {
  const m = await AutoModelForCausalLM.fromPretrained(fixture("hf-ref-v2/llama"), { verbose: false });
  const i = ref.inputs;
  const eos = i.eos_token_id_override;
  // row 1 ends at its 3rd new token (696) alone; with minNewTokens 5 it cannot before the 6th
  const held = generateOutput(m as unknown as CausalModel, T(i.batch_prompt), { attentionMask: T(i.batch_prompt_attention_mask), maxNewTokens: 8, eosTokenId: eos, minNewTokens: 5, outputScores: true });
  const row1 = (held.sequences.toArray() as number[][])[1]!.slice(6);
  assert.ok(!row1.slice(0, 5).includes(eos), JSON.stringify(row1));
  held.scores!.forEach((s, k) => {
    const atEos = (s.select(1, eos).toArray() as number[]).map((v) => v === -Infinity);
    assert.deepEqual(atEos, [k < 5, k < 5], `step ${k}`);
  });
  // repetition penalty 1.5 at step 0: the prompt's tokens' logits divided (positive) or multiplied (negative) by 1.5
  const pen = generateOutput(m as unknown as CausalModel, T(i.prompt), { maxNewTokens: 1, repetitionPenalty: 1.5, outputScores: true });
  const raw = (ref.outputs.greedy_generate_scores as number[][])[0]!;
  const want = raw.map((v, t) => (i.prompt![0]!.includes(t) ? (v < 0 ? v * 1.5 : v / 1.5) : v));
  assertClose(pen.scores![0]!, [want], 5e-5);
  // greedy falls into "65 65 65 ..."; with no_repeat_ngram_size 2 no pair of tokens occurs twice
  const seq = (generate(m as unknown as CausalModel, T(i.prompt), { maxNewTokens: 12, noRepeatNgramSize: 2 }).toArray() as number[][])[0]!;
  const pairs = seq.slice(1).map((t, k) => `${seq[k]},${t}`);
  assert.equal(new Set(pairs).size, pairs.length, JSON.stringify(seq));
  assert.deepEqual(seq.slice(0, 12), ref.outputs.greedy_generate_prompt_then_new_tokens![0]!.slice(0, 12), "the same tokens until a pair would repeat");
});

test("GPT-2 through the same module: a left-padded row generates what it generates alone; beams; one cache allocation for the whole run", async () => {
  const m = await AutoModelForCausalLM.fromPretrained(fixture("hf-tiny/gpt2"), { verbose: false });
  const gpt = m as unknown as CausalModel;
  const alone = (generate(gpt, T([[999, 17, 250]]), { maxNewTokens: 6 }).toArray() as number[][])[0]!;
  const batch = generate(gpt, T([[999, 17, 250, 998, 5], [999, 999, 999, 17, 250]]), { attentionMask: T([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]), maxNewTokens: 6 }).toArray() as number[][];
  assert.deepEqual(batch[1]!.slice(5), alone.slice(3));
  const beams = generateOutput(gpt, T([[999, 17, 250]]), { numBeams: 4, numReturnSequences: 4, maxNewTokens: 5 });
  assert.deepEqual(beams.sequences.shape, [4, 8]);
  assert.ok(beams.sequenceScores!.every((s, k) => k === 0 || s <= beams.sequenceScores![k - 1]!), "best first");
  // a model that records its cache: the buffers are allocated once, for the prompt and every new token
  const allocated: number[] = [];
  const spy: CausalModel = { config: gpt.config, training: false, train: () => gpt.train(), eval: () => gpt.eval(), forward: (x: ModelInputs) => { const out = gpt.forward(x); allocated.push(x.kvCache!.allocated); return out; } };
  generate(spy, T([[999, 17, 250]]), { maxNewTokens: 7, eosTokenId: null });
  assert.deepEqual(allocated, new Array<number>(7).fill(10));
  // a model that is not a causal LM is refused by name
  const mlm = AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: 30, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16 });
  assert.throws(() => generate(mlm as unknown as CausalModel, T([[1, 2]])), /generate: BertForMaskedLM is a masked-lm model; generation needs a causal LM or an encoder-decoder \(GPT2LMHeadModel, T5ForConditionalGeneration, LlamaForCausalLM, LmforgeForCausalLM\)/);
});

test("streamed text: whole words as they settle, no half characters, the same text as one decode", () => {
  const docs = embeddedCorpus("moby-dick").slice(0, 5);
  for (const kind of ["wordpiece", "bpe"] as const) {
    const tok = trainTokenizerFromTexts(docs, { kind, vocabSize: 400, lowercase: kind === "wordpiece" });
    const text = kind === "bpe" ? "Call me Ishmael, naïve café — some years ago" : "call me ishmael, some years ago; never mind how long precisely";
    const ids = tok.encode(text, null, { addSpecialTokens: false }).ids;
    const writes: string[] = [];
    const s = new TextStreamer(tok, (t) => writes.push(t));
    for (const id of ids) s.put([id]);
    const beforeEnd = writes.length;
    s.end();
    assert.equal(writes.join(""), tok.decode(ids, { skipSpecialTokens: true }));
    assert.ok(beforeEnd > 3, `${kind}: text came out while tokens arrived (${beforeEnd} writes)`);
    assert.ok(writes.slice(0, beforeEnd).every((w) => /\s$/.test(w) && !w.includes("\uFFFD")), JSON.stringify(writes));
  }
});

test("lmforge pretrain --model llama-tiny --objectives clm, then lmforge generate streams its continuation", async () => {
  const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
  const env = { ...process.env, LMFORGE_CACHE: join(dir, "cache") };
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });
  const docs = embeddedCorpus("moby-dick").slice(0, 20);
  const tokDir = join(dir, "tok");
  saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 800, lowercase: true }), tokDir);
  const input = join(dir, "moby.txt");
  writeFileSync(input, docs.join("\n\n"));
  const out = join(dir, "llama");
  const pre = run(["pretrain", "--model", "llama-tiny", "--objectives", "clm", "--tokenizer", tokDir, "--input", input, "--max-steps", "3", "--batch-size", "2", "--seq-len", "32", "--precision", "fp32", "--out", out]);
  assert.equal(pre.status, 0, pre.stderr);
  assert.match(pre.stderr, /model: LlamaForCausalLM/);
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
  const tok = loadTokenizer(out);
  assert.deepEqual([config.model_type, config.num_key_value_heads, config.vocab_size, config.eos_token_id], ["llama", 2, tok.vocabSize, tok.tokenToId("[SEP]")]);
  const gen = run(["generate", "--model", out, "--prompt", "Call me Ishmael", "--max-new-tokens", "6"]);
  assert.equal(gen.status, 0, gen.stderr);
  // the same continuation as the library's, written as the prompt's text and what follows
  const model = await AutoModelForCausalLM.fromPretrained(out, { verbose: false });
  const prompt = tok.encode("Call me Ishmael").ids.slice(0, -1); // less the [SEP] the post-processor appends
  const ids = (generate(model as unknown as CausalModel, T([prompt]), { ...generationConfig(out), maxNewTokens: 6 }).toArray() as number[][])[0]!;
  assert.equal(gen.stdout, `${tok.decode(ids, { skipSpecialTokens: true })}\n`);
  assert.ok(gen.stdout.startsWith("call me ishmael"), gen.stdout);
  const beams = run(["generate", "--model", out, "--prompt", "Call me", "--prompt", "some years ago", "--num-beams", "2", "--num-return-sequences", "2", "--max-new-tokens", "3"]);
  assert.equal(beams.status, 0, beams.stderr);
  assert.deepEqual(beams.stdout.trim().split("\n").map((l) => l.slice(0, 4)), ["[1] ", "[2] ", "[3] ", "[4] "]);
  const bad = run(["generate", "--model", out, "--prompt", "x", "--top-p", "0"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--top-p must be > 0 and <= 1, got "0"/);
  const tooMany = run(["generate", "--model", out, "--prompt", "x", "--num-beams", String(tok.vocabSize + 1)]);
  assert.equal(tooMany.status, 2);
  assert.match(tooMany.stderr, new RegExp(`--num-beams ${tok.vocabSize + 1} is more than the model's ${tok.vocabSize} tokens`));
});

// Every model family with every objective it takes, pretrained for two steps under bfloat16
// autocast (--precision bf16): each must run and give finite losses. bf16 broke in places
// fp32 never reaches (a LayerNorm meeting a bf16 input in the MLM head, a float32 bias added to
// a bf16 score), so each pair is run, not inferred from its neighbours. Then every fine-tuning
// task for one step under bf16, and its evaluation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { embeddedCorpus } from "../src/data/corpora.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { knownObjectives } from "../src/objectives/index.js";
import { finetune, pretrain } from "../src/train/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-bf16-");
const docs = embeddedCorpus("moby-dick").slice(0, 20);
const lines = docs.join("\n").split(/(?<=[.!?])\s+/).filter((l) => l.length > 20).slice(0, 300);
const wordpiece = join(dir, "wordpiece");
saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 800, lowercase: true }), wordpiece);
const bpe = join(dir, "bpe");
saveTokenizer(trainTokenizerFromTexts(docs, { kind: "bpe", vocabSize: 600 }), bpe);
const unigram = join(dir, "unigram");
saveTokenizer(trainTokenizerFromTexts(lines, { kind: "unigram", vocabSize: 500, sentinels: 20 }), unigram);
const images = new URL("../../test/fixtures/fashion-mnist-sample", import.meta.url).pathname;

const bertLike = { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_hidden_layers: 2 };
/** [preset, objective, tokenizer, config overrides]: every family with what it pretrains on. */
const PAIRS: [string, string, string, Record<string, unknown>][] = [
  ["bert-tiny", "mlm", wordpiece, bertLike],
  ["bert-tiny", "mlm+sop", wordpiece, bertLike],
  ["bert-tiny", "mlm+nsp", wordpiece, bertLike],
  ["roberta-tiny", "mlm", bpe, bertLike],
  ["albert-tiny", "mlm+sop", wordpiece, { ...bertLike, embedding_size: 16 }],
  ["electra-small", "electra", wordpiece, { ...bertLike, embedding_size: 16 }],
  ["gpt2", "clm", bpe, { n_embd: 32, n_layer: 2, n_head: 2 }],
  ["llama-tiny", "clm", bpe, { hidden_size: 32, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2 }],
  ["lmforge-tiny", "mlm", wordpiece, bertLike],
  ["lmforge-tiny", "clm", bpe, bertLike],
  ["t5-tiny", "span-corruption", unigram, { d_model: 32, d_ff: 64, d_kv: 8, num_heads: 4, num_layers: 2 }],
  ["lmforge-vit-tiny", "clip", wordpiece, { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2 }],
];

test("the smoke list covers every registered objective", () => {
  assert.deepEqual([...new Set(PAIRS.map((p) => p[1]))].sort(), [...knownObjectives()].sort());
});

for (const [model, objectives, tokenizer, modelConfig] of PAIRS) {
  test(`bf16 autocast: ${model} pretrains with ${objectives}`, async () => {
    const losses: number[] = [];
    const r = await pretrain({
      model,
      modelConfig,
      tokenizer,
      objectives,
      ...(objectives === "clip" ? { images } : { documents: objectives === "span-corruption" ? lines : docs }),
      maxSteps: 2,
      batchSize: 4,
      seqLen: 32,
      precision: "bf16",
      evalEvery: 2,
      evalBatches: 1,
      saveEvery: 1000,
      out: join(dir, `${model}-${objectives}`),
      onStep: (s) => losses.push(s.loss),
    });
    assert.equal(r.steps, 2);
    assert.equal(losses.length, 2);
    assert.ok(losses.every(Number.isFinite), `losses ${losses.join(", ")}`);
    assert.ok(Number.isFinite(r.evals.at(-1)!.val_loss), JSON.stringify(r.evals));
  });
}

test("bf16 autocast: every fine-tuning task takes a step and evaluates", async () => {
  const bert = join(dir, "bert-tiny-mlm");
  const t5 = join(dir, "t5-tiny-span-corruption");
  const gpt = join(dir, "gpt2-clm");
  const words = (i: number): string => lines[i % lines.length]!;
  const cases: [string, string, unknown[]][] = [
    ["classification", bert, Array.from({ length: 24 }, (_, i) => ({ text: words(i), label: i % 2 ? "a" : "b", source: `row ${i}` }))],
    [
      "token-classification",
      bert,
      Array.from({ length: 24 }, (_, i) => {
        const tokens = words(i).split(/\s+/).slice(0, 8);
        return { tokens, tags: tokens.map((_, j) => (j === 0 ? "B-X" : "O")), source: `row ${i}` };
      }),
    ],
    [
      "question-answering",
      bert,
      Array.from({ length: 24 }, (_, i) => {
        const context = words(i);
        const answer = context.split(/\s+/)[1]!;
        return { id: String(i), question: "which word?", context, answers: [{ text: answer, start: context.indexOf(answer) }], impossible: false, source: `row ${i}` };
      }),
    ],
    ["translation", t5, Array.from({ length: 24 }, (_, i) => ({ text: words(i), target: words(i + 1), source: `row ${i}` }))],
    ["summarization", gpt, Array.from({ length: 24 }, (_, i) => ({ text: words(i), target: words(i).split(/\s+/).slice(0, 3).join(" "), source: `row ${i}` }))],
  ];
  for (const [task, model, rows] of cases) {
    const evals: Record<string, number>[] = [];
    const r = await finetune({
      model,
      task,
      train: rows.slice(0, 16),
      validation: rows.slice(16),
      out: join(dir, `ft-${task}`),
      maxSteps: 1,
      batchSize: 8,
      maxLength: 32,
      evalEvery: 1,
      saveEvery: 1000,
      precision: "bf16",
      ...(task === "translation" || task === "summarization" ? { generationMaxLength: 4 } : {}),
      onEval: (m) => evals.push(m),
    } as Parameters<typeof finetune>[0]);
    assert.equal(r.train.steps, 1, task);
    assert.ok(evals.length >= 1 && Object.values(evals[0]!).every(Number.isFinite), `${task}: ${JSON.stringify(evals)}`);
  }
});

test("bf16 autocast: image classification fine-tunes from the CLIP folder", async () => {
  const evals: Record<string, number>[] = [];
  const r = await finetune({ model: join(dir, "lmforge-vit-tiny-clip"), task: "image-classification", images, maxSteps: 1, batchSize: 8, evalEvery: 1, evalBatches: 1, saveEvery: 1000, precision: "bf16", out: join(dir, "ft-image"), onEval: (m) => evals.push(m) });
  assert.equal(r.train.steps, 1);
  assert.ok(evals.length >= 1 && Object.values(evals[0]!).every(Number.isFinite), JSON.stringify(evals));
});

test("the default precision: bf16 where the CPU has bf16 in hardware, LMFORGE_PRECISION overrides", async () => {
  const { defaultPrecision } = await import("../src/torch/index.js");
  const flags = new Set((await import("node:fs")).readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:.*$/m)?.[0].split(/\s+/) ?? []);
  const hardware = flags.has("amx_bf16") || flags.has("avx512_bf16");
  assert.equal(defaultPrecision("cpu", {}), hardware ? "bf16" : "fp32", `cpu flags: amx_bf16 ${flags.has("amx_bf16")}, avx512_bf16 ${flags.has("avx512_bf16")}`);
  assert.equal(defaultPrecision("cuda:0", {}), "bf16");
  assert.equal(defaultPrecision("cpu", { LMFORGE_PRECISION: "fp32" }), "fp32");
  assert.equal(defaultPrecision("cpu", { LMFORGE_PRECISION: "bf16" }), "bf16");
  assert.throws(() => defaultPrecision("cpu", { LMFORGE_PRECISION: "fp16" }), /LMFORGE_PRECISION must be fp32 or bf16, got "fp16"/);
});

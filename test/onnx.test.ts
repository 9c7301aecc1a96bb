// ONNX export: each exported graph, run by onnxruntime (an implementation independent of
// lmforge's), gives lmforge's own logits to 1e-4 on tokenised text with padding in the batch;
// the decoders' cached steps give the full sequence's logits; the file's ModelProto says what
// the issue asks (IR 8, the opset, symbolic dims); unsupported configs are refused by key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { InferenceSession, Tensor as OrtTensor } from "onnxruntime-node";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { AutoModelForCausalLM, AutoModelForSequenceClassification, savePretrained } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import type { Tokenizer } from "../src/tokenizers/index.js";
import { checkExportable, decodeModel, exportOnnx, exportOnnxFromFolder } from "../src/export/index.js";
import type { OnnxExport } from "../src/export/index.js";
import { fixture, tempDir } from "./helpers.js";

const dir = await tempDir();
const TOL = 1e-4;

// Real text (the opening of Moby-Dick and of Pride and Prejudice), tokenised by tokenizers trained on it.
const CORPUS = [
  "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.",
  "It is a way I have of driving off the spleen and regulating the circulation.",
  "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
  "However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families.",
];
const TEXTS = ["Call me Ishmael.", "It is a truth universally acknowledged, that a single man must be in want of a wife.", "Some years ago I thought I would sail about a little."];
const wordpiece = trainTokenizerFromTexts(CORPUS, { kind: "wordpiece", vocabSize: 300, lowercase: true, minFrequency: 1 });
const bpe = trainTokenizerFromTexts(CORPUS, { kind: "bpe", vocabSize: 400, minFrequency: 1 });

type Rows = number[][];
interface Batch {
  ids: Rows;
  mask: Rows;
  types: Rows;
}

function encode(tok: Tokenizer, inputs: (string | [string, string])[], side: "right" | "left" = "right"): Batch {
  const encs = tok.encodeBatch(inputs, { padding: "longest", paddingSide: side });
  return { ids: encs.map((e) => e.ids), mask: encs.map((e) => e.attentionMask), types: encs.map((e) => e.typeIds) };
}

const int64 = (rows: Rows): OrtTensor => new OrtTensor("int64", BigInt64Array.from(rows.flat().map((x) => BigInt(x))), [rows.length, rows[0]!.length]);
const long = (rows: Rows): Tensor => torch.tensor(rows.flat(), { dtype: "int64", shape: [rows.length, rows[0]!.length] });
/** cumsum(mask) - 1, 1 at padding: the positions Hugging Face's and lmforge's generate() feed. */
const positionsOf = (mask: Rows): Rows =>
  mask.map((r) => {
    let seen = 0;
    return r.map((m) => (m ? seen++ : 1));
  });

async function session(e: OnnxExport): Promise<InferenceSession> {
  return InferenceSession.create(e.bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

/** Max |a - b| over rows of `width` numbers, skipping row r when keep(r) is false. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, width: number, keep: (row: number) => boolean = () => true): number {
  assert.equal(a.length, b.length, "output sizes differ");
  let m = 0;
  for (let r = 0; r < a.length / width; r++) if (keep(r)) for (let i = r * width; i < (r + 1) * width; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Parameters (those whose names match) nudged by N(0, std): biases and norms that are not zeros
 * and ones, and activations large enough that a slip (tanh GELU for exact, a position offset
 * missed) moves the logits by far more than the tolerance.
 */
function perturb(model: PretrainedModel, seed: number, std = 0.05, only = /./): void {
  torch.manualSeed(seed);
  torch.noGrad(() => {
    for (const [name, p] of model.namedParameters()) if (only.test(name)) torch.scope(() => p.add_(torch.randnLike(p).mul(std)));
  });
}

const diffs: Record<string, number> = {};

// --- encoders ------------------------------------------------------------------------------------

const LABELS = { id2label: { "0": "negative", "1": "neutral", "2": "positive" } };

/** Runs an exported classifier and lmforge's forward on batches of different lengths; returns the max difference. */
async function classifierParity(model: PretrainedModel, e: OnnxExport, tok: Tokenizer, withTypes: boolean): Promise<number> {
  const s = await session(e);
  let worst = 0;
  // three texts, one a pair (token types 1), right padding; then one text alone (another length)
  for (const inputs of [[TEXTS[0]!, [TEXTS[2]!, TEXTS[0]!] as [string, string], TEXTS[1]!], [CORPUS[1]!]]) {
    const b = encode(tok, inputs);
    const feeds: Record<string, OrtTensor> = { input_ids: int64(b.ids), attention_mask: int64(b.mask), ...(withTypes ? { token_type_ids: int64(b.types) } : {}) };
    const out = (await s.run(feeds)).logits!;
    assert.deepEqual(out.dims, [b.ids.length, 3]);
    const ref = torch.noGrad(() => torch.scope(() => model.forward({ inputIds: long(b.ids), attentionMask: long(b.mask), ...(withTypes ? { tokenTypeIds: long(b.types) } : {}) }).logits.data() as Float32Array));
    worst = Math.max(worst, maxDiff(out.data as Float32Array, ref, 3));
  }
  return worst;
}

test("BERT classifier folder (hf-tiny/bert + a 3-label head): onnxruntime gives lmforge's logits, opsets 17 and 14", async () => {
  torch.manualSeed(1);
  const model = await AutoModelForSequenceClassification.fromPretrained(fixture("hf-tiny/bert"), { config: LABELS, verbose: false });
  perturb(model, 11, 0.5, /^(classifier|bert\.pooler)\./); // the checkpoint's trunk as it is; the fresh head made to matter
  const folder = join(dir, "bert-classifier");
  savePretrained(model, folder);
  const e17 = await exportOnnxFromFolder(folder);
  assert.deepEqual(e17.inputs.map((i) => [i.name, i.type, i.dims]), [
    ["input_ids", "int64", ["batch", "sequence"]],
    ["attention_mask", "int64", ["batch", "sequence"]],
    ["token_type_ids", "int64", ["batch", "sequence"]],
  ]);
  assert.deepEqual(e17.outputs.map((o) => [o.name, o.dims]), [["logits", ["batch", 3]]]);
  // the file as onnx.proto reads it: IR 8, opset 17, symbolic dims, initializers as raw float32
  const proto = decodeModel(e17.bytes) as { ir_version: number; opset_import: { version: number }[]; graph: { input: { type: { tensor_type: { elem_type: number; shape: { dim: object[] } } } }[]; initializer: { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }[]; node: { op_type: string }[] } };
  assert.equal(proto.ir_version, 8);
  assert.deepEqual(proto.opset_import.map((o) => o.version), [17]);
  assert.deepEqual(proto.graph.input[0]!.type.tensor_type, { elem_type: 7, shape: { dim: [{ dim_param: "batch" }, { dim_param: "sequence" }] } });
  const words = proto.graph.initializer.find((t) => t.name === "bert.embeddings.word_embeddings.weight")!;
  assert.deepEqual([words.dims, words.data_type], [[1000, 48], 1]);
  const raw = new Float32Array(Uint8Array.from(words.raw_data).buffer);
  assert.deepEqual(Array.from(raw.subarray(48 * 7, 48 * 7 + 4)), Array.from((model.stateDict().get("bert.embeddings.word_embeddings.weight")!.select(0, 7).data() as Float32Array).subarray(0, 4)));
  assert.ok(proto.graph.node.some((n) => n.op_type === "LayerNormalization"));
  diffs.bert = await classifierParity(model, e17, wordpiece, true);
  assert.ok(diffs.bert <= TOL, `BERT: max |onnx - lmforge| = ${diffs.bert}`);
  // opset 14: LayerNorm decomposed, the same numbers
  const e14 = exportOnnx(model, { opset: 14 });
  assert.equal((decodeModel(e14.bytes) as { opset_import: { version: number }[] }).opset_import[0]!.version, 14);
  assert.ok(!(decodeModel(e14.bytes) as { graph: { node: { op_type: string }[] } }).graph.node.some((n) => n.op_type === "LayerNormalization"));
  diffs["bert opset 14"] = await classifierParity(model, e14, wordpiece, true);
  assert.ok(diffs["bert opset 14"] <= TOL, `BERT opset 14: ${diffs["bert opset 14"]}`);
});

const SMALL = { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 66, initializer_range: 0.3, ...LABELS };

test("RoBERTa classifier (positions from padding_idx + 1, tanh head, no token types): onnxruntime gives lmforge's logits", async () => {
  torch.manualSeed(2);
  // BPE ids: <s> 0, <pad> 1, </s> 2, as RoBERTa's pad_token_id 1 expects
  const model = AutoModelForSequenceClassification.fromConfig({ model_type: "roberta", vocab_size: bpe.vocabSize, ...SMALL });
  perturb(model, 12, 0.1);
  model.eval();
  const e = exportOnnx(model);
  assert.deepEqual(e.inputs.map((i) => i.name), ["input_ids", "attention_mask"]);
  diffs.roberta = await classifierParity(model, e, bpe, false);
  assert.ok(diffs.roberta <= TOL, `RoBERTa: ${diffs.roberta}`);
});

test("ALBERT classifier (factorised embeddings, 3 steps through one shared layer, gelu_new): onnxruntime gives lmforge's logits", async () => {
  torch.manualSeed(3);
  const model = AutoModelForSequenceClassification.fromConfig({ model_type: "albert", vocab_size: wordpiece.vocabSize, embedding_size: 16, ...SMALL, num_hidden_layers: 3 });
  perturb(model, 13, 0.1);
  model.eval();
  const e = exportOnnx(model);
  // the shared layer's weights are stored once
  const names = (decodeModel(e.bytes) as { graph: { initializer: { name: string }[] } }).graph.initializer.map((t) => t.name);
  assert.equal(names.filter((n) => n.endsWith("attention.query.weight")).length, 1);
  diffs.albert = await classifierParity(model, e, wordpiece, true);
  assert.ok(diffs.albert <= TOL, `ALBERT: ${diffs.albert}`);
});

test("ELECTRA classifier (embedding projection, GELU head): onnxruntime gives lmforge's logits", async () => {
  torch.manualSeed(4);
  const model = AutoModelForSequenceClassification.fromConfig({ model_type: "electra", vocab_size: wordpiece.vocabSize, embedding_size: 16, ...SMALL });
  perturb(model, 14, 0.1);
  model.eval();
  diffs.electra = await classifierParity(model, exportOnnx(model), wordpiece, true);
  assert.ok(diffs.electra <= TOL, `ELECTRA: ${diffs.electra}`);
});

// --- decoders -----------------------------------------------------------------------------------

const emptyPast = (e: OnnxExport, batch: number): Record<string, OrtTensor> =>
  Object.fromEntries(e.inputs.filter((i) => i.name.startsWith("past_key_values.")).map((i) => [i.name, new OrtTensor("float32", new Float32Array(0), [batch, i.dims[1] as number, 0, i.dims[3] as number])]));

/**
 * Left-padded texts through the graph without a past and lmforge's forward (the real positions
 * compared: padded rows attend to nothing and their outputs mean nothing); then the prefix through
 * the graph without a past and the rest through the graph with it, fed the presents: the same
 * logits as the full sequence.
 */
async function decoderParity(model: PretrainedModel, vocab: number, opset = 17): Promise<{ full: number; cached: number }> {
  const plain = exportOnnx(model, { opset });
  const past = exportOnnx(model, { withPast: true, opset });
  const [s, sp] = [await session(plain), await session(past)];
  const b = encode(bpe, TEXTS, "left");
  const pos = positionsOf(b.mask);
  const [B, T] = [b.ids.length, b.ids[0]!.length];
  const ref = torch.noGrad(() => torch.scope(() => model.forward({ inputIds: long(b.ids), attentionMask: long(b.mask), positionIds: long(pos) }).logits.data() as Float32Array));
  const realRow = (r: number): boolean => b.mask[Math.floor(r / T)]![r % T] === 1;
  const out = await s.run({ input_ids: int64(b.ids), attention_mask: int64(b.mask), position_ids: int64(pos) });
  assert.deepEqual(out.logits!.dims, [B, T, vocab]);
  const full = maxDiff(out.logits!.data as Float32Array, ref, vocab, realRow);
  // the with-past graph from an empty past gives the same as the plain one
  const fromEmpty = await sp.run({ input_ids: int64(b.ids), attention_mask: int64(b.mask), position_ids: int64(pos), ...emptyPast(past, B) });
  const empty = maxDiff(fromEmpty.logits!.data as Float32Array, ref, vocab, realRow);
  // prefix of P tokens, then the last T - P one step at a time... in two steps of 2 and T - P - 2 tokens
  const cut = (rows: Rows, a: number, z: number): Rows => rows.map((r) => r.slice(a, z));
  const P = T - 4;
  const prefix = await s.run({ input_ids: int64(cut(b.ids, 0, P)), attention_mask: int64(cut(b.mask, 0, P)), position_ids: int64(cut(pos, 0, P)) });
  let presents = prefix;
  let cached = 0;
  for (const [a, z] of [[P, P + 2], [P + 2, T]] as const) {
    const feeds: Record<string, OrtTensor> = { input_ids: int64(cut(b.ids, a, z)), attention_mask: int64(cut(b.mask, 0, z)), position_ids: int64(cut(pos, a, z)) };
    for (const name of sp.inputNames.filter((n) => n.startsWith("past_key_values."))) feeds[name] = presents[name.replace("past_key_values.", "present.")]!;
    const step = await sp.run(feeds);
    assert.deepEqual(step["present.0.key"]!.dims[2], z);
    const steps = z - a;
    // the reference rows of positions a..z-1 of each row
    const refRows = new Float32Array(B * steps * vocab);
    for (let r = 0; r < B; r++) refRows.set(ref.subarray((r * T + a) * vocab, (r * T + z) * vocab), r * steps * vocab);
    cached = Math.max(cached, maxDiff(step.logits!.data as Float32Array, refRows, vocab));
    presents = step;
  }
  return { full: Math.max(full, empty), cached };
}

test("GPT-2 (hf-tiny/gpt2): onnxruntime gives lmforge's logits, and cached steps give the full sequence's", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(fixture("hf-tiny/gpt2"), { verbose: false });
  const r = await decoderParity(model, 1000);
  diffs.gpt2 = r.full;
  diffs["gpt2 with past"] = r.cached;
  assert.ok(r.full <= TOL && r.cached <= TOL, `GPT-2: ${JSON.stringify(r)}`);
});

test("Llama (hf-ref-v2/llama): onnxruntime gives lmforge's logits, and cached steps give the full sequence's", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(fixture("hf-ref-v2/llama"), { verbose: false });
  const e = exportOnnx(model, { withPast: true });
  assert.deepEqual(e.inputs.map((i) => i.name).slice(0, 5), ["input_ids", "attention_mask", "position_ids", "past_key_values.0.key", "past_key_values.0.value"]);
  assert.deepEqual(e.inputs[3]!.dims, ["batch", 4, "past_sequence", 12]);
  assert.deepEqual(e.outputs.map((o) => o.name), ["logits", "present.0.key", "present.0.value", "present.1.key", "present.1.value"]);
  const r = await decoderParity(model, 1000);
  diffs.llama = r.full;
  diffs["llama with past"] = r.cached;
  assert.ok(r.full <= TOL && r.cached <= TOL, `Llama: ${JSON.stringify(r)}`);
});

test("Llama with grouped-query attention, a tied head, linear rope scaling and biases, opset 18 (ReduceMean's axes an input): onnxruntime gives lmforge's logits", async () => {
  torch.manualSeed(5);
  const model = AutoModelForCausalLM.fromConfig({
    model_type: "llama", vocab_size: bpe.vocabSize, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    tie_word_embeddings: true, rope_scaling: { type: "linear", factor: 2 }, rope_theta: 500, attention_bias: true,
  });
  perturb(model, 15);
  model.eval();
  assert.deepEqual(exportOnnx(model, { withPast: true }).inputs[3]!.dims, ["batch", 2, "past_sequence", 8]);
  const r = await decoderParity(model, bpe.vocabSize, 18);
  diffs["llama gqa"] = r.full;
  diffs["llama gqa with past"] = r.cached;
  assert.ok(r.full <= TOL && r.cached <= TOL, `Llama GQA: ${JSON.stringify(r)}`);
});

// --- refusals ----------------------------------------------------------------------------------------

test("configs using what the graphs do not reproduce are refused, naming the key; so are bad opsets and the wrong classes", async () => {
  assert.throws(() => checkExportable({ model_type: "llama", sliding_window: 8 }, "m/config.json"), /m\/config\.json: sliding_window is 8 \(sliding-window attention\), which lmforge does not export to ONNX/);
  assert.throws(() => checkExportable({ model_type: "lmforge", attention: "performer" }), /config\.json: attention is "performer", which lmforge does not export/);
  assert.throws(() => checkExportable({ model_type: "t5" }), /model_type is "t5"/);
  assert.throws(() => checkExportable({ model_type: "bert", lmforge: { head: "layer-pool:4" } }), /lmforge\.head is "layer-pool:4"/);
  // refused from config.json before any weight is read: this folder has none
  const folder = join(dir, "mistral-like");
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "config.json"), JSON.stringify({ model_type: "llama", architectures: ["LlamaForCausalLM"], sliding_window: 4096 }));
  await assert.rejects(exportOnnxFromFolder(folder), /sliding_window is 4096/);
  // BertForPreTraining is not a classifier; an encoder has no past; opset 13 is not offered
  await assert.rejects(exportOnnxFromFolder(fixture("hf-tiny/bert")), /BertForPreTraining: lmforge exports BERT, RoBERTa, ALBERT and ELECTRA sequence classifiers/);
  const tiny = AutoModelForSequenceClassification.fromConfig({ model_type: "bert", vocab_size: 50, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8 });
  assert.throws(() => exportOnnx(tiny, { withPast: true }), /--with-past: BertForSequenceClassification is an encoder/);
  assert.throws(() => exportOnnx(tiny, { opset: 13 }), /--opset 13: lmforge exports ONNX opsets 14, 15, 16, 17, 18/);
});

test("lmforge export onnx writes the file and says what it holds", () => {
  const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
  const out = join(dir, "gpt2.onnx");
  const r = spawnSync(process.execPath, [cli, "export", "onnx", fixture("hf-tiny/gpt2"), "--out", out, "--with-past"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(out));
  assert.match(r.stdout, new RegExp(`wrote ${out.replace(/[.]/g, "\\.")}: [0-9.]+ MiB, GPT2LMHeadModel \\(causal-lm\\), ONNX opset 17`));
  assert.match(r.stdout, /past_key_values\.2\.value float32 \[batch, 4, past_sequence, 12\]/);
  assert.match(r.stdout, /logits float32 \[batch, sequence, 1000\]/);
  assert.equal((decodeModel(readFileSync(out)) as { graph: { output: object[] } }).graph.output.length, 7);
  const bad = spawnSync(process.execPath, [cli, "export", "onnx", fixture("hf-tiny/gpt2"), "--out", out, "--opset", "12"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--opset/);
});

test("max |onnxruntime - lmforge| per model", (t) => {
  t.diagnostic(JSON.stringify(diffs));
  assert.ok(Object.keys(diffs).length >= 8, `some parity tests did not run: ${Object.keys(diffs).join(", ")}`);
});

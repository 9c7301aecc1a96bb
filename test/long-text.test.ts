// Long-document classification: window boundaries and stride worked out by hand, mean / max /
// attention pooling against hand computations from per-window values, a short text read
// exactly as truncation reads it, the saved folder scoring with the mode training used, and a
// tiny model that can only learn its task from the text past the first window.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { classification, poolWindowLogits, textWindows, windowSettings, windowStarts, WindowAttention } from "../src/tasks/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { resolveOptions } from "../src/io/options.js";
import { evaluateFinetuned, finetune, loadFinetuned } from "../src/train/index.js";
import type { FinetuneOptions } from "../src/train/index.js";
import { assertClose, tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;

test("window starts: stride shared, the last window flush with the end, at most maxWindows (the first)", () => {
  // body 126, stride 31: step 95; 300 tokens need 1 + ceil(174 / 95) = 3 windows, the last at 300 - 126
  assert.deepEqual(windowStarts(300, 126, 31, 8), [0, 95, 174]);
  assert.deepEqual(windowStarts(126, 126, 32, 8), [0]);
  assert.deepEqual(windowStarts(5, 126, 32, 8), [0]);
  // one token too many: a second window moved back by one token
  assert.deepEqual(windowStarts(127, 126, 32, 8), [0, 1]);
  // 1000 tokens, step 94: 10 windows, the first 3 kept (regular starts, none moved)
  assert.deepEqual(windowStarts(1000, 126, 32, 3), [0, 94, 188]);
  assert.deepEqual(windowStarts(1000, 126, 0, 100).slice(-2), [756, 874]);
  assert.throws(() => windowStarts(300, 126, 126, 8), /--stride 126 must be less than the 126 tokens/);
});

test("text windows: [CLS] and [SEP] around every window, the stride's tokens shared, the last window", () => {
  // [CLS]=2, 20 body tokens 10..29, [SEP]=3; max length 8: body 6, stride 2, step 4
  const body = Array.from({ length: 20 }, (_, i) => 10 + i);
  const enc = { ids: [2, ...body, 3], typeIds: new Array<number>(22).fill(0), specialTokensMask: [1, ...new Array<number>(20).fill(0), 1] };
  const w = textWindows(enc, { maxLength: 8, stride: 2, maxWindows: 8 });
  // starts 0, 4, 8, 12 and the last flush at 20 - 6 = 14
  assert.deepEqual(w.map((x) => x.ids), [
    [2, 10, 11, 12, 13, 14, 15, 3],
    [2, 14, 15, 16, 17, 18, 19, 3],
    [2, 18, 19, 20, 21, 22, 23, 3],
    [2, 22, 23, 24, 25, 26, 27, 3],
    [2, 24, 25, 26, 27, 28, 29, 3],
  ]);
  assert.ok(w.every((x) => x.typeIds.length === 8 && x.typeIds.every((t) => t === 0)));
  assert.deepEqual(textWindows(enc, { maxLength: 8, stride: 2, maxWindows: 2 }).map((x) => x.ids[1]), [10, 14]);
  // a text that fits is its encoding, unchanged
  const short = { ids: [2, 10, 11, 3], typeIds: [0, 0, 0, 0], specialTokensMask: [1, 0, 0, 1] };
  assert.deepEqual(textWindows(short, { maxLength: 8, stride: 2, maxWindows: 8 }), [{ ids: [2, 10, 11, 3], typeIds: [0, 0, 0, 0] }]);
  // an encoding of exactly max length: one window
  assert.equal(textWindows({ ids: enc.ids.slice(0, 7).concat([3]), typeIds: new Array<number>(8).fill(0), specialTokensMask: [1, 0, 0, 0, 0, 0, 0, 1] }, { maxLength: 8, stride: 2, maxWindows: 8 }).length, 1);
});

test("mean and max pooling equal the hand computation from per-window logits", () => {
  // document 0 owns windows 0..2, document 1 window 3
  const logits = torch.tensor([[1, 2], [3, 0], [5, -1], [0, 4]], { dtype: "float32" });
  assertClose(poolWindowLogits(logits, [3, 1], "mean"), [[3, 1 / 3], [0, 4]]);
  assertClose(poolWindowLogits(logits, [3, 1], "max"), [[5, 2], [0, 4]]);
  assertClose(poolWindowLogits(logits, [1, 1, 1, 1], "mean"), [[1, 2], [3, 0], [5, -1], [0, 4]]);
});

test("attention pooling: softmax of the scorer over a document's windows weighs their vectors", () => {
  const head = new WindowAttention(2, 2);
  torch.noGrad(() => {
    head.scorer.weight.copy_(torch.tensor([[1, 0]]));
    head.scorer.bias!.zero_();
    head.classifier.weight.copy_(torch.tensor([[1, 0], [0, 1]]));
    head.classifier.bias!.zero_();
  });
  // document 0: scores 0 and ln 3 -> weights 1/4, 3/4 -> pooled (3/4 ln 3, 1/4); document 1: one window, weight 1
  const vectors = torch.tensor([[0, 1], [Math.log(3), 0], [2, 5]]);
  const { logits, weights } = head.forward(vectors, [2, 1]);
  assertClose(weights[0]!, [[0.25], [0.75]]);
  assertClose(weights[1]!, [[1]]);
  assertClose(logits, [[0.75 * Math.log(3), 0.25], [2, 5]]);
});

test("settings: a folder saved without them (before windows) reads truncated; DP-SGD truncates by default and refuses windows", () => {
  assert.deepEqual(windowSettings({}, 128), { longText: "truncate", pool: "mean", maxLength: 128, stride: 32, maxWindows: 8 });
  assert.equal(windowSettings({ longText: "windows", stride: 5 }, 64).stride, 5);
  assert.equal(resolveOptions<Record<string, unknown>>(classification.options, {}).longText, "windows");
  assert.equal(resolveOptions<Record<string, unknown>>(classification.options, { dpEpsilon: 8 }).longText, "truncate");
  assert.throws(() => classification.settle!([], { dpEpsilon: 8, longText: "windows", maxLength: 16 }), /--long-text windows: DP-SGD clips each row's gradient/);
  assert.deepEqual(classification.settle!([], { longText: "windows", maxLength: 128 }), { stride: 32 });
});

// --- a tiny model -----------------------------------------------------------------------------------
// The class words come after 20 filler words: at max length 16 truncation sees filler only.
const words = { whale: "whale ship sea harpoon captain ocean voyage sail", nation: "nation congress president law people union tax" };
const filler = ["the", "and", "of", "a", "to"];
function synth(n: number, seed: number): LabelledExample[] {
  let x = seed;
  const rnd = (): number => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2 ? "whale" : "nation";
    const own = words[label].split(" ");
    const other = words[label === "whale" ? "nation" : "whale"].split(" ");
    const lead = Array.from({ length: 20 }, () => filler[Math.floor(rnd() * filler.length)]);
    const tail = Array.from({ length: 8 }, () => (rnd() < 0.8 ? own : other)[Math.floor(rnd() * 7)]);
    return { text: [...lead, ...tail].join(" "), label, source: `synth:${i}` };
  });
}
const trainSet = synth(120, 1);
const valSet = synth(40, 2);
const testSet = synth(40, 3);
const modelDir = join(dir, "base");
{
  const tok = trainTokenizerFromTexts([...trainSet, ...valSet].map((e) => e.text), { kind: "wordpiece", vocabSize: 200, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  const m = AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 });
  savePretrained(m, modelDir);
  saveTokenizer(tok, modelDir);
}
const run = (name: string, extra: Partial<FinetuneOptions>) =>
  finetune({ model: modelDir, train: trainSet, validation: valSet, test: testSet, epochs: 8, batchSize: 16, learningRate: 3e-3, seed: 3, maxLength: 16, stride: 4, patience: 0, precision: "fp32", out: join(dir, name), ...extra });

test("a short text reads exactly as truncated; a long one's first window is the truncated text", async () => {
  const { loadTokenizer } = await import("../src/tokenizers/index.js");
  const tokenizer = loadTokenizer(modelDir);
  const ctx = { tokenizer, labels: ["nation", "whale"], maxLength: 16 };
  const windows = classification.objective({ ...ctx, options: { longText: "windows", stride: 4, maxWindows: 8 } });
  const truncate = classification.objective({ ...ctx, options: { longText: "truncate" } });
  const shortText = { text: "whale ship sea", label: "whale", source: "s" };
  const [w] = windows.prepare!([shortText]) as { windows: { ids: number[] }[] }[];
  const [t] = truncate.prepare!([shortText]) as { windows: { ids: number[] }[] }[];
  assert.deepEqual(w, t);
  assert.equal(w!.windows.length, 1);
  const long = trainSet[0]!;
  const [lw] = windows.prepare!([long]) as { windows: { ids: number[] }[] }[];
  const [lt] = truncate.prepare!([long]) as { windows: { ids: number[] }[] }[];
  const n = tokenizer.encode(long.text, null).ids.length; // 28 words of one piece each, and [CLS] [SEP]
  assert.equal(n, 30);
  // body 14, stride 4, step 10: 1 + ceil((28 - 14) / 10) = 3 windows
  assert.equal(lw!.windows.length, 3);
  assert.deepEqual(lw!.windows[0], lt!.windows[0]);
  assert.deepEqual(lw!.windows[2]!.ids.slice(1, -1), tokenizer.encode(long.text, null).ids.slice(15, 29));
});

test("end to end: windows learn what sits past the first window, truncation cannot; the saved folder scores as trained", async () => {
  const truncated = await run("truncate", { longText: "truncate" });
  const windowed = await run("windows", { longText: "windows", windowPool: "mean" });
  const tF1 = truncated.test!.metrics.macro_f1!;
  const wF1 = windowed.test!.metrics.macro_f1!;
  assert.ok(wF1 >= 0.9, `windows: test macro F1 ${wF1}`);
  assert.ok(tF1 <= 0.75, `truncate: test macro F1 ${tF1} (it only sees filler)`);
  // the mode is saved, and evaluate / predict read with it
  for (const [name, r, mode] of [["windows", windowed, "windows"], ["truncate", truncated, "truncate"]] as const) {
    const f = await loadFinetuned(join(dir, name));
    assert.equal(f.meta.options.longText, mode);
    assert.equal(f.meta.options.stride, 4);
    const ev = evaluateFinetuned(f, testSet);
    assert.ok(Math.abs(ev.metrics.macro_f1! - r.test!.metrics.macro_f1!) < 1e-9);
    const a = ev.predictions as { probabilities: Record<string, number> }[];
    const b = r.test!.predictions as { probabilities: Record<string, number> }[];
    a.forEach((p, i) => assert.ok(Math.abs(p.probabilities.whale! - b[i]!.probabilities.whale!) < 1e-5, `${name}: example ${i}`));
  }
  // mean pooling: the document's probabilities are the softmax of its windows' mean logits, run one window at a time
  const f = await loadFinetuned(join(dir, "windows"));
  const doc = testSet[1]!;
  const rows = (f.objective.prepare!([doc]) as { windows: { ids: number[]; typeIds: number[] }[] }[])[0]!.windows;
  const perWindow = torch.noGrad(() => rows.map((w) => f.model.forward({ inputIds: torch.tensor([w.ids], { dtype: "int64" }), tokenTypeIds: torch.tensor([w.typeIds], { dtype: "int64" }) }).logits.toArray() as number[][]));
  const mean = [0, 1].map((k) => perWindow.reduce((s, l) => s + l[0]![k]!, 0) / perWindow.length);
  const pWhale = 1 / (1 + Math.exp(mean[0]! - mean[1]!));
  const predicted = (f.objective.predict(f.model, [doc]) as { probabilities: Record<string, number> }[])[0]!;
  assert.ok(Math.abs(predicted.probabilities.whale! - pWhale) < 1e-5, `${predicted.probabilities.whale} vs ${pWhale}`);
  // lmforge predict reads each folder with its own mode: the same document, the windowed and the truncated answer
  for (const [name, expected] of [["windows", pWhale], ["truncate", (truncated.test!.predictions[1] as { probabilities: Record<string, number> }).probabilities.whale!]] as const) {
    const out = execFileSync(process.execPath, [cli, "predict", "--model", join(dir, name), "--json", doc.text], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const p = JSON.parse(out.trim()) as { probabilities: Record<string, number> };
    assert.ok(Math.abs(p.probabilities.whale! - expected) < 1e-5, `predict ${name}: ${p.probabilities.whale} vs ${expected}`);
  }
});

test("attention pooling trains its scorer, is saved with the model and reloads to the same predictions", async () => {
  const r = await run("attention", { longText: "windows", windowPool: "attention" });
  assert.ok(r.test!.metrics.macro_f1! >= 0.9, `attention: test macro F1 ${r.test!.metrics.macro_f1}`);
  const f = await loadFinetuned(join(dir, "attention"));
  assert.equal(f.meta.head, "window-attention");
  assert.ok(f.model.stateDict().has("window_attention.scorer.weight"));
  const a = evaluateFinetuned(f, testSet).predictions as { probabilities: Record<string, number> }[];
  const b = r.test!.predictions as { probabilities: Record<string, number> }[];
  a.forEach((p, i) => assert.ok(Math.abs(p.probabilities.whale! - b[i]!.probabilities.whale!) < 1e-5, `example ${i}`));
  await assert.rejects(run("attention-features", { longText: "windows", windowPool: "attention", strategy: "features:2" }), /features:2 attaches a head of its own/);
});

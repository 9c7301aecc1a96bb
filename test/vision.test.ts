// Images with text: patch extraction and shapes, CLIP's symmetric InfoNCE against hand
// computations, a tiny CLIP trained on the Fashion-MNIST sample (zero-shot above chance), the
// fused classifier started from it, PNG and IDX reading, and the errors on bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { AutoModel, AutoModelFromArchitecture, loadReport, presetConfig } from "../src/models/index.js";
import { LmforgeClipModel, LmforgeForImageClassification, LmforgeVisionModel, PatchEmbeddings, extractPatches, visionConfig } from "../src/models/vision.js";
import { FASHION_MNIST_CLASSES, PIXEL_MEAN, PIXEL_STD, TEXT_TEMPLATES, classText, decodePng, loadImageSet, pixelTensor, readIdxImages, readPng } from "../src/data/images.js";
import { clipLoss } from "../src/objectives/clip.js";
import { taskEntry } from "../src/tasks/index.js";
import { evaluateFinetuned, finetune, loadFinetuned, pretrain } from "../src/train/index.js";
import { assertClose, tempDir } from "./helpers.js";

const dir = await tempDir();
process.env.LMFORGE_CACHE = join(dir, "cache");
const sample = new URL("../../test/fixtures/fashion-mnist-sample", import.meta.url).pathname;
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const png = createRequire(import.meta.url)("pngjs") as { PNG: { sync: { write(p: { width: number; height: number; data: Buffer }, o?: { colorType?: number }): Buffer } } };

/** A PNG of RGBA pixels written by pngjs with the given colour type (0 grey, 2 RGB, 6 RGBA). */
function writePng(path: string, width: number, height: number, rgba: number[], colorType: number): void {
  writeFileSync(path, png.PNG.sync.write({ width, height, data: Buffer.from(rgba) }, { colorType }));
}

const tiny = { ...presetConfig("lmforge-vit-tiny"), vocab_size: 50, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2 };

test("patches of a 4x4 image in 2x2 patches: row-major patches, each row-major, channel first", () => {
  const img = torch.arange(0, 16, 1, { dtype: "float32" }).view([1, 1, 4, 4]);
  assertClose(extractPatches(img, 2), [[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]]);
  // two channels of a 2x2 image, one patch: channel 0's four values, then channel 1's
  const two = torch.tensor([[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]], { dtype: "float32" });
  assertClose(extractPatches(two, 2), [[[1, 2, 3, 4, 5, 6, 7, 8]]]);
  assert.throws(() => extractPatches(torch.zeros([1, 1, 5, 4]), 2), /5x4 image does not split into 2x2 patches/);
});

test("the patch embedding equals ViT's convolution with kernel = stride = P; shapes of every model", () => {
  torch.manualSeed(0);
  const config = visionConfig({ ...tiny, num_channels: 3, image_size: 28, patch_size: 7, id2label: { 0: "a", 1: "b", 2: "c" } });
  const emb = new PatchEmbeddings(config);
  const x = torch.randn([2, 3, 28, 28]);
  const viaLinear = emb.patch_embedding.forward(extractPatches(x, 7)); // (2, 16, 32)
  const weight = emb.patch_embedding.weight.view([32, 3, 7, 7]);
  const viaConv = torch.conv2d(x, weight, emb.patch_embedding.bias, 7).flatten(2).transpose(1, 2); // (2, 16, 32)
  assertClose(viaLinear, viaConv.toArray() as number[][][], 1e-5);
  assert.deepEqual(emb.forward(x).shape, [2, 17, 32]); // [CLS] and 16 patches
  const vision = new LmforgeVisionModel(config);
  const v = vision.forward({ pixelValues: x });
  assert.deepEqual([v.lastHiddenState.shape, v.pooledOutput!.shape], [[2, 17, 32], [2, 32]]);
  const clip = new LmforgeClipModel(config);
  const ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0], [2, 8, 9, 3]], { dtype: "int64" });
  const mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]], { dtype: "int64" });
  const out = clip.forward({ pixelValues: x, inputIds: ids, attentionMask: mask });
  assert.deepEqual([out.logits.shape, out.imageEmbeds.shape, out.textEmbeds.shape], [[2, 3], [2, 64], [3, 64]]);
  assertClose(out.imageEmbeds.norm(2, [-1]), [1, 1], 1e-5, "unit image embeddings");
  assertClose(clip.logit_scale, Math.log(1 / 0.07), 1e-6, "CLIP's initial temperature");
  torch.noGrad(() => clip.logit_scale.fill_(10));
  assertClose(clip.scale(), 100, 1e-6, "exp(logit_scale) clamped at 100");
  const fused = new LmforgeForImageClassification(config);
  assert.deepEqual(fused.forward({ pixelValues: x, inputIds: ids.narrow(0, 0, 2), attentionMask: mask.narrow(0, 0, 2) }).logits.shape, [2, 3]);
  assert.deepEqual(fused.forward({ pixelValues: x }).logits.shape, [2, 3]);
  assert.throws(() => vision.forward({ pixelValues: torch.zeros([1, 1, 28, 28]) }), /takes images of 3x28x28, got 1x28x28/);
});

test("config errors name the keys", () => {
  assert.throws(() => visionConfig({ ...tiny, image_size: 30 }), /image_size \(30\) is not a multiple of patch_size \(7\)/);
  assert.throws(() => visionConfig({ ...tiny, num_channels: 2 }), /num_channels must be 1 \(grey\) or 3 \(RGB\), got 2/);
  assert.throws(() => visionConfig({ ...tiny, positions: "rotary" }), /positions=rotary does not go with lmforge-vit/);
  assert.throws(() => visionConfig({ ...tiny, causal: true }), /causal=true does not go with lmforge-vit/);
});

test("symmetric InfoNCE on a 2x2 similarity matrix, by hand; label-aware targets", () => {
  const logits = torch.tensor([[2, 0], [1, 3]], { dtype: "float64" });
  const lse = (a: number, b: number): number => Math.log(Math.exp(a) + Math.exp(b));
  // image -> text: rows against their diagonal; text -> image: columns against theirs
  const i2t = (lse(2, 0) - 2 + (lse(1, 3) - 3)) / 2;
  const t2i = (lse(2, 1) - 2 + (lse(0, 3) - 3)) / 2;
  assertClose(clipLoss(logits), (i2t + t2i) / 2, 1e-9); // 0.153926...
  assertClose(clipLoss(logits), 0.1539263, 1e-6); // (log(1 + e^-2) + (log(1 + e^-1) + log(1 + e^-3)) / 2) / 2
  assertClose(clipLoss(logits.t()), (i2t + t2i) / 2, 1e-9, "symmetric: the transposed matrix has the same loss");
  // distinct labels: CLIP's identity target exactly
  assertClose(clipLoss(logits, torch.tensor([4, 7], { dtype: "int64" })), (i2t + t2i) / 2, 1e-9);
  // one class: every pair is a positive, the target uniform over each row and column
  const row = (a: number, b: number): number => lse(a, b) - (a + b) / 2;
  assertClose(clipLoss(logits, torch.tensor([1, 1], { dtype: "int64" })), ((row(2, 0) + row(1, 3)) / 2 + (row(2, 1) + row(0, 3)) / 2) / 2, 1e-9); // 1.153926...
});

test("IDX pairs and PNG folders load into normalised tensors; PNGs decode grey, RGB and alpha", () => {
  const set = loadImageSet(sample, "train");
  assert.deepEqual([set.count, set.channels, set.height, set.width], [200, 1, 28, 28]);
  assert.deepEqual(set.classes, FASHION_MNIST_CLASSES.map((c) => c.name));
  assert.deepEqual([...new Set(set.labels)].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(loadImageSet(sample, "test").count, 100);
  const t = pixelTensor([{ pixels: Uint8Array.from([0, 255, 51, 102]), label: 0, source: "x" }], { channels: 1, height: 2, width: 2 });
  assertClose(t, [[[[-PIXEL_MEAN / PIXEL_STD, (1 - PIXEL_MEAN) / PIXEL_STD], [(0.2 - PIXEL_MEAN) / PIXEL_STD, (0.4 - PIXEL_MEAN) / PIXEL_STD]]]], 1e-6);
  // grey to a 3-channel model: the same plane three times
  assert.deepEqual(pixelTensor([{ pixels: Uint8Array.from([0, 255, 51, 102]), label: 0, source: "x" }], { channels: 3, height: 2, width: 2 }).shape, [1, 3, 2, 2]);

  const pngs = join(dir, "pngs");
  for (const part of ["train", "test"]) for (const cls of ["Sneaker", "bag"]) mkdirSync(join(pngs, part, cls), { recursive: true });
  const grey = [0, 10, 200, 255];
  writePng(join(pngs, "train", "Sneaker", "a.png"), 2, 2, grey.flatMap((v) => [v, v, v, 255]), 0);
  // red, green, blue, and a white pixel fully transparent (composited over black)
  writePng(join(pngs, "train", "bag", "b.png"), 2, 2, [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 0], 6);
  writePng(join(pngs, "test", "bag", "c.png"), 2, 2, [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 9, 9, 9, 255], 2);
  assert.deepEqual([...readPng(join(pngs, "train", "Sneaker", "a.png"), 1).pixels], grey);
  // ITU-R 601 luma: round(0.299 * 255) = 76, round(0.587 * 255) = 150, round(0.114 * 255) = 29
  assert.deepEqual([...readPng(join(pngs, "train", "bag", "b.png"), 1).pixels], [76, 150, 29, 0]);
  assert.deepEqual([...readPng(join(pngs, "test", "bag", "c.png"), 3).pixels], [255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9]);
  const folder = loadImageSet(pngs, "train");
  // folders named after Fashion-MNIST's classes keep its label order (Sneaker 7, Bag 8)
  assert.deepEqual([folder.count, [...folder.labels], folder.classes[7], folder.classes[8]], [2, [7, 8], "Sneaker", "Bag"]);
  assert.equal(loadImageSet(pngs, "test").count, 1);
  // the task reads a folder's test part; a folder with the training files only gives those
  const onlyTrain = join(dir, "only-train");
  mkdirSync(onlyTrain);
  for (const f of ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]) copyFileSync(join(sample, f), join(onlyTrain, f));
  const task = taskEntry("image-classification");
  assert.deepEqual([task.read(sample, {}).examples.length, task.read(onlyTrain, {}).examples.length], [100, 200]);
});

test("bad image files are errors naming the file", () => {
  const bad = join(dir, "bad");
  mkdirSync(join(bad, "Coat"), { recursive: true });
  writeFileSync(join(bad, "Coat", "x.png"), "not a png");
  assert.throws(() => loadImageSet(bad, "train"), (e: Error) => e.message.startsWith(join(bad, "Coat", "x.png")) && /not a readable PNG/.test(e.message));
  assert.throws(() => decodePng(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0]), 1, "cut.png"), /^Error: cut.png: not a readable PNG/);
  writePng(join(bad, "Coat", "x.png"), 2, 2, Array(16).fill(255), 6);
  writePng(join(bad, "Coat", "y.png"), 3, 2, Array(24).fill(255), 6);
  assert.throws(() => loadImageSet(bad, "train"), new RegExp(`${join(bad, "Coat", "y.png")}: the image is 3x2, the model takes 2x2`));
  // IDX: labels that do not match their images, and a folder with the test part only
  const idx = join(dir, "idx");
  mkdirSync(idx);
  const header = (dims: number[], type = 8): Buffer => Buffer.concat([Buffer.from([0, 0, type, dims.length]), ...dims.map((d) => Buffer.from([d >>> 24, (d >>> 16) & 255, (d >>> 8) & 255, d & 255]))]);
  writeFileSync(join(idx, "t10k-images-idx3-ubyte"), Buffer.concat([header([2, 2, 2]), Buffer.alloc(8)]));
  writeFileSync(join(idx, "t10k-labels-idx1-ubyte"), Buffer.concat([header([3]), Buffer.from([1, 2, 3])]));
  assert.throws(() => readIdxImages(join(idx, "t10k-images-idx3-ubyte"), join(idx, "t10k-labels-idx1-ubyte")), /t10k-labels-idx1-ubyte: 3 labels for the 2 images of .*t10k-images-idx3-ubyte/);
  writeFileSync(join(idx, "t10k-labels-idx1-ubyte"), Buffer.concat([header([2]), Buffer.from([1, 12])]));
  assert.throws(() => loadImageSet(idx, "test"), /t10k-labels-idx1-ubyte: label 12 of image 1 is not a class index 0..9/);
  assert.throws(() => loadImageSet(idx, "train"), /no train-images-idx3-ubyte\[.gz\] \(the train part\); only the test files are there/);
  assert.throws(() => loadImageSet(join(dir, "nowhere"), "train"), /nowhere: no such file or folder/);
});

test("a tiny CLIP on the Fashion-MNIST sample: zero-shot above chance, saved and reloaded, evaluate and predict; the fused classifier starts from it", async () => {
  const texts = FASHION_MNIST_CLASSES.flatMap((c) => TEXT_TEMPLATES.map((t) => classText(t, c)));
  const tok = join(dir, "tok");
  saveTokenizer(trainTokenizerFromTexts([...texts, "a photo of an item of clothing."], { kind: "wordpiece", vocabSize: 200, lowercase: true, minFrequency: 1 }), tok);
  const out = join(dir, "clip");
  const small = { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2 };
  await assert.rejects(pretrain({ model: "lmforge-vit-tiny", tokenizer: tok, objectives: "clip", maxSteps: 1, out: join(dir, "none") }), /clip learns from images: give --images DIR/);
  await assert.rejects(pretrain({ model: "lmforge-vit-tiny", tokenizer: tok, objectives: "mlm", images: sample, maxSteps: 1, out: join(dir, "none") }), /--images goes with an image objective \(clip\), not mlm/);
  await assert.rejects(pretrain({ model: "lmforge-tiny", tokenizer: tok, objectives: "clip", images: sample, maxSteps: 1, out: join(dir, "none") }), /lmforge has no image-text-contrastive model/);
  // the block's switches (--arch) apply to both towers
  const swiglu = await pretrain({ model: "lmforge-vit-tiny", arch: { ffn: "swiglu", norm_type: "rmsnorm" }, modelConfig: small, tokenizer: tok, objectives: "clip", images: sample, maxSteps: 1, batchSize: 8, precision: "fp32", out: join(dir, "swiglu") });
  assert.deepEqual([swiglu.model.config.ffn, swiglu.model.config.norm_type, swiglu.model.config.norm], ["swiglu", "rmsnorm", "pre"]);
  await assert.rejects(pretrain({ model: "lmforge-vit-tiny", arch: { positions: "alibi" }, tokenizer: tok, objectives: "clip", images: sample, maxSteps: 1, out: join(dir, "none") }), /positions=alibi does not go with lmforge-vit/);
  // seeds 1-6 give 28-41% on the 100 test images (chance 10%; seed 1: 36%): > 20% leaves room for other thread counts
  const r = await pretrain({ model: "lmforge-vit-tiny", modelConfig: small, tokenizer: tok, objectives: "clip", images: sample, maxSteps: 80, batchSize: 32, learningRate: 5e-4, valFraction: 0.1, seqLen: 32, precision: "fp32", seed: 1, evalEvery: 80, out });
  assert.equal(r.steps, 80);
  assert.ok(r.test!.zero_shot_accuracy! > 0.2, `zero-shot accuracy ${r.test!.zero_shot_accuracy} on the sample's 100 test images`);
  assert.ok(r.evals.at(-1)!.val_loss! < Math.log(32), "the loss fell below a batch of equal similarities' ln(32)");
  const saved = JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as Record<string, number>;
  assert.equal(saved.zero_shot_accuracy, r.test!.zero_shot_accuracy);
  // the folder reloads as the CLIP model it names, and scores as the run did (lmforge evaluate's path)
  const back = await AutoModelFromArchitecture.fromPretrained(out, { verbose: false });
  assert.ok(back instanceof LmforgeClipModel);
  assert.deepEqual(loadReport(back)!.initialized, []);
  // AutoModel: the image tower alone, its weights found under the vision_model. prefix
  const tower = await AutoModel.fromPretrained(out, { verbose: false });
  assert.ok(tower instanceof LmforgeVisionModel);
  assert.deepEqual(loadReport(tower)!.missingKeys, []);
  const f = await loadFinetuned(out);
  assert.deepEqual([f.meta.task, f.meta.labels], ["image-classification", FASHION_MNIST_CLASSES.map((c) => c.name)]);
  const test = f.task.read(sample, {}).examples;
  const scored = evaluateFinetuned(f, test);
  assert.equal(scored.metrics.accuracy, r.test!.zero_shot_accuracy);
  // predict: the fourth test image of the IDX file, from the command line
  const cmd = spawnSync(process.execPath, [cli, "predict", "--model", out, "--image", join(sample, "t10k-images-idx3-ubyte.gz"), "--index", "3", "--json"], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: "1" } });
  assert.equal(cmd.status, 0, cmd.stderr);
  const line = JSON.parse(cmd.stdout.trim()) as { image: string; label: string; probabilities: Record<string, number> };
  assert.equal(line.image, `${join(sample, "t10k-images-idx3-ubyte.gz")}#3`);
  assert.equal(Object.keys(line.probabilities).length, 10);
  assertClose(torch.tensor(Object.values(line.probabilities)).sum(), 1, 1e-5);
  assert.equal(line.label, (scored.predictions[f.task.read(sample, {}).examples.findIndex((e) => (e as { source: string }).source.endsWith("#3"))] as { label: string }).label);

  // the fused classifier: the image tower's blocks and the text embeddings come from the CLIP folder
  const fused = await finetune({ model: out, task: "image-classification", images: sample, maxSteps: 4, batchSize: 16, learningRate: 1e-3, precision: "fp32", seed: 1, out: join(dir, "fused") });
  assert.ok(fused.model instanceof LmforgeForImageClassification);
  const report = loadReport(fused.model)!;
  assert.deepEqual(report.initialized.sort(), ["classifier.bias", "classifier.weight", "modality_embeddings.weight"]);
  assert.ok(report.unexpectedKeys.includes("visual_projection.weight") && report.unexpectedKeys.includes("logit_scale"), report.unexpectedKeys.join());
  assert.equal(fused.test!.predictions.length, 100);
  assert.equal(fused.meta.options.textPrompt, "a photo of an item of clothing.", "the prompt is saved with the model: predict gives the same text");
  const again = await loadFinetuned(join(dir, "fused"));
  assert.equal(evaluateFinetuned(again, test).metrics.accuracy, fused.test!.metrics.accuracy);
});

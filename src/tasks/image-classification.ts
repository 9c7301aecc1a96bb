// Image classification with the vision models (src/models/vision.ts), two ways:
//   - the fused classifier (LmforgeForImageClassification), trained here: one Transformer over
//     [image patches; text tokens] and a head. The text is the same fixed, class-agnostic prompt
//     for every image, at training and at test time (--text-prompt, default "a photo of an item
//     of clothing."), so it carries no label; it is saved with the model and predict uses it too.
//   - a CLIP folder (LmforgeClipModel), scored zero-shot: each image against every class's
//     prompts (all templates, CLIP's ensembling), no image label seen; evaluate and predict only.
// Data: an image folder (IDX files by their standard names, or PNGs in train|test/<class>/),
// given as --images DIR (or --train DIR); the folder's test part is the test set, and validation
// is split from the training images. Metrics as text classification: accuracy, F1, confusion.
import { existsSync, statSync } from "node:fs";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { Batch, EvalContext, EvalResult, PretrainedModel } from "../models/index.js";
import { LmforgeClipModel, LmforgeForImageClassification } from "../models/vision.js";
import { pad2d, paddingMask } from "../data/collate.js";
import { readIdx } from "../data/idx.js";
import { TEXT_TEMPLATES, classesFor, imageExamples, loadImageSet, pixelTensor, promptIds, readPng, splitImages } from "../data/images.js";
import type { ImageExample, ImageSet } from "../data/images.js";
import type { LabelledExample } from "../data/index.js";
import { formatReport } from "../eval/index.js";
import type { ClassificationReport } from "../eval/index.js";
import { defineOptions } from "../io/options.js";
import { scoreClassification, toPrediction } from "./classification.js";
import type { ClassPrediction } from "./classification.js";
import type { FinetuneTask, TaskContext, TaskObjective } from "./registry.js";

/** An image with its class name ("" when unknown: predict's inputs). */
export interface LabelledImage {
  /** C x H x W bytes. */
  pixels: Uint8Array;
  label: string;
  source: string;
  /** The class names of the set it came from, in label order. */
  classes: readonly string[];
}

export interface ImageBatch extends Batch {
  /** The images, made into pixels (B, C, H, W) by the loss, which knows the model's image size. */
  images: readonly LabelledImage[];
  attentionMask: Tensor;
  /** (B) class indices (-1 for an unknown label). */
  labels: Tensor;
}

/** The fused classifier's default text: the same for every image, so it says nothing of the label. */
export const DEFAULT_TEXT_PROMPT = "a photo of an item of clothing.";

function labelled(set: ImageSet, examples: readonly ImageExample[] = imageExamples(set)): LabelledImage[] {
  return examples.map((e) => ({ pixels: e.pixels, label: set.classes[e.label]!, source: e.source, classes: set.classes }));
}

/** An lmforge-vit model's image shape; another model is an error naming it. */
function imageShape(model: PretrainedModel): { channels: number; height: number; width: number } {
  if (!(model instanceof LmforgeForImageClassification || model instanceof LmforgeClipModel)) throw new Error(`image-classification needs an lmforge-vit model (a clip folder from lmforge pretrain --objectives clip), not ${model.constructor.name}`);
  const c = model.config;
  return { channels: c.num_channels, height: c.image_size, width: c.image_size };
}

function pixels(images: readonly LabelledImage[], model: PretrainedModel): Tensor {
  return pixelTensor(images.map((r) => ({ pixels: r.pixels, label: -1, source: r.source })), imageShape(model));
}

function channelsOf(o: Record<string, unknown>): 1 | 3 {
  if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3) throw new Error(`--channels must be 1 (grey) or 3 (RGB), got ${String(o.channels)}`);
  return o.channels === 3 ? 3 : 1;
}

class ImageClassificationObjective implements TaskObjective<LabelledImage, LabelledImage> {
  readonly name = "image-classification";
  readonly metricDirections = { accuracy: "max", macro_f1: "max", micro_f1: "max", weighted_f1: "max", loss: "min" } as const;
  private readonly labelIndex: Map<string, number>;
  private readonly padId: number;
  private readonly prompt: number[];

  constructor(private readonly ctx: TaskContext) {
    this.labelIndex = new Map(ctx.labels.map((l, i) => [l, i]));
    const tok = ctx.tokenizer;
    this.padId = tok.tokenToId(tok.specialTokens.pad ?? "[PAD]") ?? 0;
    this.prompt = tok.encode(String(ctx.options.textPrompt ?? DEFAULT_TEXT_PROMPT), null, { maxLength: ctx.maxLength, truncation: "longest_first" }).ids;
  }

  private get zeroShot(): boolean {
    return this.ctx.modelHead === "image-text-contrastive";
  }

  batch(rows: readonly LabelledImage[], indices: number[]): ImageBatch {
    const picked = indices.map((i) => rows[i]!);
    const texts = picked.map(() => this.prompt);
    return {
      images: picked,
      inputIds: pad2d(texts, this.padId),
      attentionMask: paddingMask(texts),
      labels: torch.tensor(picked.map((r) => this.labelIndex.get(r.label) ?? -1), { dtype: "int64" }),
      targets: picked.length,
    };
  }

  loss(model: PretrainedModel, b: ImageBatch): { loss: Tensor; metrics: Record<string, number> } {
    if (this.zeroShot) throw new Error("image-classification trains the fused classifier (LmforgeForImageClassification); a clip model is scored zero-shot, without training");
    return { loss: torch.crossEntropy(model.forward({ pixelValues: pixels(b.images, model), inputIds: b.inputIds, attentionMask: b.attentionMask } as never).logits.float(), b.labels), metrics: {} };
  }

  /** Class probabilities (B, K) of every example, in order, with the loss of those with a known label. */
  private run(model: PretrainedModel, examples: readonly LabelledImage[], o: { batchSize?: number; precision?: "fp32" | "bf16" }): { probs: number[][]; lossSum: number; counted: number } {
    if (this.zeroShot) return this.runZeroShot(model as LmforgeClipModel, examples, o);
    const bs = o.batchSize ?? 64;
    const probs: number[][] = [];
    let lossSum = 0;
    let counted = 0;
    model.eval();
    torch.noGrad(() => {
      for (let s = 0; s < examples.length; s += bs) {
        torch.scope(() => {
          const idx = Array.from({ length: Math.min(bs, examples.length - s) }, (_, i) => s + i);
          const b = this.batch(examples, idx);
          const logits = torch.autocast(() => model.forward({ pixelValues: pixels(b.images, model), inputIds: b.inputIds, attentionMask: b.attentionMask } as never).logits, { enabled: o.precision === "bf16" }).float();
          const logp = logits.logSoftmax(-1);
          probs.push(...(logp.exp().toArray() as number[][]));
          if (idx.every((i) => this.labelIndex.has(examples[i]!.label))) {
            lossSum += torch.nllLoss(logp, b.labels, null, "sum").item();
            counted += idx.length;
          }
        });
      }
    });
    return { probs, lossSum, counted };
  }

  /** CLIP zero-shot: class embeddings from every template, then each image against them. */
  private runZeroShot(model: LmforgeClipModel, examples: readonly LabelledImage[], o: { batchSize?: number }): { probs: number[][]; lossSum: number; counted: number } {
    const classes = classesFor(this.ctx.labels);
    const prompts = promptIds(this.ctx.tokenizer, classes, TEXT_TEMPLATES, this.ctx.maxLength);
    const bs = o.batchSize ?? 256;
    const probs: number[][] = [];
    let lossSum = 0;
    let counted = 0;
    model.eval();
    torch.noGrad(() => {
      const classEmbeds = torch.keep(model.classEmbeddings(pad2d(prompts, this.padId), paddingMask(prompts), TEXT_TEMPLATES.length));
      try {
        for (let s = 0; s < examples.length; s += bs) {
          torch.scope(() => {
            const part = examples.slice(s, s + bs);
            const logp = model.zeroShotLogits(pixels(part, model), classEmbeds).logSoftmax(-1);
            probs.push(...(logp.exp().toArray() as number[][]));
            if (part.every((r) => this.labelIndex.has(r.label))) {
              lossSum += torch.nllLoss(logp, torch.tensor(part.map((r) => this.labelIndex.get(r.label)!), { dtype: "int64" }), null, "sum").item();
              counted += part.length;
            }
          });
        }
      } finally {
        classEmbeds.dispose();
      }
    });
    return { probs, lossSum, counted };
  }

  predict(model: PretrainedModel, examples: readonly LabelledImage[], o: { batchSize?: number; precision?: "fp32" | "bf16" } = {}): ClassPrediction[] {
    return this.run(model, examples, o).probs.map((p) => toPrediction(p, this.ctx.labels));
  }

  evaluate(model: PretrainedModel, examples: readonly LabelledImage[], ctx: EvalContext): EvalResult {
    const shown = ctx.maxBatches === undefined ? examples : examples.slice(0, ctx.maxBatches * ctx.batchSize);
    const { probs, lossSum, counted } = this.run(model, shown, ctx);
    const predictions = probs.map((p) => toPrediction(p, this.ctx.labels));
    const { metrics } = scoreImages(shown, predictions, this.ctx.labels);
    return { metrics: { loss: lossSum / Math.max(1, counted), ...metrics }, predictions };
  }
}

function scoreImages(examples: readonly LabelledImage[], predictions: readonly ClassPrediction[], labels: readonly string[]): { metrics: Record<string, number>; report: ClassificationReport } {
  return scoreClassification(examples.map((e) => ({ text: "", label: e.label, source: e.source })) as LabelledExample[], predictions, labels);
}

/** A folder with both a training and a test part (IDX pairs, or train/ and test/ PNG folders). */
function hasBothParts(path: string): boolean {
  if (!existsSync(path) || !statSync(path).isDirectory()) return false;
  const idx = (p: string): boolean => existsSync(`${path}/${p}-images-idx3-ubyte`) || existsSync(`${path}/${p}-images-idx3-ubyte.gz`);
  return (idx("train") && idx("t10k")) || (existsSync(`${path}/train`) && existsSync(`${path}/test`));
}

/** predict's input: --image FILE (a PNG, or an IDX images file with --index N), or PNG paths as arguments. */
function predictImages(paths: string[], o: Record<string, unknown>): LabelledImage[] {
  const channels = channelsOf(o);
  const files = [...(typeof o.image === "string" ? [o.image] : []), ...paths];
  return files.map((file) => {
    if (file.toLowerCase().endsWith(".png")) {
      const im = readPng(file, channels);
      return { pixels: im.pixels, label: "", source: file, classes: [] };
    }
    const idx = readIdx(file);
    const index = typeof o.index === "number" ? o.index : 0;
    if (idx.dtype !== "uint8" || idx.shape.length < 3) throw new Error(`${file}: not a PNG nor an IDX file of images (unsigned bytes, N x H x W), found ${idx.dtype} [${idx.shape.join(", ")}]`);
    const count = idx.shape[0]!;
    if (index >= count) throw new Error(`${file}: --index ${index} is past its ${count} images (0..${count - 1})`);
    const size = idx.data.length / count;
    return { pixels: (idx.data as Uint8Array).slice(index * size, (index + 1) * size), label: "", source: `${file}#${index}`, classes: [] };
  });
}

const OPTIONS = defineOptions([
  { flag: "images", key: "images", type: "string", arg: "DIR", help: "image-classification: the images (IDX files by their standard names, or PNGs in train|test/<class>/); the same as --train DIR" },
  { flag: "text-prompt", key: "textPrompt", type: "string", arg: "TEXT", default: DEFAULT_TEXT_PROMPT, help: "image-classification: the fused classifier's text beside every image, the same for all and saved with the model (it must not name the label)" },
  { flag: "channels", key: "channels", type: "int", min: 1, max: 3, help: "image-classification: read PNGs as 1 (grey) or 3 (RGB) channels (default 1)" },
]);

const PREDICT_OPTIONS = defineOptions([
  { flag: "image", key: "image", type: "string", arg: "FILE", help: "image-classification: a PNG, or an IDX images file with --index" },
  { flag: "index", key: "index", type: "int", min: 0, help: "image-classification: which image of an IDX file (default 0)" },
]);

export const imageClassification: FinetuneTask<LabelledImage> = {
  name: "image-classification",
  summary: "a class per image: the fused image+text classifier, or a clip model zero-shot (Fashion-MNIST)",
  head: "image-classification",
  heads: ["image-classification", "image-text-contrastive"],
  options: OPTIONS,
  predictOptions: PREDICT_OPTIONS,
  metric: "accuracy",
  needsLabels: true,
  metrics: ["accuracy", "macro_f1", "micro_f1", "weighted_f1", "loss"],
  formats: "a folder of IDX files (train-images-idx3-ubyte.gz, ... by their standard names; Debian's /usr/share/datasets/fashion-mnist), or of PNGs in train|test/<class>/ or <class>/",
  /** The folder's test part (evaluate); a folder with the training part only gives that (finetune then splits it). */
  read(path, o) {
    try {
      return { examples: labelled(loadImageSet(path, "test", channelsOf(o))), skipped: [] };
    } catch (e) {
      if (!/only the training files are there/.test((e as Error).message)) throw e;
      return { examples: labelled(loadImageSet(path, "train", channelsOf(o))), skipped: [] };
    }
  },
  builtin(name, o) {
    if (!hasBothParts(name)) return null;
    const train = loadImageSet(name, "train", channelsOf(o));
    const test = loadImageSet(name, "test", channelsOf(o));
    const fraction = typeof o.validationFraction === "number" ? o.validationFraction : 0.1;
    const split = splitImages(imageExamples(train), fraction, typeof o.seed === "number" ? o.seed : 42);
    let rows = split.train;
    if (typeof o.limit === "number" && rows.length > o.limit) rows = rows.slice(0, o.limit); // the split's order is already seeded
    return { train: labelled(train, rows), validation: labelled(train, split.validation), test: labelled(test) };
  },
  split(examples, fractions, seed) {
    const asImages = examples.map((e, i) => ({ pixels: e.pixels, label: i, source: e.source }));
    const parts = splitImages(asImages, fractions.validation + fractions.test, seed);
    const held = parts.validation.map((e) => e.label);
    const nVal = Math.round(held.length * (fractions.validation / Math.max(1e-9, fractions.validation + fractions.test)));
    const indices = { train: parts.train.map((e) => e.label), validation: held.slice(0, nVal), test: held.slice(nVal) };
    return { train: indices.train.map((i) => examples[i]!), validation: indices.validation.map((i) => examples[i]!), test: indices.test.map((i) => examples[i]!), indices };
  },
  labels(train) {
    const classes = train[0]?.classes ?? [];
    if (classes.length < 2) throw new Error(`the training images have ${classes.length} class(es); classification needs at least 2`);
    return [...classes];
  },
  check(examples, labels, where) {
    const known = new Set(labels);
    for (const e of examples) if (!known.has(e.label)) throw new Error(`${e.source}: unknown class "${e.label}" in the ${where}; the model knows ${labels.join(", ")}`);
  },
  objective: (ctx) => new ImageClassificationObjective(ctx),
  score: (examples, predictions, labels) => scoreImages(examples, predictions as ClassPrediction[], labels),
  formatMetrics(metrics, report) {
    return report ? formatReport(report as ClassificationReport) : `accuracy ${metrics.accuracy!.toFixed(4)}, macro F1 ${metrics.macro_f1!.toFixed(4)}`;
  },
  analysis(examples, predictions) {
    const wrong = examples
      .map((e, i) => ({ e, p: predictions[i] as ClassPrediction }))
      .filter(({ e, p }) => p.label !== e.label)
      .sort((a, b) => b.p.confidence - a.p.confidence)
      .map(({ e, p }) => JSON.stringify({ source: e.source, true_label: e.label, predicted_label: p.label, confidence: p.confidence }));
    return { "errors.jsonl": wrong.join("\n") + (wrong.length ? "\n" : "") };
  },
  predictInput: (paths, o) => predictImages(paths, o),
  formatPrediction(e, p, json) {
    const c = p as ClassPrediction;
    const ranked = Object.entries(c.probabilities).sort((a, b) => b[1] - a[1]);
    if (json) return JSON.stringify({ image: e.source, label: c.label, confidence: c.confidence, probabilities: c.probabilities });
    return `${e.source}\t${c.label}\t${c.confidence.toFixed(4)}\t${ranked.map(([l, x]) => `${l} ${x.toFixed(4)}`).join(", ")}`;
  },
};

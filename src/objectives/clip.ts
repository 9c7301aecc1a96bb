// Contrastive image-text pretraining (CLIP, Radford et al. 2021): each image is paired with a
// text made from its label by a random template ("a photo of a {label}."), and the model learns
// to score matching pairs above the batch's others, with CLIP's symmetric InfoNCE: the mean of
// the cross-entropies image -> text (rows of the similarity matrix) and text -> image (columns).
//
// False negatives. With ten classes, a batch of 32 pairs nearly always holds several images of
// one class, whose texts are then also true matches; CLIP's identity target (only the diagonal
// matches) would push them apart. Sampling batches of distinct classes would cap a batch at ten.
// Instead the target is label-aware, as UniCL (Yang et al. 2022, "Unified Contrastive Learning
// in Image-Text-Label Space") does: every text of the image's class is a positive, the target
// row uniform over them. Where all labels differ it is CLIP's identity target exactly.
//
// Evaluation is zero-shot classification: each image against the class embeddings (prompt
// ensembling over every template), the argmax compared with the label; no image label is seen.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { evaluateByLoss, summariseSums } from "../models/index.js";
import type { Batch, EvalContext, EvalResult, Objective, PretrainedModel } from "../models/index.js";
import { LmforgeClipModel } from "../models/vision.js";
import type { VisionConfig } from "../models/vision.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { pad2d, paddingMask } from "../data/collate.js";
import { Rng } from "../data/random.js";
import { TEXT_TEMPLATES, classesFor, imageExamples, loadImageSet, pixelTensor, promptIds, splitImages } from "../data/images.js";
import type { ImageClass, ImageExample } from "../data/images.js";
import type { ObjectiveEntry } from "./registry.js";

export interface ClipBatch extends Batch {
  /** (B, C, H, W) normalised pixels. */
  pixelValues: Tensor;
  /** (B, T) the texts' padding mask; inputIds are the texts. */
  attentionMask: Tensor;
  /** (B) class indices: which texts are positives. */
  labels: Tensor;
}

/**
 * CLIP's symmetric InfoNCE over a similarity matrix already scaled by exp(logit_scale):
 * logits (B, B), row i = image i against every text. Without labels the target is the diagonal
 * (text i belongs to image i); with labels (B) every pair of one class is a positive, the target
 * uniform over them (UniCL). Returns (CE(image -> text) + CE(text -> image)) / 2.
 */
export function clipLoss(logits: Tensor, labels?: Tensor): Tensor {
  return torch.scope(() => {
    const B = logits.shape[0]!;
    if (!labels) {
      const diagonal = torch.arange(0, B, 1, { dtype: "int64" });
      return torch.crossEntropy(logits, diagonal).add(torch.crossEntropy(logits.t(), diagonal)).div(2);
    }
    const same = labels.view([B, 1]).eq(labels.view([1, B])).float(); // (B, B), symmetric
    const target = same.div(same.sum(1, true));
    const imageToText = target.mul(logits.logSoftmax(1)).sum(1).mean().neg();
    const textToImage = target.mul(logits.t().logSoftmax(1)).sum(1).mean().neg();
    return imageToText.add(textToImage).div(2);
  });
}

/** The model as a CLIP model, or an error naming what it is. */
function asClip(model: PretrainedModel): LmforgeClipModel {
  if (!(model instanceof LmforgeClipModel)) throw new Error(`clip trains an LmforgeClipModel (--model lmforge-vit-tiny or a clip folder), not ${model.constructor.name}`);
  return model;
}

/**
 * Zero-shot class probabilities (B, K) for images: each against every class's prompt-ensembled
 * embedding. `prompts` are promptIds(...) rows, class-major, `perClass` templates each.
 */
export function zeroShotProbabilities(model: PretrainedModel, images: readonly ImageExample[], prompts: readonly number[][], perClass: number, padId: number, batchSize = 256): number[][] {
  const clip = asClip(model);
  const c = clip.config;
  const out: number[][] = [];
  clip.eval();
  torch.noGrad(() => {
    const classes = torch.keep(clip.classEmbeddings(pad2d(prompts, padId), paddingMask(prompts), perClass)); // (K, D)
    try {
      for (let s = 0; s < images.length; s += batchSize) {
        torch.scope(() => {
          const pixels = pixelTensor(images.slice(s, s + batchSize), { channels: c.num_channels, height: c.image_size, width: c.image_size });
          out.push(...(clip.zeroShotLogits(pixels, classes).softmax(-1).toArray() as number[][]));
        });
      }
    } finally {
      classes.dispose();
    }
  });
  return out;
}

export class ClipObjective implements Objective<ImageExample, ClipBatch> {
  readonly name = "clip";
  readonly metricDirections = { zero_shot_accuracy: "max", match_accuracy: "max", loss: "min" } as const;
  /** Token ids per class and template: texts[k][m]. */
  private readonly texts: number[][][];

  constructor(
    readonly o: { tokenizer: Tokenizer; classes: readonly ImageClass[]; templates: readonly string[]; padId: number; maxLength: number; seed: number; image: Pick<VisionConfig, "num_channels" | "image_size"> },
  ) {
    const ids = promptIds(o.tokenizer, o.classes, o.templates, o.maxLength);
    const M = o.templates.length;
    this.texts = o.classes.map((_, k) => ids.slice(k * M, (k + 1) * M));
  }

  /** Images with a text each: a template drawn per (seed, epoch, image); the first template in evaluation (epoch -1). */
  batch(examples: readonly ImageExample[], indices: number[], epoch: number): ClipBatch {
    const picked = indices.map((i) => examples[i]!);
    const rows = indices.map((i, b) => {
      const templates = this.texts[picked[b]!.label];
      if (!templates) throw new Error(`${picked[b]!.source}: label ${picked[b]!.label} has no class name (${this.texts.length} classes)`);
      return templates[epoch < 0 ? 0 : new Rng(this.o.seed, epoch, i, 0xc11b).int(templates.length)]!;
    });
    return {
      pixelValues: pixelTensor(picked, { channels: this.o.image.num_channels, height: this.o.image.image_size, width: this.o.image.image_size }),
      inputIds: pad2d(rows, this.o.padId),
      attentionMask: paddingMask(rows),
      labels: torch.tensor(picked.map((e) => e.label), { dtype: "int64" }),
      targets: picked.length,
    };
  }

  /** The symmetric InfoNCE with label-aware targets; match_correct counts images whose best text is of their class. */
  loss(model: PretrainedModel, b: ClipBatch): { loss: Tensor; metrics: Record<string, number> } {
    const logits = asClip(model).forward({ pixelValues: b.pixelValues, inputIds: b.inputIds, attentionMask: b.attentionMask }).logits.float();
    const best = logits.argmax(1); // (B) the text each image scores highest
    const correct = b.labels.indexSelect(0, best).eq(b.labels).sum().item();
    return { loss: clipLoss(logits, b.labels), metrics: { match_correct: correct, match_total: b.targets } };
  }

  /** The loss over the examples' batches, and zero-shot accuracy on the images those batches cover. */
  evaluate(model: PretrainedModel, examples: readonly ImageExample[], ctx: EvalContext): EvalResult {
    const byLoss = evaluateByLoss(this, model, examples, ctx);
    const shown = examples.slice(0, ctx.maxBatches === undefined ? examples.length : ctx.maxBatches * ctx.batchSize);
    const probs = zeroShotProbabilities(model, shown, this.texts.flat(), this.o.templates.length, this.o.padId);
    const correct = probs.filter((p, i) => argmax(p) === shown[i]!.label).length;
    return { metrics: { ...byLoss.metrics, zero_shot_accuracy: correct / Math.max(1, shown.length) }, sums: { ...byLoss.sums, zero_shot_correct: correct, zero_shot_total: shown.length } };
  }

  summarise(sums: Record<string, number>): Record<string, number> {
    return summariseSums(sums);
  }
}

function argmax(xs: readonly number[]): number {
  let k = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[k]!) k = i;
  return k;
}

/** clip in the objective registry: its data are images (--images), not text. */
export const objectives: ObjectiveEntry[] = [
  {
    name: "clip",
    summary: "contrastive image-text pretraining (CLIP's symmetric InfoNCE, label-aware targets) on --images; zero-shot accuracy on held-out images",
    head: "image-text-contrastive",
    sequences: "images",
    needsMask: false,
    supports: { perturb: false, auxiliary: false, adversarial: false, mixing: false },
    create: (ctx) => {
      if (!ctx.images) throw new Error("clip learns from images: give --images DIR");
      const cfg = ctx.images.config as unknown as VisionConfig;
      return new ClipObjective({ tokenizer: ctx.tokenizer, classes: classesFor(ctx.images.classes), templates: TEXT_TEMPLATES, padId: ctx.padId, maxLength: ctx.images.maxLength, seed: ctx.images.seed, image: cfg }) as never;
    },
    images: (dir, o) => {
      const train = loadImageSet(dir, "train");
      const split = splitImages(imageExamples(train), o.valFraction, o.seed);
      let test: ImageExample[] = [];
      let note = `${train.count} training images of ${train.width}x${train.height} from ${train.source}, ${split.validation.length} held out for validation`;
      try {
        const t = loadImageSet(dir, "test");
        if (t.source !== train.source) {
          if (t.classes.join("\n") !== train.classes.join("\n")) throw new Error(`${t.source}: its classes (${t.classes.join(", ")}) differ from the training images' (${train.classes.join(", ")})`);
          test = imageExamples(t);
          note += `; ${t.count} test images from ${t.source} for the final zero-shot accuracy`;
        }
      } catch (e) {
        if (!/no such file|no t10k-images|no class sub-folders/.test((e as Error).message)) throw e;
      }
      return { train: split.train, validation: split.validation, test, classes: train.classes, note };
    },
  },
];

// Images with text (model_type "lmforge-vit"): a ViT-style patch embedding (Dosovitskiy et al.
// 2021) feeding the configurable Transformer's block stack (variants/: the same blocks, no second
// Transformer), and two models over it:
//   - LmforgeClipModel (Radford et al. 2021, CLIP): an image tower and a text tower (the
//     configurable encoder over tokens), each projected to a shared space and L2-normalised;
//     similarities scaled by a learned temperature exp(logit_scale), initialised to 1/0.07 and
//     clamped at 100 as CLIP does. The contrastive loss is the objective's (src/objectives/clip.ts).
//   - LmforgeForImageClassification: one Transformer over [image patch embeddings; text token
//     embeddings], each with a modality (type) embedding, and a classification head on the
//     image's [CLS]. Its names match the CLIP model's, so a CLIP folder starts it: the image
//     tower's patch embedding and blocks, the text tower's token embeddings.
// Both towers share one config: the block switches of config.json (norm, ffn, attention, ...)
// and the vision keys below. Leaves first: config -> patches -> towers -> models -> registry entry.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Dropout, Embedding, Linear, Module, additiveMask, init, initTransformerWeights } from "../nn/index.js";
import { ConfigError, numLabels, parseConfig, requirePositive } from "./config.js";
import type { Schema } from "./config.js";
import { sequenceLoss } from "./outputs.js";
import type { ModelInputs, ModelOutput } from "./outputs.js";
import type { ArchitectureEntry, ModelClass } from "./registry.js";
import { LmforgeEmbeddings, LmforgeEncoder, LmforgeModel, lmforgeConfig } from "./variants/model.js";
import type { LmforgeConfig } from "./variants/model.js";
import type { AttentionContext } from "./variants/attention.js";
import { makeNorm, normsAround } from "./variants/norms.js";
import type { Norm } from "./variants/norms.js";

/** The named keys of a config type (without its index signature, which Omit would keep alone). */
type NamedKeys<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };

export interface VisionConfig extends Omit<Pick<LmforgeConfig, NamedKeys<LmforgeConfig>>, "model_type"> {
  readonly model_type: "lmforge-vit";
  /** Images are image_size x image_size (Fashion-MNIST: 28). */
  readonly image_size: number;
  /** Non-overlapping patch_size x patch_size patches: (image_size / patch_size)^2 image tokens. */
  readonly patch_size: number;
  /** 1 grey, 3 RGB. */
  readonly num_channels: number;
  /** The shared image-text space's size. */
  readonly projection_dim: number;
  /** log(1 / 0.07), CLIP's initial temperature. */
  readonly logit_scale_init_value: number;
  readonly [key: string]: unknown;
}

const VISION_SCHEMA: Schema = {
  image_size: { type: "int", default: 28 },
  patch_size: { type: "int", default: 7 },
  num_channels: { type: "int", default: 1 },
  projection_dim: { type: "int", default: 64 },
  logit_scale_init_value: { type: "number", default: Math.log(1 / 0.07) },
};

/** CLIP's ceiling on exp(logit_scale): beyond it training becomes unstable (Radford et al. 2021, section 2.5). */
export const MAX_LOGIT_SCALE = 100;

// ViT's and CLIP's choices where the configurable block defaults to BERT's: pre-norm, no dropout,
// no segment embeddings (the fused model has its own modality embeddings), CLIP's norm epsilon.
const VISION_DEFAULTS = { norm: "pre", hidden_dropout_prob: 0, attention_probs_dropout_prob: 0, type_vocab_size: 0, layer_norm_eps: 1e-5, max_position_embeddings: 128, tie_word_embeddings: false };

/** Validates a config.json of model_type lmforge-vit: the block's keys as lmforge's, the vision keys, and what cannot work. */
export function visionConfig(raw: Record<string, unknown> = {}, where = "config"): VisionConfig {
  if (raw.model_type !== undefined && raw.model_type !== "lmforge-vit") throw new ConfigError(`${where}: model_type is "${String(raw.model_type)}", expected "lmforge-vit"`);
  const own: Record<string, unknown> = {};
  const block: Record<string, unknown> = { ...VISION_DEFAULTS };
  for (const [k, v] of Object.entries(raw)) if (k !== "model_type") (k in VISION_SCHEMA ? own : block)[k] = v;
  const text = lmforgeConfig({ ...block, model_type: "lmforge" }, where);
  const vision = parseConfig<Record<string, number>>(own, VISION_SCHEMA, "lmforge-vit", where);
  requirePositive(where, { image_size: vision.image_size!, patch_size: vision.patch_size!, projection_dim: vision.projection_dim! });
  if (vision.image_size! % vision.patch_size! !== 0) throw new ConfigError(`${where}: image_size (${vision.image_size}) is not a multiple of patch_size (${vision.patch_size})`);
  if (vision.num_channels !== 1 && vision.num_channels !== 3) throw new ConfigError(`${where}: num_channels must be 1 (grey) or 3 (RGB), got ${vision.num_channels}`);
  if (text.causal === true) throw new ConfigError(`${where}: causal=true does not go with lmforge-vit: both towers read their whole input`);
  // the image tower has its own learned table per patch; biases and windows of a 1-D order do not apply to a grid of patches
  if (text.positions !== "learned" && text.positions !== "none") throw new ConfigError(`${where}: positions=${text.positions} does not go with lmforge-vit: patches take learned positions (use learned or none)`);
  if (text.attention === "local") throw new ConfigError(`${where}: attention=local does not go with lmforge-vit: a window over a row-major list of patches cuts the image's columns`);
  return { ...text, ...vision, causal: false, model_type: "lmforge-vit" } as unknown as VisionConfig;
}

/** The block stack's view of the config (the lmforge keys, encoder direction). */
function blockConfig(c: VisionConfig): LmforgeConfig {
  return { ...c, model_type: "lmforge", causal: false } as unknown as LmforgeConfig;
}

/**
 * Non-overlapping P x P patches of images (B, C, H, W) -> (B, N, C*P*P), patches in row-major
 * order (left to right, then down), each flattened channel-first then row-major: the layout of
 * ViT's Conv2d(kernel = stride = P) weight, so a linear layer on it is that convolution.
 */
export function extractPatches(pixels: Tensor, patchSize: number): Tensor {
  const [B, C, H, W] = pixels.shape as [number, number, number, number];
  const P = patchSize;
  if (H % P !== 0 || W % P !== 0) throw new Error(`extractPatches: a ${H}x${W} image does not split into ${P}x${P} patches`);
  return torch.scope(() =>
    pixels
      .reshape([B, C, H / P, P, W / P, P]) // (B, C, Hp, P, Wp, P)
      .permute([0, 2, 4, 1, 3, 5]) // (B, Hp, Wp, C, P, P)
      .reshape([B, (H / P) * (W / P), C * P * P]),
  );
}

/** Patches -> linear -> [CLS] prepended -> learned positions (+ BERT's embedding norm under norm=post) -> dropout: (B, 1 + N, C). */
export class PatchEmbeddings extends Module {
  patch_embedding: Linear;
  /** The learned [CLS]-like token whose output represents the image. */
  class_embedding: Tensor;
  position_embedding: Embedding;
  norm: Norm | null;
  dropout: Dropout;
  readonly numPatches: number;

  constructor(readonly config: VisionConfig) {
    super();
    const P = config.patch_size;
    this.numPatches = (config.image_size / P) ** 2;
    this.patch_embedding = new Linear(config.num_channels * P * P, config.hidden_size);
    this.class_embedding = this.registerParameter("class_embedding", torch.zeros([config.hidden_size]));
    this.position_embedding = new Embedding(this.numPatches + 1, config.hidden_size);
    this.norm = normsAround(config.norm).embeddings ? makeNorm(config) : null;
    this.dropout = new Dropout(config.hidden_dropout_prob);
  }

  /** pixels (B, C, H, W), normalised -> (B, 1 + N, C) */
  forward(pixels: Tensor): Tensor {
    const c = this.config;
    const [B, C, H, W] = pixels.shape as [number, number, number, number];
    if (C !== c.num_channels || H !== c.image_size || W !== c.image_size) throw new Error(`lmforge-vit: the model takes images of ${c.num_channels}x${c.image_size}x${c.image_size}, got ${C}x${H}x${W}`);
    const patches = this.patch_embedding.forward(extractPatches(pixels, c.patch_size)); // (B, N, C)
    const cls = this.class_embedding.view([1, 1, -1]).expand([B, 1, c.hidden_size]);
    let x = torch.cat([cls, patches], 1); // (B, 1 + N, C)
    x = x.add(this.position_embedding.weight.unsqueeze(0));
    if (this.norm) x = this.norm.forward(x);
    return this.dropout.forward(x);
  }
}

/** What the block stack reads in one forward: a padding mask only (positions are in the embeddings). */
function encoderContext(attentionMask: Tensor | null, dtype: torch.DType): AttentionContext {
  return { positions: { rope: null, bias: null }, padding: attentionMask, mask: attentionMask ? additiveMask(attentionMask, dtype) : null, causal: false, returnProbs: false };
}

/** The inputs of the vision models: images beside the text inputs. */
export interface VisionInputs extends ModelInputs {
  /** (B, C, H, W) normalised pixels (src/data/images.ts: pixelTensor). */
  pixelValues?: Tensor;
}

/** The image tower: patch embeddings -> the configurable block stack; pooled = the [CLS] output. */
export class LmforgeVisionModel extends Module {
  readonly config: VisionConfig;
  embeddings: PatchEmbeddings;
  encoder: LmforgeEncoder;

  constructor(config: VisionConfig) {
    super();
    this.config = config;
    this.embeddings = new PatchEmbeddings(config);
    this.encoder = new LmforgeEncoder(blockConfig(config));
    initTransformerWeights(this, config.initializer_range);
    init.normal_(this.embeddings.class_embedding, 0, config.initializer_range);
  }

  /** Runs the block stack over embedded tokens (B, T, C) (the fused model passes [image; text]). */
  encode(x: Tensor, attentionMask: Tensor | null = null): Tensor {
    return this.encoder.forward(x, encoderContext(attentionMask, x.dtype), false).out;
  }

  forward(input: VisionInputs): ModelOutput {
    if (!input.pixelValues) throw new Error("LmforgeVisionModel: give pixelValues (B, C, H, W)");
    const h = this.encode(this.embeddings.forward(input.pixelValues)); // (B, 1 + N, C)
    const pooled = h.select(1, 0);
    return { logits: h, lastHiddenState: h, pooledOutput: pooled };
  }
}

/**
 * CLIP: image and text towers, linear projections (no bias) to projection_dim, L2-normalised;
 * logits = exp(logit_scale) x image · text, (B_images, B_texts). The text tower is the
 * configurable encoder; its [CLS] output represents the text (CLIP's text Transformer is causal
 * and reads its EOS token; a bidirectional encoder's first token sees the whole text too).
 */
export class LmforgeClipModel extends Module {
  readonly config: VisionConfig;
  vision_model: LmforgeVisionModel;
  text_model: LmforgeModel;
  visual_projection: Linear;
  text_projection: Linear;
  logit_scale: Tensor;

  constructor(config: VisionConfig) {
    super();
    this.config = config;
    this.vision_model = new LmforgeVisionModel(config);
    this.text_model = new LmforgeModel(blockConfig(config));
    this.visual_projection = new Linear(config.hidden_size, config.projection_dim, { bias: false });
    this.text_projection = new Linear(config.hidden_size, config.projection_dim, { bias: false });
    initTransformerWeights(this.visual_projection, config.initializer_range);
    initTransformerWeights(this.text_projection, config.initializer_range);
    this.logit_scale = this.registerParameter("logit_scale", torch.tensor(config.logit_scale_init_value, { dtype: "float32" }));
  }

  /** Normalised image embeddings (B, D). */
  imageEmbeds(pixels: Tensor): Tensor {
    return torch.scope(() => l2normalise(this.visual_projection.forward(this.vision_model.forward({ pixelValues: pixels }).pooledOutput!)));
  }

  /** Normalised text embeddings (B, D), from the [CLS] output. */
  textEmbeds(inputIds: Tensor, attentionMask?: Tensor): Tensor {
    return torch.scope(() => l2normalise(this.text_projection.forward(this.text_model.forward({ inputIds, ...(attentionMask ? { attentionMask } : {}) }).lastHiddenState.select(1, 0))));
  }

  /** exp(logit_scale), clamped at MAX_LOGIT_SCALE: the gradient stops there, as CLIP's clipping of the parameter. */
  scale(): Tensor {
    return this.logit_scale.exp().clamp(null, MAX_LOGIT_SCALE);
  }

  /**
   * CLIP's prompt ensembling: texts (K * M, T), class-major with M templates per class, ->
   * one unit vector per class (K, D), the mean of its templates' normalised embeddings, renormalised.
   */
  classEmbeddings(inputIds: Tensor, attentionMask: Tensor | undefined, templatesPerClass: number): Tensor {
    return torch.scope(() => {
      const e = this.textEmbeds(inputIds, attentionMask); // (K * M, D)
      return l2normalise(e.view([-1, templatesPerClass, e.shape[1]!]).mean(1)); // (K, D)
    });
  }

  /** Zero-shot class logits (B, K) = scale x image · class embedding (classEmbeddings' output). */
  zeroShotLogits(pixels: Tensor, classEmbeds: Tensor): Tensor {
    return torch.scope(() => this.imageEmbeds(pixels).matmul(classEmbeds.t()).mul(this.scale()));
  }

  /** logits (B_images, B_texts) = scale x cosine similarities; also the embeddings. */
  forward(input: VisionInputs): ModelOutput & { imageEmbeds: Tensor; textEmbeds: Tensor; logitsPerText: Tensor } {
    if (!input.pixelValues || !input.inputIds) throw new Error("LmforgeClipModel: give pixelValues and inputIds (an image batch and a text batch)");
    const img = this.imageEmbeds(input.pixelValues); // (Bi, D)
    const txt = this.textEmbeds(input.inputIds, input.attentionMask); // (Bt, D)
    const logits = img.matmul(txt.t()).mul(this.scale()); // (Bi, Bt)
    return { logits, logitsPerText: logits.t(), lastHiddenState: img, imageEmbeds: img, textEmbeds: txt };
  }
}

/** x / ||x|| over the last dimension. */
function l2normalise(x: Tensor): Tensor {
  return x.div(x.norm(2, [-1], true).clamp(1e-12, null));
}

/** The text tower's token embeddings alone (the fused model's), named as in the CLIP model. */
export class TextEmbeddings extends Module {
  embeddings: LmforgeEmbeddings;
  constructor(config: VisionConfig) {
    super();
    this.embeddings = new LmforgeEmbeddings(blockConfig(config));
    initTransformerWeights(this, config.initializer_range);
  }
}

/**
 * The fused classifier: [image [CLS] + patches; text tokens] (B, 1 + N + T, C), each part plus
 * its modality embedding (0 image, 1 text), through one block stack (the image tower's, so a
 * CLIP folder starts it); the head reads the image's [CLS] output. Without inputIds it
 * classifies the image alone.
 */
export class LmforgeForImageClassification extends Module {
  readonly config: VisionConfig;
  readonly numLabels: number;
  vision_model: LmforgeVisionModel;
  text_model: TextEmbeddings;
  modality_embeddings: Embedding;
  dropout: Dropout;
  classifier: Linear;

  constructor(config: VisionConfig) {
    super();
    this.config = config;
    this.numLabels = numLabels(config);
    this.vision_model = new LmforgeVisionModel(config);
    this.text_model = new TextEmbeddings(config);
    this.modality_embeddings = new Embedding(2, config.hidden_size);
    this.dropout = new Dropout(config.classifier_dropout ?? config.hidden_dropout_prob);
    this.classifier = new Linear(config.hidden_size, this.numLabels);
    initTransformerWeights(this.modality_embeddings, config.initializer_range);
    initTransformerWeights(this.classifier, config.initializer_range);
  }

  forward(input: VisionInputs): ModelOutput {
    if (!input.pixelValues) throw new Error("LmforgeForImageClassification: give pixelValues (B, C, H, W)");
    const modality = this.modality_embeddings.weight;
    const image = this.vision_model.embeddings.forward(input.pixelValues).add(modality.select(0, 0)); // (B, 1 + N, C)
    const [B, I] = image.shape as [number, number];
    let x = image;
    let mask: Tensor | null = null;
    if (input.inputIds) {
      const text = this.text_model.embeddings.forward({ inputIds: input.inputIds }, torch.arange(0, input.inputIds.shape[1]!, 1).unsqueeze(0)).add(modality.select(0, 1)); // (B, T, C)
      x = torch.cat([image, text], 1); // (B, I + T, C)
      if (input.attentionMask) mask = torch.cat([torch.ones([B, I], { dtype: input.attentionMask.dtype }), input.attentionMask], 1);
    }
    const h = this.vision_model.encode(x, mask);
    const pooled = h.select(1, 0);
    const logits = this.classifier.forward(this.dropout.forward(pooled)); // (B, L)
    return { logits, lastHiddenState: h, pooledOutput: pooled, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels) } : {}) };
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** lmforge-vit in the architecture registry (architectures.ts registers it). */
export const architecture: ArchitectureEntry = {
  modelType: "lmforge-vit",
  prefix: "vision_model",
  parseConfig: (raw, where) => visionConfig(raw, where) as unknown as Record<string, unknown> & { model_type: string },
  classes: {
    LmforgeVisionModel: ["base", c(LmforgeVisionModel)],
    LmforgeClipModel: ["image-text-contrastive", c(LmforgeClipModel)],
    LmforgeForImageClassification: ["image-classification", c(LmforgeForImageClassification)],
  },
  embeddings: /^embeddings\./,
  layers: /^encoder\.layer\.(\d+)\./,
  loraTargets: /attention\.(query|value)$/,
  // no word embeddings in the image tower: adversarial training on tokens does not apply
  wordEmbeddings: "text_model.embeddings.word_embeddings",
  // the text tower's learned positions (the image tower's count follows image_size / patch_size)
  positions: { key: "max_position_embeddings", needed: (n) => n },
  dropoutKeys: ["hidden_dropout_prob", "classifier_dropout"],
  // 28x28 images in 7x7 patches: 16 patches and [CLS]; the block's switches are --arch's to set
  presets: {
    "lmforge-vit-tiny": { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 512, image_size: 28, patch_size: 7, num_channels: 1, projection_dim: 64 },
    "lmforge-vit-mini": { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024, image_size: 28, patch_size: 4, num_channels: 1, projection_dim: 128 },
  },
};

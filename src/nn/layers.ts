// Layers: thin classes over the functional ops, with PyTorch's parameter names and default
// initialisation (models re-initialise as Hugging Face does, e.g. normal(0, 0.02)).
import * as torch from "../torch/index.js";
import type { DType, Tensor } from "../torch/index.js";
import { kaimingUniform_, normal_, uniform_, fans } from "./init.js";
import { Module } from "./module.js";

export interface LayerOptions {
  dtype?: DType;
}

/** y = x Wᵀ + b, weight (out, in). PyTorch's default init: kaiming_uniform(a=√5), bias U(±1/√in). */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: LayerOptions & { bias?: boolean } = {}) {
    super();
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", torch.empty([outFeatures, inFeatures], { dtype }));
    kaimingUniform_(this.weight, Math.sqrt(5));
    this.bias = this.registerParameter("bias", options.bias === false ? null : torch.empty([outFeatures], { dtype }));
    if (this.bias) uniform_(this.bias, -1 / Math.sqrt(inFeatures), 1 / Math.sqrt(inFeatures));
  }

  forward(x: Tensor): Tensor {
    return torch.fusedLinear(x, [this.weight], this.bias ? [this.bias] : []);
  }
}

/**
 * x through several Linear layers that read the same input (a layer's query, key and value):
 * one GEMM over their weights concatenated, where every layer is a plain Linear; each layer's
 * own forward otherwise (a LoRA-wrapped projection must add its adapter). `act` is applied to
 * every output ("gelu" exact or "gelu_tanh"). In inference, float32 on the CPU, the GEMM runs on
 * weights transposed and concatenated once and kept while they are unchanged (torch.fusedLinear).
 */
export function linearMany(x: Tensor, layers: readonly Linear[], act: FusedActivation = "none"): Tensor[] {
  // a layer with a forward of its own (DP-SGD's recording, src/train/privacy) runs it
  const plain = layers.every((l) => l.constructor === Linear && !Object.hasOwn(l, "forward")) && (layers.every((l) => l.bias) || layers.every((l) => !l.bias));
  if (!plain) return layers.map((l) => applyActivation(l.forward(x), act));
  const y = torch.fusedLinear(x, layers.map((l) => l.weight), layers.flatMap((l) => (l.bias ? [l.bias] : [])), act);
  if (layers.length === 1) return [y];
  let at = 0;
  return layers.map((l) => {
    const part = y.narrow(-1, at, l.outFeatures);
    at += l.outFeatures;
    return part;
  });
}

/** The activations that linearMany applies in place after the GEMM. */
export type FusedActivation = "none" | "gelu" | "gelu_tanh";

function applyActivation(x: Tensor, act: FusedActivation): Tensor {
  return act === "gelu" ? x.gelu() : act === "gelu_tanh" ? x.gelu("tanh") : x;
}

/** The fused form of a Hugging Face activation name, or null where there is none. */
export function fusedActivation(name: string): FusedActivation | null {
  if (name === "gelu") return "gelu";
  if (name === "gelu_new" || name === "gelu_pytorch_tanh" || name === "gelu_fast") return "gelu_tanh";
  return null;
}

/** A lookup table, weight (num, dim), init N(0, 1); the padding row starts at zero. */
export class Embedding extends Module {
  weight: Tensor;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, options: LayerOptions & { paddingIdx?: number } = {}) {
    super();
    this.weight = this.registerParameter("weight", torch.empty([numEmbeddings, embeddingDim], { dtype: options.dtype ?? "float32" }));
    normal_(this.weight);
    this.paddingIdx = options.paddingIdx ?? -1;
    if (this.paddingIdx >= 0) torch.noGrad(() => this.weight.select(0, this.paddingIdx).zero_());
  }

  readonly paddingIdx: number;

  forward(ids: Tensor): Tensor {
    return torch.embedding(this.weight, ids, this.paddingIdx);
  }
}

/** Layer normalisation over the last dimensions, weight ones and bias zeros. */
export class LayerNorm extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];

  constructor(normalizedShape: number | number[], readonly eps = 1e-5, options: LayerOptions & { elementwiseAffine?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : normalizedShape;
    const affine = options.elementwiseAffine ?? true;
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", affine ? torch.ones(this.normalizedShape, { dtype }) : null);
    this.bias = this.registerParameter("bias", affine ? torch.zeros(this.normalizedShape, { dtype }) : null);
  }

  forward(x: Tensor): Tensor {
    // Under autocast a bfloat16 activation can meet float32 weights (an MLM head's dense layer
    // runs in bfloat16 with no float32 residual added before its norm): normalise in the
    // weights' dtype, as autocast's float32 policy for layer_norm does.
    if (this.weight && x.dtype !== this.weight.dtype) return torch.scope(() => torch.layerNorm(x.to(this.weight!.dtype), this.normalizedShape, this.weight, this.bias, this.eps));
    return torch.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

/** Root-mean-square normalisation (Zhang & Sennrich 2019): x / sqrt(mean(x²) + eps) * weight. */
export class RMSNorm extends Module {
  weight: Tensor;

  constructor(readonly dim: number, readonly eps = 1e-6, options: LayerOptions = {}) {
    super();
    this.weight = this.registerParameter("weight", torch.ones([dim], { dtype: options.dtype ?? "float32" }));
  }

  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      // Statistics in float32 even for bfloat16 inputs, as reference implementations do.
      const xf = x.dtype === "float64" ? x : x.float();
      const normed = xf.mul(xf.square().mean(-1, true).add(this.eps).rsqrt());
      return normed.to(x.dtype).mul(this.weight);
    });
  }
}

/** Zeroes elements with probability p in train mode, scaling the rest by 1/(1-p). */
export class Dropout extends Module {
  constructor(readonly p = 0.1) {
    super();
    if (p < 0 || p >= 1) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? torch.dropout(x, this.p, true) : x;
  }
}

/** 1-D convolution over (N, C, L), weight (out, in/groups, k). PyTorch's default init. */
export class Conv1d extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly options: LayerOptions & { stride?: number; padding?: number; dilation?: number; groups?: number; bias?: boolean } = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups || outChannels % groups) throw new Error(`Conv1d: groups (${groups}) must divide in (${inChannels}) and out (${outChannels}) channels`);
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", torch.empty([outChannels, inChannels / groups, kernelSize], { dtype }));
    kaimingUniform_(this.weight, Math.sqrt(5));
    this.bias = this.registerParameter("bias", options.bias === false ? null : torch.empty([outChannels], { dtype }));
    if (this.bias) {
      const bound = 1 / Math.sqrt(fans(this.weight).fanIn);
      uniform_(this.bias, -bound, bound);
    }
  }

  forward(x: Tensor): Tensor {
    const o = this.options;
    return torch.conv1d(x, this.weight, this.bias, o.stride ?? 1, o.padding ?? 0, o.dilation ?? 1, o.groups ?? 1);
  }
}

/**
 * GPT-2's Conv1D: a linear layer whose weight is stored (in, out), y = x W + b, so that its
 * checkpoint tensors load as they are (Hugging Face's pytorch_utils.Conv1D).
 */
export class Conv1D extends Module {
  weight: Tensor;
  bias: Tensor;

  constructor(readonly outFeatures: number, readonly inFeatures: number, options: LayerOptions = {}) {
    super();
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", torch.empty([inFeatures, outFeatures], { dtype }));
    normal_(this.weight, 0, 0.02);
    this.bias = this.registerParameter("bias", torch.zeros([outFeatures], { dtype }));
  }

  forward(x: Tensor): Tensor {
    // x (..., in) @ W (in, out) + b, the weight read as stored (fusedLinear's weightsInOut)
    return torch.fusedLinear(x, [this.weight], [this.bias], "none", true);
  }
}

/**
 * Hugging Face's _init_weights for transformer models: Linear, Conv1D and Embedding weights
 * from N(0, std) (padding rows zero), biases zero, norm weights one and biases zero.
 */
export function initTransformerWeights(module: Module, std: number, options: { except?: Tensor[] } = {}): void {
  const except = new Set(options.except ?? []);
  for (const [, m] of module.namedModules()) {
    if ((m instanceof Linear || m instanceof Conv1D || m instanceof Embedding) && except.has(m.weight)) continue;
    if (m instanceof Linear || m instanceof Conv1D) {
      normal_(m.weight, 0, std);
      if (m.bias) torch.noGrad(() => m.bias!.zero_());
    } else if (m instanceof Embedding) {
      normal_(m.weight, 0, std);
      if (m.paddingIdx >= 0) torch.noGrad(() => m.weight.select(0, m.paddingIdx).zero_());
    } else if (m instanceof LayerNorm) {
      torch.noGrad(() => {
        m.weight?.fill_(1);
        m.bias?.zero_();
      });
    } else if (m instanceof RMSNorm) {
      torch.noGrad(() => m.weight.fill_(1));
    }
  }
}

/** Activation modules, for configs that name them (Hugging Face's hidden_act). */
export class GELU extends Module {
  constructor(readonly approximate: "none" | "tanh" = "none") {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.gelu(this.approximate);
  }
}
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return x.silu();
  }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}

/** Hugging Face's ACT2FN names. */
export type ActivationName = "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "relu" | "silu" | "swish" | "tanh";

export function activation(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case "gelu":
      return (x) => x.gelu();
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      return (x) => x.gelu("tanh");
    case "relu":
      return (x) => x.relu();
    case "silu":
    case "swish":
      return (x) => x.silu();
    case "tanh":
      return (x) => x.tanh();
    default:
      throw new Error(`unknown activation "${name}"; known: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh`);
  }
}

/**
 * Ties a layer's weight to an existing tensor (a head sharing the word embeddings): the layer's
 * own weight is freed and the tensor registered in its place, so both modules hold one parameter.
 */
export function tieWeight(module: Linear | Embedding, t: Tensor): void {
  module.weight.dispose();
  module.weight = (module as unknown as { registerParameter(n: string, x: Tensor): Tensor }).registerParameter("weight", t);
}

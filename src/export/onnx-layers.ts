// The pieces every exported architecture shares, as ONNX ops: linear layers, LayerNorm and
// RMSNorm, the activations by their Hugging Face names, multi-head attention with an additive
// mask, and the masks themselves. Each reproduces the lmforge op it stands for (src/nn), in the
// same order of floating-point operations where the order changes the result.
import type { Tensor } from "../torch/index.js";
import { MASK_MIN } from "../nn/index.js";
import type { Module } from "../nn/index.js";
import type { OnnxGraph } from "./onnx-graph.js";

/** A model's tensors by checkpoint name; a missing one is an error naming it. */
export class Weights {
  private readonly all: Map<string, Tensor>;

  constructor(readonly model: Module) {
    this.all = model.stateDict();
  }

  has(name: string): boolean {
    return this.all.has(name);
  }

  get(name: string): Tensor {
    const t = this.all.get(name);
    if (!t) throw new Error(`ONNX export: ${this.model.constructor.name} has no tensor "${name}"`);
    return t;
  }
}

/** One exporter's view: the graph and the model's tensors, with the initializer of a tensor by name. */
export interface Ctx {
  g: OnnxGraph;
  w: Weights;
}

export function param(ctx: Ctx, name: string): string {
  return ctx.g.weight(name, ctx.w.get(name));
}

/**
 * nn.Linear at module path `path`: x Wᵀ + b, W (out, in) as the checkpoint holds it (a
 * Transpose of the initializer, which onnxruntime folds at load). conv1d: GPT-2's Conv1D,
 * W stored (in, out), read as it is.
 */
export function linear(ctx: Ctx, x: string, path: string, options: { conv1d?: boolean } = {}): string {
  const { g } = ctx;
  const w = param(ctx, `${path}.weight`);
  const wt = options.conv1d ? w : g.op("Transpose", [w], { perm: { ints: [1, 0] } }, `${path}.weight_t`);
  const y = g.op("MatMul", [x, wt], {}, `${path}.matmul`);
  return ctx.w.has(`${path}.bias`) ? g.op("Add", [y, param(ctx, `${path}.bias`)], {}, path) : y;
}

/** ReduceMean over the last axis, keeping it: an attribute up to opset 17, an input from 18. */
export function meanLast(g: OnnxGraph, x: string): string {
  if (g.opset >= 18) return g.op("ReduceMean", [x, g.ints([-1])], { keepdims: { int: 1 } });
  return g.op("ReduceMean", [x], { axes: { ints: [-1] }, keepdims: { int: 1 } });
}

/** LayerNorm over the last axis (module path `path`, weight and bias): LayerNormalization from opset 17, decomposed before. */
export function layerNorm(ctx: Ctx, x: string, path: string, eps: number): string {
  const { g } = ctx;
  const weight = param(ctx, `${path}.weight`);
  const bias = param(ctx, `${path}.bias`);
  if (g.opset >= 17) return g.op("LayerNormalization", [x, weight, bias], { axis: { int: -1 }, epsilon: { float: eps } }, path);
  // (x - mean) / sqrt(var + eps) · weight + bias, var the biased variance, as torch.layer_norm
  const centred = g.op("Sub", [x, meanLast(g, x)]);
  const variance = meanLast(g, g.op("Mul", [centred, centred]));
  const normed = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [variance, g.floats([eps], [])])])]);
  return g.op("Add", [g.op("Mul", [normed, weight]), bias], {}, path);
}

/** RMSNorm (src/nn RMSNorm): x · 1/sqrt(mean(x²) + eps), then · weight. */
export function rmsNorm(ctx: Ctx, x: string, path: string, eps: number): string {
  const { g } = ctx;
  const ms = meanLast(g, g.op("Mul", [x, x]));
  const inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [ms, g.floats([eps], [])])])]);
  return g.op("Mul", [g.op("Mul", [x, inv]), param(ctx, `${path}.weight`)], {}, path);
}

/** Exact GELU: x · (1 + erf(x / √2)) / 2. */
export function geluErf(g: OnnxGraph, x: string): string {
  const erf = g.op("Erf", [g.op("Div", [x, g.floats([Math.SQRT2], [])])]);
  return g.op("Mul", [g.op("Mul", [x, g.op("Add", [erf, g.floats([1], [])])]), g.floats([0.5], [])], {}, "gelu");
}

/** GELU's tanh approximation (gelu_new): x · (1 + tanh(√(2/π) · (x + 0.044715 x³))) / 2. */
export function geluTanh(g: OnnxGraph, x: string): string {
  const cube = g.op("Mul", [g.op("Mul", [x, x]), x]);
  const inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.floats([0.044715], [])])]), g.floats([Math.sqrt(2 / Math.PI)], [])]);
  const t = g.op("Tanh", [inner]);
  return g.op("Mul", [g.op("Mul", [x, g.op("Add", [t, g.floats([1], [])])]), g.floats([0.5], [])], {}, "gelu_tanh");
}

/** Hugging Face's activation names, as src/nn's activation() reads them. */
export function activation(g: OnnxGraph, x: string, name: string): string {
  switch (name) {
    case "gelu":
      return geluErf(g, x);
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      return geluTanh(g, x);
    case "relu":
      return g.op("Relu", [x]);
    case "silu":
    case "swish":
      return g.op("Mul", [x, g.op("Sigmoid", [x])], {}, "silu");
    case "tanh":
      return g.op("Tanh", [x]);
    default:
      throw new Error(`ONNX export: activation "${name}" is not exported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh are)`);
  }
}

/** (B, T, H·D) -> (B, H, T, D). */
export function splitHeads(g: OnnxGraph, x: string, heads: number, headDim: number): string {
  const r = g.op("Reshape", [x, g.ints([0, 0, heads, headDim])]);
  return g.op("Transpose", [r], { perm: { ints: [0, 2, 1, 3] } });
}

/** (B, H, T, D) -> (B, T, H·D). */
export function mergeHeads(g: OnnxGraph, x: string, width: number): string {
  const t = g.op("Transpose", [x], { perm: { ints: [0, 2, 1, 3] } });
  return g.op("Reshape", [t, g.ints([0, 0, width])], {}, "context");
}

/**
 * softmax(q kᵀ · scale + mask) v for q (B, H, T, D), k and v (B, H, S, D), mask additive and
 * broadcastable to (B, H, T, S); returns (B, H, T, D). The scale multiplies the scores before
 * the mask is added, as lmforge's kernels do (baddbmm(mask, q, kᵀ, 1, scale)).
 */
export function attention(g: OnnxGraph, q: string, k: string, v: string, mask: string, scale: number): string {
  const kt = g.op("Transpose", [k], { perm: { ints: [0, 1, 3, 2] } });
  const scores = g.op("Mul", [g.op("MatMul", [q, kt]), g.floats([scale], [])]);
  const probs = g.op("Softmax", [g.op("Add", [scores, mask])], { axis: { int: -1 } }, "probs");
  return g.op("MatMul", [probs, v]);
}

/** An int64 (B, S) mask of 1 (attend) and 0 (padding) as additive (B, 1, 1, S): 0 or float32's most negative value (src/nn additiveMask). */
export function paddingMask(g: OnnxGraph, mask: string): string {
  const m = g.op("Cast", [mask], { to: { int: 1 } });
  const additive = g.op("Mul", [g.op("Sub", [g.floats([1], []), m]), g.floats([MASK_MIN], [])]);
  return g.op("Unsqueeze", [additive, g.ints([1, 2])], {}, "padding_mask");
}

/** Element `index` of x's shape, as an int64 scalar. */
export function dimOf(g: OnnxGraph, x: string, index: number): string {
  return g.op("Gather", [g.op("Shape", [x]), g.ints([index], [])], { axis: { int: 0 } });
}

/**
 * The decoder's additive mask (B, 1, T, S) for T new tokens after S - T cached ones: query i
 * (at key position S - T + i) sees keys j <= S - T + i that the padding mask (B, S) keeps.
 */
export function causalMask(g: OnnxGraph, attentionMask: string, inputIds: string): string {
  const T = dimOf(g, inputIds, 1);
  const S = dimOf(g, attentionMask, 1);
  const one = g.ints([1], []);
  const queryPositions = g.op("Unsqueeze", [g.op("Range", [g.op("Sub", [S, T]), S, one]), g.ints([1])]); // (T, 1)
  const keyPositions = g.op("Unsqueeze", [g.op("Range", [g.ints([0], []), S, one]), g.ints([0])]); // (1, S)
  const causal = g.op("LessOrEqual", [keyPositions, queryPositions], {}, "causal"); // (T, S)
  const kept = g.op("Unsqueeze", [g.op("Cast", [attentionMask], { to: { int: 9 } }), g.ints([1, 2])]); // (B, 1, 1, S) bool
  const allowed = g.op("And", [causal, kept]); // (B, 1, T, S)
  return g.op("Where", [allowed, g.floats([0], []), g.floats([MASK_MIN], [])], {}, "attention_bias");
}

// The Conformer convolution module (Gulati et al. 2020): pointwise → GLU → depthwise conv over
// time → norm → Swish → pointwise → dropout, over (B, T, C). The pre-norm and the residual
// around it belong to the block that uses it. Names follow Hugging Face's conformer modules
// (SeamlessM4T's, which also has the causal padding and the LayerNorm): pointwise_conv1,
// depthwise_conv, depthwise_layer_norm, pointwise_conv2. The pointwise convolutions are Linear
// layers: a Hugging Face Conv1d weight (out, in, 1) loads here squeezed to (out, in).
//
// Norm: LayerNorm over channels, not the paper's BatchNorm. BatchNorm's statistics run over
// batch and time, so padded positions (zeros, or whatever a padded sequence holds) shift the
// mean and variance of every real position, and the running statistics differ between
// training and inference batches; LayerNorm sees one position at a time.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Conv1d, Dropout, LayerNorm, Linear } from "./layers.js";
import { Module } from "./module.js";

export interface ConvModuleOptions {
  /** C, the channels in and out. */
  hidden: number;
  /** The depthwise convolution's width over time (any size; odd keeps a non-causal window centred). */
  kernelSize: number;
  /** Each output sees its own and earlier positions only (all kernelSize − 1 padding on the left). */
  causal: boolean;
  /** Dropout on the output, in training; default 0. */
  dropout?: number;
}

/**
 * Conformer convolution module over x (B, T, C) with mask (B, T), 1 = keep: the result is
 * (B, T, C). Padded positions are zeroed before the depthwise convolution, the only step that
 * mixes positions, so they never reach a real one; they come out as 0.
 *
 * @example
 * const conv = new ConvModule({ hidden: 256, kernelSize: 31, causal: false, dropout: 0.1 });
 * const y = conv.forward(x, mask); // (B, T, 256)
 */
export class ConvModule extends Module {
  readonly hidden: number;
  readonly kernelSize: number;
  readonly causal: boolean;
  /** C → 2C, halved by the GLU */
  pointwise_conv1: Linear;
  /** groups = C: weight (C, 1, kernelSize) */
  depthwise_conv: Conv1d;
  depthwise_layer_norm: LayerNorm;
  /** C → C */
  pointwise_conv2: Linear;
  dropout: Dropout;

  constructor(opts: { hidden: number; kernelSize: number; causal: boolean; dropout?: number }) {
    super();
    const { hidden, kernelSize } = opts;
    if (!Number.isInteger(hidden) || hidden < 1) throw new RangeError(`ConvModule: hidden must be a positive integer, got ${hidden}`);
    if (!Number.isInteger(kernelSize) || kernelSize < 1) throw new RangeError(`ConvModule: kernelSize must be a positive integer, got ${kernelSize}`);
    this.hidden = hidden;
    this.kernelSize = kernelSize;
    this.causal = opts.causal;
    // No biases, as Hugging Face's conformer convolution modules: a norm follows the depthwise
    // convolution, and the output is added to a residual.
    this.pointwise_conv1 = new Linear(hidden, 2 * hidden, { bias: false });
    this.depthwise_conv = new Conv1d(hidden, hidden, kernelSize, { groups: hidden, bias: false });
    this.depthwise_layer_norm = new LayerNorm(hidden);
    this.pointwise_conv2 = new Linear(hidden, hidden, { bias: false });
    this.dropout = new Dropout(opts.dropout ?? 0);
  }

  /** x (B, T, C), mask (B, T) 1 = keep, or null → (B, T, C). */
  forward(x: Tensor, mask: Tensor | null): Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.hidden) throw new Error(`ConvModule.forward: x must be (B, T, ${this.hidden}), got [${x.shape}]`);
    if (mask && (mask.ndim !== 2 || mask.shape[0] !== x.shape[0] || mask.shape[1] !== x.shape[1])) {
      throw new Error(`ConvModule.forward: mask must be (B, T) = [${x.shape[0]}, ${x.shape[1]}], got [${mask.shape}]`);
    }
    return torch.scope(() => {
      const padding = mask ? mask.eq(0).unsqueeze(-1) : null; // (B, T, 1)
      const [value, gate] = this.pointwise_conv1.forward(x).chunk(2, -1) as [Tensor, Tensor]; // (B, T, C) each
      let h = value.mul(gate.sigmoid()); // GLU: first half gated by the second, as torch's glu
      if (padding) h = h.maskedFill(padding, 0);
      h = this.depthwiseConv(h);
      h = this.depthwise_layer_norm.forward(h).silu(); // Swish
      h = this.dropout.forward(this.pointwise_conv2.forward(h));
      return padding ? h.maskedFill(padding, 0) : h;
    });
  }

  /**
   * The depthwise convolution over time of h (B, T, C), same length out: zeros padded on the
   * left only (causal) or split around (left ⌊(k−1)/2⌋, right the rest), then conv1d with groups C.
   */
  depthwiseConv(h: Tensor): Tensor {
    return torch.scope(() => {
      const [B, , C] = h.shape as [number, number, number];
      const k = this.kernelSize;
      const left = this.causal ? k - 1 : Math.floor((k - 1) / 2);
      const right = k - 1 - left;
      const zeros = (n: number): Tensor[] => (n > 0 ? [torch.zeros([B, n, C], { dtype: h.dtype, device: h.device as "cpu" })] : []);
      const padded = torch.cat([...zeros(left), h, ...zeros(right)], 1); // (B, T + k − 1, C)
      return this.depthwise_conv.forward(padded.transpose(1, 2)).transpose(1, 2); // (B, C, T) through the conv, back to (B, T, C)
    });
  }
}

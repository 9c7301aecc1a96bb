// Weight initialisation as PyTorch and Hugging Face do it. Each function fills a tensor in
// place from the global generator (seed it with manualSeed) and returns it.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/** fan_in and fan_out of a weight, as torch.nn.init computes them. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new Error(`init: fan in and fan out need at least 2 dimensions, got shape [${t.shape.join(", ")}]`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1]! * receptive, fanOut: t.shape[0]! * receptive };
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return torch.noGrad(() => t.normal_(mean, std));
}

export function uniform_(t: Tensor, low = 0, high = 1): Tensor {
  return torch.noGrad(() => t.uniform_(low, high));
}

export function zeros_(t: Tensor): Tensor {
  return torch.noGrad(() => t.zero_());
}

export function ones_(t: Tensor): Tensor {
  return torch.noGrad(() => t.fill_(1));
}

/** Kaiming (He) uniform with leaky-ReLU slope a: bound = gain * sqrt(3 / fan_in). */
export function kaimingUniform_(t: Tensor, a = 0): Tensor {
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = gain * Math.sqrt(3 / fans(t).fanIn);
  return uniform_(t, -bound, bound);
}

/** Xavier (Glorot) uniform: bound = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fans(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}


// The Conformer convolution module: shapes and names, the depthwise convolution by hand,
// causality, padding, and gradients.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { ConvModule } from "../src/nn/conv.js";
import { assertClose, gradcheck } from "./helpers.js";

/** Largest |a - b| over all elements. */
function maxDiff(a: Tensor, b: Tensor): number {
  return torch.scope(() => a.sub(b).abs().max().item());
}

test("output shape, parameter names and shapes", () => {
  torch.scope(() => {
    const conv = new ConvModule({ hidden: 6, kernelSize: 5, causal: false, dropout: 0.1 });
    assert.deepEqual([...conv.forward(torch.randn([2, 7, 6]), null).shape], [2, 7, 6]);
    const shapes = Object.fromEntries([...conv.namedParameters()].map(([n, p]) => [n, [...p.shape]]));
    assert.deepEqual(shapes, {
      "pointwise_conv1.weight": [12, 6],
      "depthwise_conv.weight": [6, 1, 5],
      "depthwise_layer_norm.weight": [6],
      "depthwise_layer_norm.bias": [6],
      "pointwise_conv2.weight": [6, 6],
    });
    assert.throws(() => conv.forward(torch.randn([2, 7, 5]), null), /ConvModule.forward: x must be \(B, T, 6\), got \[2,7,5\]/);
    conv.dispose();
  });
});

test("the depthwise convolution equals a hand computation (causal, centred, even kernel)", () => {
  torch.scope(() => {
    // C = 2, T = 4, kernel 3. Channel 0 weights (1, 2, 3), channel 1 weights (0, 1, -1).
    // x channel 0: 1, 2, 3, 4; channel 1: 10, 20, 30, 40. Cross-correlation as torch's conv1d:
    // out[t] = Σ_j w[j] · padded[t + j].
    const x = torch.tensor([[[1, 10], [2, 20], [3, 30], [4, 40]]], { dtype: "float32" }); // (1, 4, 2)
    const weights = torch.tensor([[[1, 2, 3]], [[0, 1, -1]]], { dtype: "float32" });
    const make = (causal: boolean, k = 3): ConvModule => {
      const m = new ConvModule({ hidden: 2, kernelSize: k, causal });
      torch.noGrad(() => m.depthwise_conv.weight.copy_(k === 3 ? weights : weights.narrow(2, 0, 2)));
      return m;
    };
    // causal, padded (0, 0, x): channel 0: 0·1+0·2+1·3 = 3; 0+2+6 = 8; 1+4+9 = 14; 2+6+12 = 20
    //                           channel 1: x[t−1] − x[t]: 0−10, 10−20, 20−30, 30−40 = −10 each
    assertClose(make(true).depthwiseConv(x), [[[3, -10], [8, -10], [14, -10], [20, -10]]], 1e-6, "causal");
    // centred, padded (0, x, 0): channel 0: 0+2+6 = 8; 1+4+9 = 14; 2+6+12 = 20; 3+8+0 = 11
    //                            channel 1: x[t] − x[t+1]: −10, −10, −10, 40 − 0 = 40
    assertClose(make(false).depthwiseConv(x), [[[8, -10], [14, -10], [20, -10], [11, 40]]], 1e-6, "centred");
    // kernel 2 (weights (1, 2) and (0, 1)), not causal: left ⌊1/2⌋ = 0, right 1: padded (x, 0)
    // channel 0: 1+4 = 5; 2+6 = 8; 3+8 = 11; 4+0 = 4. channel 1: the next position: 20, 30, 40, 0
    assertClose(make(false, 2).depthwiseConv(x), [[[5, 20], [8, 30], [11, 40], [4, 0]]], 1e-6, "even kernel");
  });
});

test("causal: changing a future input leaves earlier outputs unchanged", () => {
  torch.scope(() => {
    torch.manualSeed(1);
    for (const causal of [true, false]) {
      const conv = new ConvModule({ hidden: 4, kernelSize: 3, causal }).eval();
      const x = torch.randn([2, 8, 4]);
      const changed = x.clone();
      torch.noGrad(() => changed.narrow(1, 5, 1).add_(3)); // position 5
      const [a, b] = [conv.forward(x, null), conv.forward(changed, null)];
      const earlier = maxDiff(a.narrow(1, 0, 5), b.narrow(1, 0, 5));
      if (causal) {
        assert.equal(earlier, 0, "causal: positions 0-4 changed");
        assert.ok(maxDiff(a.narrow(1, 5, 1), b.narrow(1, 5, 1)) > 1e-3, "causal: position 5 itself must change");
      } else {
        assert.ok(maxDiff(a.narrow(1, 4, 1), b.narrow(1, 4, 1)) > 1e-3, "centred: position 4 sees position 5");
      }
      conv.dispose();
    }
  });
});

test("padded positions do not affect real ones, and come out as zero", () => {
  torch.scope(() => {
    torch.manualSeed(2);
    for (const causal of [true, false]) {
      const conv = new ConvModule({ hidden: 4, kernelSize: 5, causal }).eval();
      const x = torch.randn([2, 6, 4]);
      // batch 1: positions 0 and 5 are padding (left and right)
      const mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0]]);
      const out = conv.forward(x, mask);
      const noisy = torch.where(mask.ne(0).unsqueeze(-1), x, torch.randn([2, 6, 4]).mul(100));
      assert.ok(maxDiff(conv.forward(noisy, mask), out) < 1e-6, `causal=${causal}: padding leaked`);
      // the same as the real positions alone (zeros padded where the sequence ends)
      const alone = conv.forward(x.narrow(0, 1, 1).narrow(1, 1, 4), null);
      assert.ok(maxDiff(out.narrow(0, 1, 1).narrow(1, 1, 4), alone) < 1e-6, `causal=${causal}: padding differs from absence`);
      assert.equal(out.select(0, 1).select(0, 0).abs().max().item(), 0);
      assert.equal(out.select(0, 1).select(0, 5).abs().max().item(), 0);
      conv.dispose();
    }
  });
});

test("dropout acts in training only", () => {
  torch.scope(() => {
    torch.manualSeed(3);
    const conv = new ConvModule({ hidden: 4, kernelSize: 3, causal: false, dropout: 0.5 });
    const x = torch.randn([1, 16, 4]);
    const evalOut = conv.eval().forward(x, null);
    const trainOut = conv.train().forward(x, null);
    const zeroed = trainOut.eq(0).logicalAnd(evalOut.ne(0)).sum().item();
    assert.ok(zeroed > 8 && zeroed < 56, `about half of 64 outputs dropped, got ${zeroed}`);
    conv.dispose();
  });
});

test("gradients match finite differences (float64)", () => {
  torch.manualSeed(4);
  const mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]);
  for (const causal of [true, false]) {
    const conv = new ConvModule({ hidden: 2, kernelSize: 3, causal }).to("float64").eval();
    gradcheck(`conv causal=${causal}`, (x) => conv.forward(x!, mask), [torch.randn([2, 4, 2])]);
    // and with respect to the depthwise weights (2, 1, 3): backward against central differences
    torch.scope(() => {
      const x = torch.randn([2, 4, 2], { dtype: "float64" });
      const probe = torch.randn([2, 4, 2], { dtype: "float64" });
      const objective = (): number => torch.noGrad(() => torch.scope(() => conv.forward(x, mask).mul(probe).sum().item()));
      const w = conv.depthwise_conv.weight;
      conv.zeroGrad();
      conv.forward(x, mask).mul(probe).sum().backward();
      const analytic = Array.from(w.grad!.data() as Float64Array);
      const flatW = w.view([-1]);
      for (let i = 0; i < 6; i++) {
        const step = (d: number): void => torch.noGrad(() => void torch.scope(() => flatW.narrow(0, i, 1).add_(d)));
        step(1e-6);
        const plus = objective();
        step(-2e-6);
        const minus = objective();
        step(1e-6);
        const numeric = (plus - minus) / 2e-6;
        assert.ok(Math.abs(analytic[i]! - numeric) <= 1e-5 * Math.max(1, Math.abs(numeric)), `causal=${causal}: d/dw[${i}] ${analytic[i]} vs ${numeric}`);
      }
    });
    conv.dispose();
  }
  mask.dispose();
});

// Performer (FAVOR+) attention: the feature map by hand, convergence to softmax attention, the
// linear-time forms against the quadratic form of the same kernel, padding, orthogonal
// features, seeded redraws and gradients.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { attention } from "../src/nn/attention.js";
import { PerformerAttention, orthogonalRandomFeatures, seededNormals, softmaxKernelFeatures } from "../src/nn/performer.js";
import { assertClose, flat, gradcheck } from "./helpers.js";

const randn = (shape: number[], dtype: torch.DType = "float32"): Tensor => torch.randn(shape, { dtype });

/** Largest |a - b| / max(1, |b|) over all elements. */
function maxRelDiff(a: Tensor, b: Tensor): number {
  return torch.scope(() => a.sub(b).abs().div(b.abs().clamp(1, null)).max().item());
}

/** The quadratic form of FAVOR+'s kernel: (A v) / (A 1) with A = phi(q) phi(k)ᵀ, future keys zeroed if causal. */
function quadraticForm(attn: PerformerAttention, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
  return torch.scope(() => {
    const phiQ = softmaxKernelFeatures(q, attn.projection_matrix, true);
    const phiK = softmaxKernelFeatures(k, attn.projection_matrix, false, mask ? mask.ne(0) : null);
    let A = phiQ.matmul(phiK.transpose(-1, -2)); // (B, H, T, S)
    if (attn.causal) A = A.mul(torch.ones([q.shape[2]!, k.shape[2]!], { dtype: q.dtype }).tril());
    return A.matmul(v).div(A.sum(-1, true));
  });
}

test("the feature map equals exp(w·x' − |x'|²/2 − max) / sqrt(m), by hand", () => {
  torch.scope(() => {
    // D = 4: x' = x · 4^(-1/4) = x / sqrt 2. Two features, w0 = (2, 0, 0, 0), w1 = (0, 3, 0, 0).
    const W = torch.tensor([[2, 0, 0, 0], [0, 3, 0, 0]], { dtype: "float64" });
    const x = torch.tensor([[[[2, 0, 0, 0], [0, 1, 1, 0]]]], { dtype: "float64" }); // (1, 1, 2, 4)
    const s = Math.SQRT1_2;
    // position 0: x' = (2s, 0, 0, 0): projections (4s, 0), |x'|²/2 = 1
    // position 1: x' = (0, s, s, 0): projections (0, 3s), |x'|²/2 = 1/2
    const e = [[4 * s - 1, -1], [-0.5, 3 * s - 0.5]]; // exponents: 1.83, -1; -0.5, 1.62
    const r = 1 / Math.sqrt(2);
    const query = e.map((row) => row.map((x) => r * Math.exp(x - Math.max(...row))));
    assertClose(softmaxKernelFeatures(x, W, true), [[query]], 1e-12, "query features");
    // keys: one max over every position and feature: 4s − 1 (position 0, feature 0)
    const key = e.map((row) => row.map((x) => r * Math.exp(x - (4 * s - 1))));
    assertClose(softmaxKernelFeatures(x, W, false), [[key]], 1e-12, "key features");
    // position 0 as padding: zero features, and the max comes from position 1 alone (3s − 0.5)
    const keep = torch.tensor([[false, true]]);
    const masked = [[0, 0], e[1]!.map((x) => r * Math.exp(x - (3 * s - 0.5)))];
    assertClose(softmaxKernelFeatures(x, W, false, keep), [[masked]], 1e-12, "masked key features");
  });
});

test("the features are positive and at most 1/sqrt(m)", () => {
  torch.scope(() => {
    torch.manualSeed(1);
    const attn = new PerformerAttention({ headDim: 8, numFeatures: 32, causal: false, seed: 3 });
    // float32 with ordinary activations; float64 with |x| ~ 17 (exponents down to about -150)
    for (const [dtype, scale] of [["float32", 1], ["float64", 6]] as const) {
      const x = randn([2, 2, 16, 8], dtype).mul(scale);
      for (const isQuery of [true, false]) {
        const phi = softmaxKernelFeatures(x, attn.projection_matrix.to(dtype), isQuery);
        assert.ok(phi.gt(0).all().item(), `${dtype} ${isQuery ? "query" : "key"} features not all positive`);
        assert.ok(phi.le(1 / Math.sqrt(32) + 1e-7).all().item(), "a feature above 1/sqrt(m): the max was not subtracted");
      }
    }
  });
});

test("the default number of features is round(D ln D)", () => {
  const attn = new PerformerAttention({ headDim: 64, causal: false, seed: 1 });
  assert.equal(attn.numFeatures, 266); // 64 · 4.1589 = 266.2
  assert.deepEqual([...attn.projection_matrix.shape], [266, 64]);
  attn.dispose();
});

test("the estimate converges to softmax attention as the number of features grows", () => {
  torch.scope(() => {
    torch.manualSeed(7);
    const D = 8;
    const q = randn([1, 2, 8, D]).mul(0.7);
    const k = randn([1, 2, 8, D]).mul(0.7);
    const v = randn([1, 2, 8, D]);
    for (const causal of [false, true]) {
      const exact = attention(q, k, v, { causal }).context;
      const meanError = (m: number): number => {
        let sum = 0;
        for (const seed of [11, 12, 13, 14]) {
          const attn = new PerformerAttention({ headDim: D, numFeatures: m, causal, seed }).eval();
          sum += torch.scope(() => attn.forward(q, k, v, null).sub(exact).abs().mean().item());
          attn.dispose();
        }
        return sum / 4;
      };
      const [e16, e256, e2048] = [meanError(16), meanError(256), meanError(2048)];
      assert.ok(e16 > e256 && e256 > e2048, `causal=${causal}: errors ${e16}, ${e256}, ${e2048} should fall`);
      // measured: about 0.12, 0.035 and 0.016 (the error falls about as 1/sqrt(m))
      assert.ok(e2048 < 0.03, `causal=${causal}: mean error at m=2048 is ${e2048}, expected < 0.03`);
    }
  });
});

test("bidirectional equals the unmasked quadratic form of the same kernel", () => {
  torch.scope(() => {
    torch.manualSeed(2);
    const attn = new PerformerAttention({ headDim: 8, numFeatures: 24, causal: false, seed: 5 }).eval();
    const q = randn([2, 2, 7, 8]);
    const k = randn([2, 2, 9, 8]); // S != T: cross-attention shapes
    const v = randn([2, 2, 9, 8]);
    assert.ok(maxRelDiff(attn.forward(q, k, v, null), quadraticForm(attn, q, k, v, null)) < 1e-5);
    const mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0, 0]]);
    assert.ok(maxRelDiff(attn.forward(q, k, v, mask), quadraticForm(attn, q, k, v, mask)) < 1e-5);
  });
});

test("causal equals the lower-triangular quadratic form of the same kernel, for any chunk size", () => {
  torch.scope(() => {
    torch.manualSeed(3);
    const attn = new PerformerAttention({ headDim: 8, numFeatures: 24, causal: true, seed: 6 }).eval();
    const q = randn([2, 2, 70, 8]); // 64 + 6: two chunks at the default size, the last partial
    const k = randn([2, 2, 70, 8]);
    const v = randn([2, 2, 70, 8]);
    // batch 1 left-padded: its first 8 queries see no kept key, and give 0
    const mask = torch.tensor([Array<number>(70).fill(1), [...Array<number>(8).fill(0), ...Array<number>(62).fill(1)]]);
    const expected = quadraticForm(attn, q, k, v, null);
    assert.ok(maxRelDiff(attn.forward(q, k, v, null), expected) < 1e-5, "default chunks");
    for (const chunk of [1, 5, 70, 128]) {
      attn.chunkSize = chunk;
      assert.ok(maxRelDiff(attn.forward(q, k, v, null), expected) < 1e-5, `chunk ${chunk}`);
    }
    attn.chunkSize = 16;
    const padded = attn.forward(q, k, v, mask);
    const reference = quadraticForm(attn, q, k, v, mask); // 0/0 = NaN where no key is kept
    assert.ok(maxRelDiff(padded.narrow(2, 8, 62), reference.narrow(2, 8, 62)) < 1e-5, "with padding");
    assert.ok(maxRelDiff(padded.narrow(2, 0, 8).select(0, 0), reference.narrow(2, 0, 8).select(0, 0)) < 1e-5, "unpadded row");
    assert.equal(padded.narrow(2, 0, 8).select(0, 1).abs().max().item(), 0, "queries with no kept key give 0");
  });
});

test("padding keys have no effect: their values can change, or they can be cut off", () => {
  torch.scope(() => {
    torch.manualSeed(4);
    for (const causal of [false, true]) {
      const attn = new PerformerAttention({ headDim: 8, numFeatures: 16, causal, seed: 8 }).eval();
      const q = randn([2, 1, 6, 8]);
      const k = randn([2, 1, 6, 8]);
      const v = randn([2, 1, 6, 8]);
      const mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]); // batch 1: last two keys are padding
      const out = attn.forward(q, k, v, mask);
      // change the padding keys and values, the larger the keys the more a leak would show
      const keep = mask.ne(0).view([2, 1, 6, 1]);
      const k2 = torch.where(keep, k, randn([2, 1, 6, 8]).mul(10));
      const v2 = torch.where(keep, v, randn([2, 1, 6, 8]).mul(10));
      assert.ok(maxRelDiff(attn.forward(q, k2, v2, mask), out) < 1e-6, `causal=${causal}: changed padding changed the output`);
      // bidirectional: batch 1 with its 4 real keys only; causal: the same, for its first 4 queries
      const cut = (t: Tensor): Tensor => t.narrow(0, 1, 1).narrow(2, 0, 4);
      const short = attn.forward(causal ? cut(q) : q.narrow(0, 1, 1), cut(k), cut(v), null);
      const own = causal ? out.narrow(0, 1, 1).narrow(2, 0, 4) : out.narrow(0, 1, 1);
      assert.ok(maxRelDiff(own, short) < 1e-5, `causal=${causal}: padding differs from absence`);
      attn.dispose();
    }
  });
});

test("causal: a future key or value, however large, leaves earlier outputs unchanged", () => {
  torch.scope(() => {
    torch.manualSeed(9);
    const attn = new PerformerAttention({ headDim: 16, numFeatures: 64, causal: true, seed: 10 }).eval();
    const [q, k, v] = [randn([1, 2, 40, 16]), randn([1, 2, 40, 16]), randn([1, 2, 40, 16])];
    const out = attn.forward(q, k, v, null);
    for (const factor of [3, 10]) {
      const scaleLast = (t: Tensor): Tensor => torch.cat([t.narrow(2, 0, 39), t.narrow(2, 39, 1).mul(factor)], 2);
      const changed = attn.forward(q, scaleLast(k), scaleLast(v), null);
      // (the reference's 1e-6 feature floor moves these by up to about 2 for a key 3 times larger)
      assert.ok(maxRelDiff(changed.narrow(2, 0, 39), out.narrow(2, 0, 39)) < 1e-6, `key × ${factor} changed earlier outputs`);
    }
  });
});

test("each block of D features is orthogonal, rows of chi-distributed length", () => {
  torch.scope(() => {
    const D = 4;
    const m = 10; // blocks of 4, 4 and 2 rows
    const W = orthogonalRandomFeatures(D, m, 21, 3);
    // lengths² are the squared norms of the rows of stream (seed 21, draw 3, part 0)
    const normals = seededNormals(21, 3, 0, m * D);
    const lengths2 = Array.from({ length: m }, (_, i) => normals.slice(i * D, i * D + D).reduce((s, x) => s + x * x, 0));
    for (const [start, rows] of [[0, 4], [4, 4], [8, 2]] as const) {
      const block = W.narrow(0, start, rows);
      const gram = flat(block.matmul(block.t()).toArray());
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < rows; j++) {
          const expected = i === j ? lengths2[start + i]! : 0;
          assert.ok(Math.abs(gram[i * rows + j]! - expected) < 1e-10, `block at ${start}: W Wᵀ[${i}][${j}] = ${gram[i * rows + j]}, expected ${expected}`);
        }
      }
    }
    // rows of different blocks are not orthogonal (independent draws)
    assert.ok(Math.abs(W.select(0, 0).mul(W.select(0, 4)).sum().item()) > 1e-6);
    // the sqrt(D) variant: every row of length sqrt(D), same directions
    const fixed = orthogonalRandomFeatures(D, m, 21, 3, "sqrtD");
    assertClose(fixed.square().sum(1), Array<number>(m).fill(D), 1e-12, "row lengths²");
    assertClose(fixed.div(fixed.norm(2, [1], true)), W.div(W.norm(2, [1], true)).toArray(), 1e-12, "directions");
  });
});

test("redraws every N training calls; (seed, draw) reproduces the features; a loaded state resumes exactly", () => {
  torch.scope(() => {
    torch.manualSeed(5);
    const q = randn([1, 1, 4, 8]);
    const a = new PerformerAttention({ headDim: 8, numFeatures: 12, causal: false, redrawEvery: 2, seed: 99 });
    const draw = (n: number): Tensor => orthogonalRandomFeatures(8, 12, 99, n).float();
    assertClose(a.projection_matrix, draw(0).toArray(), 0, "draw 0 at construction");
    a.forward(q, q, q, null);
    a.forward(q, q, q, null);
    assertClose(a.projection_matrix, draw(0).toArray(), 0, "unchanged after 2 calls");
    a.eval().forward(q, q, q, null); // eval calls do not count
    assert.equal(a.trainingCalls, 2);
    a.train().forward(q, q, q, null); // call 2 (the third): draw 1
    assert.ok(maxRelDiff(a.projection_matrix, draw(0)) > 0.01, "features changed");
    assertClose(a.projection_matrix, draw(1).toArray(), 0, "draw 1 after 3 calls");
    // resume: a module with another seed, loaded from a's state, follows a's draws
    const b = new PerformerAttention({ headDim: 8, numFeatures: 12, causal: false, redrawEvery: 2, seed: 1 });
    b.loadStateDict(a.stateDict());
    assert.equal(b.seed, 99);
    assert.equal(b.trainingCalls, 3);
    for (let i = 0; i < 3; i++) {
      const outA = a.forward(q, q, q, null);
      const outB = b.forward(q, q, q, null);
      assertClose(outB, outA.toArray(), 0, `call ${4 + i}`);
    }
    assertClose(b.projection_matrix, draw(2).toArray(), 0, "draw 2 after 6 calls (redraws at calls 2 and 4)");
    // redrawEvery 0: never
    const never = new PerformerAttention({ headDim: 8, numFeatures: 12, causal: false, redrawEvery: 0, seed: 99 });
    for (let i = 0; i < 3; i++) never.forward(q, q, q, null);
    assertClose(never.projection_matrix, draw(0).toArray(), 0, "never redrawn");
    for (const m of [a, b, never]) m.dispose();
  });
});

test("gradients match finite differences (float64)", () => {
  torch.manualSeed(6);
  const mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]);
  for (const causal of [false, true]) {
    const attn = new PerformerAttention({ headDim: 3, numFeatures: 5, causal, seed: 4 }).to("float64").eval();
    attn.chunkSize = 2; // three chunks: the prefix sums between chunks are differentiated too
    gradcheck(`performer causal=${causal}`, (q, k, v) => attn.forward(q!, k!, v!, mask), [randn([2, 1, 5, 3]), randn([2, 1, 5, 3]), randn([2, 1, 5, 3])]);
    attn.dispose();
  }
  mask.dispose();
});

test("runs in float32 under bfloat16 autocast, and gives bfloat16 back for bfloat16 inputs", () => {
  torch.scope(() => {
    torch.manualSeed(8);
    const attn = new PerformerAttention({ headDim: 8, numFeatures: 32, causal: true, seed: 2 }).eval();
    attn.chunkSize = 4;
    const [q, k, v] = [randn([1, 2, 10, 8]), randn([1, 2, 10, 8]), randn([1, 2, 10, 8])];
    const plain = attn.forward(q, k, v, null);
    // matmuls under autocast would round to bfloat16 (about 3 significant digits)
    const cast = torch.autocast(() => attn.forward(q, k, v, null));
    assert.equal(cast.dtype, "float32");
    assert.ok(maxRelDiff(cast, plain) < 1e-6, "autocast changed the result");
    const half = attn.forward(q.to("bfloat16"), k.to("bfloat16"), v.to("bfloat16"), null);
    assert.equal(half.dtype, "bfloat16");
    assert.ok(maxRelDiff(half.float(), plain) < 0.05);
    attn.dispose();
  });
});

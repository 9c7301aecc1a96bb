// Every op in native/ops.def against hand-computed values. A final test fails if an op in
// the table has no case here, so adding an op means adding its check.
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import { OP_NAMES } from "../src/torch/generated/native-ops.js";
import { tensor as T } from "../src/torch/index.js";
import type { NestedArray, Tensor } from "../src/torch/index.js";
import { assertClose, flat } from "./helpers.js";

const covered = new Set<string>();

/** One op's check: names the ops it covers, runs inside a scope. */
function check(ops: string | string[], fn: () => void): void {
  const names = Array.isArray(ops) ? ops : [ops];
  test(`op ${names.join(", ")}`, () => {
    torch.scope(fn);
  });
  for (const n of names) covered.add(n);
}

function close(actual: Tensor, expected: NestedArray, tol = 1e-5): void {
  assertClose(actual, expected, tol);
}

const A = (): Tensor => T([[1, 2, 3], [4, 5, 6]], { dtype: "float32" }); // (2, 3)

// --- creation -------------------------------------------------------------------------------
check("zeros", () => close(torch.zeros([2, 2]), [[0, 0], [0, 0]]));
check("ones", () => {
  const o = torch.ones([3], { dtype: "int32" });
  assert.equal(o.dtype, "int32");
  close(o, [1, 1, 1]);
});
check("empty", () => assert.deepEqual([...torch.empty([4, 5]).shape], [4, 5]));
check("full", () => close(torch.full([2], 7.5), [7.5, 7.5]));
check("arange", () => {
  close(torch.arange(0, 5), [0, 1, 2, 3, 4]);
  assert.equal(torch.arange(0, 5).dtype, "int64");
  close(torch.arange(1, 2, 0.25), [1, 1.25, 1.5, 1.75]);
});
check("linspace", () => close(torch.linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]));
check("eye", () => {
  close(torch.eye(2), [[1, 0], [0, 1]]);
  close(torch.eye(2, 3), [[1, 0, 0], [0, 1, 0]]);
});
check(["rand", "randn", "randint", "randperm"], () => {
  const u = torch.rand([10000]);
  assert.ok(u.min().item() >= 0 && u.max().item() < 1);
  assert.ok(Math.abs(u.mean().item() - 0.5) < 0.02);
  const n = torch.randn([10000], { dtype: "float64" });
  assert.ok(Math.abs(n.mean().item()) < 0.05 && Math.abs(n.std().item() - 1) < 0.05);
  const r = torch.randint(3, 7, [1000]);
  assert.equal(r.dtype, "int64");
  assert.ok(r.min().item() >= 3 && r.max().item() <= 6);
  const p = torch.randperm(10);
  assert.deepEqual((flat(p.toArray()) as number[]).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
check(["zerosLike", "onesLike", "emptyLike", "fullLike"], () => {
  const a = A();
  close(a.zerosLike(), [[0, 0, 0], [0, 0, 0]]);
  close(torch.onesLike(a, { dtype: "float64" }), [[1, 1, 1], [1, 1, 1]]);
  assert.equal(torch.onesLike(a, { dtype: "float64" }).dtype, "float64");
  assert.deepEqual([...a.emptyLike().shape], [2, 3]);
  close(a.fullLike(-2), [[-2, -2, -2], [-2, -2, -2]]);
});
check(["randLike", "randnLike", "randintLike"], () => {
  const a = torch.zeros([500, 4]);
  assert.deepEqual([...a.randLike().shape], [500, 4]);
  assert.ok(Math.abs(a.randnLike().mean().item()) < 0.1);
  const r = a.randintLike(0, 2);
  assert.ok(r.min().item() === 0 && r.max().item() === 1);
});
check(["bernoulli", "multinomial"], () => {
  const p = torch.full([20000], 0.3);
  assert.ok(Math.abs(p.bernoulli().mean().item() - 0.3) < 0.02);
  assert.ok(Math.abs(torch.zeros([20000]).bernoulli(0.7).mean().item() - 0.7) < 0.02);
  const probs = T([0, 0, 1, 0], { dtype: "float32" });
  close(probs.multinomial(3, true), [2, 2, 2]);
});

// --- conversion and views ---------------------------------------------------------------------
check("toWith", () => {
  const x = T([1.7, -2.2], { dtype: "float32" });
  assert.equal(x.to("int32").dtype, "int32");
  close(x.to("int32"), [1, -2]);
  close(x.to("bfloat16"), [1.703125, -2.203125]); // bfloat16 keeps 8 significant bits
  assert.equal(torch.toWith(x, "float64").dtype, "float64");
});
check(["clone", "contiguous", "detach"], () => {
  const a = A();
  const c = a.clone();
  c.add_(1);
  close(a, [[1, 2, 3], [4, 5, 6]]);
  const tr = a.t();
  assert.equal(tr.isContiguous, false);
  assert.equal(tr.contiguous().isContiguous, true);
  const g = torch.ones([2], { requiresGrad: true });
  assert.equal(g.mul(2).detach().requiresGrad, false);
});
check(["view", "reshape", "permute", "transpose", "t", "flatten"], () => {
  const a = A();
  close(a.view([3, 2]), [[1, 2], [3, 4], [5, 6]]);
  close(a.reshape([-1]), [1, 2, 3, 4, 5, 6]);
  close(a.t(), [[1, 4], [2, 5], [3, 6]]);
  close(a.transpose(0, 1), [[1, 4], [2, 5], [3, 6]]);
  const b = torch.arange(0, 8).reshape([2, 2, 2]);
  close(b.permute([2, 0, 1]), [[[0, 2], [4, 6]], [[1, 3], [5, 7]]]);
  close(b.flatten(1), [[0, 1, 2, 3], [4, 5, 6, 7]]);
});
check(["expand", "expandAs", "repeat", "unsqueeze", "squeeze", "flip"], () => {
  close(T([[1, 2], [3, 4]]).flip(), [[2, 1], [4, 3]]);
  close(T([[1, 2], [3, 4]]).flip([0, 1]), [[4, 3], [2, 1]]);
  const v = T([1, 2], { dtype: "float32" });
  close(v.unsqueeze(0).expand([2, 2]), [[1, 2], [1, 2]]);
  close(v.unsqueeze(1).expandAs(torch.zeros([2, 3])), [[1, 1, 1], [2, 2, 2]]);
  close(v.repeat([2]), [1, 2, 1, 2]);
  assert.deepEqual([...torch.zeros([1, 3, 1]).squeeze().shape], [3]);
  assert.deepEqual([...torch.zeros([1, 3, 1]).squeeze(0).shape], [3, 1]);
});
check(["slice", "narrow", "select"], () => {
  const a = A();
  close(a.slice(1, 1, null), [[2, 3], [5, 6]]);
  close(a.slice(1, 0, 3, 2), [[1, 3], [4, 6]]);
  close(a.narrow(1, 1, 1), [[2], [5]]);
  close(a.select(0, 1), [4, 5, 6]);
  close(a.select(1, -1), [3, 6]);
});
check(["cat", "stack", "split", "splitWithSizes", "chunk", "unbind"], () => {
  const a = A();
  close(torch.cat([a, a], 0), [[1, 2, 3], [4, 5, 6], [1, 2, 3], [4, 5, 6]]);
  close(torch.stack([T([1, 2]), T([3, 4])], 1), [[1, 3], [2, 4]]);
  const parts = a.split(2, 1);
  assert.equal(parts.length, 2);
  close(parts[1]!, [[3], [6]]);
  close(a.splitWithSizes([1, 2], 1)[1]!, [[2, 3], [5, 6]]);
  close(a.chunk(3, 1)[2]!, [[3], [6]]);
  close(a.unbind(0)[1]!, [4, 5, 6]);
});
check(["triu", "tril"], () => {
  const m = torch.ones([3, 3]);
  close(m.triu(), [[1, 1, 1], [0, 1, 1], [0, 0, 1]]);
  close(m.tril(-1), [[0, 0, 0], [1, 0, 0], [1, 1, 0]]);
});

// --- arithmetic -------------------------------------------------------------------------------------
check(["add", "sub", "rsub", "mul", "div"], () => {
  const a = A();
  const b = T([10, 20, 30], { dtype: "float32" });
  close(a.add(b), [[11, 22, 33], [14, 25, 36]]);
  close(a.add(b, 2), [[21, 42, 63], [24, 45, 66]]);
  close(a.add(1), [[2, 3, 4], [5, 6, 7]]);
  close(a.sub(b), [[-9, -18, -27], [-6, -15, -24]]);
  close(a.rsub(10), [[9, 8, 7], [6, 5, 4]]);
  close(a.mul(b), [[10, 40, 90], [40, 100, 180]]);
  close(a.div(2), [[0.5, 1, 1.5], [2, 2.5, 3]]);
  close(T([7, -7]).div(2), [3.5, -3.5]); // true division of integers gives floats
  assert.equal(T([1, 2]).add(3).dtype, "int64");
});
check(["floorDivide", "remainder", "pow"], () => {
  close(T([7, -7]).floorDivide(2), [3, -4]);
  close(T([7, -7]).remainder(3), [1, 2]);
  close(A().pow(2), [[1, 4, 9], [16, 25, 36]]);
  close(T([2, 3], { dtype: "float32" }).pow(T([3, 2], { dtype: "float32" })), [8, 9]);
});
check(["maximum", "minimum", "lerp"], () => {
  const a = T([1, 5, 3], { dtype: "float32" });
  const b = T([4, 2, 3], { dtype: "float32" });
  close(a.maximum(b), [4, 5, 3]);
  close(a.minimum(b), [1, 2, 3]);
  close(a.lerp(b, 0.25), [1.75, 4.25, 3]);
});
check(["addcmul", "addcdiv"], () => {
  const x = T([1, 1], { dtype: "float32" });
  close(x.addcmul(T([2, 3], { dtype: "float32" }), T([4, 5], { dtype: "float32" }), 0.5), [5, 8.5]);
  close(x.addcdiv(T([2, 3], { dtype: "float32" }), T([4, 6], { dtype: "float32" }), 2), [2, 2]);
});
check(["neg", "abs", "sign", "exp", "log", "log1p", "sqrt", "rsqrt", "square", "reciprocal"], () => {
  const x = T([-2, 0.5, 4], { dtype: "float32" });
  close(x.neg(), [2, -0.5, -4]);
  close(x.abs(), [2, 0.5, 4]);
  close(x.sign(), [-1, 1, 1]);
  close(x.exp(), [Math.exp(-2), Math.exp(0.5), Math.exp(4)]);
  const p = x.abs();
  close(p.log(), [Math.log(2), Math.log(0.5), Math.log(4)]);
  close(p.log1p(), [Math.log(3), Math.log(1.5), Math.log(5)]);
  close(p.sqrt(), [Math.SQRT2, Math.sqrt(0.5), 2]);
  close(p.rsqrt(), [1 / Math.SQRT2, 1 / Math.sqrt(0.5), 0.5]);
  close(x.square(), [4, 0.25, 16]);
  close(x.reciprocal(), [-0.5, 2, 0.25]);
});
check(["sin", "cos", "erf", "floor", "ceil", "round", "clamp"], () => {
  const x = T([-1.5, 0.4, 2.6], { dtype: "float64" });
  close(x.sin(), [Math.sin(-1.5), Math.sin(0.4), Math.sin(2.6)]);
  close(x.cos(), [Math.cos(-1.5), Math.cos(0.4), Math.cos(2.6)]);
  // erf(0.4) and erf(-1.5), erf(2.6) from Abramowitz & Stegun tables
  close(x.erf(), [-0.966105146, 0.428392355, 0.999763966], 1e-8);
  close(x.floor(), [-2, 0, 2]);
  close(x.ceil(), [-1, 1, 3]);
  close(x.round(), [-2, 0, 3]); // round half to even: -1.5 -> -2
  close(x.clamp(-1, 1), [-1, 0.4, 1]);
  close(x.clamp(null, 0), [-1.5, 0, 0]);
});

// --- activations ---------------------------------------------------------------------------------------
check(["relu", "gelu", "silu", "tanh", "sigmoid", "softplus"], () => {
  const x = T([-1, 0, 2], { dtype: "float64" });
  close(x.relu(), [0, 0, 2]);
  // exact GELU: x * Phi(x); Phi(-1) = 0.158655254, Phi(2) = 0.977249868
  close(x.gelu(), [-0.158655254, 0, 1.954499736], 1e-8);
  // tanh GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const tanhGelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  close(x.gelu("tanh"), [tanhGelu(-1), 0, tanhGelu(2)], 1e-10);
  const sig = (v: number): number => 1 / (1 + Math.exp(-v));
  close(x.silu(), [-sig(-1), 0, 2 * sig(2)], 1e-10);
  close(x.tanh(), [Math.tanh(-1), 0, Math.tanh(2)], 1e-10);
  close(x.sigmoid(), [sig(-1), 0.5, sig(2)], 1e-10);
  close(x.softplus(), [Math.log1p(Math.exp(-1)), Math.log(2), Math.log1p(Math.exp(2))], 1e-10);
  close(x.softplus(2), [Math.log1p(Math.exp(-2)) / 2, Math.log(2) / 2, Math.log1p(Math.exp(4)) / 2], 1e-10);
});
check(["softmax", "logSoftmax"], () => {
  const x = T([[1, 2, 3]], { dtype: "float64" });
  const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
  close(x.softmax(-1), [[Math.exp(1) / z, Math.exp(2) / z, Math.exp(3) / z]], 1e-12);
  close(x.logSoftmax(1), [[1 - Math.log(z), 2 - Math.log(z), 3 - Math.log(z)]], 1e-12);
  assert.equal(T([[1, 2]], { dtype: "bfloat16" }).softmax(-1, "float32").dtype, "float32");
});

// --- in-place -----------------------------------------------------------------------------------------
check(["add_", "sub_", "mul_", "div_", "pow_", "neg_", "sqrt_", "exp_", "relu_", "zero_", "fill_", "copy_"], () => {
  const x = T([1, 4], { dtype: "float32" });
  assert.equal(x.add_(1), x); // returns its receiver, as PyTorch
  close(x, [2, 5]);
  x.sub_(T([1, 1], { dtype: "float32" }), 2);
  close(x, [0, 3]);
  x.mul_(3).div_(T([1, 9], { dtype: "float32" }));
  close(x, [0, 1]);
  x.add_(3).pow_(2);
  close(x, [9, 16]);
  x.sqrt_();
  close(x, [3, 4]);
  x.neg_();
  close(x, [-3, -4]);
  x.relu_();
  close(x, [0, 0]);
  x.exp_();
  close(x, [1, 1]);
  x.fill_(7);
  close(x, [7, 7]);
  x.copy_(T([5, 6], { dtype: "float64" }));
  close(x, [5, 6]);
  x.zero_();
  close(x, [0, 0]);
});
check(["addcmul_", "addcdiv_", "lerp_", "clamp_", "maskedFill_"], () => {
  const x = T([1, 2], { dtype: "float32" });
  x.addcmul_(T([1, 2], { dtype: "float32" }), T([3, 4], { dtype: "float32" }), 2);
  close(x, [7, 18]);
  x.addcdiv_(T([2, 2], { dtype: "float32" }), T([1, 4], { dtype: "float32" }));
  close(x, [9, 18.5]);
  x.lerp_(T([1, 2.5], { dtype: "float32" }), 0.5);
  close(x, [5, 10.5]);
  x.clamp_(6, 10);
  close(x, [6, 10]);
  x.maskedFill_(T([true, false]), -1);
  close(x, [-1, 10]);
});
check(["uniform_", "normal_", "bernoulli_"], () => {
  const x = torch.empty([20000], { dtype: "float64" });
  x.uniform_(2, 4);
  assert.ok(x.min().item() >= 2 && x.max().item() < 4 && Math.abs(x.mean().item() - 3) < 0.03);
  x.normal_(1, 2);
  assert.ok(Math.abs(x.mean().item() - 1) < 0.06 && Math.abs(x.std().item() - 2) < 0.06);
  x.bernoulli_(0.25);
  assert.ok(Math.abs(x.mean().item() - 0.25) < 0.02);
});

// --- comparison and logic ----------------------------------------------------------------------------
check(["eq", "ne", "lt", "le", "gt", "ge"], () => {
  const x = T([1, 2, 3]);
  close(x.eq(2), [false, true, false]);
  close(x.ne(T([1, 0, 3])), [false, true, false]);
  close(x.lt(2), [true, false, false]);
  close(x.le(2), [true, true, false]);
  close(x.gt(2), [false, false, true]);
  close(x.ge(2), [false, true, true]);
  assert.equal(x.eq(2).dtype, "bool");
});
check(["logicalAnd", "logicalOr", "logicalXor", "logicalNot"], () => {
  const a = T([true, true, false, false]);
  const b = T([true, false, true, false]);
  close(a.logicalAnd(b), [true, false, false, false]);
  close(a.logicalOr(b), [true, true, true, false]);
  close(a.logicalXor(b), [false, true, true, false]);
  close(a.logicalNot(), [false, false, true, true]);
});
check(["isnan", "isinf", "isfinite", "allclose", "equal"], () => {
  const x = T([1, NaN, Infinity, -Infinity], { dtype: "float32" });
  close(x.isnan(), [false, true, false, false]);
  close(x.isinf(), [false, false, true, true]);
  close(x.isfinite(), [true, false, false, false]);
  assert.equal(T([1, 2], { dtype: "float32" }).allclose(T([1, 2.000001], { dtype: "float32" })), true);
  assert.equal(T([1, 2], { dtype: "float32" }).allclose(T([1, 2.1], { dtype: "float32" })), false);
  assert.equal(T([1, 2]).equal(T([1, 2])), true);
  assert.equal(T([1, 2]).equal(T([1, 3])), false);
});

// --- linear algebra -----------------------------------------------------------------------------------
check(["matmul", "mm", "bmm", "linear", "outer"], () => {
  const a = A();
  const b = T([[1, 0], [0, 1], [1, 1]], { dtype: "float32" });
  close(a.matmul(b), [[4, 5], [10, 11]]);
  close(a.mm(b), [[4, 5], [10, 11]]);
  close(a.unsqueeze(0).bmm(b.unsqueeze(0)), [[[4, 5], [10, 11]]]);
  // linear: x W^T + b
  close(torch.linear(a, b.t(), T([100, 200], { dtype: "float32" })), [[104, 205], [110, 211]]);
  close(torch.linear(a, b.t()), [[4, 5], [10, 11]]);
  close(T([1, 2], { dtype: "float32" }).outer(T([3, 4, 5], { dtype: "float32" })), [[3, 4, 5], [6, 8, 10]]);
});
check("fusedLinear", () => {
  const a = A();
  const w1 = T([[1, 0, 0], [0, 1, 0]], { dtype: "float32" });
  const w2 = T([[1, 1, 1]], { dtype: "float32" });
  const b1 = T([10, 20], { dtype: "float32" });
  const b2 = T([30], { dtype: "float32" });
  const want = [[11, 22, 36], [14, 25, 45]]; // [x W1ᵀ + b1, x W2ᵀ + b2]
  const fast = torch.noGrad(() => torch.fusedLinear(a, [w1, w2], [b1, b2])); // oneDNN on cached Wᵀ
  close(fast, want);
  close(torch.noGrad(() => torch.fusedLinear(a.unsqueeze(0), [w1, w2], [b1, b2])), [want]); // batch dimensions kept
  close(torch.noGrad(() => torch.fusedLinear(a, [w1, w2], [])), [[1, 2, 6], [4, 5, 15]]);
  // the autograd path (at::linear) gives the same, with gradients
  const wg = w2.clone().requiresGrad_(true);
  const y = torch.fusedLinear(a, [w1, wg], [b1, b2]);
  close(y, want);
  y.sum().backward();
  close(wg.grad!, [[5, 7, 9]]);
  // the cached Wᵀ follows in-place changes of the weights (version counter)
  torch.noGrad(() => w1.mul_(2));
  close(torch.noGrad(() => torch.fusedLinear(a, [w1, w2], [b1, b2])), [[12, 24, 36], [18, 30, 45]]);
  torch.noGrad(() => b2.fill_(0));
  close(torch.noGrad(() => torch.fusedLinear(a, [w1, w2], [b1, b2])), [[12, 24, 6], [18, 30, 15]]);
  // GELU in place after the GEMM equals linear then gelu (exact and tanh forms)
  const x = torch.randn([5, 8]);
  const w = torch.randn([16, 8]);
  const b = torch.randn([16]);
  close(torch.noGrad(() => torch.fusedLinear(x, [w], [b], "gelu")), torch.linear(x, w, b).gelu().toArray() as NestedArray, 1e-5);
  close(torch.noGrad(() => torch.fusedLinear(x, [w], [b], "gelu_tanh")), torch.linear(x, w, b).gelu("tanh").toArray() as NestedArray, 1e-5);
  // training (float32): oneDNN with its own backward; the same outputs and gradients as linear
  for (const [shape, inOut, withBias, count] of [[[4, 5, 6], false, true, 1], [[40, 6], false, false, 1], [[3, 2, 6], true, true, 1], [[5, 6], false, true, 3]] as const) {
    const ws = Array.from({ length: count }, () => torch.randn(inOut ? [6, 4] : [4, 6]).requiresGrad_(true));
    const bs = withBias ? Array.from({ length: count }, () => torch.randn([4]).requiresGrad_(true)) : [];
    const xin = torch.randn([...shape]).requiresGrad_(true);
    const up = torch.randn([...shape.slice(0, -1), 4 * count]);
    const leaves = [xin, ...ws, ...bs];
    const yf = torch.fusedLinear(xin, ws, bs, "gelu", inOut);
    if (torch.attentionKernels()[0] && !inOut) assert.match(torch.fusedLinear(xin, ws, bs, "none", inOut).gradFn!, /TrainLinear/); // oneDNN served
    yf.mul(up).sum().backward();
    const got = leaves.map((t) => t.grad!.clone());
    leaves.forEach((t) => t.zeroGrad());
    const Wc = torch.cat(ws, inOut ? 1 : 0);
    const yr = torch.linear(xin, inOut ? Wc.t() : Wc, withBias ? torch.cat(bs, 0) : null).gelu();
    yr.mul(up).sum().backward();
    assert.ok(yf.sub(yr).abs().max().item() < 1e-5, `training linear ${JSON.stringify(shape)}`);
    got.forEach((g, i) => assert.ok(g.sub(leaves[i]!.grad!).abs().max().item() < 1e-4, `gradient ${i} of ${JSON.stringify(shape)}`));
  }
  // under bfloat16 autocast: kept bfloat16 weights, the same numbers as autocast's linear, fresh after a change
  const ac = (): [Tensor, Tensor] =>
    torch.noGrad(() => torch.autocast(() => [torch.fusedLinear(x, [w, w], [b, b], "gelu"), torch.linear(x, torch.cat([w, w], 0), torch.cat([b, b], 0)).gelu()]));
  const [got, ref] = ac();
  assert.equal(got.dtype, "bfloat16");
  assert.ok(got.float().equal(ref.float()), "fused linear under autocast = autocast's linear");
  torch.noGrad(() => w.mul_(-1));
  const [got2, ref2] = ac();
  assert.ok(got2.float().equal(ref2.float()) && !got2.float().equal(got.float()), "the kept bfloat16 weights follow a change");
  // bfloat16 weights (a model cast to bfloat16), several: the kept concatenation gives what
  // at::linear on the concatenated weights gives, bit for bit, and follows in-place changes
  const [xh, wh, bh] = [x.to("bfloat16"), w.to("bfloat16"), b.to("bfloat16")];
  const bfPair = (): [Tensor, Tensor] => torch.noGrad(() => [torch.fusedLinear(xh, [wh, wh], [bh, bh]), torch.linear(xh, torch.cat([wh, wh], 0), torch.cat([bh, bh], 0))]);
  const [bf, bfRef] = bfPair();
  assert.equal(bf.dtype, "bfloat16");
  assert.ok(bf.float().equal(bfRef.float()), "fused linear on bfloat16 weights = linear on their concatenation");
  torch.noGrad(() => wh.mul_(-1));
  const [bf2, bfRef2] = bfPair();
  assert.ok(bf2.float().equal(bfRef2.float()) && !bf2.float().equal(bf.float()), "the kept bfloat16 concatenation follows a change");
  // bfloat16 weights stored (in, out), as GPT-2's Conv1D: an (out, in) copy is kept; the same
  // products (to bfloat16 rounding: the GEMM may sum in another order), following a change
  const wio16 = w.t().contiguous().to("bfloat16");
  // the largest difference in bfloat16 ulps of the largest output (2^-7 of its magnitude); up to
  // 2: the product and the bias add may each round to bfloat16 in another order (a stale copy
  // after the change below would be off by the outputs' own size, over 100 ulps)
  const io = (): number =>
    torch.noGrad(() => {
      const ref = torch.linear(xh, wio16.t(), bh).float();
      const diff = torch.fusedLinear(xh, [wio16], [bh], "none", true).float().sub(ref).abs().max().item();
      return diff / (ref.abs().max().item() * 2 ** -7);
    });
  assert.ok(io() <= 2, `bfloat16 (in, out) weight: ${io()} ulps`);
  torch.noGrad(() => wio16.mul_(-2));
  assert.ok(io() <= 2, `bfloat16 (in, out) weight after a change: ${io()} ulps`);
  // weights stored (in, out), as GPT-2's Conv1D: one read as stored, two concatenated along out
  close(torch.noGrad(() => torch.fusedLinear(a, [w1.t().contiguous()], [b1], "none", true)), torch.linear(a, w1, b1).toArray() as NestedArray);
  close(torch.noGrad(() => torch.fusedLinear(a, [w1.t().contiguous(), w2.t().contiguous()], [b1, b2], "none", true)), torch.fusedLinear(a, [w1, w2], [b1, b2]).toArray() as NestedArray);
  const wio = w1.t().contiguous().requiresGrad_(true);
  torch.fusedLinear(a, [wio], [b1], "none", true).sum().backward();
  close(wio.grad!, [[5, 5], [7, 7], [9, 9]]); // the autograd path, (in, out)
  assert.throws(() => torch.fusedLinear(a, [w1, w2], [b1]), /fusedLinear: give a bias for every weight or none \(2 weights, 1 biases\)/);
  assert.throws(() => torch.fusedLinear(a, [], []), /fusedLinear: weights must not be empty/);
});
check(["addmm", "baddbmm", "einsum"], () => {
  const c = T([[1, 1], [1, 1]], { dtype: "float32" });
  const m1 = T([[1, 2], [3, 4]], { dtype: "float32" });
  const m2 = T([[1, 0], [0, 2]], { dtype: "float32" });
  close(c.addmm(m1, m2, 2, 1), [[3, 6], [5, 10]]); // 2*c + m1 m2
  close(c.unsqueeze(0).baddbmm(m1.unsqueeze(0), m2.unsqueeze(0)), [[[2, 5], [4, 9]]]);
  close(torch.einsum("ij,jk->ik", [m1, m2]), [[1, 4], [3, 8]]);
  close(torch.einsum("ii", [m1]), 5);
});
check("qr", () => {
  const a = T([[12, -51, 4], [6, 167, -68], [-4, 24, -41]], { dtype: "float64" });
  const [q, r] = a.qr();
  // The classic example (Wikipedia, Householder): R's diagonal is |14|, |175|, |35|.
  close(torch.einsum("ii->i", [r.abs()]), [14, 175, 35], 1e-9);
  close(q.matmul(r), [[12, -51, 4], [6, 167, -68], [-4, 24, -41]], 1e-9);
  close(q.t().matmul(q), [[1, 0, 0], [0, 1, 0], [0, 0, 1]], 1e-12);
});

// --- reductions -----------------------------------------------------------------------------------------
check(["sum", "mean", "prod"], () => {
  const a = A();
  close(a.sum(), 21);
  close(a.sum(0), [5, 7, 9]);
  close(a.sum([0, 1]), 21);
  close(a.sum(1, true), [[6], [15]]);
  close(a.mean(), 3.5);
  close(a.mean(1), [2, 5]);
  close(a.prod(), 720);
  close(a.prod(1), [6, 120]);
  assert.equal(T([true, true]).sum().dtype, "int64");
});
check(["max", "min", "maxDim", "minDim", "amax", "amin", "argmax", "argmin"], () => {
  const a = T([[1, 9, 3], [7, 5, 6]], { dtype: "float32" });
  close(a.max(), 9);
  close(a.min(), 1);
  const [v, i] = a.maxDim(1);
  close(v, [9, 7]);
  close(i, [1, 0]);
  const [mv, mi] = a.minDim(0, true);
  close(mv, [[1, 5, 3]]);
  close(mi, [[0, 1, 0]]);
  close(a.amax(0), [7, 9, 6]);
  close(a.amin([0, 1]), 1);
  close(a.argmax(), 1);
  close(a.argmax(0), [1, 0, 1]);
  close(a.argmin(1), [0, 1]);
});
check(["logsumexp", "var", "std", "norm"], () => {
  const x = T([[1, 2, 3, 4]], { dtype: "float64" });
  close(x.logsumexp(1), [Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(4))], 1e-12);
  close(x.var(), 5 / 3, 1e-12); // unbiased: sum((x-2.5)^2) / 3
  close(x.var(null, false), 1.25, 1e-12);
  close(x.std(1), [Math.sqrt(5 / 3)], 1e-12);
  close(x.norm(), Math.sqrt(30), 1e-12);
  close(x.norm(1), 10, 1e-12);
  close(x.norm(Infinity, 1), [4], 1e-12);
});
check(["all", "any", "cumsum"], () => {
  assert.equal(T([true, false]).all().item(), 0);
  assert.equal(T([true, false]).any().item(), 1);
  close(T([1, 2, 3]).cumsum(0), [1, 3, 6]);
  close(A().cumsum(1), [[1, 3, 6], [4, 9, 15]]);
});
check(["topk", "sort", "argsort", "item"], () => {
  const x = T([3, 1, 4, 1.5, 5], { dtype: "float32" });
  const [v, i] = x.topk(2);
  close(v, [5, 4]);
  close(i, [4, 2]);
  const [sv, si] = x.sort(0, true);
  close(sv, [5, 4, 3, 1.5, 1]);
  close(si, [4, 2, 0, 3, 1]);
  close(x.argsort(), [1, 3, 0, 2, 4]);
  assert.equal(x.sum().item(), 14.5);
  assert.equal(T([7]).item(), 7);
});

// --- indexing -------------------------------------------------------------------------------------------------
check(["where", "maskedFill"], () => {
  const c = T([true, false, true]);
  const a = T([1, 2, 3], { dtype: "float32" });
  const b = T([10, 20, 30], { dtype: "float32" });
  close(torch.where(c, a, b), [1, 20, 3]);
  close(torch.where(c, a, 0), [1, 0, 3]);
  close(torch.where(c, -1, b), [-1, 20, -1]);
  close(a.maskedFill(c, -Infinity), [-Infinity, 2, -Infinity]);
  close(a.maskedFill(T([[true], [false]]), 0), [[0, 0, 0], [1, 2, 3]]); // mask broadcasts
});
check(["gather", "scatter", "scatterAdd", "indexSelect", "indexCopy", "takeAlongDim"], () => {
  close(torch.zeros([4]).indexCopy(0, T([3, 1]), T([7, 8], { dtype: "float32" })), [0, 8, 0, 7]);
  const a = A();
  const idx = T([[2, 0], [1, 1]]);
  close(a.gather(1, idx), [[3, 1], [5, 5]]);
  close(torch.zeros([2, 3]).scatter(1, idx, 1), [[1, 0, 1], [0, 1, 0]]);
  close(torch.zeros([2, 3]).scatter(1, idx, T([[7, 8], [9, 10]], { dtype: "float32" })), [[8, 0, 7], [0, 10, 0]]);
  close(torch.zeros([2, 3]).scatterAdd(1, idx, T([[7, 8], [9, 10]], { dtype: "float32" })), [[8, 0, 7], [0, 19, 0]]);
  close(a.indexSelect(1, T([2, 0])), [[3, 1], [6, 4]]);
  close(a.takeAlongDim(T([[0], [2]]), 1), [[1], [6]]);
});
check("nonzero", () => {
  close(T([0, 3, 0, 5]).nonzero(), [[1], [3]]);
  close(T([[1, 0], [0, 2]]).nonzero(), [[0, 0], [1, 1]]);
});
check("oneHot", () => {
  close(T([0, 2]).oneHot(3), [[1, 0, 0], [0, 0, 1]]);
  close(T([1]).oneHot(), [[0, 1]]);
});

// --- neural-network functions ------------------------------------------------------------------------------------
check("layerNorm", () => {
  const x = T([[1, 2, 3, 4]], { dtype: "float64" });
  const mean = 2.5;
  const sd = Math.sqrt(1.25 + 1e-5);
  const want = [1, 2, 3, 4].map((v) => (v - mean) / sd);
  close(torch.layerNorm(x, [4]), [want], 1e-10);
  const w = T([1, 2, 1, 2], { dtype: "float64" });
  const b = T([0, 0, 1, 1], { dtype: "float64" });
  close(torch.layerNorm(x, [4], w, b, 1e-12), [[-1.3416407865, -0.894427191, 1.4472135955, 3.683281573]], 1e-9);
});
check("dropout", () => {
  const x = torch.ones([20000]);
  const y = torch.dropout(x, 0.25, true);
  const kept = y.ne(0).float().mean().item();
  assert.ok(Math.abs(kept - 0.75) < 0.02);
  close(y.max(), 1 / 0.75); // survivors scaled by 1/(1-p)
  close(torch.dropout(x, 0.25, false).sum(), 20000); // identity in eval mode
  close(torch.dropout(x, 1, true).sum(), 0); // p = 1 drops everything (libtorch's own path)
});
check("dropoutMask", () => {
  const n = 1 << 20;
  const x = torch.empty([n]);
  for (const p of [0.1, 0.5, 0.9]) {
    const m = torch.dropoutMask(x, p);
    const kept = m.ne(0).double().mean().item();
    // binomial: 5 standard deviations
    assert.ok(Math.abs(kept - (1 - p)) < 5 * Math.sqrt((p * (1 - p)) / n), `p=${p}: kept ${kept}`);
    close(m.max(), 1 / (1 - p));
    // neighbours independent: P(both kept) = (1-p)^2, within 5 standard deviations
    const k = m.ne(0).double();
    const both = k.narrow(0, 0, n - 1).mul(k.narrow(0, 1, n - 1)).mean().item();
    const q = (1 - p) ** 2;
    assert.ok(Math.abs(both - q) < 5 * Math.sqrt((q * (1 - q)) / n), `p=${p}: neighbours kept together ${both} vs ${q}`);
  }
  // governed by the CPU generator, and the same whatever the number of threads
  torch.manualSeed(42);
  const a = torch.dropoutMask(x, 0.3);
  const b = torch.dropoutMask(x, 0.3);
  assert.ok(!a.equal(b), "successive masks differ");
  const threads = torch.getNumThreads();
  torch.setNumThreads(1);
  torch.manualSeed(42);
  const a1 = torch.dropoutMask(x, 0.3);
  torch.setNumThreads(threads);
  assert.ok(a.equal(a1), "seeded masks repeat, on 1 thread as on many");
  // mean preserved, gradient = mask, p = 0 keeps all, bfloat16
  const ones = torch.ones([n], { requiresGrad: true });
  const y = torch.dropout(ones, 0.2, true);
  assert.ok(Math.abs(y.mean().item() - 1) < 0.005);
  y.sum().backward();
  assert.ok(ones.grad!.equal(y.detach()), "d(x·mask)/dx = mask");
  close(torch.dropoutMask(x.narrow(0, 0, 4), 0), [1, 1, 1, 1]);
  const bf = torch.dropoutMask(torch.empty([1000], { dtype: "bfloat16" }), 0.5);
  assert.equal(bf.dtype, "bfloat16");
  assert.throws(() => torch.dropoutMask(x, 1), /dropoutMask: p must be in \[0, 1\), got 1/);
  assert.throws(() => torch.dropoutMask(torch.empty([2], { dtype: "int64" }), 0.1), /float32, bfloat16 or float64 CPU tensor/);
});
check("embedding", () => {
  const w = T([[0, 0], [1, 1], [2, 4]], { dtype: "float32" });
  close(torch.embedding(w, T([[2, 1], [0, 2]])), [[[2, 4], [1, 1]], [[0, 0], [2, 4]]]);
});
check(["conv1d", "conv2d"], () => {
  const x = T([[[1, 2, 3, 4]]], { dtype: "float32" }); // (N=1, C=1, L=4)
  const w = T([[[1, 0, -1]]], { dtype: "float32" });
  close(torch.conv1d(x, w), [[[-2, -2]]]);
  close(torch.conv1d(x, w, T([1], { dtype: "float32" }), 1, 1), [[[-1, -1, -1, 4]]]);
  const img = torch.arange(0, 9, 1, { dtype: "float32" }).reshape([1, 1, 3, 3]);
  const k = torch.ones([1, 1, 2, 2]);
  close(torch.conv2d(img, k), [[[[8, 12], [20, 24]]]]);
  close(torch.conv2d(img, k, null, 2, 1), [[[[0, 3], [9, 24]]]]);
});
check(["crossEntropy", "nllLoss"], () => {
  const logits = T([[2, 1, 0], [0, 0, 0]], { dtype: "float64" });
  const target = T([0, 2]);
  const lse0 = Math.log(Math.exp(2) + Math.exp(1) + 1);
  const l0 = lse0 - 2;
  const l1 = Math.log(3);
  close(torch.crossEntropy(logits, target), (l0 + l1) / 2, 1e-12);
  close(torch.crossEntropy(logits, target, null, "none"), [l0, l1], 1e-12);
  close(torch.crossEntropy(logits, T([0, -100])), l0, 1e-12); // -100 ignored
  close(torch.crossEntropy(logits, T([-100, 2]), null, "mean", -100), l1, 1e-12);
  // label smoothing e: (1-e) * nll + e * mean over classes of -log p
  const e = 0.1;
  const lp0 = [2 - lse0, 1 - lse0, -lse0];
  const smooth0 = (1 - e) * l0 + e * -(lp0[0]! + lp0[1]! + lp0[2]!) / 3;
  close(torch.crossEntropy(logits, T([0, -100]), null, "mean", -100, e), smooth0, 1e-12);
  close(torch.nllLoss(logits.logSoftmax(1), target, null, "sum"), l0 + l1, 1e-12);
});
check(["mseLoss", "binaryCrossEntropyWithLogits"], () => {
  const a = T([1, 2, 3], { dtype: "float64" });
  const b = T([1, 0, 5], { dtype: "float64" });
  close(torch.mseLoss(a, b), 8 / 3, 1e-12);
  close(torch.mseLoss(a, b, "sum"), 8, 1e-12);
  const x = T([0, 2], { dtype: "float64" });
  const y = T([1, 0], { dtype: "float64" });
  close(torch.binaryCrossEntropyWithLogits(x, y), (Math.log(2) + Math.log1p(Math.exp(2))) / 2, 1e-12);
  close(torch.binaryCrossEntropyWithLogits(x, y, null, T([3], { dtype: "float64" })), (3 * Math.log(2) + Math.log1p(Math.exp(2))) / 2, 1e-12);
});
check("attentionInference", () => {
  if (!torch.attentionKernels()[0]) {
    // a libtorch that hides oneDNN (pip wheels): the op says so, and attentionMerged composes
    assert.throws(() => torch.attentionInference(torch.zeros([1, 1, 2, 2]), torch.zeros([1, 1, 2, 2]), torch.zeros([1, 1, 2, 2]), null, false, 1), /does not export oneDNN/);
    return;
  }
  // q = k = identity rows, v = [[1],[2]] (one batch, one head): softmax rows of I / sqrt(2)
  const q = T([[[[1, 0], [0, 1]]]], { dtype: "float32" });
  const v = T([[[[1], [2]]]], { dtype: "float32" });
  const s = 1 / Math.sqrt(2);
  const p = Math.exp(s) / (Math.exp(s) + 1);
  close(torch.attentionInference(q, q, v, null, false, s), [[[p + (1 - p) * 2], [1 - p + p * 2]]]);
  close(torch.attentionInference(q, q, v, null, true, s), [[[1], [1 - p + p * 2]]]); // causal: query 0 sees key 0 only
  close(torch.attentionInference(q, q, v, T([[[[0, -1e30]]]]), false, s), [[[1], [1]]]); // the second key masked out
  // against the composed path: heads merged, strided inputs, a padding mask, causal with a cache (T < S)
  torch.manualSeed(11);
  const qkv = torch.randn([2, 7, 3, 3, 16]); // (B, T, q|k|v, H, D): views as the QKV projection gives them
  const [qq, kk, vv] = [0, 1, 2].map((i) => qkv.select(2, i).permute([0, 2, 1, 3])) as [Tensor, Tensor, Tensor];
  const mask = T([[[[0, 0, 0, 0, 0, -3.4e38, -3.4e38]]], [[[0, 0, 0, 0, 0, 0, 0]]]], { dtype: "float32" });
  const merge = (c: Tensor): Tensor => c.permute([0, 2, 1, 3]).reshape([2, -1, 48]);
  for (const causal of [false, true]) {
    const want = merge(torch.scaledDotProductAttention(qq, kk, vv, { attnMask: mask, isCausal: causal }));
    close(torch.attentionInference(qq, kk, vv, mask, causal, 0.25), want.toArray() as NestedArray, 1e-5);
  }
  const q2 = qq.narrow(2, 4, 3); // 3 new queries against 7 cached keys: query i sees keys up to 4 + i
  const causalMask = torch.ones([3, 7], { dtype: "bool" }).tril(4);
  const want2 = merge(torch.scaledDotProductAttention(q2, kk, vv, { attnMask: causalMask }));
  close(torch.attentionInference(q2, kk, vv, null, true, 0.25), want2.toArray() as NestedArray, 1e-5);
  // bfloat16: the same to bfloat16's precision
  const bf = torch.attentionInference(qq.bfloat16(), kk.bfloat16(), vv.bfloat16(), mask, false, 0.25).float();
  const ref = merge(torch.scaledDotProductAttention(qq, kk, vv, { attnMask: mask }));
  assert.ok(bf.sub(ref).abs().max().item() < 0.05, "bfloat16 attention");
  assert.throws(() => torch.attentionInference(qq.narrow(1, 0, 2), kk, vv, null, false, 1), /do not fit together/);
  assert.throws(() => torch.attentionInference(qq, kk, vv, torch.zeros([3, 7]), false, 1), /mask .* does not broadcast to \(B, H, T, S\) = \(2, 3, 7, 7\)/);
  assert.throws(() => torch.attentionInference(qq.double(), kk.double(), vv.double(), null, false, 1), /float32 or bfloat16/);
  const g = qq.clone().requiresGrad_(true);
  assert.throws(() => torch.attentionInference(g, kk, vv, null, false, 1), /inference only/);
});
check("attentionTrain", () => {
  if (!torch.attentionKernels()[0]) return; // composed attention only (see attentionInference)
  torch.manualSeed(3);
  const [B, T, H, D] = [2, 7, 3, 16];
  const C = H * D;
  const qkv = torch.randn([B, T, 3 * C]);
  const w = torch.randn([B, T, C]);
  const mask = torch.tensor([[[[0, 0, 0, 0, 0, -3.4e38, -3.4e38]]], [[[0, 0, 0, 0, 0, 0, 0]]]], { dtype: "float32" });
  const heads = (x: Tensor): Tensor[] => x.split(C, -1).map((t) => t.view([B, T, H, D]).permute([0, 2, 1, 3]));
  // without dropout: the composed path's output and gradients, with a padding mask, causal or not
  for (const causal of [false, true]) {
    const run = (fused: boolean): [Tensor, Tensor] => {
      const x = qkv.clone().requiresGrad_(true);
      const [q, k, v] = heads(x) as [Tensor, Tensor, Tensor];
      const ref = (): Tensor => torch.scaledDotProductAttention(q, k, v, { attnMask: mask, isCausal: causal, scale: 0.25 }).permute([0, 2, 1, 3]).reshape([B, T, C]);
      const out = fused ? torch.attentionTrain(q, k, v, mask, causal, 0.25, 0) : ref();
      out.mul(w).sum().backward();
      return [out.detach(), x.grad!];
    };
    const [o1, g1] = run(true);
    const [o2, g2] = run(false);
    assert.ok(o1.sub(o2).abs().max().item() < 1e-5 && g1.sub(g2).abs().max().item() < 1e-5, `causal=${causal}`);
  }
  // with dropout: the backward is the forward's derivative (same seed, central differences)
  const x64 = torch.randn([B, T, 3 * C], { dtype: "float64" });
  const f = (x: Tensor): Tensor => {
    torch.manualSeed(77);
    const [q, k, v] = heads(x) as [Tensor, Tensor, Tensor];
    return torch.attentionTrain(q, k, v, null, true, 0.3, 0.4).mul(w).sum();
  };
  const xg = x64.float().requiresGrad_(true);
  f(xg).backward();
  const flat = x64.reshape([-1]);
  let worst = 0;
  for (const i of [3, 17, 40, 55, 70, 95, 130, 170, 190, 260, 300]) {
    const shifted = (e: number): Tensor => {
      const c = flat.clone();
      c.select(0, i).add_(e);
      return c.reshape(x64.shape).float();
    };
    const num = (f(shifted(1e-2)).item() - f(shifted(-1e-2)).item()) / 2e-2;
    const ana = xg.grad!.reshape([-1]).select(0, i).item();
    worst = Math.max(worst, Math.abs(num - ana) / Math.max(1, Math.abs(ana)));
  }
  assert.ok(worst < 2e-3, `finite differences: relative error ${worst}`);
  // dropout scales the survivors by 1/(1-p): with v = 1 each output is a row sum of P·M, 1 on
  // average; over 1,024 rows of 64 keys the mean moves by ~0.01 from seed to seed (0.98-1.02 in 20)
  const [q, k] = heads(qkv) as [Tensor, Tensor];
  const ones = torch.ones([B, H, T, D]);
  const wide = torch.randn([4, 4, 64, 16]);
  const mean = torch.attentionTrain(wide, wide, torch.ones([4, 4, 64, 16]), null, false, 0.25, 0.5).mean().item();
  assert.ok(Math.abs(mean - 1) < 0.05, `mean ${mean}`);
  assert.ok(!torch.attentionTrain(q, k, ones, null, false, 0.25, 0.5).equal(torch.attentionTrain(q, k, ones, null, false, 0.25, 0.5)), "fresh masks");
  assert.throws(() => torch.attentionTrain(q.double(), k.double(), ones.double()), /float32 on the CPU/);
  assert.throws(() => torch.attentionTrain(q, k, ones, null, false, 1, 1), /dropout p must be in \[0, 1\)/);
  assert.throws(() => torch.attentionTrain(q, k, ones, mask.clone().requiresGrad_(true)), /the mask must not require grad/);
});
test("the scalar softmax (CPUs without AVX-512) gives the attention kernels the same numbers", () => {
  if (!torch.attentionKernels()[0]) return;
  const torchUrl = new URL("../src/torch/index.js", import.meta.url).href;
  const script = `
    const torch = await import(${JSON.stringify(torchUrl)});
    torch.manualSeed(5);
    const qkv = torch.randn([2, 9, 3, 2, 8]);
    const [q, k, v] = [0, 1, 2].map((i) => qkv.select(2, i).permute([0, 2, 1, 3]));
    const mask = torch.tensor([[[[0, 0, 0, 0, 0, 0, 0, -3.4e38, -3.4e38]]], [[[0, 0, 0, 0, 0, 0, 0, 0, 0]]]], { dtype: "float32" });
    const merge = (c) => c.permute([0, 2, 1, 3]).reshape([2, 9, 16]);
    let worst = 0;
    for (const causal of [false, true]) {
      const ref = merge(torch.scaledDotProductAttention(q, k, v, { attnMask: mask, isCausal: causal }));
      worst = Math.max(worst, torch.attentionInference(q, k, v, mask, causal, 1 / Math.sqrt(8)).sub(ref).abs().max().item());
      worst = Math.max(worst, torch.attentionTrain(q, k, v, mask, causal, 1 / Math.sqrt(8), 0).sub(ref).abs().max().item());
    }
    const bf = torch.attentionInference(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, false, 1 / Math.sqrt(8)).float();
    const bfErr = bf.sub(merge(torch.scaledDotProductAttention(q, k, v, { attnMask: mask }))).abs().max().item();
    console.log(JSON.stringify({ worst, bfErr }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, LMFORGE_NO_AVX512: "1" }, encoding: "utf8" });
  const { worst, bfErr } = JSON.parse(out.trim().split("\n").pop()!) as { worst: number; bfErr: number };
  assert.ok(worst < 1e-5, `float32 attention on the scalar softmax: ${worst}`);
  assert.ok(bfErr < 0.05, `bfloat16 attention on the scalar softmax: ${bfErr}`);
});
check("scaledDotProductAttentionNative", () => {
  // q = k = identity rows, v = [[1],[2]]: scores = I / sqrt(2) -> softmax rows
  const q = T([[[1, 0], [0, 1]]], { dtype: "float64" });
  const v = T([[[1], [2]]], { dtype: "float64" });
  const s = 1 / Math.sqrt(2);
  const p = Math.exp(s) / (Math.exp(s) + 1);
  const want = [[[p * 1 + (1 - p) * 2], [(1 - p) * 1 + p * 2]]];
  close(torch.scaledDotProductAttention(q, q, v), want, 1e-12);
  close(torch.scaledDotProductAttention(q, q, v, { isCausal: true }), [[[1], [(1 - p) * 1 + p * 2]]], 1e-12);
  const mask = T([[true, false], [true, true]]);
  close(torch.scaledDotProductAttention(q, q, v, { attnMask: mask }), [[[1], [(1 - p) * 1 + p * 2]]], 1e-12);
  if (!torch.hasFusedAttention()) {
    assert.throws(() => torch.scaledDotProductAttentionNative(q, q, v), /needs libtorch >= 2.0/);
  }
});

test("every op in native/ops.def has a value check", () => {
  const missing = OP_NAMES.filter((n) => !covered.has(n));
  assert.deepEqual(missing, [], `ops without a check: ${missing.join(", ")}`);
});

// Finite-difference gradient checks, in float64, for every differentiable op.
import { test } from "node:test";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { gradcheck } from "./helpers.js";

torch.manualSeed(1234);
const r = (...shape: number[]): Tensor => torch.randn(shape, { dtype: "float64" });
const pos = (...shape: number[]): Tensor => torch.rand(shape, { dtype: "float64" }).add(0.5); // away from 0
const spread = (n: number): Tensor => torch.arange(0, n, 1, { dtype: "float64" }).mul(0.37).sub(1).reshape([1, n]); // distinct values: no ties

const cases: [string, (...xs: Tensor[]) => Tensor, Tensor[]][] = [
  ["add", (a, b) => a.add(b, 1.5), [r(2, 3), r(3)]],
  ["sub", (a, b) => a.sub(b), [r(2, 3), r(2, 1)]],
  ["rsub", (a) => a.rsub(2), [r(3)]],
  ["mul", (a, b) => a.mul(b), [r(2, 3), r(2, 3)]],
  ["div", (a, b) => a.div(b), [r(2, 3), pos(2, 3)]],
  ["pow", (a) => a.pow(3), [r(4)]],
  ["pow(tensor)", (a, b) => a.pow(b), [pos(4), r(4)]],
  ["maximum", (a, b) => a.maximum(b), [spread(4), spread(4).flip()]],
  ["minimum", (a, b) => a.minimum(b), [spread(4), spread(4).flip()]],
  ["lerp", (a, b) => a.lerp(b, 0.3), [r(3), r(3)]],
  ["addcmul", (a, b, c) => a.addcmul(b, c, 0.5), [r(3), r(3), r(3)]],
  ["addcdiv", (a, b, c) => a.addcdiv(b, c, 0.5), [r(3), r(3), pos(3)]],
  ["neg", (a) => a.neg(), [r(3)]],
  ["abs", (a) => a.abs(), [spread(5)]],
  ["exp", (a) => a.exp(), [r(3)]],
  ["log", (a) => a.log(), [pos(3)]],
  ["log1p", (a) => a.log1p(), [pos(3)]],
  ["sqrt", (a) => a.sqrt(), [pos(3)]],
  ["rsqrt", (a) => a.rsqrt(), [pos(3)]],
  ["square", (a) => a.square(), [r(3)]],
  ["reciprocal", (a) => a.reciprocal(), [pos(3)]],
  ["sin", (a) => a.sin(), [r(3)]],
  ["cos", (a) => a.cos(), [r(3)]],
  ["erf", (a) => a.erf(), [r(3)]],
  ["clamp", (a) => a.clamp(-0.5, 0.5), [spread(6)]],
  ["relu", (a) => a.relu(), [spread(6)]],
  ["gelu", (a) => a.gelu(), [r(5)]],
  ["gelu(tanh)", (a) => a.gelu("tanh"), [r(5)]],
  ["silu", (a) => a.silu(), [r(5)]],
  ["tanh", (a) => a.tanh(), [r(5)]],
  ["sigmoid", (a) => a.sigmoid(), [r(5)]],
  ["softplus", (a) => a.softplus(2), [r(5)]],
  ["softmax", (a) => a.softmax(-1), [r(2, 4)]],
  ["logSoftmax", (a) => a.logSoftmax(1), [r(2, 4)]],
  ["matmul", (a, b) => a.matmul(b), [r(2, 3), r(3, 2)]],
  ["matmul(batched)", (a, b) => a.matmul(b), [r(2, 2, 3), r(3, 2)]],
  ["mm", (a, b) => a.mm(b), [r(2, 3), r(3, 2)]],
  ["bmm", (a, b) => a.bmm(b), [r(2, 2, 3), r(2, 3, 2)]],
  ["linear", (x, w, b) => torch.linear(x, w, b), [r(2, 3), r(4, 3), r(4)]],
  ["addmm", (c, a, b) => c.addmm(a, b, 0.5, 2), [r(2, 2), r(2, 3), r(3, 2)]],
  ["baddbmm", (c, a, b) => c.baddbmm(a, b), [r(2, 2, 2), r(2, 2, 3), r(2, 3, 2)]],
  ["einsum", (a, b) => torch.einsum("bij,bjk->bik", [a, b]), [r(2, 2, 3), r(2, 3, 2)]],
  ["outer", (a, b) => a.outer(b), [r(3), r(2)]],
  ["sum", (a) => a.sum(1), [r(2, 3)]],
  ["mean", (a) => a.mean([0, 1]), [r(2, 3)]],
  ["prod", (a) => a.prod(1), [pos(2, 3)]],
  ["max", (a) => a.max(), [spread(5)]],
  ["maxDim", (a) => a.maxDim(1)[0], [spread(5)]],
  ["amax", (a) => a.amax(1), [spread(5)]],
  ["logsumexp", (a) => a.logsumexp(1), [r(2, 4)]],
  ["var", (a) => a.var(1), [r(2, 4)]],
  ["std", (a) => a.std(), [r(2, 4)]],
  ["norm", (a) => a.norm(2, 1), [r(2, 4)]],
  ["cumsum", (a) => a.cumsum(1), [r(2, 4)]],
  ["topk", (a) => a.topk(2)[0], [spread(5)]],
  ["sort", (a) => a.sort(1, true)[0], [spread(5)]],
  ["where", (a, b) => torch.where(torch.tensor([true, false, true]), a, b), [r(3), r(3)]],
  ["maskedFill", (a) => a.maskedFill(torch.tensor([false, true, false]), 0), [r(3)]],
  ["gather", (a) => a.gather(1, torch.tensor([[2, 0], [1, 1]])), [r(2, 3)]],
  ["scatter", (a, s) => a.scatter(1, torch.tensor([[2, 0]]), s), [r(1, 3), r(1, 2)]],
  ["scatterAdd", (a, s) => a.scatterAdd(1, torch.tensor([[2, 2]]), s), [r(1, 3), r(1, 2)]],
  ["indexSelect", (a) => a.indexSelect(1, torch.tensor([2, 0, 2])), [r(2, 3)]],
  ["takeAlongDim", (a) => a.takeAlongDim(torch.tensor([[0], [2]]), 1), [r(2, 3)]],
  ["views", (a) => a.reshape([3, 2]).t().unsqueeze(0).expand([2, 2, 3]).permute([2, 0, 1]).flatten(), [r(2, 3)]],
  ["slice/narrow/select", (a) => a.slice(1, 1, null).narrow(1, 0, 1).select(0, 1), [r(2, 3)]],
  ["cat/stack", (a, b) => torch.stack([torch.cat([a, b], 1), torch.cat([b, a], 1)]), [r(2, 2), r(2, 1)]],
  ["split/chunk/unbind", (a) => a.split(1, 1)[1]!.add(a.chunk(3, 1)[2]!).add(a.unbind(1)[0]!.unsqueeze(1)), [r(2, 3)]],
  ["repeat", (a) => a.repeat([2, 2]), [r(2, 1)]],
  ["triu/tril", (a) => a.triu(1).add(a.tril(-1).mul(2)), [r(3, 3)]],
  ["toWith(float32 round trip)", (a) => a.to("float64").mul(2), [r(3)]],
  ["layerNorm", (x, w, b) => torch.layerNorm(x, [4], w, b), [r(2, 4), r(4), r(4)]],
  ["embedding", (w) => torch.embedding(w, torch.tensor([[0, 2], [2, 1]])), [r(3, 2)]],
  ["conv1d", (x, w, b) => torch.conv1d(x, w, b, 1, 1), [r(1, 2, 5), r(3, 2, 3), r(3)]],
  ["conv2d", (x, w) => torch.conv2d(x, w, null, 1, 1), [r(1, 1, 3, 3), r(2, 1, 2, 2)]],
  ["crossEntropy", (x) => torch.crossEntropy(x, torch.tensor([1, -100, 0]), null, "mean", -100, 0.1), [r(3, 4)]],
  ["nllLoss", (x) => torch.nllLoss(x, torch.tensor([1, 3])), [r(2, 4)]],
  ["mseLoss", (a, b) => torch.mseLoss(a, b), [r(5), r(5)]],
  ["binaryCrossEntropyWithLogits", (x) => torch.binaryCrossEntropyWithLogits(x, torch.tensor([1, 0, 1], { dtype: "float64" })), [r(3)]],
  ["scaledDotProductAttention", (q, k, v) => torch.scaledDotProductAttention(q, k, v, { isCausal: true }), [r(1, 3, 2), r(1, 3, 2), r(1, 3, 2)]],
  ["qr (R)", (a) => a.qr()[1], [r(3, 3)]],
  ["dropout (eval)", (a) => torch.dropout(a, 0.5, false), [r(3)]],
];

for (const [name, fn, inputs] of cases) {
  test(`gradcheck ${name}`, () => gradcheck(name, fn, inputs));
}

test("gradcheck catches a wrong gradient", async () => {
  const assert = (await import("node:assert/strict")).default;
  // a * stopgrad(a) has autograd gradient a but true derivative 2a: the check must object.
  assert.throws(() => gradcheck("broken", (a) => a.mul(a.detach()), [r(3)]), /autograd .* vs finite difference/);
});

// Lifetime, errors, random state, threads, autocast, autograd API, data transfer and printing.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import { tensor as T } from "../src/torch/index.js";
import { assertClose } from "./helpers.js";

// --- scopes and lifetime ------------------------------------------------------------------------
test("scope frees intermediates and keeps what it returns", () => {
  const before = torch.liveTensors();
  const kept = torch.scope(() => {
    const a = torch.ones([3]);
    const b = a.add(1).mul(2);
    return { out: b.sum(), list: [a.neg()] };
  });
  assert.equal(torch.liveTensors(), before + 2);
  assert.equal(kept.out.item(), 12);
  assertClose(kept.list[0]!, [-1, -1, -1]);
  torch.dispose(kept);
  assert.equal(torch.liveTensors(), before);
});

test("nested scopes hand returned tensors to the parent", () => {
  const before = torch.liveTensors();
  torch.scope(() => {
    const inner = torch.scope(() => torch.ones([2]).mul(3));
    assert.equal(inner.isDisposed, false);
    return undefined;
  });
  assert.equal(torch.liveTensors(), before);
});

test("scope frees everything when fn throws, and keep() escapes scopes", () => {
  const before = torch.liveTensors();
  let escaped: torch.Tensor | undefined;
  assert.throws(() =>
    torch.scope(() => {
      escaped = torch.keep(torch.zeros([2]));
      torch.ones([5]).add(1);
      throw new Error("boom");
    }),
  /boom/);
  assert.equal(torch.liveTensors(), before + 1);
  assert.equal(escaped!.isDisposed, false);
  escaped!.dispose();
  assert.equal(torch.liveTensors(), before);
});

test("scope refuses a Promise", () => {
  assert.throws(() => torch.scope(() => Promise.resolve(1)), /synchronous/);
});

test("Symbol.dispose frees a tensor", () => {
  const before = torch.liveTensors();
  {
    const t = torch.ones([4]);
    t[Symbol.dispose]();
    assert.equal(t.isDisposed, true);
  }
  assert.equal(torch.liveTensors(), before);
});

test("garbage collection frees unreferenced handles (finalizer safety net)", async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    // run with --expose-gc to exercise this; the scoped paths are covered above
    const { execFileSync } = await import("node:child_process");
    const script = `
      const t = await import(${JSON.stringify(new URL("../src/torch/index.js", import.meta.url).href)});
      const before = t.liveTensors();
      for (let i = 0; i < 1000; i++) t.ones([100]);
      const made = t.liveTensors() - before;
      for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      console.log(JSON.stringify({ made, left: t.liveTensors() - before }));`;
    const out = JSON.parse(execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8" })) as { made: number; left: number };
    assert.equal(out.made, 1000);
    assert.ok(out.left < 100, `finalizers left ${out.left} of 1000 handles alive`);
  }
});

test("10,000 training steps in scopes: live tensors return to the start, RSS stays bounded", () => {
  torch.manualSeed(0);
  const w1 = torch.keep(torch.randn([16, 8]).mul(0.3).requiresGrad_());
  const w2 = torch.keep(torch.randn([1, 16]).mul(0.3).requiresGrad_());
  const x = torch.keep(torch.randn([32, 8]));
  const y = torch.keep(x.sum(1, true).sin());
  const params = [w1, w2];
  const start = torch.liveTensors();
  let rssAfterWarmup = 0;
  let first = 0;
  let last = 0;
  for (let step = 0; step < 10000; step++) {
    const loss = torch.scope(() => {
      const h = torch.linear(x, w1).tanh();
      const l = torch.mseLoss(torch.linear(h, w2), y);
      l.backward();
      torch.noGrad(() => {
        for (const p of params) {
          const g = p.grad!;
          p.sub_(g, 0.05);
          p.zeroGrad();
        }
      });
      return l.item();
    });
    if (step === 0) first = loss;
    last = loss;
    if (step === 1000) rssAfterWarmup = process.memoryUsage().rss;
  }
  assert.equal(torch.liveTensors(), start, "live tensors after 10,000 steps");
  const growth = process.memoryUsage().rss - rssAfterWarmup;
  assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
  assert.ok(last < first * 0.5, `the loop learns: loss ${first} -> ${last}`);
  torch.dispose([w1, w2, x, y]);
});

// --- errors: each class of bad input throws a named error; the process never aborts ----------------
test("a shape mismatch names the op and the shapes", () => {
  assert.throws(() => torch.matmul(torch.ones([2, 3]), torch.ones([4, 5])), /^Error: matmul\(float32\[2, 3\], float32\[4, 5\]\): .*(2x3 and 4x5|mat1 and mat2)/);
  assert.throws(() => torch.ones([2]).add(torch.ones([3])), /add\(float32\[2\], float32\[3\], 1\): The size of tensor a \(2\) must match/);
});
test("a bad dtype is refused with the list of dtypes", () => {
  assert.throws(() => torch.zeros([2], { dtype: "float8" as torch.DType }), /zeros: argument 'options.dtype': unknown dtype "float8"; expected one of float32, float64/);
  assert.throws(() => torch.ones([2], { dtype: "int64" }).softmax(0), /softmax\(int64\[2\], 0, null\)/);
});
test("an index out of range names the op", () => {
  assert.throws(() => torch.embedding(torch.ones([3, 2]), T([5])), /embedding\(float32\[3, 2\], int64\[1\], -1\): .*index out of range/i);
  assert.throws(() => torch.ones([2, 3]).select(1, 3), /select\(float32\[2, 3\], 1, 3\): .*out of range/);
  assert.throws(() => torch.ones([2]).gather(0, T([2])), /gather\(float32\[2\], 0, int64\[1\]\): .*out of bounds/i);
  assert.throws(() => torch.ones([2, 3]).size(2), /size: dimension 2 is out of range for a tensor of shape \[2, 3\]/);
});
test("a disposed tensor used again is an error, not a crash", () => {
  const t = torch.ones([2]);
  t.dispose();
  t.dispose(); // twice is harmless
  assert.throws(() => t.add(1), /^TypeError: add: argument 'self' is a tensor that was already disposed/);
  assert.throws(() => torch.cat([torch.ones([1]), t]), /cat: argument 'tensors\[1\]' is a tensor that was already disposed/);
  assert.equal(t.toString(), "tensor(<disposed>)");
});
test("a wrong argument type from JavaScript is a TypeError naming the argument", () => {
  const t = torch.ones([2]);
  assert.throws(() => t.add("x" as unknown as number), /^TypeError: add: argument 'other' must be a Tensor, number or boolean, got "x"/);
  assert.throws(() => torch.zeros([2.5]), /zeros: argument 'size\[0\]' must be an integer, got 2.5/);
  assert.throws(() => t.sum(null, "yes" as unknown as boolean), /sum: argument 'keepdim' must be a boolean, got "yes"/);
  assert.throws(() => torch.gelu(t, "fast" as "none"), /gelu: argument 'approximate' must be one of "none" "tanh", got "fast"/);
  assert.throws(() => torch.crossEntropy(t, t, null, "avg" as "mean"), /argument 'reduction' must be one of "mean" "sum" "none"/);
  assert.throws(() => t.to("tpu" as "cpu"), /to: "tpu" is neither a dtype nor a device/);
  assert.throws(() => torch.tensor([[1, 2], [3]]), /ragged nested array at \[1\]: expected 2 elements, got 1/);
  assert.throws(() => torch.fromBuffer(new Float32Array(3), "float32", [2, 2]), /12 bytes cannot hold a float32 tensor of shape \[2, 2\], which needs 16/);
  assert.throws(() => torch.ones([2]).backward(), /a gradient must be given|does not require grad/);
});

// --- random state ------------------------------------------------------------------------------------------
test("the same seed gives the same numbers; a restored state repeats the draws", () => {
  torch.manualSeed(42);
  const a = torch.randn([5]).toArray();
  torch.manualSeed(42);
  const b = torch.randn([5]).toArray();
  assert.deepEqual(a, b);
  torch.manualSeed(7);
  torch.rand([3]);
  const state = torch.getRngState();
  const first = [torch.randn([4]).toArray(), torch.randint(0, 100, [4]).toArray(), torch.randperm(6).toArray(), torch.dropout(torch.ones([8]), 0.5, true).toArray()];
  torch.randn([100]); // move on
  torch.setRngState(state);
  const again = [torch.randn([4]).toArray(), torch.randint(0, 100, [4]).toArray(), torch.randperm(6).toArray(), torch.dropout(torch.ones([8]), 0.5, true).toArray()];
  assert.deepEqual(again, first);
  torch.manualSeed(8);
  assert.notDeepEqual(torch.randn([5]).toArray(), a);
  assert.throws(() => torch.setRngState("x" as unknown as Uint8Array), /setRngState: argument 'state' must be a Buffer/);
});

// --- threads, autocast, runtime ------------------------------------------------------------------------------
test("intra-op threads default to OMP_NUM_THREADS when set, else the cores available, and can be set", async () => {
  const { availableParallelism } = await import("node:os");
  const { defaultThreads } = await import("../src/torch/native.js");
  assert.equal(torch.getNumThreads(), defaultThreads());
  assert.equal(defaultThreads({}, 6), 6);
  assert.equal(defaultThreads({ OMP_NUM_THREADS: "3" }, 6), 3);
  assert.equal(defaultThreads({ OMP_NUM_THREADS: " " }, 6), 6);
  const warned = new Promise<Error>((done) => process.once("warning", done));
  assert.equal(defaultThreads({ OMP_NUM_THREADS: "two" }, 6), 6);
  assert.match((await warned).message, /OMP_NUM_THREADS="two" is not a positive integer; using 6 threads/);
  torch.setNumThreads(1);
  assert.equal(torch.getNumThreads(), 1);
  torch.setNumThreads(availableParallelism());
  assert.throws(() => torch.setNumThreads(0), /at least 1/);
});

test("lmforge's own parallel loops run on every thread (the addon is built with OpenMP)", async () => {
  const { native } = await import("../src/torch/native.js");
  const threads = torch.getNumThreads();
  assert.equal(native.parallelThreadsUsed(), threads, `${threads} threads, yet the addon's parallel_for used ${native.parallelThreadsUsed()}`);
});

test("bfloat16 autocast runs matmul in bfloat16 and restores the previous state", () => {
  const a = torch.randn([8, 8]);
  const out = torch.autocast(() => a.matmul(a));
  assert.equal(out.dtype, "bfloat16");
  assert.equal(a.matmul(a).dtype, "float32");
  // softmax is kept in float32 under CPU autocast? it follows its input: check a loss stays fp32
  const nested = torch.autocast(() => torch.autocast(() => a.matmul(a), { enabled: false }));
  assert.equal(nested.dtype, "float32");
  const ref = a.matmul(a);
  assert.ok(out.float().sub(ref).abs().max().item() < 0.05 * ref.abs().max().item());
});

test("the fast BLAS path computes correct results (fp32 and bf16 GEMM against float64)", () => {
  torch.manualSeed(3);
  const a = torch.randn([256, 384], { dtype: "float64" });
  const b = torch.randn([384, 128], { dtype: "float64" });
  const ref = a.matmul(b);
  const f32 = a.float().matmul(b.float()).double();
  assert.ok(f32.sub(ref).abs().max().item() < 1e-3, "fp32 GEMM error");
  const bf = a.bfloat16().matmul(b.bfloat16()).double();
  const rel = bf.sub(ref).norm().item() / ref.norm().item();
  assert.ok(rel < 1e-2, `bf16 GEMM relative error ${rel}`);
  const info = torch.runtimeInfo();
  assert.equal(typeof info.torchVersion, "string");
});

test("the CPU cache reuses freed large blocks, keeps contents apart, honours its limit and empties", () => {
  const MiB = 1 << 20;
  const before = torch.cpuCache.stats();
  assert.ok(before.limit > 0, "caching is on by default");
  // 3 MiB of float32, freed into the cache; the next one of that size reuses it.
  torch.cpuCache.empty();
  const n = (3 * MiB) / 4;
  torch.scope(() => torch.full([n], 7).sum().item());
  const mid = torch.cpuCache.stats();
  assert.ok(mid.cached >= 3 * MiB, `a freed 3 MiB tensor is kept (${mid.cached} bytes cached)`);
  const hitsBefore = mid.hits;
  const [a, b] = torch.scope(() => [torch.keep(torch.full([n], 2)), torch.keep(torch.arange(0, n, 1, { dtype: "float32" }))]);
  const s = torch.cpuCache.stats();
  assert.ok(s.hits > hitsBefore, "an allocation of the same size is served from the cache");
  assert.ok(s.inUse >= 6 * MiB);
  // Two live blocks never share memory, and a reused block holds what was written, not old data.
  assert.equal(a!.sum().item(), 2 * n);
  assert.equal(b!.select(0, n - 1).item(), n - 1);
  torch.dispose([a!, b!]);
  // Small tensors are libtorch's own, and raw allocations (kernels' scratch) come back too.
  const small = torch.scope(() => torch.randn([1000, 30]).gelu().sum().item());
  assert.ok(Number.isFinite(small));
  torch.cpuCache.setLimit(4 * MiB);
  assert.ok(torch.cpuCache.stats().cached <= 4 * MiB, "setLimit releases what is over");
  torch.scope(() => torch.zeros([(16 * MiB) / 4]).sum().item()); // bigger than the limit: unmapped on free
  assert.ok(torch.cpuCache.stats().cached <= 4 * MiB);
  torch.cpuCache.empty();
  const e = torch.cpuCache.stats();
  assert.equal(e.cached, 0);
  assert.equal(e.mapped, e.inUse);
  torch.cpuCache.setLimit(before.limit);
  assert.throws(() => torch.cpuCache.setLimit(-1), /setCpuCacheLimit: bytes must be at least 0, got -1/);
  assert.throws(() => torch.cpuCache.setLimit(1.5), /setCpuCacheLimit: argument 'bytes' must be an integer/);
});

test("the CPU cache's peakInUse is the high-water mark of live large blocks since resetPeak", () => {
  const MiB = 1 << 20;
  const n = (4 * MiB) / 4;
  torch.cpuCache.resetPeak();
  const base = torch.cpuCache.stats();
  assert.equal(base.peakInUse, base.inUse, "resetPeak starts the peak from what is in use");
  // three 4 MiB float32 tensors alive at once (two operands and their sum), then freed
  const f32 = { dtype: "float32" } as const;
  torch.scope(() => torch.full([n], 1, f32).add(torch.full([n], 2, f32)).sum().item());
  const after = torch.cpuCache.stats();
  assert.equal(after.inUse, base.inUse, "everything was freed");
  assert.ok(after.peakInUse - base.inUse >= 12 * MiB && after.peakInUse - base.inUse < 16 * MiB, `three 4 MiB tensors were alive together: peak +${(after.peakInUse - base.inUse) / MiB} MiB`);
  // one at a time: a fresh peak counts a single block
  torch.cpuCache.resetPeak();
  for (let i = 0; i < 3; i++) torch.scope(() => torch.full([n], i, f32).sum().item());
  const one = torch.cpuCache.stats().peakInUse - base.inUse;
  assert.ok(one >= 4 * MiB && one < 8 * MiB, `one 4 MiB tensor at a time: peak +${one / MiB} MiB`);
});

test("the CPU cache evicts the least recently freed block first, not the largest", () => {
  const MiB = 1 << 20;
  const before = torch.cpuCache.stats();
  torch.cpuCache.empty();
  // Free ranges that touch merge, so the two blocks must not: all three come from one freed 8 MiB
  // range, split front first (best fit), with a live spacer between them (separate mappings may
  // or may not land side by side, which made this test depend on the kernel's placement).
  torch.dispose([torch.keep(torch.zeros([(8 * MiB) / 4]))]);
  const [small, spacer, big] = [torch.keep(torch.zeros([(2 * MiB) / 4])), torch.keep(torch.zeros([(2 * MiB) / 4])), torch.keep(torch.zeros([(4 * MiB) / 4]))];
  assert.equal(torch.cpuCache.stats().cached, 0, "the three fill the 8 MiB range");
  // freed in this order: 2 MiB (stale, as a finished phase's), then 4 MiB (this step's)
  torch.dispose([small]);
  torch.dispose([big]);
  assert.equal(torch.cpuCache.stats().cached, 6 * MiB);
  // a limit of 4.5 MiB evicts one: the 2 MiB block, the older (largest first would drop the 4 MiB one)
  torch.cpuCache.setLimit((9 * MiB) / 2);
  assert.equal(torch.cpuCache.stats().cached, 4 * MiB);
  const s = torch.cpuCache.stats();
  torch.scope(() => torch.ones([(4 * MiB) / 4]).sum().item());
  const t = torch.cpuCache.stats();
  assert.equal(t.hits, s.hits + 1, "the kept 4 MiB block serves the next 4 MiB tensor");
  assert.equal(t.misses, s.misses);
  torch.dispose([spacer]);
  torch.cpuCache.setLimit(before.limit);
  torch.cpuCache.empty();
});

test("a bad LMFORGE_CPU_CACHE_MB is an error naming the variable, not silently ignored", async () => {
  const { checkCacheVariable } = await import("../src/torch/native.js");
  for (const ok of [undefined, "0", "512", " 64 "]) checkCacheVariable(ok);
  for (const bad of ["abc", "-1", "1.5", "64MB", ""]) {
    assert.throws(() => checkCacheVariable(bad), /LMFORGE_CPU_CACHE_MB must be a whole number of MiB \(0 turns the CPU cache off\)/, bad);
  }
});

test("V8 is told of the memory of tensors left to the garbage collector, not of scoped ones", async () => {
  const { native } = await import("../src/torch/native.js");
  const MB = 1 << 20;
  const base = native.reportedBytes();
  // inside a scope: freed by the scope, so V8 is not told (reporting made a mark-compact per training step)
  const during = torch.scope(() => {
    torch.zeros([(64 * MB) / 4]);
    return native.reportedBytes();
  });
  assert.equal(during - base, 0, "a scoped tensor was reported");
  // outside every scope: the finalizer is the safety net, and V8 must know what collecting it frees
  const t = torch.zeros([(64 * MB) / 4]);
  assert.equal(native.reportedBytes() - base, 64 * MB, "a tensor left to the GC is reported");
  const kept = torch.scope(() => torch.ones([(8 * MB) / 4])); // returned from its scope to none
  assert.equal(native.reportedBytes() - base, 72 * MB, "a tensor leaving its last scope is reported");
  torch.dispose([t, kept]);
  assert.equal(native.reportedBytes(), base, "disposing takes the reports back");
});

// --- autograd API -----------------------------------------------------------------------------------------
test("backward accumulates into .grad; zeroGrad clears; noGrad and enableGrad scopes", () => {
  const x = T([1, 2, 3], { dtype: "float32", requiresGrad: true });
  assert.equal(x.isLeaf, true);
  x.mul(x).sum().backward();
  assertClose(x.grad!, [2, 4, 6]);
  x.mul(3).sum().backward();
  assertClose(x.grad!, [5, 7, 9]);
  x.zeroGrad();
  assert.equal(x.grad, undefined);
  const y = torch.noGrad(() => x.mul(2));
  assert.equal(y.requiresGrad, false);
  const z = torch.noGrad(() => torch.enableGrad(() => x.mul(2)));
  assert.equal(z.requiresGrad, true);
  assert.match(z.gradFn!, /^MulBackward/);
  assert.equal(torch.isGradEnabled(), true);
});

test("backward with a gradient, retainGrad on a non-leaf, and a second pass with retainGraph", () => {
  const x = T([1, 2], { dtype: "float64", requiresGrad: true });
  const h = x.mul(3).retainGrad();
  const out = h.square();
  out.backward(T([1, 10], { dtype: "float64" }), { retainGraph: true });
  assertClose(h.grad!, [6, 120]); // d(h^2)/dh * g
  assertClose(x.grad!, [18, 360]);
  out.sum().backward();
  assertClose(x.grad!, [18 + 18, 360 + 36]);
});

test("share() is a second handle on the same tensor; useCount sees handles, views and the graph", () => {
  torch.scope(() => {
    const leaf = T([1, 2], { dtype: "float64", requiresGrad: true });
    assert.equal(leaf.useCount, 1);
    const other = leaf.share();
    assert.equal(leaf.useCount, 2);
    // the graph made through the second handle leaves its gradient on the first
    const loss = torch.scope(() => other.mul(other).sum());
    other.dispose();
    // the graph holds the leaf (its gradient accumulator; libtorch 1.13 also counts mul's two
    // saved copies: 4 here): how many references is libtorch's business, that there are some is ours
    assert.ok(leaf.useCount > 1, `the graph holds the leaf (${leaf.useCount})`);
    loss.backward();
    assertClose(leaf.grad!, [2, 4]);
    loss.dispose();
    assert.equal(leaf.useCount, 1, "graph freed: only this handle is left");
    const v = leaf.view([2, 1]);
    assert.ok(leaf.useCount > 1, `a view holds its base (${leaf.useCount})`);
    v.dispose();
    assert.equal(leaf.useCount, 1);
  });
});

test("grad() differentiates chosen outputs without touching .grad, and supports second order", () => {
  const x = T([2], { dtype: "float64", requiresGrad: true });
  const y = x.pow(3);
  const [dy] = torch.grad(y.sum(), x, { createGraph: true });
  assertClose(dy!, [12]); // 3x^2
  assert.equal(x.grad, undefined);
  const [d2y] = torch.grad(dy!.sum(), x);
  assertClose(d2y!, [12]); // 6x
  const unused = T([1], { dtype: "float64", requiresGrad: true });
  const [, none] = torch.grad(x.mul(2).sum(), [x, unused], { allowUnused: true });
  assert.equal(none, undefined);
});

// --- data in and out ----------------------------------------------------------------------------------------
test("tensors round-trip through TypedArrays and Buffers for every dtype", () => {
  const cases: [torch.DType, number[]][] = [
    ["float32", [1.5, -2]],
    ["float64", [Math.PI, -1e-300]],
    ["int64", [2 ** 40, -3]],
    ["int32", [7, -8]],
    ["int16", [300, -300]],
    ["int8", [100, -100]],
    ["uint8", [0, 255]],
    ["bool", [1, 0]],
    ["bfloat16", [0.5, -3]],
    ["float16", [0.25, 1024]],
  ];
  for (const [dtype, values] of cases) {
    const t = T(dtype === "bool" ? values.map(Boolean) : values, { dtype });
    assert.equal(t.dtype, dtype);
    const back = t.toArray() as (number | boolean)[];
    assert.deepEqual(back, dtype === "bool" ? values.map(Boolean) : values, dtype);
    const bytes = t.toBuffer();
    assert.equal(bytes.byteLength, 2 * torch.DTYPES[dtype].itemSize);
    const again = torch.fromBuffer(bytes, dtype, [2]);
    assert.equal(again.equal(t), true, dtype);
  }
  const f = T(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
  assert.deepEqual(f.toArray(), [[1, 2], [3, 4]]);
  assert.ok(T(new BigInt64Array([5n])).data() instanceof BigInt64Array);
});

test("toBuffer(copy=false) shares the tensor's memory", () => {
  const t = torch.zeros([4]);
  const view = new Float32Array(t.toBuffer(false));
  view[2] = 9;
  assertClose(t, [0, 0, 9, 0]);
  t.add_(1);
  assert.equal(view[0], 1);
  const copied = new Float32Array(t.toBuffer(true));
  copied[0] = 100;
  assert.equal(t.toArray() instanceof Array && (t.toArray() as number[])[0], 1);
});

// --- printing -----------------------------------------------------------------------------------------------
test("a tensor prints its values, shape, dtype and grad state; large tensors are summarised", () => {
  assert.equal(T([[1, 2], [3, 4]], { dtype: "float32" }).toString(), "tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2])");
  assert.equal(T([0.5, 0.25], { dtype: "float64", requiresGrad: true }).toString(), "tensor([0.5000, 0.2500], shape=[2], dtype=float64, requiresGrad=true)");
  assert.equal(T([true, false]).toString(), "tensor([ True, False], shape=[2])");
  assert.equal(T(3).toString(), "tensor(3, shape=[])");
  const big = torch.arange(0, 5000).reshape([50, 100]);
  const s = big.toString();
  assert.match(s, /^tensor\(\[\[   0,    1,    2, \.\.\.,   97,   98,   99\],/);
  assert.match(s, /\.\.\.,\n/);
  assert.match(s, /4997, 4998, 4999\]\], shape=\[50, 100\]\)$/);
});

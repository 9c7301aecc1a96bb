// Engine benchmark, side by side with PyTorch (bench/peers/engine_torch.py): the per-op
// overhead of a tiny op called 100,000 times, one training step of a 2-layer MLP (forward,
// backward, SGD), and (bench/gemm.ts) large square matmuls.
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { runPeer } from "./peer.js";
import { makeRow, measureOurs, race } from "./row.js";
import type { BenchRow, Measured, PeerResults } from "./row.js";

export type { BenchRow };
/** The row type's former name, kept for code that imports it. */
export type EngineBenchRow = BenchRow;

export interface MlpCase {
  kind: "mlp";
  batch: number;
  dIn: number;
  dHidden: number;
  dOut: number;
  steps: number;
  warmup: number;
  precision: "fp32" | "bf16";
}
export type EngineCase = { kind: "op"; n: number } | MlpCase | { kind: "gemm"; n: number; precision: "fp32" | "bf16"; steps: number; warmup: number };

function opOverhead(n: number): number {
  const x = torch.keep(torch.ones([1]));
  const y = torch.keep(torch.ones([1]));
  const chunk = 1000;
  const run = (count: number): void => {
    for (let i = 0; i < count; i += chunk) torch.scope(() => {
      for (let j = 0; j < chunk; j++) x.add(y);
    });
  };
  run(1000); // the peer's warm-up: 1,000 calls
  const t = process.hrtime.bigint();
  run(n);
  const us = Number(process.hrtime.bigint() - t) / 1e3 / n;
  torch.dispose([x, y]);
  return us;
}

function mlpStep(m: MlpCase): number {
  torch.manualSeed(0);
  const params = torch.keep([
    torch.randn([m.dHidden, m.dIn]).mul(0.02).requiresGrad_(),
    torch.zeros([m.dHidden], { requiresGrad: true }),
    torch.randn([m.dOut, m.dHidden]).mul(0.02).requiresGrad_(),
    torch.zeros([m.dOut], { requiresGrad: true }),
  ]);
  const [w1, b1, w2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
  const x = torch.keep(torch.randn([m.batch, m.dIn]));
  const y = torch.keep(torch.randint(0, m.dOut, [m.batch]));
  const step = (): void =>
    torch.scope(() => {
      const logits = torch.autocast(() => torch.linear(torch.linear(x, w1, b1).relu(), w2, b2), { enabled: m.precision === "bf16" });
      torch.crossEntropy(logits.float(), y).backward();
      torch.noGrad(() => {
        for (const p of params) {
          p.sub_(p.grad!, 0.01);
          p.zeroGrad();
        }
      });
    });
  for (let i = 0; i < m.warmup; i++) step();
  const t = process.hrtime.bigint();
  for (let i = 0; i < m.steps; i++) step();
  const ms = Number(process.hrtime.bigint() - t) / 1e6 / m.steps;
  torch.dispose([params, x, y]);
  return ms;
}

/** GFLOP/s of an n x n by n x n matmul (2n^3 FLOPs) in the precision: the median of `steps` after `warmup`. */
function gemm(n: number, precision: "fp32" | "bf16", steps: number, warmup: number): number {
  torch.manualSeed(0);
  const dtype = precision === "bf16" ? "bfloat16" : "float32";
  const a = torch.keep(torch.randn([n, n]).to(dtype));
  const b = torch.keep(torch.randn([n, n]).to(dtype));
  const once = (): number => {
    const t = process.hrtime.bigint();
    // a block, not an arrow returning the product: a tensor returned from a scope outlives it
    // (until the garbage collector), so each call would map and zero a fresh output
    torch.scope(() => {
      torch.matmul(a, b);
    });
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  for (let i = 0; i < warmup; i++) once();
  const times = Array.from({ length: steps }, once).sort((x, y) => x - y);
  torch.dispose([a, b]);
  return (2 * n ** 3) / times[Math.floor(steps / 2)]! / 1e9;
}

/** Runs one engine case on lmforge's side. */
export function runOurs(c: EngineCase): Measured {
  return measureOurs(() => (c.kind === "op" ? opOverhead(c.n) : c.kind === "mlp" ? mlpStep(c) : gemm(c.n, c.precision, c.steps, c.warmup)));
}

/** Races engine cases against engine_torch.py. */
export function raceEngine(cases: EngineCase[], repeats: number): ReturnType<typeof race<EngineCase>> {
  const info = torch.runtimeInfo();
  return race(cases, repeats, runOurs, (cs) => runPeer<PeerResults>("engine_torch.py", { threads: info.threads, cases: cs }, info.openblasCoreType));
}

/** The engine rows: tiny-op overhead and a 2-layer MLP training step, both sides (quick: 10,000 ops, a 64-128-10 MLP). */
export function runEngineBench(options: { repeats?: number; quick?: boolean } = {}): { rows: BenchRow[]; torch: string } {
  const quick = options.quick ?? false;
  const ops = quick ? 10_000 : 100_000;
  const mlp: MlpCase = quick
    ? { kind: "mlp", batch: 32, dIn: 64, dHidden: 128, dOut: 10, steps: 10, warmup: 2, precision: "fp32" }
    : { kind: "mlp", batch: 128, dIn: 784, dHidden: 1024, dOut: 10, steps: 50, warmup: 5, precision: "fp32" };
  const { torch: version, sides } = raceEngine([{ kind: "op", n: ops }, mlp], options.repeats ?? 3);
  const [op, step] = sides as [(typeof sides)[0], (typeof sides)[0]];
  return {
    torch: version,
    rows: [
      makeRow({ bench: "engine", name: `tiny op overhead (add of 1-element tensors, ${ops} calls)`, work: "equal", unit: "us/op", higherIsBetter: false }, op.ours, op.theirs),
      makeRow(
        { bench: "engine", name: `2-layer MLP train step ${mlp.precision} (batch ${mlp.batch}, ${mlp.dIn}-${mlp.dHidden}-${mlp.dOut}, SGD)`, work: "equal", unit: "ms/step", higherIsBetter: false },
        step.ours,
        step.theirs,
      ),
    ],
  };
}

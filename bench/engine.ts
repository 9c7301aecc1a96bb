// Engine benchmark, side by side with PyTorch in one run: the per-op overhead of a tiny op
// called 100,000 times, and one training step of a 2-layer MLP (forward, backward, SGD).
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { median, runPeer } from "./peer.js";

export interface EngineBenchOptions {
  ops?: number;
  mlp?: { batch: number; dIn: number; dHidden: number; dOut: number; steps: number; warmup: number; precision: "fp32" | "bf16" };
  repeats?: number;
}

function opOverhead(n: number): number {
  const x = torch.keep(torch.ones([1]));
  const y = torch.keep(torch.ones([1]));
  const chunk = 1000;
  const run = (count: number): void => {
    for (let i = 0; i < count; i += chunk) torch.scope(() => {
      for (let j = 0; j < chunk; j++) x.add(y);
    });
  };
  run(2000);
  const t = process.hrtime.bigint();
  run(n);
  const us = Number(process.hrtime.bigint() - t) / 1e3 / n;
  torch.dispose([x, y]);
  return us;
}

function mlpStep(m: NonNullable<EngineBenchOptions["mlp"]>): number {
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

export interface EngineBenchRow {
  name: string;
  unit: string;
  lmforge: number;
  pytorch: number;
  /** PyTorch's time over lmforge's: above 1 means lmforge is faster. */
  speedup: number;
}

export function runEngineBench(options: EngineBenchOptions = {}): { rows: EngineBenchRow[]; torch: string } {
  const ops = options.ops ?? 100_000;
  const mlp = options.mlp ?? { batch: 128, dIn: 784, dHidden: 1024, dOut: 10, steps: 50, warmup: 5, precision: "fp32" as const };
  const repeats = options.repeats ?? 3;
  const info = torch.runtimeInfo();
  const ours = { op: [] as number[], mlp: [] as number[] };
  const theirs = { op: [] as number[], mlp: [] as number[] };
  let version = "";
  for (let r = 0; r < repeats; r++) {
    // Interleaved, so that machine noise hits both sides alike.
    ours.op.push(opOverhead(ops));
    ours.mlp.push(mlpStep(mlp));
    const peer = runPeer<{ opOverheadUs: number; mlpStepMs: number; torch: string }>(
      "engine_torch.py",
      { threads: info.threads, opOverhead: ops, mlp },
      info.openblasCoreType,
    );
    theirs.op.push(peer.opOverheadUs);
    theirs.mlp.push(peer.mlpStepMs);
    version = peer.torch;
  }
  const row = (name: string, unit: string, a: number[], b: number[]): EngineBenchRow => ({
    name,
    unit,
    lmforge: median(a),
    pytorch: median(b),
    speedup: median(b) / median(a),
  });
  return {
    torch: version,
    rows: [
      row(`tiny op overhead (add of 1-element tensors, ${ops} calls)`, "us/op", ours.op, theirs.op),
      row(`2-layer MLP train step ${mlp.precision} (batch ${mlp.batch}, ${mlp.dIn}-${mlp.dHidden}-${mlp.dOut})`, "ms/step", ours.mlp, theirs.mlp),
    ],
  };
}

// Optimizer benchmark, side by side with PyTorch (bench/peers/optim_torch.py): one AdamW step
// over a model with bert-base's parameter shapes (~110M parameters; quick: bert-tiny-like),
// PyTorch's AdamW at its best (default or foreach=True) against lmforge's fused update.
import * as torch from "../src/torch/index.js";
import { AdamW } from "../src/optim/index.js";
import { runPeer } from "./peer.js";
import { makeRow, measureOurs, race } from "./row.js";
import type { BenchRow, PeerResults } from "./row.js";

/** The parameter shapes of a BERT encoder (bert-base: hidden 768, 12 layers, 30,522 tokens). */
export function bertBaseShapes(h = 768, layers = 12, vocab = 30522): number[][] {
  const shapes: number[][] = [[vocab, h], [512, h], [2, h], [h], [h]];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < 4; i++) shapes.push([h, h], [h]);
    shapes.push([h], [h], [4 * h, h], [4 * h], [h, 4 * h], [h], [h], [h]);
  }
  shapes.push([h, h], [h]);
  return shapes;
}

interface OptimCase {
  shapes: number[][];
  steps: number;
}

function lmforgeStep(c: OptimCase): number {
  torch.manualSeed(0);
  const params = c.shapes.map((s) => torch.keep(torch.randn(s).requiresGrad_()));
  for (const p of params) p.grad = torch.scope(() => torch.randnLike(p).mul(1e-3));
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01 });
  opt.step(); // the first step allocates the moments
  const times: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t = process.hrtime.bigint();
    opt.step();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  opt.dispose();
  torch.dispose(params);
  return times.sort((a, b) => a - b)[Math.floor(c.steps / 2)]!;
}

/** The optimizer row: one AdamW step over bert-base's shapes (quick: hidden 128, 2 layers, 1,000 tokens), both sides. */
export function runOptimBench(options: { repeats?: number; quick?: boolean } = {}): { rows: BenchRow[]; torch: string } {
  const quick = options.quick ?? false;
  const c: OptimCase = { shapes: quick ? bertBaseShapes(128, 2, 1000) : bertBaseShapes(), steps: 5 };
  const numel = c.shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  const info = torch.runtimeInfo();
  const { torch: version, sides } = race([c], options.repeats ?? 3, (x) => measureOurs(() => lmforgeStep(x)), (cs) =>
    runPeer<PeerResults>("optim_torch.py", { threads: info.threads, cases: cs }, info.openblasCoreType),
  );
  const size = quick ? `${(numel / 1e3).toFixed(0)}k parameters (bert shapes, hidden 128, 2 layers)` : `${(numel / 1e6).toFixed(0)}M parameters (bert-base shapes)`;
  return { torch: version, rows: [makeRow({ bench: "optim", name: `AdamW step, ${size}, fp32`, work: "equal", unit: "ms/step", higherIsBetter: false }, sides[0]!.ours, sides[0]!.theirs)] };
}

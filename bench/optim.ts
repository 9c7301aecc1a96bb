// Optimizer benchmark, side by side with PyTorch in one run: one AdamW step over a model
// with bert-base's parameter shapes (~110M parameters), PyTorch's default AdamW against
// lmforge's fused update.
import * as torch from "../src/torch/index.js";
import { AdamW } from "../src/optim/index.js";
import { median, runPeer } from "./peer.js";
import type { EngineBenchRow } from "./engine.js";

export function bertBaseShapes(): number[][] {
  const h = 768;
  const shapes: number[][] = [[30522, h], [512, h], [2, h], [h], [h]];
  for (let l = 0; l < 12; l++) {
    for (let i = 0; i < 4; i++) shapes.push([h, h], [h]);
    shapes.push([h], [h], [3072, h], [3072], [h, 3072], [h], [h], [h]);
  }
  shapes.push([h, h], [h]);
  return shapes;
}

function lmforgeStep(shapes: number[][], steps: number): { ms: number; numel: number } {
  torch.manualSeed(0);
  const params = shapes.map((s) => torch.keep(torch.randn(s).requiresGrad_()));
  for (const p of params) p.grad = torch.scope(() => torch.randnLike(p).mul(1e-3));
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01 });
  opt.step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = process.hrtime.bigint();
    opt.step();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const numel = params.reduce((a, p) => a + p.numel, 0);
  opt.dispose();
  torch.dispose(params);
  return { ms: median(times), numel };
}

export function runOptimBench(repeats = 3, steps = 5): { rows: EngineBenchRow[]; torch: string } {
  const shapes = bertBaseShapes();
  const info = torch.runtimeInfo();
  const ours: number[] = [];
  const theirs: number[] = [];
  let version = "";
  let numel = 0;
  for (let r = 0; r < repeats; r++) {
    const o = lmforgeStep(shapes, steps);
    ours.push(o.ms);
    numel = o.numel;
    const p = runPeer<{ stepMs: number; torch: string }>("optim_torch.py", { threads: info.threads, shapes, steps }, info.openblasCoreType);
    theirs.push(p.stepMs);
    version = p.torch;
  }
  return {
    torch: version,
    rows: [{ name: `AdamW step, ${(numel / 1e6).toFixed(0)}M parameters (bert-base shapes), fp32`, unit: "ms/step", lmforge: median(ours), pytorch: median(theirs), speedup: median(theirs) / median(ours) }],
  };
}

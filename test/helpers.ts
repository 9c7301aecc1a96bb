// Test helpers: value comparison and finite-difference gradient checks (tinygrad's one-helper habit).
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import type { NestedArray, Tensor } from "../src/torch/index.js";

/** Flattens nested arrays of numbers. */
export function flat(x: NestedArray): number[] {
  if (Array.isArray(x)) return (x as NestedArray[]).flatMap(flat);
  return [Number(x)];
}

/** Asserts a tensor equals expected values (nested arrays) within tol, shape included. */
export function assertClose(actual: Tensor, expected: NestedArray, tol = 1e-5, what = "tensor"): void {
  const exp = torch.tensor(expected);
  try {
    assert.deepEqual([...actual.shape], [...exp.shape], `${what}: shape [${actual.shape}] != [${exp.shape}]`);
  } finally {
    exp.dispose();
  }
  const a = flat(actual.toArray());
  const e = flat(expected);
  for (let i = 0; i < e.length; i++) {
    const ok = Number.isNaN(e[i]!) ? Number.isNaN(a[i]!) : !Number.isFinite(e[i]!) ? a[i] === e[i] : Math.abs(a[i]! - e[i]!) <= tol * Math.max(1, Math.abs(e[i]!));
    assert.ok(ok, `${what}: element ${i} is ${a[i]}, expected ${e[i]} (tol ${tol})\nactual ${JSON.stringify(a)}\nexpected ${JSON.stringify(e)}`);
  }
}

/**
 * Checks autograd's gradient of fn against central finite differences, in float64.
 * fn maps the inputs to one tensor; the check differentiates sum(fn(x) * w) for a fixed
 * random w, so every output element counts.
 */
export function gradcheck(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], eps = 1e-6, tol = 1e-5): void {
  torch.scope(() => {
    const xs = inputs.map((x) => x.to("float64").detach().requiresGrad_(true));
    const out0 = fn(...xs);
    const w = torch.randLike(out0.detach()).add(0.5);
    const analytic = torch.grad([out0.mul(w).sum()], xs, { allowUnused: true });
    const objective = (vals: Tensor[]): number => torch.noGrad(() => torch.scope(() => fn(...vals).mul(w).sum().item()));
    xs.forEach((x, k) => {
      const base = Array.from(x.detach().data() as Float64Array);
      const numeric: number[] = [];
      for (let i = 0; i < base.length; i++) {
        const plus = base.slice();
        plus[i]! += eps;
        const minus = base.slice();
        minus[i]! -= eps;
        const mk = (v: number[]): Tensor => torch.tensor(Float64Array.from(v), { shape: x.shape });
        const others = (v: Tensor): Tensor[] => xs.map((y, j) => (j === k ? v : y.detach()));
        numeric.push((objective(others(mk(plus))) - objective(others(mk(minus)))) / (2 * eps));
      }
      const a = analytic[k] ? Array.from(analytic[k]!.data() as Float64Array) : base.map(() => 0);
      for (let i = 0; i < base.length; i++) {
        assert.ok(
          Math.abs(a[i]! - numeric[i]!) <= tol * Math.max(1, Math.abs(numeric[i]!)),
          `${name}: d/dx${k}[${i}] autograd ${a[i]} vs finite difference ${numeric[i]}`,
        );
      }
    });
  });
}

/** A path under test/fixtures (tests run from dist/test). */
export function fixture(...parts: string[]): string {
  return new URL(["../../test/fixtures", ...parts].join("/"), import.meta.url).pathname;
}

/** A fresh temporary folder, removed at process exit. */
export async function tempDir(prefix = "lmforge-test-"): Promise<string> {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

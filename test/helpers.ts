// Test helpers: value comparison and finite-difference gradient checks (tinygrad's one-helper habit).
import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
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

/**
 * Kills a child training run with SIGKILL once its output folder holds a checkpoint at or after
 * step `atStep` (mid-run), and waits for it to be gone. Fails if the run ends first or makes no
 * such checkpoint within two minutes.
 */
export async function killAtCheckpoint(child: ChildProcess, out: string, atStep: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      const steps = existsSync(out) ? readdirSync(out).filter((d) => /^checkpoint-\d+$/.test(d)).map((d) => Number(d.slice(11))) : [];
      if (steps.some((s) => s >= atStep)) {
        clearInterval(poll);
        child.kill("SIGKILL");
        resolve();
      } else if (Date.now() - t0 > 120000) {
        clearInterval(poll);
        reject(new Error(`no checkpoint-${atStep} or later in ${out} after 2 minutes`));
      }
    }, 20);
    child.on("exit", (code) => code === 0 && (clearInterval(poll), reject(new Error("the run finished before it was killed"))));
  });
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.on("exit", r));
}

/**
 * A run's metrics.jsonl: each step's loss (asserting every step appears once, in order: a resumed
 * log keeps no step twice) and each evaluation's val_ scores.
 */
export function runLog(out: string): { losses: number[]; evals: Record<string, number>[] } {
  const all = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { event: string; step: number; loss: number } & Record<string, number>);
  const steps = all.filter((r) => r.event === "step");
  assert.deepEqual(steps.map((s) => s.step), steps.map((_, i) => i + 1), "each step once, in order");
  const evals = new Map<number, Record<string, number>>();
  for (const r of all) if (r.event === "eval") evals.set(r.step, Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith("val_"))) as Record<string, number>);
  return { losses: steps.map((s) => s.loss), evals: [...evals.values()] };
}

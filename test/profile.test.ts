// torch.profile: libtorch's profiler around a forward and backward, summed per op; opTotals'
// self and total times on a hand-made trace.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { tempDir } from "./helpers.js";

test("opTotals: self time subtracts the nested ops, per thread; a recursive call counts once in its total", () => {
  // thread 1: a [0, 100) holds b [10, 40) and c [50, 70), b holds d [20, 30); a again [200, 210)
  // thread 2: b [0, 50) holds b [5, 25) (recursive)
  const X = (name: string, ts: number, dur: number, tid: number) => ({ name, ph: "X", ts, dur, tid });
  const ops = torch.opTotals([
    X("a", 0, 100, 1), X("b", 10, 30, 1), X("d", 20, 10, 1), X("c", 50, 20, 1), X("a", 200, 10, 1),
    X("b", 0, 50, 2), X("b", 5, 20, 2), { name: "meta", ph: "M", ts: 0, dur: 0, tid: 1 },
  ]);
  const by = Object.fromEntries(ops.map((o) => [o.name, o]));
  assert.deepEqual(Object.keys(by).sort(), ["a", "b", "c", "d"]);
  // a: total 110 us, self 110 - 30 - 20 = 60 us
  const near = (x: number, y: number): boolean => Math.abs(x - y) < 1e-12;
  assert.ok(by.a!.calls === 2 && near(by.a!.totalMs, 0.11) && near(by.a!.selfMs, 0.06), `a: ${JSON.stringify(by.a)}`);
  // b: total 30 (thread 1) + 50 (thread 2, the nested call not again); self (30 - 10) + (50 - 20) + 20 = 70 us
  assert.equal(by.b!.calls, 3);
  assert.ok(near(by.b!.totalMs, 0.08) && near(by.b!.selfMs, 0.07), `b: ${JSON.stringify(by.b)}`);
  assert.ok(near(by.c!.selfMs, 0.02) && near(by.d!.selfMs, 0.01));
  assert.deepEqual(ops.map((o) => o.name), ["b", "a", "c", "d"], "the largest self time first");
});

test("profile records a forward and backward op by op and writes a Chrome trace", async () => {
  const dir = await tempDir();
  const trace = join(dir, "trace.json");
  const w = torch.keep(torch.randn([64, 32]).requiresGrad_());
  const { result, ops, wallMs } = torch.profile(
    () => torch.scope(() => {
      const loss = torch.randn([16, 64]).matmul(w).relu().sum();
      loss.backward();
      return loss.item();
    }),
    { trace },
  );
  assert.ok(Number.isFinite(result));
  assert.ok(existsSync(trace) && Array.isArray(JSON.parse(readFileSync(trace, "utf8"))));
  const names = ops.map((o) => o.name);
  for (const op of ["aten::randn", "aten::relu", "aten::sum", "aten::mm"]) assert.ok(names.includes(op), `${op} among ${names.join(", ")}`);
  // the backward: relu's and mm's gradients
  assert.ok(names.some((n) => /ReluBackward|threshold_backward/.test(n)), names.join(", "));
  for (const o of ops) assert.ok(o.selfMs <= o.totalMs + 1e-9 && o.selfMs >= -1e-9 && o.calls >= 1, JSON.stringify(o));
  assert.ok(ops.reduce((s, o) => s + o.selfMs, 0) <= wallMs * 2 + 1, "self times add up to no more than the threads' time");
  assert.throws(() => torch.profile(() => torch.profile(() => 0)), /a profile is already being recorded/);
  torch.dispose([w]);
});

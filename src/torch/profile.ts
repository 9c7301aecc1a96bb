// Op-level profiling with libtorch's own profiler (the autograd profiler that
// torch.autograd.profiler.profile wraps in PyTorch): every ATen op run while fn runs, forward and
// backward, is recorded with its thread and time, written as a Chrome trace, and summed per op
// name, so that a step can be set beside PyTorch's key_averages() table op by op.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { native } from "./native.js";

/** One op's totals over the profiled run. */
export interface OpTotal {
  name: string;
  calls: number;
  /** Time inside the op, the ops it called included, in milliseconds. */
  totalMs: number;
  /** Time inside the op less the ops it called (what PyTorch's table calls "Self CPU"). */
  selfMs: number;
}

export interface ProfileResult<T> {
  result: T;
  /** Per op name, the largest self time first. */
  ops: OpTotal[];
  /** Wall time of fn, in milliseconds. */
  wallMs: number;
}

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur: number;
  tid: number | string;
}

/** Sums a Chrome trace's complete events ("ph": "X") per name; self time subtracts the events nested in each, per thread. */
export function opTotals(events: readonly TraceEvent[]): OpTotal[] {
  const totals = new Map<string, OpTotal>();
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of events) {
    if (e.ph !== "X") continue;
    const list = byThread.get(String(e.tid)) ?? [];
    list.push(e);
    byThread.set(String(e.tid), list);
  }
  for (const list of byThread.values()) {
    // outer events first where two start together
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const stack: { end: number; total: OpTotal; child: number }[] = [];
    const close = (until: number): void => {
      while (stack.length && stack[stack.length - 1]!.end <= until) {
        const done = stack.pop()!;
        done.total.selfMs -= done.child / 1000;
      }
    };
    for (const e of list) {
      close(e.ts);
      const t = totals.get(e.name) ?? { name: e.name, calls: 0, totalMs: 0, selfMs: 0 };
      totals.set(e.name, t);
      t.calls++;
      t.selfMs += e.dur / 1000;
      // an op nested in another of the same name (a recursive call) counts once in its total
      if (!stack.some((s) => s.total === t)) t.totalMs += e.dur / 1000;
      if (stack.length) stack[stack.length - 1]!.child += e.dur;
      stack.push({ end: e.ts + e.dur, total: t, child: 0 });
    }
    close(Infinity);
  }
  return [...totals.values()].sort((a, b) => b.selfMs - a.selfMs);
}

/**
 * Runs fn under libtorch's profiler and returns its result with the time per op.
 *
 * @example
 * const { ops } = torch.profile(() => model.forward(batch).loss!.backward());
 * for (const op of ops.slice(0, 10)) console.log(op.name, op.calls, op.selfMs.toFixed(1));
 */
export function profile<T>(fn: () => T, options: { trace?: string } = {}): ProfileResult<T> {
  const dir = options.trace ? null : mkdtempSync(join(tmpdir(), "lmforge-profile-"));
  const path = options.trace ?? join(dir!, "trace.json");
  native.profileStart(path);
  const t = process.hrtime.bigint();
  let result: T;
  try {
    result = fn();
  } finally {
    native.profileStop();
  }
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
  try {
    const events = JSON.parse(readFileSync(path, "utf8")) as TraceEvent[];
    return { result, ops: opTotals(events), wallMs };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

// `lmforge distill`: teach a small student with fine-tuned classifier(s), then print the test
// set's scores and speeds side by side: the teacher(s), the distilled student and, with
// --compare, the same student fine-tuned alone.
import { distill } from "../train/index.js";
import type { DistillOptions, ModelScore } from "../train/index.js";
import { Progress } from "./progress.js";
import { reportAfterRun } from "./report.js";

/** The comparison as text: one row per model, its size, test metrics and examples per second. */
export function formatScores(rows: readonly ModelScore[]): string {
  const head = ["model", "parameters", "macro F1", "accuracy", "examples/s"];
  const body = rows.map((r) => [r.name, r.parameters.toLocaleString("en-US"), r.metrics.macro_f1!.toFixed(4), r.metrics.accuracy!.toFixed(4), r.examplesPerSecond.toFixed(1)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), ...body.map(line)].join("\n");
}

export async function distillCommand(v: Record<string, unknown>): Promise<void> {
  const { config: _config, progressEvery, ...options } = v;
  const progress = new Progress("distill", "steps", { every: progressEvery as number | undefined });
  const out = String(v.out);
  const started = Date.now();
  let status: "interrupted" | "failed" | undefined = "failed";
  try {
    const r = await distill({
      ...(options as unknown as DistillOptions),
      onStep: (s) => progress.update(s.step, s.maxSteps, `epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}`, s.startStep),
      onEval: (m) => {
        progress.done();
        console.log(`step ${m.step}: ` + Object.entries(m).filter(([k]) => k !== "step").map(([k, x]) => `${k.replace(/^val_/, "")} ${x.toFixed(4)}`).join(", "));
      },
      log: (line) => {
        progress.done();
        console.error(line);
      },
    });
    progress.done();
    if (r.train.interrupted) {
      console.log(`interrupted at step ${r.train.steps}`);
      status = "interrupted";
      return;
    }
    status = undefined;
    console.log(`saved the distilled student, its labels and tokenizer to ${out}`);
    const rows = [r.teacher, r.student, r.compare?.score].filter((x): x is ModelScore => x !== undefined);
    if (rows.length) console.log(`\ntest set (${rows[0]!.examples} examples; speed at batch size ${rows[0]!.batchSize}, tokenisation included):\n${formatScores(rows)}`);
  } finally {
    reportAfterRun(out, status, started);
  }
}

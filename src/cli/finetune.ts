// `lmforge finetune`, `evaluate` and `predict`, for every registered task: the model folder
// says which task it is; the task reads the data, scores it and formats its predictions.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { evaluateFinetuned, finetune, loadFinetuned } from "../train/index.js";
import type { FinetuneOptions } from "../train/index.js";
import { writeTextAtomic } from "../io/index.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";

export async function finetuneCommand(v: Record<string, unknown>): Promise<void> {
  // a launched worker other than rank 0 reports nothing but its own log lines
  const rank = Number(process.env.RANK ?? 0);
  if (rank > 0) {
    const { config: _unused, ...given } = v;
    await finetune({ ...(given as unknown as FinetuneOptions), log: (line) => console.error(`rank ${rank}: ${line}`) });
    return;
  }
  const progress = new Progress("finetune");
  const { config: _config, ...options } = v;
  const r = await finetune({
    ...(options as unknown as FinetuneOptions),
    onStep: (s) => progress.update(s.step, s.maxSteps, `epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}`),
    onEval: (m) => {
      progress.done();
      console.log(`step ${m.step}: ` + Object.entries(m).filter(([k]) => k !== "step").map(([k, x]) => `${k.replace(/^val_/, "")} ${x.toFixed(4)}`).join(", "));
    },
    onTrial: (t, i, n) => console.log(`trial ${i + 1}/${n} ${JSON.stringify(t.params)}: best validation metric ${t.value.toFixed(4)} (${t.seconds.toFixed(0)} s)`),
    log: (line) => {
      progress.done();
      console.error(line);
    },
  });
  progress.done();
  const out = String(v.out);
  if (r.search) {
    console.log("\nsearch results (best first):");
    for (const t of r.search.trials) console.log(`  ${t.value.toFixed(4)}  ${JSON.stringify(t.params)}  (${t.out})`);
  }
  if (r.train.interrupted) {
    console.log(`interrupted at step ${r.train.steps}; continue with --resume`);
    return;
  }
  const b = r.train.best;
  console.log(`${b ? `best validation ${b.metric} ${b.value.toFixed(4)} at step ${b.step}` : "done"}${r.train.stoppedEarly ? " (stopped early)" : ""}; ${r.trainable.toLocaleString("en-US")} trainable parameters`);
  console.log(`saved the fine-tuned model, its task, labels and tokenizer to ${out}`);
  if (r.test) {
    const { taskEntry } = await import("../tasks/index.js");
    console.log(`\ntest set (${r.test.predictions.length} examples):\n${taskEntry(r.meta.task).formatMetrics(r.test.metrics, r.test.report)}`);
    console.log(`\ntest metrics: ${join(out, "test_metrics.json")}`);
  }
}

export async function evaluateCommand(v: Record<string, unknown>): Promise<void> {
  const f = await loadFinetuned(String(v.model), { log: (l) => console.error(l) });
  const read = f.task.read(String(v.data), { ...f.meta.options, ...v });
  if (read.skipped.length) console.error(`${String(v.data)}: skipped ${read.skipped.length} bad row(s), e.g. ${read.skipped[0]!.source}: ${read.skipped[0]!.reason}`);
  if (read.examples.length === 0) throw new UsageError(`${String(v.data)}: no examples`);
  const r = evaluateFinetuned(f, read.examples, { batchSize: (v.batchSize as number | undefined) ?? 32, precision: (v.precision as "fp32" | "bf16" | undefined) ?? "fp32" });
  if (typeof v.errors === "string") {
    const files = f.task.analysis?.(read.examples, r.predictions, f.meta.labels) ?? {};
    writeTextAtomic(v.errors, files["errors.jsonl"] ?? "");
  }
  if (v.json) console.log(JSON.stringify({ task: f.meta.task, examples: read.examples.length, ...r.metrics, ...(r.report && typeof r.report === "object" ? r.report : {}) }));
  else console.log(`${read.examples.length} examples (${f.meta.task})\n${f.task.formatMetrics(r.metrics, r.report)}`);
}

export async function predictCommand(v: Record<string, unknown>, texts: string[]): Promise<void> {
  let inputs = texts;
  if (typeof v.file === "string") {
    if (!existsSync(v.file)) throw new UsageError(`--file ${v.file}: no such file`);
    inputs = readFileSync(v.file, "utf8").split(/\r?\n/).filter((l) => l.trim());
  } else if (inputs.length === 0 && v.question === undefined) {
    if (process.stdin.isTTY) throw new UsageError("give texts as arguments, --file FILE, or lines on standard input");
    inputs = readFileSync(0, "utf8").split(/\r?\n/).filter((l) => l.trim());
  }
  const f = await loadFinetuned(String(v.model), { log: (l) => console.error(l) });
  const examples = f.task.predictInput(inputs, { ...f.meta.options, ...v });
  if (examples.length === 0) throw new UsageError("nothing to predict");
  const predictions = f.objective.predict(f.model, examples, { batchSize: (v.batchSize as number | undefined) ?? 32, precision: (v.precision as "fp32" | "bf16" | undefined) ?? "fp32" });
  examples.forEach((e, i) => console.log(f.task.formatPrediction(e, predictions[i], Boolean(v.json))));
}

// `lmforge finetune`, `evaluate` and `predict`, for every registered task: the model folder
// says which task it is; the task reads the data, scores it and formats its predictions.
// finetune on SIGINT or SIGTERM: the step finishes, a checkpoint is written and the process
// exits with 130 or 143 (128 + the signal's number; see pretrain.ts); a second signal ends it at once.
import { constants } from "node:os";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { evaluateFinetuned, finetune, formatBeside, loadFinetuned } from "../train/index.js";
import type { FinetuneOptions } from "../train/index.js";
import { FEW_SHOT_FILE, formatFewShot } from "../train/few-shot.js";
import { writeTextAtomic } from "../io/index.js";
import { defineOptions } from "../io/options.js";
import { classificationLosses, lossThresholdAttack } from "../eval/membership.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";
import { reportAfterRun } from "./report.js";

/** `lmforge evaluate`'s own output: a folder keeping the evaluation and its report. */
export const EVALUATE_OUT_OPTIONS = defineOptions([
  { flag: "out", key: "out", type: "string", arg: "DIR", help: "keep the evaluation in DIR: eval_metrics.json, errors.jsonl (and predictions.jsonl where the task writes one), report.html" },
]);

export async function finetuneCommand(v: Record<string, unknown>): Promise<void> {
  // a launched worker other than rank 0 reports nothing but its own log lines
  const rank = Number(process.env.RANK ?? 0);
  if (rank > 0) {
    const { config: _unused, progressEvery: _every, ...given } = v;
    await finetune({ ...(given as unknown as FinetuneOptions), log: (line) => console.error(`rank ${rank}: ${line}`) });
    return;
  }
  const { config: _config, progressEvery, ...options } = v;
  const progress = new Progress("finetune", "steps", { every: progressEvery as number | undefined });
  const out = String(v.out);
  const started = Date.now();
  let status: "interrupted" | "failed" | undefined = "failed";
  try {
    status = await finetuneRun(options, progress, out);
  } finally {
    // the report, also of an interrupted or failed run (its curves up to there)
    reportAfterRun(out, status, started);
  }
}

async function finetuneRun(options: Record<string, unknown>, progress: Progress, out: string): Promise<"interrupted" | undefined> {
  const r = await finetune({
    ...(options as unknown as FinetuneOptions),
    onStep: (s) => progress.update(s.step, s.maxSteps, `epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}${s.epsilon !== undefined ? `, ε ${s.epsilon.toFixed(3)}` : ""}`, s.startStep),
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
  if (r.search) {
    console.log("\nsearch results (best first):");
    for (const t of r.search.trials) console.log(`  ${t.value.toFixed(4)}  ${JSON.stringify(t.params)}  (${t.out})`);
  }
  if (r.train.interrupted) {
    if (r.train.signal) process.exitCode = 128 + constants.signals[r.train.signal];
    console.log(`interrupted${r.train.signal ? ` by ${r.train.signal}` : ""} at step ${r.train.steps}; continue with --resume`);
    return "interrupted";
  }
  if (r.fewShot) {
    console.log(`\n${formatFewShot(r.fewShot)}\n\nper draw: ${r.fewShot.runs.map((x) => x.out).join(", ")}; summary: ${join(out, FEW_SHOT_FILE)}`);
    return undefined;
  }
  const b = r.train.best;
  console.log(`${b ? `best validation ${b.metric} ${b.value.toFixed(4)} at step ${b.step}` : "done"}${r.train.stoppedEarly ? " (stopped early)" : ""}; ${r.trainable.toLocaleString("en-US")} trainable parameters`);
  console.log(`saved the fine-tuned model, its task, labels and tokenizer to ${out}`);
  if (r.test) {
    const { taskEntry } = await import("../tasks/index.js");
    console.log(`\ntest set (${r.test.predictions.length} examples):\n${taskEntry(r.meta.task).formatMetrics(r.test.metrics, r.test.report)}`);
    console.log(`\ntest metrics: ${join(out, "test_metrics.json")}`);
  }
  if (r.baseline) console.log(`\n${formatBeside(r.test?.metrics, r.baseline)}\nbaseline metrics: ${join(out, "baseline_metrics.json")}`);
  return undefined;
}

export async function evaluateCommand(v: Record<string, unknown>): Promise<void> {
  const f = await loadFinetuned(String(v.model), { log: (l) => console.error(l) });
  const read = f.task.read(String(v.data), { ...f.meta.options, ...v });
  if (read.skipped.length) console.error(`${String(v.data)}: skipped ${read.skipped.length} bad row(s), e.g. ${read.skipped[0]!.source}: ${read.skipped[0]!.reason}`);
  if (read.examples.length === 0) throw new UsageError(`${String(v.data)}: no examples`);
  if (typeof v.membership === "string") return membershipCommand(f, read.examples, v);
  const r = evaluateFinetuned(f, read.examples, { batchSize: (v.batchSize as number | undefined) ?? 32, precision: (v.precision as "fp32" | "bf16" | undefined) ?? "fp32" });
  const files = typeof v.errors === "string" || typeof v.out === "string" ? (f.task.analysis?.(read.examples, r.predictions, f.meta.labels) ?? {}) : {};
  if (typeof v.errors === "string") writeTextAtomic(v.errors, files["errors.jsonl"] ?? "");
  if (typeof v.out === "string") {
    mkdirSync(v.out, { recursive: true });
    const kept = { task: f.meta.task, model: String(v.model), data: String(v.data), examples: read.examples.length, ...r.metrics, report: r.report };
    writeTextAtomic(join(v.out, "eval_metrics.json"), JSON.stringify(kept, null, 2) + "\n");
    for (const [name, text] of Object.entries(files)) writeTextAtomic(join(v.out, name), text);
    reportAfterRun(v.out);
  }
  if (v.json) console.log(JSON.stringify({ task: f.meta.task, examples: read.examples.length, ...r.metrics, ...(r.report && typeof r.report === "object" ? r.report : {}) }));
  else console.log(`${read.examples.length} examples (${f.meta.task})\n${f.task.formatMetrics(r.metrics, r.report)}`);
}

/**
 * `lmforge evaluate --data HELD_OUT --membership TRAIN`: the loss-threshold membership attack
 * (src/eval/membership.ts) on the model's per-example losses, members against held-out examples.
 */
function membershipCommand(f: Awaited<ReturnType<typeof loadFinetuned>>, heldOut: readonly unknown[], v: Record<string, unknown>): void {
  if (f.meta.task !== "classification") throw new UsageError(`--membership: the loss attack reads per-example losses of classification models; this model's task is ${f.meta.task}`);
  const path = v.membership as string;
  const members = f.task.read(path, { ...f.meta.options, ...v }).examples;
  if (members.length === 0) throw new UsageError(`--membership ${path}: no examples`);
  const options = { batchSize: (v.batchSize as number | undefined) ?? 32, precision: (v.precision as "fp32" | "bf16" | undefined) ?? "fp32" };
  const losses = (examples: readonly unknown[]): number[] => {
    const predictions = f.objective.predict(f.model, examples, options) as { probabilities: Record<string, number> }[];
    return classificationLosses((examples as { label: string }[]).map((e) => e.label), predictions.map((p) => p.probabilities));
  };
  const r = lossThresholdAttack(losses(members), losses(heldOut));
  if (v.json) console.log(JSON.stringify({ task: f.meta.task, membership: r }));
  else {
    console.log(`membership inference (loss threshold): ${r.members} training examples (${path}) against ${r.nonMembers} held out (${String(v.data)})`);
    console.log(`  attack AUC   ${r.auc.toFixed(4)}   (0.5: the losses do not tell members apart)`);
    console.log(`  advantage    ${r.advantage.toFixed(4)}   (best threshold's TPR - FPR, at loss ${r.threshold.toPrecision(4)})`);
    console.log(`  mean loss    members ${r.memberMeanLoss.toFixed(4)}, held out ${r.nonMemberMeanLoss.toFixed(4)}`);
  }
}

export async function predictCommand(v: Record<string, unknown>, texts: string[]): Promise<void> {
  let inputs = texts;
  if (typeof v.file === "string") {
    if (!existsSync(v.file)) throw new UsageError(`--file ${v.file}: no such file`);
    inputs = readFileSync(v.file, "utf8").split(/\r?\n/).filter((l) => l.trim());
  } else if (inputs.length === 0 && v.question === undefined && v.image === undefined) {
    if (process.stdin.isTTY) throw new UsageError("give texts as arguments, --file FILE, or lines on standard input");
    inputs = readFileSync(0, "utf8").split(/\r?\n/).filter((l) => l.trim());
  }
  const f = await loadFinetuned(String(v.model), { log: (l) => console.error(l) });
  const examples = f.task.predictInput(inputs, { ...f.meta.options, ...v });
  if (examples.length === 0) throw new UsageError("nothing to predict");
  const predictions = f.objective.predict(f.model, examples, { batchSize: (v.batchSize as number | undefined) ?? 32, precision: (v.precision as "fp32" | "bf16" | undefined) ?? "fp32" });
  examples.forEach((e, i) => console.log(f.task.formatPrediction(e, predictions[i], Boolean(v.json))));
}

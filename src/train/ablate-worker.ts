// One variant of `lmforge ablate`, in its own process (ablate.ts starts it with the job as
// JSON): measure the variant's speed, pretrain it for the budget, fine-tune it, and write
// result.json with its figures and this process's peak memory.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { writeTextAtomic } from "../io/atomic.js";
import { finetune } from "./finetune.js";
import { pretrain } from "./pretrain.js";
import type { AblationRow, WorkerJob } from "./ablate.js";
import type { ClassificationReport } from "../eval/index.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

async function run(job: WorkerJob): Promise<AblationRow> {
  const log = (line: string): void => console.log(line);
  const tokensPerStep = job.batchSize * job.seqLen;
  const base = {
    model: job.model,
    tokenizer: job.tokenizer,
    objectives: job.objectives,
    ...(job.input ? { input: job.input } : {}),
    arch: job.variant.arch,
    batchSize: job.batchSize,
    seqLen: job.seqLen,
    learningRate: job.learningRate,
    precision: job.precision,
    seed: job.seed,
  };
  let steps = job.steps ?? 0;
  if (job.budgetSeconds !== undefined) {
    // the variant's own speed, over a few steps after the first two (allocation, warm caches)
    const calibration = join(job.dir, "calibration");
    const rates: number[] = [];
    const probe = await pretrain({ ...base, maxSteps: 8, out: calibration, saveEvery: 8, keepLast: 1, onStep: (s) => void (s.step > 2 && rates.push(s.tokensPerSec)) });
    probe.model.dispose();
    rmSync(calibration, { recursive: true, force: true });
    const rate = median(rates);
    steps = Math.max(1, Math.floor((job.budgetSeconds * rate) / tokensPerStep));
    log(`${job.variant.name}: ${rate.toFixed(0)} tokens/s measured over 6 steps: ${steps} steps fill ${job.budgetSeconds} s`);
  }
  const rates: number[] = [];
  const t0 = Date.now();
  const pt = await pretrain({
    ...base,
    maxSteps: steps,
    evalEvery: Math.max(1, Math.round(steps / 5)),
    evalBatches: 16,
    saveEvery: steps,
    keepLast: 1,
    out: join(job.dir, "pretrained"),
    onStep: (s) => {
      rates.push(s.tokensPerSec);
      if (s.step % Math.max(1, Math.round(steps / 20)) === 0 || s.step === steps) log(`pretrain ${s.step}/${steps}: loss ${s.loss.toFixed(4)}, ${Math.round(s.tokensPerSec)} tokens/s`);
    },
  });
  const pretrainSeconds = (Date.now() - t0) / 1000;
  const parameters = pt.model.numParameters();
  const last = pt.evals[pt.evals.length - 1] ?? {};
  pt.model.dispose();
  const t1 = Date.now();
  const ft = await finetune({
    model: join(job.dir, "pretrained"),
    task: "classification",
    train: job.task,
    ...(job.finetuneLimit !== undefined ? { limit: job.finetuneLimit } : {}),
    epochs: job.finetuneEpochs,
    batchSize: 32,
    maxLength: job.seqLen,
    learningRate: job.finetuneLearningRate,
    patience: 0,
    precision: job.precision,
    seed: job.seed,
    out: join(job.dir, "finetuned"),
    log,
  });
  const report = ft.test?.report as ClassificationReport | undefined;
  if (!report) throw new Error(`${job.task}: the fine-tuning data gave no test split to score`);
  ft.model.dispose();
  return {
    variant: job.variant.name,
    arch: job.variant.arch,
    parameters,
    steps: pt.steps,
    tokens: pt.steps * tokensPerStep,
    tokensPerSec: median(rates.slice(2)),
    pretrainSeconds,
    valLoss: last.val_loss ?? NaN,
    valPerplexity: last.val_perplexity ?? NaN,
    accuracy: report.accuracy,
    macroF1: report.macro_f1,
    finetuneSeconds: (Date.now() - t1) / 1000,
    // kilobytes on Linux
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

const job = JSON.parse(process.argv[2] ?? "null") as WorkerJob | null;
if (!job) {
  console.error("ablate-worker: started without a job (lmforge ablate starts it)");
  process.exit(2);
}
run(job).then(
  (row) => writeTextAtomic(join(job.dir, "result.json"), JSON.stringify(row, null, 2) + "\n"),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);

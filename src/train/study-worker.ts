// One model of a study (`lmforge ablate`, `lmforge compare`), in its own process (study.ts
// starts it with the job as JSON): pretrain it for its budget (its speed measured first when
// the budget is time), fine-tune it once per seed, time one prediction, and write
// result.json with its figures and this process's peak memory.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { finetune } from "./finetune.js";
import { loadFinetuned } from "./finetuned.js";
import { pretrain } from "./pretrain.js";
import { meanStd, workerMain } from "./study.js";
import type { StudyJob, StudyRow } from "./study.js";
import type { ClassificationReport } from "../eval/index.js";
import type { PretrainResult } from "./pretrain.js";

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

const log = (line: string): void => console.log(line);

const hasTokenizer = (dir: string): boolean => ["tokenizer.json", "vocab.txt", "vocab.json"].some((f) => existsSync(join(dir, f)));

/** Pretrains the job's preset for its steps or time; the folder it wrote and its figures. */
async function pretrainFor(job: StudyJob): Promise<{ dir: string; figures: Pick<StudyRow, "parameters" | "steps" | "tokens" | "tokensPerSec" | "pretrainSeconds" | "valLoss" | "valPerplexity"> }> {
  const tokensPerStep = job.batchSize * job.seqLen;
  const base = {
    model: job.model,
    tokenizer: job.tokenizer,
    objectives: job.objectives,
    ...(job.masking ? { masking: job.masking } : {}),
    ...(job.input ? { input: job.input } : {}),
    ...(job.arch ? { arch: job.arch } : {}),
    batchSize: job.batchSize,
    seqLen: job.seqLen,
    learningRate: job.learningRate,
    precision: job.precision,
    seed: job.seeds[0]!,
  };
  let steps = job.steps ?? 0;
  if (job.budgetSeconds !== undefined) {
    // the model's own speed, over the steps after the first two (allocation, cold caches)
    const calibration = join(job.dir, "calibration");
    const rates: number[] = [];
    const probe = await pretrain({ ...base, maxSteps: 8, out: calibration, saveEvery: 8, keepLast: 1, onStep: (s) => void (s.step > 2 && rates.push(s.tokensPerSec)) });
    probe.model.dispose();
    rmSync(calibration, { recursive: true, force: true });
    const rate = median(rates);
    steps = Math.max(1, Math.floor((job.budgetSeconds * rate) / tokensPerStep));
    log(`${job.name}: ${rate.toFixed(0)} tokens/s measured over 6 steps: ${steps} steps fill ${job.budgetSeconds} s`);
  }
  const rates: number[] = [];
  const t0 = Date.now();
  const dir = join(job.dir, "pretrained");
  const pt: PretrainResult = await pretrain({
    ...base,
    maxSteps: steps,
    evalEvery: Math.max(1, Math.round(steps / 5)),
    evalBatches: 16,
    saveEvery: steps,
    keepLast: 1,
    out: dir,
    onStep: (s) => {
      rates.push(s.tokensPerSec);
      if (s.step % Math.max(1, Math.round(steps / 20)) === 0 || s.step === steps) log(`pretrain ${s.step}/${steps}: loss ${s.loss.toFixed(4)}, ${Math.round(s.tokensPerSec)} tokens/s`);
    },
  });
  const last = pt.evals[pt.evals.length - 1] ?? {};
  const figures = {
    parameters: pt.model.numParameters(),
    steps: pt.steps,
    tokens: pt.steps * tokensPerStep,
    tokensPerSec: median(rates.slice(2)),
    pretrainSeconds: (Date.now() - t0) / 1000,
    valLoss: last.val_loss ?? NaN,
    valPerplexity: last.val_perplexity ?? NaN,
  };
  pt.model.dispose();
  return { dir, figures };
}

/** Median milliseconds to classify one text that fills the model's length, batch 1, after 3 warm-up calls. */
async function latency(dir: string): Promise<number> {
  const f = await loadFinetuned(dir);
  const example = { text: "the quick brown fox jumps over the lazy dog and ".repeat(64), label: f.meta.labels[0] };
  const times: number[] = [];
  for (let i = 0; i < 23; i++) {
    const t = process.hrtime.bigint();
    f.objective.predict(f.model, [example], { batchSize: 1 });
    if (i >= 3) times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  f.model.dispose();
  return median(times);
}

async function run(job: StudyJob): Promise<StudyRow> {
  const pre = job.pretrain ? await pretrainFor(job) : null;
  const model = pre?.dir ?? job.model;
  const accuracy: number[] = [];
  const macroF1: number[] = [];
  const seconds: number[] = [];
  let parameters = pre?.figures.parameters ?? NaN;
  let lastDir = "";
  for (const seed of job.seeds) {
    const t0 = Date.now();
    const out = join(job.dir, job.seeds.length > 1 ? `finetuned-seed${seed}` : "finetuned");
    const ft = await finetune({
      model,
      // a folder brings its own tokenizer; the study's is for folders without one
      ...(job.pretrain || hasTokenizer(model) ? {} : { tokenizer: job.tokenizer }),
      task: "classification",
      train: job.task,
      ...(job.finetuneLimit !== undefined ? { limit: job.finetuneLimit } : {}),
      epochs: job.finetuneEpochs,
      batchSize: 32,
      maxLength: job.seqLen,
      // the study's fixed recipe (and its published figures) reads one window per text
      longText: "truncate",
      learningRate: job.finetuneLearningRate,
      patience: 0,
      precision: job.precision,
      seed,
      out,
      log,
    });
    const report = ft.test?.report as ClassificationReport | undefined;
    if (!report) throw new Error(`${job.task}: the fine-tuning data gave no test split to score`);
    accuracy.push(report.accuracy);
    macroF1.push(report.macro_f1);
    seconds.push((Date.now() - t0) / 1000);
    if (!Number.isFinite(parameters)) parameters = ft.model.numParameters();
    log(`seed ${seed}: test accuracy ${(report.accuracy * 100).toFixed(2)}%, macro F1 ${report.macro_f1.toFixed(4)}`);
    ft.model.dispose();
    lastDir = out;
  }
  const a = meanStd(accuracy);
  const f = meanStd(macroF1);
  return {
    name: job.name,
    dir: job.dir,
    model: job.model,
    arch: job.arch ?? {},
    ...(pre?.figures ?? { steps: 0, tokens: 0, tokensPerSec: NaN, pretrainSeconds: 0, valLoss: NaN, valPerplexity: NaN }),
    parameters,
    accuracy: a.mean,
    accuracyStd: a.std,
    macroF1: f.mean,
    macroF1Std: f.std,
    seeds: job.seeds.length,
    finetuneSeconds: meanStd(seconds).mean,
    latencyMs: await latency(lastDir),
    // kilobytes on Linux
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
}

workerMain<StudyJob, Awaited<ReturnType<typeof run>>>("study-worker (lmforge ablate and lmforge compare start it)", run);

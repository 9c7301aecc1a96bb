// One run of `lmforge fewshot` (a method, K and seed), in its own process (few-shot-study.ts
// starts it with the job as JSON): a k-shot fine-tuning run with one draw, its model in the
// job's folder; writes result.json with the test metrics and the seconds it took.
import { finetune } from "./finetune.js";
import type { FinetuneOptions } from "./finetune.js";
import type { FewShotJob, FewShotRun } from "./few-shot-study.js";
import { workerMain } from "./study.js";

async function run(job: FewShotJob): Promise<FewShotRun> {
  const t0 = Date.now();
  const r = await finetune({ ...(job.options as unknown as FinetuneOptions), log: (line) => console.log(line) });
  r.model.dispose();
  if (r.train.interrupted) throw new Error("interrupted");
  const metrics = r.fewShot?.runs[0]?.metrics;
  if (!metrics) throw new Error("the run scored no test set");
  console.log(`test: ${Object.entries(metrics).map(([k, x]) => `${k} ${x.toFixed(4)}`).join(", ")}`);
  return { method: job.method, shots: job.shots, seed: job.seed, dir: job.dir, metrics, seconds: (Date.now() - t0) / 1000 };
}

workerMain<FewShotJob, Awaited<ReturnType<typeof run>>>("few-shot-worker (lmforge fewshot starts it)", run);

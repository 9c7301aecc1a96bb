// `lmforge pretrain`: its flags are pretrain()'s option declarations (PRETRAIN_OPTIONS).
// SIGINT or SIGTERM: the step finishes, a checkpoint is written, the model saved, and the
// process exits with 130 or 143 (128 + the signal's number, the shell's code for "ended by
// that signal") so that `lmforge pretrain ... && next` stops; a second signal ends it at once.
import { constants } from "node:os";
import { pretrain } from "../train/index.js";
import type { PretrainOptions } from "../train/index.js";
import { Progress } from "./progress.js";
import { reportAfterRun } from "./report.js";

export async function pretrainCommand(v: Record<string, unknown>): Promise<void> {
  // a launched worker other than rank 0 reports nothing but its own log lines
  const rank = Number(process.env.RANK ?? 0);
  if (rank > 0) {
    const { config: _unused, progressEvery: _every, ...given } = v;
    await pretrain({ ...(given as unknown as PretrainOptions), log: (line) => console.error(`rank ${rank}: ${line}`) });
    return;
  }
  const { config: _config, progressEvery, ...options } = v;
  const progress = new Progress("pretrain", "steps", { every: progressEvery as number | undefined });
  const started = Date.now();
  let status: "interrupted" | "failed" | undefined = "failed";
  try {
    const r = await pretrainRun(options, progress);
    status = r.interrupted ? "interrupted" : undefined;
    if (r.signal) process.exitCode = 128 + constants.signals[r.signal];
    console.log(`${r.interrupted ? `interrupted${r.signal ? ` by ${r.signal}` : ""} at` : "finished"} step ${r.steps}; model and tokenizer in ${String(v.out)} (log: ${String(v.out)}/metrics.jsonl)`);
  } finally {
    // the report, also of an interrupted or failed run (its curves up to there)
    reportAfterRun(String(v.out), status, started);
  }
}

async function pretrainRun(options: Record<string, unknown>, progress: Progress): Promise<{ interrupted: boolean; steps: number; signal?: NodeJS.Signals }> {
  const tokenising = new Progress("tokenising", "bytes");
  const r = await pretrain({
    ...(options as unknown as PretrainOptions),
    onTokenize: (done, total) => tokenising.update(done, total),
    onStep: (s) => progress.update(s.step, s.maxSteps, `loss ${s.loss.toFixed(3)} lr ${s.lr.toExponential(2)} ${Math.round(s.tokensPerSec)} tok/s`, s.startStep),
    onEval: (m) => {
      progress.done();
      console.log(`step ${m.step}: ` + Object.entries(m).filter(([k]) => k !== "step").map(([k, x]) => `${k} ${x.toFixed(4)}`).join(", "));
    },
    log: (line) => {
      progress.done();
      console.error(line);
    },
  });
  progress.done();
  return r;
}

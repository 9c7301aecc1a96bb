// `lmforge pretrain`: its flags are pretrain()'s option declarations (PRETRAIN_OPTIONS).
// SIGINT or SIGTERM: the step finishes, a checkpoint is written, the model saved, and the
// process exits with 130 or 143 (128 + the signal's number, the shell's code for "ended by
// that signal") so that `lmforge pretrain ... && next` stops; a second signal ends it at once.
import { constants } from "node:os";
import { pretrain } from "../train/index.js";
import type { PretrainOptions } from "../train/index.js";
import { Progress } from "./progress.js";

export async function pretrainCommand(v: Record<string, unknown>): Promise<void> {
  const progress = new Progress("pretrain");
  const { config: _config, ...options } = v;
  const r = await pretrain({
    ...(options as unknown as PretrainOptions),
    onStep: (s) => progress.update(s.step, s.maxSteps, `loss ${s.loss.toFixed(3)} lr ${s.lr.toExponential(2)} ${Math.round(s.tokensPerSec)} tok/s`),
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
  if (r.signal) process.exitCode = 128 + constants.signals[r.signal];
  console.log(`${r.interrupted ? `interrupted${r.signal ? ` by ${r.signal}` : ""} at` : "finished"} step ${r.steps}; model and tokenizer in ${String(v.out)} (log: ${String(v.out)}/metrics.jsonl)`);
}

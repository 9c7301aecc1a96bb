// `lmforge pretrain`: its flags are pretrain()'s option declarations (PRETRAIN_OPTIONS).
import { pretrain } from "../train/index.js";
import type { PretrainOptions } from "../train/index.js";
import { Progress } from "./progress.js";

export async function pretrainCommand(v: Record<string, unknown>): Promise<void> {
  // a launched worker other than rank 0 reports nothing but its own log lines
  const rank = Number(process.env.RANK ?? 0);
  if (rank > 0) {
    const { config: _unused, ...given } = v;
    await pretrain({ ...(given as unknown as PretrainOptions), log: (line) => console.error(`rank ${rank}: ${line}`) });
    return;
  }
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
  console.log(`${r.interrupted ? "interrupted at" : "finished"} step ${r.steps}; model and tokenizer in ${String(v.out)} (log: ${String(v.out)}/metrics.jsonl)`);
}

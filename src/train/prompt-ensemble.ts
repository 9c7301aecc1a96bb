// PET's ensemble of patterns (Schick & Schütze, EACL 2021): prompt-classification with several
// patterns trains one model per pattern (out/pattern-K, each a fine-tuned folder of its own,
// its test set scored), then saves the ensemble in out: the first model with the others
// attached (head "prompt-ensemble:N", one safetensors file), so that evaluate, predict and
// serve load it as any fine-tuned folder; a prediction averages the models' probabilities.
import { join } from "node:path";
import { writeTextAtomic } from "../io/index.js";
import { PROMPT_ENSEMBLE, promptList, taskEntry } from "../tasks/index.js";
import type { ModuleList } from "../nn/index.js";
import type { FinetuneOptions, FinetuneResult } from "./finetune.js";
import type { FinetunedMeta } from "./finetuned.js";

/** Whether a resolved finetune() call is a prompt ensemble (prompt-classification with several patterns). */
export function isPromptEnsemble(o: Record<string, unknown>): boolean {
  return o.task === "prompt-classification" && promptList(o).length > 1;
}

/**
 * Trains the ensemble (see the file comment). `finetune` and `save` are finetune.ts's own,
 * passed in so that this file and finetune.ts do not import each other.
 */
export async function promptEnsembleFinetune(
  o: FinetuneOptions & { out: string; tokenizer?: string; batchSize: number; precision: "fp32" | "bf16" },
  finetune: (o: FinetuneOptions) => Promise<FinetuneResult>,
  save: (model: FinetuneResult["model"], out: string, meta: FinetunedMeta, tokenizerDir: string) => void,
): Promise<FinetuneResult> {
  const prompts = promptList(o);
  const task = taskEntry("prompt-classification");
  const runs: FinetuneResult[] = [];
  for (const [k, prompt] of prompts.entries()) {
    o.log?.(`pattern ${k + 1}/${prompts.length}: "${prompt.pattern}"${prompt.verbalizer ? ` (${Object.entries(prompt.verbalizer).map(([l, w]) => `${l}=${w}`).join(",")})` : ""}`);
    const run = await finetune({ ...o, prompts: undefined, pattern: [prompt.pattern], verbalizer: prompt.verbalizer, out: join(o.out, `pattern-${k + 1}`) });
    runs.push(run);
    if (run.train.interrupted) {
      for (const r of runs) r.model.dispose();
      return run;
    }
  }
  // the first model carries the others, their trained weights copied in
  const first = runs[0]!;
  const head = `prompt-ensemble:${prompts.length}`;
  task.attachHead!(first.model, head, first.labels);
  const members = (first.model as unknown as Record<string, ModuleList>)[PROMPT_ENSEMBLE]!;
  runs.slice(1).forEach((r, i) => {
    members.at(i).loadStateDict(r.model.stateDict());
    r.model.dispose();
  });
  first.model.eval();
  const resolved = prompts.map((p, k) => ({ pattern: p.pattern, ...(runs[k]!.meta.options.verbalizer ? { verbalizer: runs[k]!.meta.options.verbalizer } : {}) }));
  const { pattern: _p, verbalizer: _v, ...shared } = first.meta.options;
  const meta: FinetunedMeta = { ...first.meta, head, options: { ...shared, prompts: resolved } };
  save(first.model, o.out, meta, o.tokenizer ?? o.model);
  const result: FinetuneResult = { ...first, meta };
  const perPattern = runs.map((r) => r.test?.metrics);
  if (first.test) {
    // the test set again, through the ensemble
    const test = first.test.examples;
    const objective = task.objective({ tokenizer: first.tokenizer, labels: first.labels, maxLength: first.meta.max_length, options: meta.options, head, modelHead: "masked-lm" });
    const predictions = objective.predict(first.model, test, { batchSize: o.batchSize, precision: o.precision });
    const scored = task.score(test, predictions, first.labels, meta.options);
    writeTextAtomic(join(o.out, "test_metrics.json"), JSON.stringify({ examples: test.length, ...scored.metrics, report: scored.report, patterns: perPattern }, null, 2) + "\n");
    for (const [name, text] of Object.entries(task.analysis?.(test, predictions, first.labels) ?? {})) writeTextAtomic(join(o.out, name), text);
    result.test = { ...scored, predictions, examples: test };
  }
  return result;
}

// `lmforge baseline`: the classical text classifier (TF-IDF + logistic regression,
// src/train/baseline.ts) on the data `lmforge finetune --task classification` reads, split the
// same way (same flags, same seed: the same parts), scored with the same report as `evaluate`.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { defineOptions, resolveOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { writeTextAtomic } from "../io/index.js";
import type { LabelledExample } from "../data/index.js";

/** The finetune data flags the baseline shares (declared once, in src/train/finetune.ts). */
const SHARED_KEYS = ["train", "validation", "test", "validationFraction", "testFraction", "limit", "skipBadRows", "seed"];

const OWN_OPTIONS = defineOptions([
  { flag: "out", key: "out", type: "string", arg: "DIR", help: "write metrics.json (C grid, report, seconds) and predictions.jsonl (the test part's) to DIR" },
  { flag: "json", key: "json", type: "boolean", default: false, help: "print one JSON object instead of the report" },
] as const satisfies readonly OptionSpec[]);

/** Every flag of `lmforge baseline`: finetune's data flags, the baseline's, the classification task's columns. */
export async function baselineSpecs(): Promise<OptionSpec[]> {
  const { FINETUNE_OPTIONS, BASELINE_OPTIONS } = await import("../train/index.js");
  const { taskEntry } = await import("../tasks/index.js");
  const shared = FINETUNE_OPTIONS.filter((s) => SHARED_KEYS.includes(s.key)).map((s): OptionSpec => {
    if (s.key === "train") return { ...s, required: true, help: "labelled training data: .tsv, .csv, .jsonl, a folder of label sub-folders, spam-assassin, or sotu-party (its own split)" };
    if (s.key === "seed") return { ...s, help: "seed of the train / validation / test split (the same as finetune's with the same seed)" };
    return s;
  });
  return [...shared, ...BASELINE_OPTIONS, ...taskEntry("classification").options, ...OWN_OPTIONS];
}

export async function baselineCommand(v: Record<string, unknown>): Promise<void> {
  const { FINETUNE_OPTIONS, loadSplits, runBaseline, saveBaseline } = await import("../train/index.js");
  const { taskEntry } = await import("../tasks/index.js");
  const task = taskEntry("classification");
  const o: Record<string, unknown> = resolveOptions(await baselineSpecs(), { ...v, log: (line: string) => console.error(line) });
  // loadSplits reads finetune's resolved options: its defaults for what the baseline does not declare
  const splits = loadSplits(task, { ...resolveOptions((FINETUNE_OPTIONS as readonly OptionSpec[]).filter((s) => SHARED_KEYS.includes(s.key) && !s.required), {}), ...o } as never) as { train: LabelledExample[]; validation: LabelledExample[]; test: LabelledExample[] };
  const labels = task.labels(splits.train, o);
  task.check?.(splits.validation, labels, "validation");
  task.check?.(splits.test, labels, "test");
  const r = runBaseline(splits, labels, o as Parameters<typeof runBaseline>[2]);
  if (typeof o.out === "string") {
    mkdirSync(o.out, { recursive: true });
    const files = saveBaseline(o.out, r, splits.test, "");
    for (const [name, text] of Object.entries(task.analysis?.(splits.test, r.test?.predictions ?? [], labels) ?? {})) writeTextAtomic(join(o.out, name), text);
    console.error(`wrote ${files.join(", ")}`);
  }
  if (o.json) {
    console.log(JSON.stringify({ C: r.C, grid: r.grid, vocabulary: r.vocabulary, examples: r.examples, seconds: r.seconds, ...(r.test ? { ...r.test.metrics, report: r.test.report } : {}) }));
    return;
  }
  console.log(`TF-IDF (words and word pairs, ${r.vocabulary.toLocaleString("en-US")} terms) + logistic regression, C ${r.C} chosen on ${r.examples.validation} validation examples, fitted on ${r.examples.train} training examples; ${r.seconds.toFixed(1)} s`);
  if (r.test) console.log(`\ntest set (${r.examples.test} examples):\n${task.formatMetrics(r.test.metrics, r.test.report)}`);
  else console.log("no test examples: give --test, or leave --validation out so that a test part is split off");
}

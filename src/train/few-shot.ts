// The standard k-shot protocol (LM-BFF: Gao, Fisch & Chen, ACL 2021): K training examples per
// class drawn from the training data, stratified and seeded; a development set of the same
// size (K per class) drawn from the rest, not a large one; the full held-out test set. The
// whole run repeats over N draws (seeds seed..seed+N-1), each in out/seed-S (one draw: in out
// itself), and every test metric is reported as mean ± sample standard deviation (few_shot.json).
import { join } from "node:path";
import { Rng } from "../data/random.js";
import { writeTextAtomic } from "../io/atomic.js";
import { defineOptions } from "../io/options.js";
import { allTasks } from "../tasks/index.js";
import type { FinetuneTask } from "../tasks/index.js";
import { meanStd } from "./study.js";
import type { FinetuneOptions, FinetuneResult } from "./finetune.js";

/** finetune()'s few-shot options (and so `lmforge finetune`'s). */
export const FEW_SHOT_OPTIONS = defineOptions([
  { flag: "shots", key: "shots", type: "int", min: 1, arg: "K", help: "few-shot: train on K examples per class and validate on K others per class (stratified, seeded by --seed); test on the whole test data" },
  { flag: "seeds", key: "seeds", type: "int", min: 1, help: "with --shots: repeat over N draws (seeds seed..seed+N-1), each in OUT/seed-S; test metrics as mean ± std in OUT/few_shot.json (default 1: the model in OUT)" },
] as const);

/** The seed of the test split when no test data is given: fixed, whatever --seed says. */
export const TEST_SPLIT_SEED = 0;

/** The file of the summary in the run's folder. */
export const FEW_SHOT_FILE = "few_shot.json";

/** A metric over the seeds: mean, sample standard deviation (n - 1; 0 for one seed) and the values in seed order. */
export interface MetricSummary {
  mean: number;
  std: number;
  values: number[];
}

export interface FewShotSummary {
  task: string;
  shots: number;
  seeds: number[];
  /** Test examples (the same for every seed). */
  testExamples: number;
  /** Every test metric over the seeds. */
  metrics: Record<string, MetricSummary>;
  runs: { seed: number; out: string; metrics: Record<string, number> }[];
}

/** A k-shot draw: indices into the examples, K per class for training and K others per class for validation. */
export interface KShotDraw<X> {
  train: X[];
  validation: X[];
  indices: { train: number[]; validation: number[] };
}

/**
 * Draws K training and K validation examples per class (classes in sorted order, each
 * class's examples shuffled by one seeded stream); the two draws are disjoint. A class with
 * fewer than 2K examples is an error naming it.
 */
export function drawKShot<X extends { label: string }>(examples: readonly X[], k: number, seed: number): KShotDraw<X> {
  const byLabel = new Map<string, number[]>();
  examples.forEach((e, i) => byLabel.set(e.label, [...(byLabel.get(e.label) ?? []), i]));
  if (byLabel.size < 2) throw new Error(`--shots: the training data has ${byLabel.size} class(es); a k-shot draw needs at least 2`);
  const rng = new Rng(seed, 0x6b5407);
  const train: number[] = [];
  const validation: number[] = [];
  for (const label of [...byLabel.keys()].sort()) {
    const ids = byLabel.get(label)!;
    if (ids.length < 2 * k) throw new Error(`--shots ${k}: class "${label}" has ${ids.length} training examples; ${k} to train on and ${k} to validate on need ${2 * k}`);
    const order = rng.shuffle([...ids]);
    train.push(...order.slice(0, k));
    validation.push(...order.slice(k, 2 * k));
  }
  // classes interleaved, so that a batch is not one class (the Trainer shuffles again per epoch)
  rng.shuffle(train);
  rng.shuffle(validation);
  return { train: train.map((i) => examples[i]!), validation: validation.map((i) => examples[i]!), indices: { train, validation } };
}

/** Mean ± sample std of each metric over runs (the metrics every run reports, in the first run's order). */
export function summariseMetrics(runs: readonly Record<string, number>[]): Record<string, MetricSummary> {
  const names = Object.keys(runs[0] ?? {}).filter((m) => runs.every((r) => typeof r[m] === "number"));
  return Object.fromEntries(names.map((m) => {
    const values = runs.map((r) => r[m]!);
    return [m, { ...meanStd(values), values }];
  }));
}

/** One line per metric: "accuracy  0.8125 ± 0.0213". */
export function formatFewShot(s: FewShotSummary): string {
  const width = Math.max(...Object.keys(s.metrics).map((m) => m.length));
  const lines = Object.entries(s.metrics).map(([m, x]) => `  ${m.padEnd(width)}  ${x.mean.toFixed(4)} ± ${x.std.toFixed(4)}`);
  return `${s.shots}-shot ${s.task} over ${s.seeds.length} draw(s) (seeds ${s.seeds.join(", ")}), ${s.testExamples} test examples, mean ± std:\n${lines.join("\n")}`;
}

/** The training pool and the test set of a few-shot run, read once for every draw. */
function poolAndTest(task: FinetuneTask, o: FinetuneOptions & { testFraction: number }): { pool: unknown[]; test: unknown[] } {
  const read = (arg: string | unknown[]): unknown[] => {
    if (Array.isArray(arg)) return arg;
    const r = task.read(arg, o);
    if (r.skipped.length) o.log?.(`${arg}: skipped ${r.skipped.length} bad row(s), e.g. ${r.skipped[0]!.source}: ${r.skipped[0]!.reason}`);
    if (r.examples.length === 0) throw new Error(`${arg}: no examples`);
    return r.examples;
  };
  const builtin = typeof o.train === "string" ? task.builtin?.(o.train, o) : null;
  if (builtin) return { pool: builtin.train, test: o.test === undefined ? builtin.test : read(o.test) };
  const all = read(o.train!);
  if (o.test !== undefined) return { pool: all, test: read(o.test) };
  // no test data given: one split of the training data by a fixed seed, so that every draw and
  // every --seed (each run of a few-shot table) is scored on the same test set
  const s = task.split(all, { validation: 0, test: o.testFraction }, TEST_SPLIT_SEED);
  o.log?.(`--shots: ${s.test.length} of ${all.length} examples held out for testing (--test-fraction ${o.testFraction}, split seed ${TEST_SPLIT_SEED}), the same for every draw`);
  return { pool: s.train, test: s.test };
}

/**
 * Runs the k-shot protocol (see the file comment): one finetune() per draw in out/seed-S (one
 * draw: out), the
 * draw saved there as shots.json; writes out/few_shot.json. `finetune` is finetune.ts's own,
 * passed in so that the two files do not import each other. Returns the last draw's run.
 */
export async function fewShotFinetune(task: FinetuneTask, o: FinetuneOptions & { shots: number; seed: number; testFraction: number; out: string }, finetune: (o: FinetuneOptions) => Promise<FinetuneResult>): Promise<FinetuneResult & { fewShot: FewShotSummary }> {
  if (!task.labelsTexts) throw new Error(`--shots: draws K examples per class, for tasks with one label per text (${allTasks().filter((t) => t.labelsTexts).map((t) => t.name).join(", ")}), not ${task.name}`);
  if (o.validation !== undefined) throw new Error("--shots draws its validation set (K per class) from the training data; drop --validation");
  if (o.limit !== undefined) throw new Error("--shots already picks the training examples; drop --limit");
  const { pool, test } = poolAndTest(task, o);
  if (test.length === 0) throw new Error("--shots: no test data to score (give --test, or a --test-fraction above 0)");
  const seeds = Array.from({ length: o.seeds ?? 1 }, (_, i) => o.seed + i);
  const runs: FewShotSummary["runs"] = [];
  let last: FinetuneResult | undefined;
  for (const seed of seeds) {
    const draw = drawKShot(pool as { label: string }[], o.shots, seed);
    const out = seeds.length > 1 ? join(o.out, `seed-${seed}`) : o.out;
    o.log?.(`--shots ${o.shots}, seed ${seed}: ${draw.train.length} training and ${draw.validation.length} validation examples drawn from ${pool.length}; ${test.length} test examples -> ${out}`);
    last?.model.dispose();
    last = await finetune({ ...o, shots: undefined, seeds: undefined, train: draw.train, validation: draw.validation, test, seed, out });
    if (last.train.interrupted) return { ...last, fewShot: { task: task.name, shots: o.shots, seeds: runs.map((r) => r.seed), testExamples: test.length, metrics: summariseMetrics(runs.map((r) => r.metrics)), runs } };
    writeTextAtomic(join(out, "shots.json"), JSON.stringify({ shots: o.shots, seed, pool: pool.length, ...draw.indices }) + "\n");
    runs.push({ seed, out, metrics: last.test!.metrics });
  }
  const summary: FewShotSummary = { task: task.name, shots: o.shots, seeds, testExamples: test.length, metrics: summariseMetrics(runs.map((r) => r.metrics)), runs };
  writeTextAtomic(join(o.out, FEW_SHOT_FILE), JSON.stringify(summary, null, 2) + "\n");
  return { ...last!, fewShot: summary };
}

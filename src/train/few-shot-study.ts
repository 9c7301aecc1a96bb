// `lmforge fewshot`: the few-shot table. Every (method, K, seed) is one k-shot fine-tuning run
// (few-shot.ts) in its own process (study.ts's worker runner; few-shot-worker.ts), in
// out/METHOD/kK/seed-S; a rerun keeps the runs done. fewshot.md and fewshot.json hold each
// (method, K)'s test metrics as mean ± sample std over the seeds, and the per-seed values.
//
// Methods: standard (the classification head on [CLS]), prompt (prompt-classification: PET /
// LM-BFF patterns through the masked-LM head), setfit (the task "setfit", when registered).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeTextAtomic } from "../io/atomic.js";
import { defineOptions, resolveOptions } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { knownTasks } from "../tasks/index.js";
import { FINETUNE_OPTIONS } from "./finetune.js";
import { summariseMetrics } from "./few-shot.js";
import type { MetricSummary } from "./few-shot.js";
import { RESULT_FILE, runWorker } from "./study.js";

/** Each method's fine-tuning task. */
export const FEW_SHOT_METHODS: Readonly<Record<string, string>> = { standard: "classification", prompt: "prompt-classification", setfit: "setfit" };

const list = (what: string, int: boolean) => (text: string): number[] => {
  const xs = text.split(",").map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || (int && (!Number.isInteger(x) || x < 1)))) throw new Error(`must be a comma-separated list of ${what}, got "${text}"`);
  return xs;
};

/** finetune()'s flags that the table sets per run, or that a k-shot run refuses. */
const SET_PER_RUN = new Set(["task", "shots", "seeds", "validation", "limit", "search", "out"]);

/** `lmforge fewshot`'s options: its own, then finetune's (passed to every run). */
export const FEW_SHOT_STUDY_OPTIONS: readonly OptionSpec[] = [
  ...defineOptions([
    { flag: "shots", key: "shots", type: "string", arg: "K,K,...", parse: list("positive integers", true), default: "8,16,32,64", help: "examples per class to train on (and as many to validate on)" },
    { flag: "seeds", key: "seeds", type: "int", min: 1, default: 5, help: "draws per (method, K): seeds seed..seed+N-1, mean ± std" },
    { flag: "methods", key: "methods", type: "string", arg: "M,M,...", default: "standard,prompt", help: `methods: ${Object.entries(FEW_SHOT_METHODS).map(([m, t]) => `${m} (task ${t})`).join(", ")}` },
    { flag: "out", key: "out", type: "string", arg: "DIR", required: true, help: "the study's folder: METHOD/kK/seed-S runs, fewshot.md, fewshot.json" },
  ]),
  ...FINETUNE_OPTIONS.filter((s) => !SET_PER_RUN.has(s.key) && !s.key.startsWith("search")),
];

export interface FewShotStudyOptions {
  model: string;
  train: string;
  test?: string;
  /** "8,16" or [8, 16]. */
  shots?: string | number[];
  seeds?: number;
  methods?: string;
  seed?: number;
  out: string;
  log?: (line: string) => void;
  /** Any other finetune() option, passed to every run. */
  [option: string]: unknown;
}

/** One (method, K, seed) run, as the worker is told. */
export interface FewShotJob {
  name: string;
  dir: string;
  method: string;
  shots: number;
  seed: number;
  /** finetune()'s options, task and out included. */
  options: Record<string, unknown>;
}

/** A run's outcome, as the worker wrote it (result.json). */
export interface FewShotRun {
  method: string;
  shots: number;
  seed: number;
  dir: string;
  metrics: Record<string, number>;
  seconds: number;
  error?: string;
}

/** A (method, K) cell of the table. */
export interface FewShotCell {
  method: string;
  task: string;
  shots: number;
  seeds: number[];
  metrics: Record<string, MetricSummary>;
  failed: { seed: number; error: string }[];
}

/** The method names of a list, each checked: known, and its task registered (setfit comes from another file). */
export function parseMethods(text: string): string[] {
  const methods = text.split(",").map((m) => m.trim()).filter(Boolean);
  if (methods.length === 0) throw new Error("--methods: no method given");
  for (const m of methods) {
    const task = FEW_SHOT_METHODS[m];
    if (!task) throw new Error(`--methods: unknown method "${m}"; the methods are ${Object.keys(FEW_SHOT_METHODS).join(", ")}`);
    if (!knownTasks().includes(task)) throw new Error(`--methods ${m}: needs the fine-tuning task "${task}", which this lmforge does not register (it knows ${knownTasks().join(", ")})`);
  }
  const twice = methods.find((m, i) => methods.indexOf(m) !== i);
  if (twice) throw new Error(`--methods: "${twice}" is given twice`);
  return methods;
}

/** The cells of the table from its runs, in (method, K) order. */
export function fewShotCells(runs: readonly FewShotRun[], methods: readonly string[], shots: readonly number[]): FewShotCell[] {
  return methods.flatMap((method) =>
    shots.map((k) => {
      const mine = runs.filter((r) => r.method === method && r.shots === k);
      const ok = mine.filter((r) => !r.error);
      return { method, task: FEW_SHOT_METHODS[method]!, shots: k, seeds: ok.map((r) => r.seed), metrics: summariseMetrics(ok.map((r) => r.metrics)), failed: mine.filter((r) => r.error).map((r) => ({ seed: r.seed, error: r.error! })) };
    }),
  );
}

/** The table as Markdown: a row per (method, K), accuracy and macro-F1 as mean ± std, the per-seed values; failed runs listed below. */
export function fewShotTable(cells: readonly FewShotCell[]): string {
  const cell = (m: MetricSummary | undefined): string => (m ? `${m.mean.toFixed(4)} ± ${m.std.toFixed(4)}` : "-");
  const seedValues = (m: MetricSummary | undefined): string => (m ? m.values.map((x) => x.toFixed(4)).join(", ") : "-");
  const header = ["method", "K", "seeds", "accuracy", "macro F1", "accuracy per seed", "macro F1 per seed"];
  const body = cells.map((c) => [c.method, String(c.shots), String(c.seeds.length), cell(c.metrics.accuracy), cell(c.metrics.macro_f1), seedValues(c.metrics.accuracy), seedValues(c.metrics.macro_f1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join(" | ")} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`;
  const failed = cells.flatMap((c) => c.failed.map((f) => `${c.method} K=${c.shots} seed ${f.seed} failed: ${f.error}`));
  return [line(header), rule, ...body.map(line), ...(failed.length ? ["", ...failed] : [])].join("\n");
}

/** Runs every (method, K, seed) not done before, each in its own process; writes fewshot.md and fewshot.json; returns the cells. */
export async function fewShotStudy(given: FewShotStudyOptions): Promise<FewShotCell[]> {
  const o = resolveOptions(FEW_SHOT_STUDY_OPTIONS, given as Record<string, unknown>) as FewShotStudyOptions & { shots: number[]; seeds: number; methods: string; seed: number };
  const log = o.log ?? ((line: string) => console.error(line));
  const methods = parseMethods(o.methods);
  const { shots, seeds: n, methods: _m, out, log: _l, ...finetuneOptions } = o;
  const seeds = Array.from({ length: n }, (_, i) => o.seed + i);
  const jobs: FewShotJob[] = methods.flatMap((method) =>
    shots.flatMap((k) =>
      seeds.map((seed) => {
        const dir = join(out, method, `k${k}`, `seed-${seed}`);
        return { name: `${method} K=${k} seed ${seed}`, dir, method, shots: k, seed, options: { ...finetuneOptions, task: FEW_SHOT_METHODS[method], shots: k, seed, out: dir } };
      }),
    ),
  );
  const runs: FewShotRun[] = [];
  for (const [i, job] of jobs.entries()) {
    const done = join(job.dir, RESULT_FILE);
    const before = existsSync(done) ? (JSON.parse(readFileSync(done, "utf8")) as FewShotRun) : null;
    if (before && !before.error) {
      log(`[${i + 1}/${jobs.length}] ${job.name}: done before (${done}), kept`);
      runs.push({ ...before, dir: job.dir });
      continue;
    }
    log(`[${i + 1}/${jobs.length}] ${job.name}`);
    const error = await runWorker(job, (line) => log(`  ${line}`), "./few-shot-worker.js");
    const run: FewShotRun = error === null && existsSync(done) ? (JSON.parse(readFileSync(done, "utf8")) as FewShotRun) : { method: job.method, shots: job.shots, seed: job.seed, dir: job.dir, metrics: {}, seconds: NaN, error: error ?? "the worker wrote no result" };
    if (run.error) {
      log(`  ${job.name} failed: ${run.error}`);
      writeTextAtomic(done, JSON.stringify(run, null, 2) + "\n");
    }
    runs.push(run);
  }
  const cells = fewShotCells(runs, methods, shots);
  const source = { model: o.model, train: o.train, ...(o.test !== undefined ? { test: o.test } : {}) };
  writeTextAtomic(join(out, "fewshot.json"), JSON.stringify({ ...source, methods, shots, seeds, cells, runs }, null, 2) + "\n");
  writeTextAtomic(join(out, "fewshot.md"), `Few-shot: ${o.model} on ${o.train}${o.test !== undefined ? ` (test ${o.test})` : ""}, test metrics as mean ± std over seeds ${seeds.join(", ")}\n\n${fewShotTable(cells)}\n`);
  return cells;
}

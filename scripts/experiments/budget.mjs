#!/usr/bin/env node
// Issue 21's table: what each step of "the best model a CPU afternoon allows" moves, on real
// classification tasks, against the TF-IDF baseline. Rows: the baseline, the same model from
// random weights, the pretrained model (truncated: the reference row) and windowed, with
// task-adaptive pretraining, the reference row's three seeds distilled (as an ensemble) into the
// same pretrained student, and each fine-tuning recipe on top of the reference row. Every transformer row shares the
// budget (epochs, learning rate, batch, precision, evaluations); a recipe row differs from the
// reference row only by its flags. Test macro-F1 is the mean ± sample std over the seeds (the
// seed draws the data order, dropout and the head; with --data the parts are fixed files, else
// the built-in datasets' parts move with the seed, and the TF-IDF baseline runs seed by seed;
// on fixed parts it is deterministic and runs once).
//
// Usage:
//   node scripts/experiments/budget.mjs --model DIR --out DIR [--tasks spam,sotu] [--seeds 1,2,3]
//     [--jobs 2] [--data DIR] [--only ROW,ROW (runs only these; the table keeps every row with results)] [--dry-run] [-- finetune flags shared by every transformer row]
// Each child runs with one thread (OMP_NUM_THREADS=1 unless set); --jobs children at once.
// A rerun keeps the runs already done (their test metrics) and resumes the stopped ones from
// their checkpoints, so a stopped study goes on where it stopped.
// Writes OUT/results.md and OUT/results.json.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: o, positionals: extra } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string" },
    out: { type: "string" },
    tasks: { type: "string", default: "spam,sotu" },
    seeds: { type: "string", default: "1,2,3" },
    jobs: { type: "string", default: "2" },
    data: { type: "string" },
    only: { type: "string" },
    "adapt-steps": { type: "string", default: "150" },
    "dry-run": { type: "boolean", default: false },
  },
});
if (!o.model || !o.out) {
  console.error("usage: node scripts/experiments/budget.mjs --model DIR --out DIR [--tasks spam,sotu] [--seeds 1,2,3] [--jobs 2] [--data DIR] [--only a,b] [--adapt-steps 150] [--dry-run] [-- finetune flags]");
  process.exit(2);
}

/**
 * The tasks' data: with --data DIR, fixed files DIR/{spam,sotu}-{train,validation,test}.jsonl
 * (the same mails and passages for every seed: see scripts/experiments/budget-data.mjs), else the
 * built-in datasets (whose parts then move with --seed).
 */
const files = (t) => ["--train", join(o.data, `${t}-train.jsonl`), "--validation", join(o.data, `${t}-validation.jsonl`), "--test", join(o.data, `${t}-test.jsonl`)];
const TASKS = o.data
  ? {
      spam: { data: files("spam"), what: "SpamAssassin (embedded), the seed-42 split: 4,836 / 605 / 605 mails (train / validation / test), the same for every seed" },
      sotu: { data: files("sotu"), what: "State of the Union passages by party, split by address: 3,000 training and 500 validation passages sampled once, all 1,054 test passages" },
    }
  : {
      spam: { data: ["--train", "spam-assassin"], what: "SpamAssassin (embedded), split by --seed" },
      sotu: { data: ["--train", "sotu-party", "--limit", "3000"], what: "sotu-party, 3,000 training passages sampled by --seed, validation and test scaled with it" },
    };

const REF = ["--long-text", "truncate"];
/** [name, command, flags, what], in the order run: recipe rows build on the reference row's flags. */
const ROWS = [
  ["tfidf", "baseline", [], "TF-IDF word 1-2-grams + logistic regression, C on validation"],
  ["pretrained", "finetune", REF, "pretrained, the first --max-length tokens: the reference row"],
  ["scratch", "finetune", [...REF, "--from-scratch"], "the same architecture from random weights"],
  ["windows", "finetune", ["--long-text", "windows"], "pretrained, every window of the text (mean of logits, at most 8)"],
  ["adapt", "finetune", [...REF, "--adapt", o["adapt-steps"]], `task-adaptive MLM on the training text first (${o["adapt-steps"]} steps)`],
  ["distill", "distill", REF, "the reference row's 3 seeds as an ensemble teacher, the same pretrained student"],
  ["llrd", "finetune", [...REF, "--layer-lr-decay", "0.8"], "layer-wise lr decay 0.8"],
  ["reinit", "finetune", [...REF, "--reinit-layers", "1"], "top layer re-initialised"],
  ["warmup", "finetune", [...REF, "--warmup-ratio", "0.3"], "longer warmup (30% of the steps; bias correction on, as always)"],
  ["swa", "finetune", [...REF, "--swa", "3"], "average of the last 3 evaluations, kept if better on validation"],
  ["label-smoothing", "finetune", [...REF, "--label-smoothing", "0.1"], "label smoothing 0.1"],
  ["mixout", "finetune", [...REF, "--mixout", "0.5", "--dropout", "0"], "mixout 0.5 instead of dropout"],
  ["rdrop", "finetune", [...REF, "--rdrop", "1"], "R-Drop, alpha 1 (two passes per step)"],
  ["no-bias-correction", "finetune", [...REF, "--no-bias-correction"], "AdamW without bias correction (BERTAdam)"],
];

const seeds = o.seeds.split(",").map(Number);
const tasks = o.tasks.split(",");
for (const t of tasks) if (!TASKS[t]) throw new Error(`--tasks: unknown task "${t}" (known: ${Object.keys(TASKS).join(", ")})`);
const only = o.only ? new Set(o.only.split(",")) : null;
for (const name of only ?? []) if (!ROWS.some(([row]) => row === name)) throw new Error(`--only: unknown row "${name}" (known: ${ROWS.map(([row]) => row).join(", ")})`);
if (!(Number.isInteger(Number(o.jobs)) && Number(o.jobs) >= 1)) throw new Error(`--jobs must be a whole number >= 1, got "${o.jobs}"`);
const rows = ROWS.filter(([name]) => !only || only.has(name));
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const env = { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1", OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? "PASSIVE" };
mkdirSync(o.out, { recursive: true });

const dirOf = (row, task, seed) => join(o.out, task, row, `seed-${seed}`);
const metricsOf = (row, task, seed) => join(dirOf(row, task, seed), row === "tfidf" ? "metrics.json" : "test_metrics.json");

function argsOf(name, command, flags, task, seed) {
  const out = ["--out", dirOf(name, task, seed), "--seed", String(seed)];
  if (command === "baseline") return ["baseline", ...TASKS[task].data, ...out];
  if (command === "distill") {
    const teachers = seeds.map((s) => dirOf("pretrained", task, s)).join(",");
    return ["distill", "--teacher", teachers, "--student", o.model, ...TASKS[task].data, "--patience", "0", ...extra, ...flags, ...out];
  }
  return ["finetune", "--model", o.model, ...TASKS[task].data, "--patience", "0", ...extra, ...flags, ...out];
}

const jobs = [];
for (const [name, command, flags, what] of rows)
  for (const task of tasks)
    for (const seed of command === "baseline" && o.data ? [seeds[0]] : seeds) jobs.push({ name, command, flags, what, task, seed, after: command === "distill" ? seeds.map((s) => metricsOf("pretrained", task, s)) : [] });

function runOne(job) {
  const { name, command, flags, task, seed } = job;
  const dir = dirOf(name, task, seed);
  if (existsSync(metricsOf(name, task, seed))) return Promise.resolve();
  const args = argsOf(name, command, flags, task, seed);
  // a run stopped by a signal left its checkpoints: continue it exactly
  if (command === "finetune" && existsSync(dir) && readdirSync(dir).some((f) => f.startsWith("checkpoint-"))) args.push("--resume");
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${task} ${name} seed ${seed}: lmforge ${args.join(" ")}`);
  if (o["dry-run"]) return Promise.resolve();
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    child.on("close", (code) => {
      writeFileSync(join(dir, "run.log"), log);
      const seconds = (Date.now() - t0) / 1000;
      if (code !== 0) console.error(`${task} ${name} seed ${seed}: failed (exit ${code}); ${join(dir, "run.log")}\n${log.trim().split("\n").slice(-4).join("\n")}`);
      else {
        writeFileSync(join(dir, "seconds.json"), JSON.stringify({ seconds }) + "\n");
        console.log(`[${new Date().toISOString().slice(11, 19)}] ${task} ${name} seed ${seed}: ${seconds.toFixed(0)} s, test macro-F1 ${readF1(name, task, seed)?.toFixed(4)}`);
      }
      resolve();
    });
  });
}

function readF1(name, task, seed) {
  const f = metricsOf(name, task, seed);
  if (!existsSync(f)) return undefined;
  const m = JSON.parse(readFileSync(f, "utf8"));
  // baseline: metrics.json holds the test report under "test"; finetune: the report itself
  return (m.test ?? m).macro_f1;
}

// a pool of --jobs workers; a job whose inputs (the distillation's teachers) are not ready waits
const pending = [...jobs];
async function worker() {
  for (;;) {
    const i = pending.findIndex((j) => j.after.every((f) => existsSync(f)) || o["dry-run"]);
    if (i < 0) {
      if (pending.length === 0) return;
      if (!pending.some((j) => j.command !== "distill") && running === 0) return; // teachers failed: nothing can start
      await new Promise((r) => setTimeout(r, 5000));
      continue;
    }
    const [job] = pending.splice(i, 1);
    running++;
    await runOne(job);
    running--;
  }
}
let running = 0;
await Promise.all(Array.from({ length: Number(o.jobs) }, worker));

// the table
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs) => (xs.length < 2 ? NaN : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(4) : "–");
// every row with results, whatever --only ran: a partial rerun does not shrink the table it writes
const results = ROWS.map(([name, command, flags, what]) => {
  const perTask = {};
  for (const task of tasks) {
    const runs = seeds.map((seed) => {
      const f1 = readF1(name, task, seed);
      const sf = join(dirOf(name, task, seed), "seconds.json");
      return f1 === undefined ? null : { seed, macroF1: f1, seconds: existsSync(sf) ? JSON.parse(readFileSync(sf, "utf8")).seconds : NaN };
    }).filter(Boolean);
    perTask[task] = { runs, mean: runs.length ? mean(runs.map((r) => r.macroF1)) : NaN, std: std(runs.map((r) => r.macroF1)), seconds: runs.length ? mean(runs.map((r) => r.seconds)) : NaN };
  }
  return { name, command, flags: flags.join(" "), what, perTask };
});
const ref = results.find((r) => r.name === "pretrained");
const cell = (r, task) => {
  const t = r.perTask[task];
  if (!t.runs.length) return "–";
  const d = ref && r !== ref && r.command !== "baseline" && Number.isFinite(ref.perTask[task].mean) ? ` (${t.mean - ref.perTask[task].mean >= 0 ? "+" : ""}${(t.mean - ref.perTask[task].mean).toFixed(4)})` : "";
  return `${fmt(t.mean)}${t.runs.length > 1 ? ` ± ${fmt(t.std)}` : ""}${d} [${t.runs.length}] ${Number.isFinite(t.seconds) ? `${t.seconds.toFixed(0)} s` : ""}`;
};
const lines = [
  `Model: ${o.model}; shared fine-tuning flags: \`${extra.join(" ") || "(defaults)"}\`; seeds ${seeds.join(",")}; one thread per run, ${o.jobs} runs at once.`,
  ...tasks.map((t) => `- ${t}: ${TASKS[t].what}`),
  "",
  `| row | what | flags | ${tasks.map((t) => `${t}: test macro-F1 (Δ vs pretrained) [runs] s/run`).join(" | ")} |`,
  `|---|---|---|${tasks.map(() => "---").join("|")}|`,
  ...results.map((r) => `| ${r.name} | ${r.what} | \`${r.flags || "–"}\` | ${tasks.map((t) => cell(r, t)).join(" | ")} |`),
  "",
];
writeFileSync(join(o.out, "results.md"), lines.join("\n"));
writeFileSync(join(o.out, "results.json"), JSON.stringify({ options: o, extra, results }, null, 2) + "\n");
console.log(lines.join("\n"));

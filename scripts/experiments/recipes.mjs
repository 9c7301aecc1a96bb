#!/usr/bin/env node
// The fine-tuning recipes of issue 21, each on and off with the same budget: one
// `lmforge finetune` process per (recipe, seed), the same data, epochs, learning rate,
// evaluations and seeds for every row; the only difference is the recipe's flags. Writes a
// markdown table of test macro-F1 (mean ± sample std over the seeds) and accuracy to
// OUT/results.md (and OUT/results.json). A rerun keeps the runs already done (their
// test_metrics.json), so a stopped study goes on where it stopped.
//
// Usage:
//   node scripts/experiments/recipes.mjs --model DIR --tokenizer DIR --train spam-assassin --out DIR
//     [--limit N] [--epochs 1] [--seeds 1,2,3] [--eval-every N] [--only baseline,llrd,...]
//     [-- any other finetune flags, the same for every run]
// Each child runs with OMP_NUM_THREADS=1 unless the environment sets it.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** The rows: a name, the flags that turn the recipe on, and what it is. The baseline has none. */
const RECIPES = [
  ["baseline", [], "AdamW with bias correction, warmup 10%, linear decay, dropout 0.1"],
  ["llrd", ["--layer-lr-decay", "0.8"], "layer-wise lr decay D = 0.8"],
  ["reinit", ["--reinit-layers", "1"], "top layer and pooler re-initialised"],
  ["no-bias-correction", ["--no-bias-correction"], "BERTAdam: no bias correction (expected to hurt)"],
  ["swa", ["--swa", "3"], "average of the last 3 evaluations, kept if better"],
  ["rdrop", ["--rdrop", "1"], "R-Drop, α = 1"],
  ["label-smoothing", ["--label-smoothing", "0.1"], "label smoothing ε = 0.1"],
  ["mixout", ["--mixout", "0.5", "--dropout", "0"], "mixout p = 0.5 instead of dropout"],
];

const { values: o, positionals: extra } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string" },
    tokenizer: { type: "string" },
    train: { type: "string", default: "spam-assassin" },
    out: { type: "string" },
    limit: { type: "string" },
    epochs: { type: "string", default: "1" },
    seeds: { type: "string", default: "1,2,3" },
    "eval-every": { type: "string" },
    "learning-rate": { type: "string", default: "1e-4" },
    only: { type: "string" },
  },
});
if (!o.model || !o.out) {
  console.error("usage: node scripts/experiments/recipes.mjs --model DIR [--tokenizer DIR] --out DIR [--train spam-assassin] [--limit N] [--epochs 1] [--seeds 1,2,3] [--eval-every N] [--learning-rate 1e-4] [--only a,b] [-- finetune flags]");
  process.exit(2);
}
const seeds = o.seeds.split(",").map(Number);
const only = o.only ? new Set(o.only.split(",")) : null;
const rows = RECIPES.filter(([name]) => !only || only.has(name));
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const env = { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1", OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? "PASSIVE" };
mkdirSync(o.out, { recursive: true });

// the budget every row shares; patience 0: no row stops early, every row sees every evaluation
const shared = ["--model", o.model, "--train", o.train, "--epochs", o.epochs, "--learning-rate", o["learning-rate"], "--patience", "0", "--precision", "fp32"];
if (o.tokenizer) shared.push("--tokenizer", o.tokenizer);
if (o.limit) shared.push("--limit", o.limit);
// SWA needs several evaluations: every row evaluates as often (evaluation does not change training)
if (o["eval-every"]) shared.push("--eval-every", o["eval-every"]);
shared.push(...extra);

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs) => (xs.length < 2 ? NaN : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));

const results = [];
for (const [name, flags, what] of rows) {
  const runs = [];
  for (const seed of seeds) {
    const dir = join(o.out, name, `seed-${seed}`);
    const metricsFile = join(dir, "test_metrics.json");
    let seconds = NaN;
    if (!existsSync(metricsFile)) {
      const args = [cli, "finetune", ...shared, "--seed", String(seed), "--out", dir, ...flags];
      console.log(`${name}, seed ${seed}: node ${args.slice(1).join(" ")}`);
      const t0 = Date.now();
      mkdirSync(dir, { recursive: true });
      const r = spawnSync(process.execPath, args, { env, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
      seconds = (Date.now() - t0) / 1000;
      writeFileSync(join(dir, "run.log"), `${r.stdout ?? ""}${r.stderr ?? ""}`);
      if (r.status !== 0) {
        console.error(`${name}, seed ${seed}: failed (exit ${r.status}); see ${join(dir, "run.log")}\n${(r.stderr ?? "").trim().split("\n").slice(-5).join("\n")}`);
        continue;
      }
      writeFileSync(join(dir, "seconds.json"), JSON.stringify({ seconds }) + "\n");
    } else if (existsSync(join(dir, "seconds.json"))) seconds = JSON.parse(readFileSync(join(dir, "seconds.json"), "utf8")).seconds;
    const m = JSON.parse(readFileSync(metricsFile, "utf8"));
    const swa = existsSync(join(dir, "swa.json")) ? JSON.parse(readFileSync(join(dir, "swa.json"), "utf8")) : null;
    runs.push({ seed, macroF1: m.macro_f1, accuracy: m.accuracy, seconds, ...(swa ? { swaKept: swa.kept } : {}) });
    console.log(`${name}, seed ${seed}: test macro-F1 ${m.macro_f1.toFixed(4)}, accuracy ${m.accuracy.toFixed(4)}${swa ? `, SWA ${swa.kept ? "kept" : "not kept"}` : ""}`);
  }
  results.push({ name, flags: flags.join(" "), what, runs });
}

const f = (x) => (Number.isFinite(x) ? x.toFixed(4) : "–");
const base = results.find((r) => r.name === "baseline");
const baseF1 = base?.runs.length ? mean(base.runs.map((r) => r.macroF1)) : NaN;
const lines = [
  `Fine-tuning recipes: ${o.model} on ${o.train}${o.limit ? ` (--limit ${o.limit})` : ""}, ${o.epochs} epoch(s), lr ${o["learning-rate"]}, seeds ${seeds.join(",")}${o["eval-every"] ? `, evaluation every ${o["eval-every"]} steps` : ""}${extra.length ? `, ${extra.join(" ")}` : ""}; test set scores (the best validation macro-F1's weights).`,
  "",
  "| recipe | flags | test macro-F1 (mean ± std) | Δ vs baseline | test accuracy (mean) | runs | s/run |",
  "|---|---|---|---|---|---|---|",
  ...results.map((r) => {
    const f1 = r.runs.map((x) => x.macroF1);
    const m = f1.length ? mean(f1) : NaN;
    const delta = r.name === "baseline" || !Number.isFinite(m) || !Number.isFinite(baseF1) ? "" : `${m - baseF1 >= 0 ? "+" : ""}${(m - baseF1).toFixed(4)}`;
    const kept = r.runs.some((x) => x.swaKept !== undefined) ? ` (average kept in ${r.runs.filter((x) => x.swaKept).length})` : "";
    return `| ${r.name}${kept} | \`${r.flags || "–"}\` | ${f(m)} ± ${f(std(f1))} | ${delta} | ${f(r.runs.length ? mean(r.runs.map((x) => x.accuracy)) : NaN)} | ${r.runs.length}/${seeds.length} | ${f1.length ? mean(r.runs.map((x) => x.seconds)).toFixed(0) : "–"} |`;
  }),
  "",
];
writeFileSync(join(o.out, "results.md"), lines.join("\n"));
writeFileSync(join(o.out, "results.json"), JSON.stringify({ options: o, extra, results }, null, 2) + "\n");
console.log(lines.join("\n"));

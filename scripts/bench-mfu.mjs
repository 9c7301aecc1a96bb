#!/usr/bin/env node
// Recomputes the MFU of a bench run's model rows from its own figures (tokens/s and the GEMM
// ceiling it measured) with the current FLOP count (dist/bench/models.js), and writes the file
// back: MFU is derived from what was measured, so a corrected formula needs no new run.
//   node scripts/bench-mfu.mjs bench/results/LAST.json
// Equal-work training rows get an MFU; as-run rows lose theirs (they skip some of the model's FLOPs).
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { flopsPerToken, modelCases, parameterCount } from "../dist/bench/models.js";

const file = process.argv[2];
if (!file) {
  console.error("usage: node scripts/bench-mfu.mjs RESULTS.json");
  process.exit(2);
}
const result = JSON.parse(readFileSync(file, "utf8"));
if (!result.ceiling) {
  console.error(`bench-mfu: ${file}: no GEMM ceiling (the run had no gemm bench)`);
  process.exit(1);
}
const cases = new Map(modelCases(result.quick).map((c) => [c.name, c]));
for (const row of result.rows) {
  if (row.bench !== "models") continue;
  const c = cases.get(row.name);
  if (!c) {
    console.error(`bench-mfu: ${file}: "${row.name}" is not a case of this bench any more: its MFU left as it was`);
    continue;
  }
  delete row.mfu;
  if (!c.train || c.work !== "equal") continue;
  const flops = flopsPerToken(c, parameterCount(c));
  const gflops = result.ceiling[c.precision];
  row.mfu = { lmforge: (row.lmforge * flops) / 1e9 / gflops, pytorch: (row.pytorch * flops) / 1e9 / gflops };
  console.log(`${row.name}: MFU ${(100 * row.mfu.lmforge).toFixed(1)}% / ${(100 * row.mfu.pytorch).toFixed(1)}%`);
}
writeFileSync(`${file}.tmp`, JSON.stringify(result) + "\n");
renameSync(`${file}.tmp`, file);

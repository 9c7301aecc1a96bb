#!/usr/bin/env node
// Prints the markdown table of a bench run's JSON, for the README's performance section:
//   node bin/lmforge.js bench all --json > bench/results/LAST.json
//   node scripts/bench-table.mjs bench/results/LAST.json
// Needs the compiled bench (npx tsc -p tsconfig.json: dist/bench/table.js).
import { readFileSync } from "node:fs";
import { markdownTable } from "../dist/bench/table.js";

const file = process.argv[2];
if (!file) {
  console.error("usage: node scripts/bench-table.mjs RESULTS.json (from lmforge bench all --json)");
  process.exit(2);
}
let result;
try {
  result = JSON.parse(readFileSync(file, "utf8"));
} catch (e) {
  console.error(`bench-table: ${file}: ${e.message}`);
  process.exit(1);
}
if (!Array.isArray(result.rows)) {
  console.error(`bench-table: ${file}: no "rows" array (is it the output of lmforge bench --json?)`);
  process.exit(1);
}
console.log(markdownTable(result));
if (result.notes?.length) console.log(`\n${result.notes.join("\n")}`);

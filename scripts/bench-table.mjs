#!/usr/bin/env node
// Prints the markdown table of bench runs' JSON, for the README's performance section:
//   node bin/lmforge.js bench all --json > bench/results/LAST.json
//   node scripts/bench-table.mjs bench/results/LAST.json [MORE.json ...]
// Several files (a full run and a later run of added cases) print one table each, each with its
// own conditions line. Needs the compiled bench (npx tsc -p tsconfig.json: dist/bench/table.js).
import { readFileSync } from "node:fs";
import { markdownTable } from "../dist/bench/table.js";

const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node scripts/bench-table.mjs RESULTS.json [MORE.json ...] (from lmforge bench --json)");
  process.exit(2);
}
const tables = files.map((file) => {
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
  return markdownTable(result) + (result.notes?.length ? `\n\n${result.notes.join("\n")}` : "");
});
console.log(tables.join("\n\n"));

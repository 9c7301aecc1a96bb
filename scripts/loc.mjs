#!/usr/bin/env node
// Reports the line count of each layer (STYLE.md: watch the size of the core).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function count(dir, ext) {
  let files = 0, lines = 0;
  let entries = [];
  try { entries = readdirSync(dir); } catch { return { files, lines }; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      if (e === "generated") continue;
      const c = count(p, ext);
      files += c.files; lines += c.lines;
    } else if (ext.some((x) => e.endsWith(x))) {
      files++;
      lines += readFileSync(p, "utf8").split("\n").length;
    }
  }
  return { files, lines };
}
const rows = [];
for (const layer of readdirSync("src").filter((d) => statSync(join("src", d)).isDirectory())) rows.push([`src/${layer}`, count(join("src", layer), [".ts"])]);
rows.push(["native (hand-written)", count("native", [".cc", ".h"])]);
rows.push(["test", count("test", [".ts"])]);
console.log("lines per layer (generated code not counted):");
for (const [name, c] of rows) console.log(`  ${name.padEnd(24)} ${String(c.lines).padStart(6)} lines in ${c.files} files`);

// The bench's tables: plain text for the terminal, markdown for the README (scripts/bench-table.mjs).
import type { BenchResult } from "./suite.js";
import type { BenchRow } from "./row.js";

const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3));
const pct = (x: number | undefined): string => (x === undefined ? "" : `${(100 * x).toFixed(1)}%`);
const mfu = (r: BenchRow): string => (r.mfu ? `${pct(r.mfu.lmforge)} / ${pct(r.mfu.pytorch)}` : "");
const rss = (r: BenchRow): string => `${r.rssMB.lmforge.toFixed(0)} / ${r.rssMB.pytorch.toFixed(0)}`;

/** One line saying under which conditions the figures were taken. */
export function conditions(r: BenchResult): string {
  const ceiling = r.ceiling ? `; GEMM ceiling ${r.ceiling.fp32.toFixed(0)} GFLOP/s fp32, ${r.ceiling.bf16.toFixed(0)} bf16` : "";
  return (
    `${r.date.slice(0, 10)}, ${r.cpu} (${r.cores} cores, load ${r.load.before.toFixed(1)} -> ${r.load.after.toFixed(1)}), ` +
    `lmforge on libtorch ${r.libtorch}${r.runtime?.malloc ? ` (${r.runtime.malloc})` : ""} vs PyTorch ${r.pytorch}${r.peerAllocator ? ` (${r.peerAllocator === "default" ? "glibc malloc" : r.peerAllocator})` : ""}, ${r.threads} threads, median of ${r.repeats}${r.quick ? ", --quick sizes" : ""}${ceiling}`
  );
}

/** The rows as a markdown table: case, work, both figures, speedup, the peer's variant, MFU and peak RSS of both sides. */
export function markdownTable(r: BenchResult): string {
  const lines = [
    `Measured ${conditions(r)}.`,
    "",
    "| case | work | unit | lmforge | PyTorch | lmforge faster by | PyTorch variant | MFU lmforge / PyTorch | peak RSS MiB lmforge / PyTorch |",
    "|---|---|---|---:|---:|---:|---|---:|---:|",
    ...r.rows.map((x) => `| ${x.name} | ${x.work} | ${x.unit} | ${fmt(x.lmforge)} | ${fmt(x.pytorch)} | ${x.speedup.toFixed(2)}x | ${x.peer} | ${mfu(x)} | ${rss(x)} |`),
  ];
  return lines.join("\n");
}

/** The rows for a terminal, then the notes. */
export function textTable(r: BenchResult): string {
  const head = `${"case".padEnd(80)} ${"work".padEnd(6)} ${"lmforge".padStart(9)} ${"peer".padStart(9)} ${"faster".padStart(7)}  ${"MFU ours/peer".padEnd(15)} ${"RSS MiB".padEnd(11)} unit, peer variant`;
  const rows = r.rows.map(
    (x) => `${x.name.padEnd(80)} ${x.work.padEnd(6)} ${fmt(x.lmforge).padStart(9)} ${fmt(x.pytorch).padStart(9)} ${`${x.speedup.toFixed(2)}x`.padStart(7)}  ${mfu(x).padEnd(15)} ${rss(x).padEnd(11)} ${x.unit}, ${x.peer}`,
  );
  return [`benchmarks: ${conditions(r)}`, head, ...rows, ...r.notes].join("\n");
}

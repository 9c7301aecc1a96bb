// `lmforge ablate` and `lmforge compare`: see src/train/ablate.ts and src/train/compare.ts.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeReports } from "../report/write.js";
import { ABLATION_COLUMNS, ablate } from "../train/ablate.js";
import type { AblateOptions } from "../train/ablate.js";
import { COMPARE_COLUMNS, compare } from "../train/compare.js";
import type { CompareOptions } from "../train/compare.js";
import { studyTable } from "../train/study.js";
import type { StudyRow } from "../train/study.js";

/** Prints the table; the models' pretraining curves overlaid, with their final metrics, in OUT/report.html. */
function finish(rows: StudyRow[], table: string, out: string, name: string): void {
  const runs = rows.map((r) => join(r.dir, "pretrained")).filter((d) => existsSync(join(d, "metrics.jsonl")));
  const report = runs.length ? writeReports(runs, join(out, "report.html"), { title: `lmforge ${name === "ablation" ? "ablate" : "compare"}: pretraining` }) : null;
  console.log(`\n${table}\n\ntable: ${join(out, `${name}.md`)}, figures: ${join(out, `${name}.json`)}${report ? `, curves: ${report}` : ""}`);
  if (rows.some((r) => r.error)) process.exitCode = 1;
}

export async function ablateCommand(v: Record<string, unknown>): Promise<void> {
  const rows = await ablate(v as unknown as AblateOptions);
  finish(rows, studyTable(rows, ABLATION_COLUMNS), v.out as string, "ablation");
}

export async function compareCommand(v: Record<string, unknown>): Promise<void> {
  const rows = await compare(v as unknown as CompareOptions);
  finish(rows, studyTable(rows, COMPARE_COLUMNS), v.out as string, "comparison");
}

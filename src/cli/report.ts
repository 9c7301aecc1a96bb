// `lmforge report RUN_DIR... [--out FILE]`: one run folder gets its report.html again (or at
// --out); several get one page with their curves overlaid and their final metrics side by
// side (default compare.html). A folder that is no run but holds runs (a quickstart's output)
// stands for the runs in it. Also reportAfterRun, which pretrain, finetune and evaluate call
// when they end.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { defineOptions } from "../io/options.js";
import { findRuns, isRunDir } from "../report/run.js";
import type { RunStatus } from "../report/run.js";
import { writeReports, writeRunReport } from "../report/write.js";
import { UsageError } from "./errors.js";

export const REPORT_OPTIONS = defineOptions([
  { flag: "out", key: "out", type: "string", arg: "FILE", help: "where to write (default: RUN_DIR/report.html for one run, compare.html for several)" },
  { flag: "title", key: "title", type: "string", arg: "TEXT", help: "the page's title (default: the run's name, or Comparison of N runs)" },
]);

/** The run folders of the arguments: each one a run, or the runs under it. */
export function reportDirs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (!existsSync(a) || !statSync(a).isDirectory()) throw new UsageError(`${a}: no such folder`);
    const runs = isRunDir(a) ? [a] : findRuns(a, 2);
    if (runs.length === 0) throw new UsageError(`${a}: not a run folder (no metrics.jsonl, eval_metrics.json or search_results.json), and none below it`);
    out.push(...runs);
  }
  return out;
}

export async function reportCommand(v: Record<string, unknown>, args: string[]): Promise<void> {
  if (args.length === 0) throw new UsageError("give one or more run folders: lmforge report RUN_DIR... [--out FILE]");
  const dirs = reportDirs(args);
  const path = writeReports(dirs, typeof v.out === "string" ? v.out : undefined, typeof v.title === "string" ? { title: v.title } : {});
  console.log(`${dirs.length > 1 ? `${dirs.length} runs compared` : "report"}: ${path}`);
}

/**
 * Writes a run's report.html when a command ends (finished, interrupted or failed), saying
 * where on stderr. A folder with no run in it (arguments refused before any work), or whose
 * log this command did not touch (started: the command's start, in ms), gets none; a report
 * that cannot be made is a warning, never the run's failure.
 */
export function reportAfterRun(dir: string, status?: RunStatus, started?: number): void {
  if (!existsSync(dir) || !isRunDir(dir)) return;
  const touched = Math.max(0, ...["metrics.jsonl", "search_results.json", "eval_metrics.json"].map((f) => join(dir, f)).filter((f) => existsSync(f)).map((f) => statSync(f).mtimeMs));
  if (started !== undefined && touched < started - 1000) return;
  try {
    const path = writeRunReport(dir, status ? { status } : {});
    console.error(`report: ${path}`);
  } catch (e) {
    console.error(`warning: no report for ${dir}: ${(e as Error).message}`);
  }
}

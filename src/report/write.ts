// Writing reports: report.html in a run's folder (at the end of pretrain, finetune and
// evaluate, interrupted or not), or one comparison file for several runs. Written atomically:
// a dashboard or browser reading the file sees the old report or the new, never half of one.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeTextAtomic } from "../io/atomic.js";
import { findRuns, readRun } from "./run.js";
import type { RunStatus } from "./run.js";
import { renderComparison, renderRunReport } from "./html.js";
import type { ReportOptions } from "./html.js";
import { evaluationSection, searchSection } from "./sections.js";

export interface WriteReportOptions extends ReportOptions {
  /** Where to write (default: report.html in the run's folder). */
  out?: string;
  /** How the run ended, where the caller knows (an interrupted run). */
  status?: RunStatus;
}

/**
 * Writes a run folder's report and returns its path. A hyperparameter search's folder gets
 * its trials overlaid, with the search's table first (and each trial its own report).
 */
export function writeRunReport(dir: string, o: WriteReportOptions = {}): string {
  const run = readRun(dir, o.status ? { status: o.status } : {});
  const out = o.out ?? join(dir, "report.html");
  if (run.kind === "search") {
    const trials = findRuns(join(dir, "trials"), 1).filter((d) => existsSync(join(d, "metrics.jsonl")));
    for (const t of trials) writeRunReport(t);
    if (trials.length) {
      const html = renderComparison(
        trials.map((t) => readRun(t)),
        {
          title: o.title ?? `${run.name}: hyperparameter search`,
          intro: [`<h2>Trials</h2>${searchSection(run.search ?? {})}`, ...(run.evaluation ? [`<h2>Test set, the best trial's model</h2>${evaluationSection(run)}`] : [])],
        },
      );
      writeTextAtomic(out, html);
      return out;
    }
  }
  writeTextAtomic(out, renderRunReport(run, o));
  return out;
}

/**
 * `lmforge report`'s work: one folder gets its report (default RUN_DIR/report.html); several
 * get one page with their curves overlaid and final metrics side by side (default compare.html).
 */
export function writeReports(dirs: readonly string[], out?: string, o: ReportOptions = {}): string {
  if (dirs.length === 0) throw new Error("give at least one run folder");
  if (dirs.length === 1) return writeRunReport(dirs[0]!, { ...o, ...(out ? { out } : {}) });
  const runs = dirs.map((d) => readRun(d));
  const path = out ?? "compare.html";
  writeTextAtomic(path, renderComparison(runs, o));
  return path;
}

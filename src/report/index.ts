// Run reports (one self-contained report.html per run, comparisons of several) and the live dashboard.
export { writeRunReport, writeReports } from "./write.js";
export type { WriteReportOptions } from "./write.js";
export { readRun, findRuns, isRunDir, parseJsonl, finalMetrics, lastRecord } from "./run.js";
export type { RunData, RunKind, RunStatus, ReadRunOptions, Evaluation } from "./run.js";
export { renderRunReport, renderComparison, renderRunList, MAX_STEP_POINTS } from "./html.js";
export type { ReportOptions } from "./html.js";
export { createDashboard, dashboardRuns, DASHBOARD_OPTIONS } from "./dashboard.js";
export type { DashboardOptions } from "./dashboard.js";
export { JsonlFollower } from "./follow.js";

// The reports: one run's (report.html in its folder), several runs overlaid (`lmforge report
// A B --out compare.html`), and the dashboard's pages, all from one renderer. A page is a
// single self-contained file (page.ts): it opens from disk with no network. The charts are
// drawn in the browser by uPlot from the log records carried in the page (client.ts), so the
// report and the live dashboard show the same charts; the tables are made here.
import { finalMetrics, lastRecord } from "./run.js";
import type { RunData } from "./run.js";
import { chartSpecs } from "./charts.js";
import type { LogRecord } from "./charts.js";
import { clientScript } from "./client.js";
import type { ClientPayload } from "./client.js";
import { escapeHtml, page, rowHeader, table } from "./page.js";
import type { Cell } from "./page.js";
import { evaluationSection, metricsTable, searchSection } from "./sections.js";

export interface ReportOptions {
  /** The page's title (default: the run's name, or "Comparison of N runs"). */
  title?: string;
  /** A dashboard page: the event stream to follow, and a link back to the list. */
  live?: { eventsUrl: string; backUrl?: string };
  /** HTML sections put first (made with page.ts's escaping helpers). */
  intro?: readonly string[];
}

/** Step records a page carries at most: a long run's are thinned to every k-th step (and the last). */
export const MAX_STEP_POINTS = 10_000;

/** A record as a page carries it: event, step and numbers to 6 significant digits (no time, no text). */
function compact(r: LogRecord): LogRecord {
  const out: LogRecord = { event: r.event, step: r.step };
  for (const [k, v] of Object.entries(r)) {
    if (k === "step" || k === "epoch") continue;
    if (typeof v === "number") out[k] = Number.isFinite(v) ? Number(v.toPrecision(6)) : null;
    else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const nums = Object.entries(v).filter(([, x]) => typeof x === "number") as [string, number][];
      if (nums.length) out[k] = Object.fromEntries(nums.map(([n, x]) => [n, Number(x.toPrecision(6))]));
    }
  }
  return out;
}

/**
 * The records that make charts, as small as a page wants them: steps and evaluations only,
 * compacted, a long run's steps thinned to at most MAX_STEP_POINTS (every k-th, and the last).
 */
export function chartRecords(run: Pick<RunData, "records">): LogRecord[] {
  const steps = run.records.reduce((n, r) => n + (r.event === "step" ? 1 : 0), 0);
  const stride = Math.ceil(steps / MAX_STEP_POINTS);
  let i = 0;
  return run.records
    .filter((r) => {
      if (r.event === "eval") return true;
      if (r.event !== "step") return false;
      i += 1;
      return stride <= 1 || i % stride === 0 || i === steps;
    })
    .map(compact);
}

function statusBadge(run: RunData): string {
  return `<span class="badge ${escapeHtml(run.status.replace(/ /g, "-"))}">${escapeHtml(run.status)}</span>`;
}

/** One line under the title: kind, task, model, status, steps. */
function subtitle(run: RunData): string {
  const start = lastRecord(run, "start");
  const last = lastRecord(run, "step");
  const parts = [
    run.kind,
    run.task,
    typeof run.config?.model_type === "string" ? `model ${run.config.model_type}` : undefined,
    last && typeof last.step === "number" ? `step ${last.step}${typeof start?.maxSteps === "number" ? ` of ${start.maxSteps}` : ""}` : undefined,
  ].filter((x): x is string => Boolean(x));
  return `<p class="sub">${parts.map(escapeHtml).join(" · ")} · ${statusBadge(run)}<br><code>${escapeHtml(run.dir)}</code></p>`;
}

/** The run's settings: the start record, the model's shape, the fine-tuned model's record. */
function settingsSection(run: RunData): string {
  const rows: Cell[][] = [];
  const add = (k: string, v: unknown): void => {
    if (v === undefined || v === null) return;
    rows.push([rowHeader(k), typeof v === "number" ? v : typeof v === "string" ? v : JSON.stringify(v)]);
  };
  const start = run.records.find((r) => r.event === "start");
  for (const [k, v] of Object.entries(start ?? {})) if (k !== "event" && k !== "time") add(k, v);
  if (start?.time) add("started", start.time);
  const config = run.config ?? {};
  for (const k of ["model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "n_embd", "n_layer", "n_head", "d_model", "num_layers"]) add(`model ${k}`, config[k]);
  for (const k of ["task", "strategy", "max_length", "head", "labels"]) add(`fine-tuned ${k}`, run.meta?.[k]);
  if (run.badLines) add("unreadable log lines", run.badLines);
  return rows.length ? table(["setting", "value"], rows) : "";
}

/** Checkpoints, early stop, resumes and changed settings, as the log tells them. */
function eventsSection(run: RunData): string {
  const rows = run.records
    .filter((r) => r.event !== "step" && r.event !== "eval" && r.event !== "start")
    .map((r): Cell[] => {
      const { event, step, time, ...rest } = r;
      return [typeof step === "number" ? step : "", String(event), Object.keys(rest).length ? JSON.stringify(rest) : "", typeof time === "string" ? time : ""];
    });
  return rows.length ? table(["step", "event", "details", "time"], rows) : "";
}

function chartsSection(runs: readonly RunData[]): string {
  const specs = chartSpecs(runs.map(chartRecords), runs.map((r) => r.name));
  if (specs.length === 0) return "";
  const steps = runs.map((r) => r.records.filter((x) => x.event === "step").length);
  const thinned = runs.flatMap((r, i) => (steps[i]! > MAX_STEP_POINTS ? [`${r.name}: every ${Math.ceil(steps[i]! / MAX_STEP_POINTS)}th of ${steps[i]} steps`] : []));
  return `<h2>Training curves</h2><p class="hint">Hover a chart for the values at a step; drag across it to zoom into a range of steps, double-click to zoom out.${thinned.length ? ` Drawn: ${escapeHtml(thinned.join("; "))}.` : ""}</p><div id="charts"></div>`;
}

function payload(runs: readonly RunData[], live?: { eventsUrl: string }): ClientPayload {
  return { names: runs.map((r) => r.name), runs: runs.map(chartRecords), ...(live ? { live: { url: live.eventsUrl } } : {}) };
}

/** One run's report: summary, curves, evaluation (the task's tables), settings, events. */
export function renderRunReport(run: RunData, o: ReportOptions = {}): string {
  const sections: string[] = [];
  if (o.live?.backUrl) sections.push(`<p><a href="${escapeHtml(o.live.backUrl)}">← all runs</a></p>`);
  sections.push(`<h1>${escapeHtml(o.title ?? run.name)}</h1>${subtitle(run)}`);
  if (o.live) sections.push(`<p class="hint" id="live-status">live: connecting...</p>`);
  sections.push(...(o.intro ?? []));
  const final = finalMetrics(run);
  if (Object.keys(final).length) sections.push(`<h2>Summary</h2>${metricsTable(final)}`);
  sections.push(chartsSection([run]));
  const evaluation = evaluationSection(run);
  if (evaluation) sections.push(`<h2>${run.kind === "evaluate" ? "Evaluation" : "Test set"}</h2>${evaluation}`);
  if (run.search) sections.push(`<h2>Hyperparameter search</h2>${searchSection(run.search)}`);
  const settings = settingsSection(run);
  if (settings) sections.push(`<h2>Run settings</h2>${settings}`);
  const events = eventsSection(run);
  if (events) sections.push(`<h2>Events</h2>${events}`);
  sections.push(footer());
  return page(o.title ?? `${run.name}: lmforge ${run.kind} report`, sections, { charts: true, scripts: [clientScript()], data: payload([run], o.live), connect: Boolean(o.live) });
}

/** Several runs: their final metrics side by side and their curves overlaid. */
export function renderComparison(runs: readonly RunData[], o: ReportOptions = {}): string {
  if (runs.length === 0) throw new Error("nothing to compare: no runs");
  const title = o.title ?? `Comparison of ${runs.length} runs`;
  const finals = runs.map(finalMetrics);
  const keys: string[] = [];
  for (const f of finals) for (const k of Object.keys(f)) if (!keys.includes(k)) keys.push(k);
  const rows: Cell[][] = [
    [rowHeader("kind"), ...runs.map((r) => r.kind)],
    [rowHeader("task"), ...runs.map((r) => r.task ?? "")],
    [rowHeader("status"), ...runs.map((r) => r.status)],
    ...keys.map((k): Cell[] => [rowHeader(k), ...finals.map((f) => f[k])]),
    [rowHeader("folder"), ...runs.map((r) => r.dir)],
  ];
  const sections = [
    `<h1>${escapeHtml(title)}</h1>`,
    ...(o.intro ?? []),
    `<h2>Final metrics</h2>${table(["", ...runs.map((r) => r.name)], rows, "compare")}`,
    chartsSection(runs),
    footer(),
  ];
  return page(title, sections, { charts: true, scripts: [clientScript()], data: payload(runs) });
}

/** The dashboard's first page: every run, its state and headline numbers, linked to its page. */
export function renderRunList(runs: readonly { id: string; run: RunData }[], o: { title?: string; root?: string } = {}): string {
  const rows = runs.map(({ id, run }): Cell[] => {
    const f = finalMetrics(run);
    const best = Object.entries(f).find(([k]) => k.startsWith("best_val_"));
    return [
      { html: `<td><a href="/run/${encodeURIComponent(id)}">${escapeHtml(run.name)}</a></td>` },
      run.kind,
      run.task ?? "",
      { html: `<td>${statusBadge(run)}</td>` },
      f.steps,
      f.loss,
      best ? `${best[0].slice(9)} ${best[1].toPrecision(4)}` : "",
      new Date(run.modified).toISOString().replace("T", " ").slice(0, 19),
      run.dir,
    ];
  });
  const body = [
    `<h1>${escapeHtml(o.title ?? "lmforge runs")}</h1>`,
    o.root ? `<p class="sub">Run folders under <code>${escapeHtml(o.root)}</code></p>` : "",
    rows.length ? table(["run", "kind", "task", "status", "steps", "last loss", "best validation", "updated (UTC)", "folder"], rows, "runs") : `<p>No run folders found (a run folder holds metrics.jsonl or eval_metrics.json).</p>`,
    footer(),
  ];
  return page(o.title ?? "lmforge runs", body);
}

function footer(): string {
  return `<p class="hint">Made by lmforge on ${escapeHtml(new Date().toISOString().replace("T", " ").slice(0, 19))} UTC; charts by uPlot.</p>`;
}

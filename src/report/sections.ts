// The task sections of a report, from what finetune and evaluate saved (run.ts): the metrics;
// for classification the confusion matrix, the per-class table and the worst errors with their
// confidence; for named entities the per-entity table and the sentences with missed or
// spurious entities; for question answering exact match and F1 with sample answers; for
// generation the outputs beside their references. Each section is chosen by the shape of the
// saved report and rows, so an evaluation of any task's model reads the same.
import { formatValue } from "./charts.js";
import { confusionMatrix, escapeHtml, rowHeader, table, textCell } from "./page.js";
import type { Cell } from "./page.js";
import type { RunData } from "./run.js";

const isRecord = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);
const num = (x: unknown): number | undefined => (typeof x === "number" ? x : undefined);
const str = (x: unknown): string => (typeof x === "string" ? x : x === undefined || x === null ? "" : JSON.stringify(x));

/** A key/value table of numbers. */
export function metricsTable(metrics: Record<string, number>): string {
  return table(["metric", "value"], Object.entries(metrics).map(([k, v]) => [rowHeader(k), v]));
}

function classificationSection(report: Record<string, unknown>): string {
  const labels = Array.isArray(report.labels) ? report.labels.map(String) : [];
  const out: string[] = [];
  if (Array.isArray(report.confusion_matrix) && labels.length) {
    out.push(`<h3>Confusion matrix</h3><p class="hint">Rows: the true label; columns: the predicted one.</p>${confusionMatrix(labels, report.confusion_matrix as number[][])}`);
  }
  if (isRecord(report.per_class)) {
    const per = report.per_class;
    const rows: Cell[][] = labels.filter((l) => isRecord(per[l])).map((l) => {
      const c = per[l] as Record<string, unknown>;
      return [rowHeader(l), num(c.precision), num(c.recall), num(c.f1), num(c.support)];
    });
    rows.push([rowHeader("macro average"), num(report.macro_precision), num(report.macro_recall), num(report.macro_f1), num(report.count)]);
    out.push(`<h3>Per class</h3>${table(["class", "precision", "recall", "F1", "support"], rows, "per-class")}`);
  }
  return out.join("\n");
}

function entitySection(report: Record<string, unknown>): string {
  const per = report.per_type as Record<string, unknown>;
  const rows: Cell[][] = Object.entries(per).map(([type, s]) => {
    const r = isRecord(s) ? s : {};
    return [rowHeader(type), num(r.precision), num(r.recall), num(r.f1), num(r.support)];
  });
  rows.push([rowHeader("micro average"), num(report.precision), num(report.recall), num(report.f1), num(report.support)]);
  for (const avg of ["macro", "weighted"] as const) {
    const a = isRecord(report[avg]) ? report[avg] : {};
    rows.push([rowHeader(`${avg} average`), num(a.precision), num(a.recall), num(a.f1), num(report.support)]);
  }
  return `<h3>Per entity type</h3>${table(["entity", "precision", "recall", "F1", "support"], rows, "per-entity")}`;
}

/** "PER: John Smith (0.93); LOC: Paris" from entity objects. */
function entities(list: unknown): string {
  if (!Array.isArray(list) || list.length === 0) return "";
  return list.map((e) => (isRecord(e) ? `${str(e.type)}: ${str(e.text)}${typeof e.score === "number" ? ` (${formatValue(e.score)})` : ""}` : str(e))).join("; ");
}

/** The rows of errors.jsonl or predictions.jsonl as a table, with columns by what the rows hold. */
export function rowsTable(rows: readonly Record<string, unknown>[]): string {
  const first = rows[0] ?? {};
  const has = (k: string): boolean => k in first;
  let headers: string[];
  let cells: (r: Record<string, unknown>) => Cell[];
  if (has("true_label") && has("predicted_label")) {
    headers = ["text", "true", "predicted", "confidence", "source"];
    cells = (r) => [textCell(r.text), str(r.true_label), str(r.predicted_label), num(r.confidence), str(r.source)];
  } else if (has("missed") || has("spurious")) {
    headers = ["sentence", "missed (in the truth, not predicted)", "spurious (predicted, not in the truth)", "source"];
    cells = (r) => [textCell(r.text), textCell(entities(r.missed)), textCell(entities(r.spurious)), str(r.source)];
  } else if (has("question")) {
    headers = ["question", "gold answers", "predicted", "score", ""];
    cells = (r) => {
      const gold = Array.isArray(r.gold) ? r.gold.map(str) : [str(r.gold)];
      const right = gold.includes(str(r.predicted));
      return [textCell(r.question), textCell(gold.map((g) => (g === "" ? "(no answer)" : g)).join(" | ")), textCell(str(r.predicted) || "(no answer)"), num(r.score), { html: `<td class="${right ? "ok" : "bad"}">${right ? "exact" : "wrong"}</td>` }];
    };
  } else if (has("target") && has("predicted")) {
    headers = ["source text", "reference", "generated"];
    cells = (r) => [textCell(r.text), textCell(r.target), textCell(r.predicted)];
  } else {
    headers = Object.keys(first);
    cells = (r) => headers.map((h) => (typeof r[h] === "number" ? (r[h] as number) : textCell(str(r[h]))));
  }
  return table(headers, rows.map(cells), "rows");
}

/** The evaluation section of a run: its metrics, the task's tables, its errors and samples; "" when it has none. */
export function evaluationSection(run: RunData): string {
  const ev = run.evaluation;
  if (!ev && !run.errors.length && !run.predictions.length) return "";
  const out: string[] = [];
  if (ev) {
    const what = ev.file === "eval_metrics.json" ? `the data ${ev.data ? `<code>${escapeHtml(ev.data)}</code>` : ""}` : "the test set";
    out.push(`<p>Scored on ${what}${ev.examples !== undefined ? ` (${ev.examples} examples)` : ""}${ev.model ? `, model <code>${escapeHtml(ev.model)}</code>` : ""}.</p>`);
    out.push(metricsTable(ev.metrics));
    const report = ev.report ?? {};
    if (Array.isArray(report.confusion_matrix) || isRecord(report.per_class)) out.push(classificationSection(report));
    if (isRecord(report.per_type)) out.push(entitySection(report));
  }
  const shown = (n: number, total: number): string => (n < total ? ` (the first ${n} of ${total})` : ` (${total})`);
  if (run.predictions.length) {
    const qa = "question" in (run.predictions[0] ?? {});
    out.push(`<h3>${qa ? "Sample answers" : "Sample outputs beside their references"}${shown(run.predictions.length, run.predictionCount)}</h3>${rowsTable(run.predictions)}`);
  }
  if (run.errors.length) {
    const confident = "confidence" in (run.errors[0] ?? {}) || "score" in (run.errors[0] ?? {});
    out.push(`<h3>Worst errors${confident ? ", most confident first" : ", most errors first"}${shown(run.errors.length, run.errorCount)}</h3>${rowsTable(run.errors)}`);
  } else if (ev && run.errorCount === 0 && run.predictions.length === 0 && (ev.report?.confusion_matrix || ev.report?.per_type)) {
    out.push(`<p class="hint">No errors file beside the metrics.</p>`);
  }
  return out.join("\n");
}

/** A hyperparameter search's trials, in the order they ran. */
export function searchSection(search: Record<string, unknown>): string {
  const trials = Array.isArray(search.trials) ? search.trials.filter(isRecord) : [];
  const rows: Cell[][] = trials.map((t) => [textCell(JSON.stringify(t.params ?? {})), num(t.value), num(t.steps), num(t.seconds), str(t.out)]);
  return `<p>Validation ${escapeHtml(str(search.metric))} of each trial.</p>${table(["parameters", "best value", "steps", "seconds", "folder"], rows)}`;
}

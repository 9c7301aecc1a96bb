// Which charts a run's log makes, and their data, from metrics.jsonl records. The same
// functions run in Node (tests, the report's first draw) and in the browser: html.ts inlines
// their source into the page, so the live dashboard redraws a growing log with exactly the
// code the tests check. Hence the rules here: top-level `function` declarations only, each
// calling only the others and JavaScript's built-ins (no imports, no module constants).

/** One metrics.jsonl record: {event: "step" | "eval" | "start" | ..., step, time, ...}. */
export type LogRecord = Record<string, unknown>;

/** One line of a chart: a key of the records of one event, of one run. */
export interface SeriesSpec {
  label: string;
  /** The records it reads ("step" or "eval"). */
  event: string;
  key: string;
  /** A field inside an object-valued key (task_losses.<task>). */
  sub?: string;
  /** Draw the exponential moving average instead of the raw values. */
  smooth?: boolean;
  /** Which run of a comparison (default 0). */
  run?: number;
}

export interface ChartSpec {
  id: string;
  title: string;
  /** What the y axis measures. */
  yLabel: string;
  series: SeriesSpec[];
}

/** The smoothing weight of the loss curves: TensorBoard's default scalar smoothing (0.9 gives roughly a 10-step window). */
export function smoothingWeight(): number {
  return 0.9;
}

/**
 * TensorBoard's debiased exponential moving average: last = w·last + (1-w)·x, shown divided by
 * 1 - w^n (n = finite values so far) so that the first points are not pulled towards 0.
 * Non-finite values and nulls stay null and do not move the average.
 */
export function ema(values: readonly (number | null)[], weight: number): (number | null)[] {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - Math.pow(weight, n));
  });
}

/** A record's value for a series, or null when it has none (a number, or a number inside an object). */
export function seriesValue(record: LogRecord, s: SeriesSpec): number | null {
  let v: unknown = record[s.key];
  if (s.sub !== undefined) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[s.sub] : undefined;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** The numeric keys (and object keys with numeric fields, as "key.sub") of one event's records, in first-seen order. */
export function recordKeys(records: readonly LogRecord[], event: string): string[] {
  const skip = ["event", "step", "epoch", "time"];
  const seen: string[] = [];
  for (const r of records) {
    if (r.event !== event) continue;
    for (const k of Object.keys(r)) {
      const v = r[k];
      if (skip.indexOf(k) >= 0) continue;
      if (typeof v === "number" && seen.indexOf(k) < 0) seen.push(k);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) {
        for (const sub of Object.keys(v)) if (typeof (v as Record<string, unknown>)[sub] === "number" && seen.indexOf(k + "." + sub) < 0) seen.push(k + "." + sub);
      }
    }
  }
  return seen;
}

/**
 * The charts of one or several runs' logs (names: the runs' names, for a comparison's legend):
 * training loss raw and smoothed, per-task losses, validation losses, perplexities and other
 * metrics, learning rate, gradient norm (when clipping measured it), tokens/s and memory where
 * logged. With several runs each chart has a line per run (smoothed, for the loss).
 */
export function chartSpecs(runs: readonly (readonly LogRecord[])[], names: readonly string[]): ChartSpec[] {
  const compare = runs.length > 1;
  const stepKeys: string[] = [];
  const evalKeys: string[] = [];
  const has: string[][] = []; // each run's "event:key"s, so that a run gets a line only for what it logs
  const positive: string[] = []; // step keys with a non-zero value somewhere (grad_norm is 0 without clipping)
  for (const records of runs) {
    const own: string[] = [];
    for (const k of recordKeys(records, "step")) {
      own.push("step:" + k);
      if (stepKeys.indexOf(k) < 0) stepKeys.push(k);
    }
    for (const k of recordKeys(records, "eval")) {
      own.push("eval:" + k);
      if (evalKeys.indexOf(k) < 0) evalKeys.push(k);
    }
    has.push(own);
    for (const r of records) if (r.event === "step") for (const k of Object.keys(r)) if (typeof r[k] === "number" && r[k] !== 0 && positive.indexOf(k) < 0) positive.push(k);
  }
  const perRun = (event: string, key: string, label: string, extra: Partial<SeriesSpec>): SeriesSpec[] => {
    const full = extra.sub !== undefined ? key + "." + extra.sub : key;
    const out: SeriesSpec[] = [];
    runs.forEach((_, i) => {
      if (has[i]!.indexOf(event + ":" + full) >= 0) out.push(Object.assign({ label: compare ? names[i] + (label ? " " + label : "") : label || key, event, key, run: i }, extra));
    });
    return out;
  };
  const split = (k: string): Partial<SeriesSpec> & { key: string } => (k.indexOf(".") > 0 ? { key: k.slice(0, k.indexOf(".")), sub: k.slice(k.indexOf(".") + 1) } : { key: k });
  const charts: ChartSpec[] = [];
  if (stepKeys.indexOf("loss") >= 0) {
    const series = compare
      ? perRun("step", "loss", "(smoothed)", { smooth: true })
      : [
          { label: "loss", event: "step", key: "loss" },
          { label: "loss (smoothed)", event: "step", key: "loss", smooth: true },
        ];
    charts.push({ id: "loss", title: "Training loss", yLabel: "loss", series });
  }
  const taskLosses = stepKeys.filter((k) => k.indexOf("task_losses.") === 0);
  if (taskLosses.length) {
    const series: SeriesSpec[] = [];
    for (const k of taskLosses) for (const s of perRun("step", "task_losses", k.slice(12), { sub: k.slice(12), smooth: true })) series.push(s);
    charts.push({ id: "task_losses", title: "Training loss per task (smoothed)", yLabel: "loss", series });
  }
  const groups: [string, string, string, (k: string) => boolean][] = [
    ["val_loss", "Validation loss", "loss", (k) => /loss$/.test(k)],
    ["val_perplexity", "Validation perplexity", "perplexity", (k) => /perplexity$/.test(k)],
    ["val_metrics", "Validation metrics", "value", (k) => !/(loss|perplexity)$/.test(k)],
  ];
  for (const [id, title, yLabel, member] of groups) {
    const keys = evalKeys.filter(member);
    if (!keys.length) continue;
    const series: SeriesSpec[] = [];
    for (const k of keys) for (const s of perRun("eval", split(k).key, compare ? k.replace(/^val_/, "") : "", split(k))) series.push(compare ? s : Object.assign(s, { label: k.replace(/^val_/, "") }));
    charts.push({ id, title, yLabel, series });
  }
  const single: [string, string, string, string[]][] = [
    ["lr", "Learning rate", "lr", ["lr"]],
    ["grad_norm", "Gradient norm (before clipping)", "norm", positive.indexOf("grad_norm") >= 0 ? ["grad_norm"] : []],
    ["tokens_per_sec", "Throughput", "tokens/s", ["tokens_per_sec"]],
    ["memory", "Memory", "MB", stepKeys.filter((k) => /(^|_)(rss|mem|memory)(_|$)/.test(k))],
  ];
  for (const [id, title, yLabel, keys] of single) {
    const present = keys.filter((k) => stepKeys.indexOf(k) >= 0);
    if (!present.length) continue;
    const series: SeriesSpec[] = [];
    for (const k of present) for (const s of perRun("step", k, compare && present.length > 1 ? k : "", {})) series.push(s);
    charts.push({ id, title, yLabel, series });
  }
  return charts;
}

/**
 * A chart's data in uPlot's layout: [steps, series 1's values, series 2's, ...], the steps the
 * sorted union of every series' steps, a series without a value at a step holding null there.
 */
export function chartData(spec: ChartSpec, runs: readonly (readonly LogRecord[])[]): (number | null)[][] {
  const columns: Map<number, number | null>[] = [];
  const steps: number[] = [];
  const seen = new Set<number>();
  for (const s of spec.series) {
    const xs: number[] = [];
    const ys: (number | null)[] = [];
    for (const r of runs[s.run ?? 0] ?? []) {
      if (r.event !== s.event || typeof r.step !== "number") continue;
      xs.push(r.step);
      ys.push(seriesValue(r, s));
    }
    const values = s.smooth ? ema(ys, smoothingWeight()) : ys;
    const column = new Map<number, number | null>();
    xs.forEach((x, i) => {
      column.set(x, values[i] ?? null);
      if (!seen.has(x)) {
        seen.add(x);
        steps.push(x);
      }
    });
    columns.push(column);
  }
  steps.sort((a, b) => a - b);
  const out: (number | null)[][] = [steps];
  for (const column of columns) out.push(steps.map((x) => (column.has(x) ? column.get(x)! : null)));
  return out;
}

/** How a value reads in a legend or table: 4 significant digits, exponent for the very small or large. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "--";
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e7) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

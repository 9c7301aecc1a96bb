// The script of a report page, run in the browser: it reads the runs' log records from the
// page's JSON, draws a uPlot chart per ChartSpec (charts.ts, whose functions are inlined
// beside this one), and on a dashboard page follows the run's event stream, appending each new
// record and redrawing. Every text it puts in the page goes through textContent or uPlot (which
// uses textContent and canvas text), never innerHTML. The chart objects are on
// window.lmforgeCharts (id -> uPlot) for the browser tests.
import { chartData, chartSpecs, ema, formatValue, recordKeys, seriesValue, smoothingWeight } from "./charts.js";
import type { ChartSpec, LogRecord } from "./charts.js";

// The few browser APIs used, declared here (the project compiles without the DOM library).
interface Element {
  textContent: string | null;
  className: string;
  clientWidth: number;
  appendChild(child: Element): Element;
  remove(): void;
}
interface UPlot {
  data: (number | null)[][];
  setData(data: (number | null)[][], resetScales?: boolean): void;
  setSize(size: { width: number; height: number }): void;
  destroy(): void;
}
interface EventSourceLike {
  addEventListener(type: string, listener: (e: { data: string }) => void): void;
  onopen: (() => void) | null;
  onerror: (() => void) | null;
}
declare const document: { getElementById(id: string): Element | null; createElement(tag: string): Element };
declare const window: { lmforgeCharts?: Record<string, UPlot>; addEventListener(type: string, listener: () => void): void };
declare const uPlot: new (options: Record<string, unknown>, data: (number | null)[][], target: Element) => UPlot;
declare const EventSource: new (url: string) => EventSourceLike;

/** What the page carries: the runs' names and records, and for a live page the event stream's address. */
export interface ClientPayload {
  names: string[];
  runs: LogRecord[][];
  live?: { url: string };
}

/** The page's main: draws the charts, then follows the event stream if the page is live. */
export function lmforgeClient(): void {
  const dataElement = document.getElementById("lmforge-data");
  const root = document.getElementById("charts");
  if (!dataElement || !root) return;
  const payload = JSON.parse(dataElement.textContent ?? "{}") as ClientPayload;
  const runs = payload.runs;
  const palette = ["#1f6fd0", "#e0702a", "#2e9e50", "#c8372d", "#8a55c8", "#8c5a3c", "#d450a8", "#6b7280", "#b5a52a", "#1fb5c8"];
  const charts: Record<string, { u: UPlot; figure: Element; signature: string }> = {};
  const exposed: Record<string, UPlot> = {};
  window.lmforgeCharts = exposed;

  const size = (): { width: number; height: number } => ({ width: Math.max(320, Math.min(root.clientWidth, 600)), height: 260 });
  // one run: a colour per line, a raw line and its smoothed line sharing one (the raw faint);
  // several: a colour per run, and a dash pattern per metric
  const dashes = [[], [7, 4], [2, 3], [10, 3, 2, 3], [4, 2, 4, 6]];
  // steps are whole: ticks 1, 2, 5, 10, 20, 25, 50, ... apart, never 2.5
  const stepTicks: number[] = [];
  for (let p = 1; p <= 1e7; p *= 10) stepTicks.push(p, 2 * p, ...(p >= 10 ? [2.5 * p] : []), 5 * p);
  const colours = (spec: ChartSpec): string[] => {
    let c = -1;
    return spec.series.map((s, i) => {
      if (runs.length > 1) return palette[(s.run ?? 0) % palette.length]!;
      const prev = spec.series[i - 1];
      if (!(prev && prev.key === s.key && prev.sub === s.sub && prev.run === s.run && !prev.smooth && s.smooth)) c += 1;
      return palette[c % palette.length]!;
    });
  };
  const dash = (spec: ChartSpec, i: number): number[] => {
    if (runs.length === 1) return [];
    const metrics: string[] = [];
    for (const s of spec.series) if (metrics.indexOf(s.key + "." + s.sub) < 0) metrics.push(s.key + "." + s.sub);
    const s = spec.series[i]!;
    return dashes[metrics.indexOf(s.key + "." + s.sub) % dashes.length]!;
  };
  const options = (spec: ChartSpec): Record<string, unknown> => ({
    title: spec.title,
    ...size(),
    cursor: { sync: { key: "lmforge" }, drag: { x: true, y: false } },
    scales: { x: { time: false } },
    legend: { live: true },
    axes: [{ label: "step", incrs: stepTicks }, { label: spec.yLabel, size: 64 }],
    series: [
      { label: "step", value: (_u: unknown, v: number | null) => formatValue(v) },
      ...spec.series.map((s, i) => ({
        label: s.label,
        stroke: colours(spec)[i],
        dash: dash(spec, i),
        width: s.smooth ? 2 : 1,
        alpha: !s.smooth && spec.series.some((t) => t.smooth) ? 0.45 : 1,
        spanGaps: true,
        value: (_u: unknown, v: number | null) => formatValue(v),
      })),
    ],
  });

  const draw = (): void => {
    const specs = chartSpecs(runs, payload.names);
    const keep = new Set(specs.map((s) => s.id));
    for (const id of Object.keys(charts)) {
      if (keep.has(id)) continue;
      charts[id]!.u.destroy();
      charts[id]!.figure.remove();
      delete charts[id];
      delete exposed[id];
    }
    for (const spec of specs) {
      const data = chartData(spec, runs);
      const signature = JSON.stringify(spec.series);
      const had = charts[spec.id];
      if (had && had.signature === signature) {
        had.u.setData(data);
        continue;
      }
      if (had) {
        had.u.destroy();
        had.figure.remove();
      }
      const figure = document.createElement("div");
      figure.className = "chart chart-" + spec.id;
      root.appendChild(figure);
      const u = new uPlot(options(spec), data, figure);
      charts[spec.id] = { u, figure, signature };
      exposed[spec.id] = u;
    }
  };
  draw();
  window.addEventListener("resize", () => {
    for (const c of Object.values(charts)) c.u.setSize(size());
  });

  const live = payload.live;
  if (!live) return;
  const status = document.getElementById("live-status");
  const say = (text: string): void => {
    if (status) status.textContent = text;
  };
  let pending = false;
  const redraw = (): void => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      draw();
      say("live: " + runs[0]!.length + " records, updated " + new Date().toLocaleTimeString());
    }, 100);
  };
  const events = new EventSource(live.url);
  events.onopen = () => say("live: following the log (" + runs[0]!.length + " records)");
  events.onerror = () => say("live: connection lost, retrying...");
  events.addEventListener("record", (e) => {
    const record = JSON.parse(e.data) as LogRecord;
    if (record.event !== "step" && record.event !== "eval") return; // what the charts draw, as in the page's data
    runs[0]!.push(record);
    redraw();
  });
  // the log was truncated or replaced (a resumed run cuts it back): it is sent again from its start
  events.addEventListener("reset", () => {
    runs[0]!.length = 0;
    redraw();
  });
}

/** The page's script: the chart functions and the main, as source, and the call. */
export function clientScript(): string {
  const parts = [smoothingWeight, ema, seriesValue, recordKeys, chartSpecs, chartData, formatValue, lmforgeClient];
  return `"use strict";\n${parts.map((f) => f.toString()).join("\n")}\nlmforgeClient();\n`;
}

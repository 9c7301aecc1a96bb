// Run reports without a browser: the run reader on real tiny runs (test/fixtures/runs: a
// 40-step masked-LM pretraining and two 72-step classification fine-tunings of a 2-layer,
// hidden-32 BERT, pretrained and from scratch; their logs and result files as lmforge wrote
// them), the chart specs and data the page draws, the smoothing, HTML escaping (a label or
// text holding </script> or <img onerror> stays text), the task sections, the JSONL follower
// (growth, half-written lines, truncation, replacement), the dashboard's routes and event
// stream, `lmforge report`, and the progress lines off a terminal on a fake clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { chartData, chartSpecs, ema, formatValue } from "../src/report/charts.js";
import { finalMetrics, findRuns, parseJsonl, readRun } from "../src/report/run.js";
import { escapeHtml, scriptJson } from "../src/report/page.js";
import { chartRecords, renderComparison, renderRunReport } from "../src/report/html.js";
import { evaluationSection, rowsTable } from "../src/report/sections.js";
import { JsonlFollower } from "../src/report/follow.js";
import { createDashboard } from "../src/report/dashboard.js";
import { writeRunReport } from "../src/report/write.js";
import { Progress, formatEta, progressSeconds } from "../src/cli/progress.js";
import { reportAfterRun } from "../src/cli/report.js";

const fixtures = new URL("../../test/fixtures/runs/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "lmforge-report-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const lines = (run: string, event: string): number => readFileSync(join(fixtures, run, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.includes(`"event":"${event}"`)).length;

test("ema is TensorBoard's debiased moving average; nulls stay null and do not move it", () => {
  // w = 0.5: 0.5·1 / (1-0.5) = 1; (0.25 + 0.5·2) / (1-0.25) = 1.25 / 0.75
  const out = ema([1, null, 2, NaN], 0.5);
  assert.equal(out[0], 1);
  assert.equal(out[1], null);
  assert.ok(Math.abs(out[2]! - 1.25 / 0.75) < 1e-12);
  assert.equal(out[3], null);
  // a constant stays itself from the first point (the debiasing's point)
  assert.deepEqual(ema([3, 3, 3], 0.9).map((x) => Number(x!.toFixed(12))), [3, 3, 3]);
});

test("chart data is uPlot's layout: the union of steps, sorted, null where a series has no value", () => {
  const runs = [
    [
      { event: "step", step: 2, loss: 4 },
      { event: "step", step: 1, loss: 5 },
      { event: "eval", step: 2, val_loss: 3 },
    ],
    [{ event: "step", step: 3, loss: 1, task_losses: { a: 0.5 } }],
  ];
  const spec = { id: "x", title: "", yLabel: "", series: [{ label: "a", event: "step", key: "loss", run: 0 }, { label: "b", event: "step", key: "loss", run: 1 }, { label: "c", event: "eval", key: "val_loss", run: 0 }] };
  assert.deepEqual(chartData(spec, runs), [
    [1, 2, 3],
    [5, 4, null],
    [null, null, 1],
    [null, 3, null],
  ]);
  const sub = { id: "t", title: "", yLabel: "", series: [{ label: "a", event: "step", key: "task_losses", sub: "a", run: 1 }] };
  assert.deepEqual(chartData(sub, runs), [[3], [0.5]]);
});

test("the charts of a run follow what its log holds", () => {
  const ft = readRun(join(fixtures, "ft-pre"));
  const specs = chartSpecs([ft.records], [ft.name]);
  assert.deepEqual(specs.map((s) => s.id), ["loss", "val_loss", "val_metrics", "lr", "grad_norm", "tokens_per_sec"]);
  assert.deepEqual(specs[0]!.series.map((s) => [s.label, s.smooth ?? false]), [["loss", false], ["loss (smoothed)", true]]);
  assert.deepEqual(specs[2]!.series.map((s) => s.label), ["accuracy", "macro_f1", "micro_f1", "weighted_f1", "roc_auc"]);
  const loss = chartData(specs[0]!, [ft.records]);
  assert.equal(loss[0]!.length, lines("ft-pre", "step"));
  assert.equal(chartData(specs[1]!, [ft.records])[0]!.length, lines("ft-pre", "eval"));
  // a gradient norm that is all zeros (no clipping measured it) makes no chart; memory where logged does
  const noClip = [{ event: "step", step: 1, loss: 1, grad_norm: 0, rss_mb: 310 }];
  assert.deepEqual(chartSpecs([noClip], ["r"]).map((s) => s.id), ["loss", "memory"]);
  // several runs: a line per run that has the metric, and the loss smoothed
  const pre = readRun(join(fixtures, "pre"));
  const both = chartSpecs([ft.records, pre.records], ["ft", "pre"]);
  assert.deepEqual(both.find((s) => s.id === "loss")!.series.map((s) => s.label), ["ft (smoothed)", "pre (smoothed)"]);
  assert.deepEqual(both.find((s) => s.id === "val_perplexity")!.series.map((s) => s.label), ["pre perplexity"]);
});

test("readRun: a fine-tuning run's log, model record, summary, test metrics and errors", () => {
  const r = readRun(join(fixtures, "ft-pre"));
  assert.equal(r.kind, "finetune");
  assert.equal(r.task, "classification");
  assert.equal(r.status, "finished");
  assert.equal(r.records.length, 102);
  assert.equal(r.badLines, 0);
  assert.equal(r.logBytes, readFileSync(join(fixtures, "ft-pre", "metrics.jsonl")).length);
  // the test set: 9 + 12 of 24 right (the saved confusion matrix [[9, 3], [0, 12]])
  assert.deepEqual(r.evaluation!.report!.confusion_matrix, [[9, 3], [0, 12]]);
  assert.equal(r.evaluation!.metrics.accuracy, 21 / 24);
  assert.equal(r.evaluation!.examples, 24);
  assert.equal(r.errorCount, 3);
  assert.equal(r.errors[0]!.true_label, "nation");
  const f = finalMetrics(r);
  assert.equal(f.steps, 72);
  assert.equal(f.test_accuracy, 0.875);
  assert.equal(f.best_val_macro_f1, 0.8333333333333334);
  const pre = readRun(join(fixtures, "pre"));
  assert.equal(pre.kind, "pretrain");
  assert.equal(pre.evaluation, undefined);
  assert.deepEqual(findRuns(fixtures, 1).map((d) => d.slice(fixtures.length)), ["ft-pre", "ft-scratch", "pre"]);
  assert.throws(() => readRun(dir), /not a run folder \(it has none of metrics\.jsonl, eval_metrics\.json, search_results\.json\)/);
});

test("a page carries compact chart records; a long run's steps thinned to every k-th and the last", () => {
  const records = [{ event: "start", maxSteps: 25001 }, ...Array.from({ length: 25001 }, (_, i) => ({ time: "t", event: "step", step: i + 1, epoch: 0, loss: 0.123456789, task_losses: { a: 1 / 3, note: "x" } })), { event: "eval", step: 25001, val_loss: 2 }];
  const page = chartRecords({ records });
  const steps = page.filter((r) => r.event === "step");
  // 25,001 steps > 10,000: every 3rd (8,333 of them) and the last
  assert.equal(steps.length, 8334);
  assert.deepEqual([steps[0]!.step, steps[1]!.step, steps[8332]!.step, steps[8333]!.step], [3, 6, 24999, 25001]);
  assert.deepEqual(steps[0], { event: "step", step: 3, loss: 0.123457, task_losses: { a: 0.333333 } });
  assert.deepEqual(page[page.length - 1], { event: "eval", step: 25001, val_loss: 2 });
  assert.equal(chartRecords({ records: records.slice(0, 101) }).length, 100, "a short run keeps every step");
});

test("parseJsonl: a torn or half-written last line waits; a bad line is counted", () => {
  const text = '{"event":"step","step":1}\nnot json\n[1]\n{"event":"step","step":2}\n{"event":"st';
  const p = parseJsonl(text);
  assert.deepEqual(p.records.map((r) => r.step), [1, 2]);
  assert.equal(p.badLines, 2);
  assert.equal(p.bytes, text.lastIndexOf("\n") + 1);
});

test("a run without an end is running while its log grows, unfinished after", () => {
  const run = join(dir, "live");
  cpSync(join(fixtures, "ft-pre"), run, { recursive: true });
  rmSync(join(run, "train_summary.json"));
  const t = Date.now() / 1000;
  utimesSync(join(run, "metrics.jsonl"), t, t);
  assert.equal(readRun(run).status, "running");
  assert.equal(readRun(run, { now: Date.now() + 10 * 60_000 }).status, "unfinished");
  assert.equal(readRun(run, { status: "interrupted" }).status, "interrupted");
});

test("escaping: text from the data cannot end a script or add markup", () => {
  assert.equal(escapeHtml(`<img src=x onerror="alert(1)">&'`), "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;");
  const evil = { label: "</script><script>alert(1)</script>", x: "<!-- \u2028 &" };
  const json = scriptJson(evil);
  assert.ok(!/<|>|&|\u2028/.test(json), json);
  assert.deepEqual(JSON.parse(json), evil);
  // a whole report of a run whose labels, texts and name are hostile
  const run = join(dir, "<img src=x onerror=alert(1)>");
  cpSync(join(fixtures, "ft-pre"), run, { recursive: true });
  const bad = "</script><img src=x onerror=alert(2)>";
  writeFileSync(join(run, "errors.jsonl"), JSON.stringify({ source: "a", text: bad, true_label: "<b>nation</b>", predicted_label: "whale", confidence: 0.9 }) + "\n");
  const tm = JSON.parse(readFileSync(join(run, "test_metrics.json"), "utf8")) as { report: { labels: string[] } };
  tm.report.labels = [bad, "whale"];
  writeFileSync(join(run, "test_metrics.json"), JSON.stringify(tm));
  appendFileSync(join(run, "metrics.jsonl"), JSON.stringify({ event: "note", step: 72, text: bad }) + "\n");
  const html = renderRunReport(readRun(run));
  assert.ok(!html.includes("<img"), "no img element from the data");
  assert.ok(!html.includes("<b>nation"), "no b element from the data");
  assert.equal(html.match(/<script/g)!.length, 3, "the data script, uPlot and the page's own; no other");
  assert.ok(html.includes("&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"), "the error text shown as text");
  // every inline script that runs is admitted by the page's CSP by its hash, and nothing else is
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1]!;
  assert.equal(csp.match(/'sha256-/g)!.length, 2);
  assert.match(csp, /default-src 'none'/);
});

test("task sections: per-entity table, sample answers, generated texts beside references", () => {
  const base = { dir: "/r", name: "r", kind: "evaluate" as const, status: "evaluated" as const, records: [], logBytes: 0, badLines: 0, errors: [], errorCount: 0, predictions: [], predictionCount: 0, modified: 0 };
  const ner = evaluationSection({
    ...base,
    evaluation: { file: "eval_metrics.json", metrics: { f1: 0.5 }, report: { precision: 0.5, recall: 0.5, f1: 0.5, support: 4, macro: { precision: 0.4, recall: 0.4, f1: 0.4 }, weighted: { precision: 0.5, recall: 0.5, f1: 0.5 }, per_type: { LOC: { precision: 1, recall: 0.5, f1: 2 / 3, support: 2 }, PER: { precision: 0, recall: 0, f1: 0, support: 2 } } } },
    errors: [{ source: "s:1", text: "Paris is far", missed: [{ type: "LOC", text: "Paris" }], spurious: [{ type: "PER", text: "far", score: 0.61 }], errors: 2 }],
    errorCount: 1,
  });
  assert.match(ner, /<h3>Per entity type<\/h3>/);
  assert.match(ner, /<th>LOC<\/th><td class="num">1<\/td><td class="num">0\.5<\/td><td class="num">0\.6667<\/td><td class="num">2<\/td>/);
  assert.match(ner, /<td class="text">LOC: Paris<\/td><td class="text">PER: far \(0\.61\)<\/td>/);
  const qa = rowsTable([
    { id: "1", question: "Who?", gold: ["Ann", "Ann B"], predicted: "Ann", score: 3.5 },
    { id: "2", question: "Where?", gold: [""], predicted: "home", score: 1 },
  ]);
  assert.match(qa, /<td class="text">Ann \| Ann B<\/td><td class="text">Ann<\/td><td class="num">3\.5<\/td><td class="ok">exact<\/td>/);
  assert.match(qa, /<td class="text">\(no answer\)<\/td><td class="text">home<\/td><td class="num">1<\/td><td class="bad">wrong<\/td>/);
  const gen = rowsTable([{ source: "f:1", text: "Hello", target: "Hallo", predicted: "Hallo <b>" }]);
  assert.match(gen, /<th>source text<\/th><th>reference<\/th><th>generated<\/th>/);
  assert.match(gen, /<td class="text">Hello<\/td><td class="text">Hallo<\/td><td class="text">Hallo &lt;b&gt;<\/td>/);
  assert.equal(formatValue(0.00001236), "1.236e-5");
  assert.equal(formatValue(72), "72");
});

test("the follower hands on complete new lines once, and starts over when the file is cut back or replaced", () => {
  const path = join(dir, "follow.jsonl");
  writeFileSync(path, '{"a":1}\n');
  const got: string[] = [];
  let resets = 0;
  const f = new JsonlFollower(path, { from: 8, pollMs: 60_000, onLine: (l, offset) => got.push(`${l}@${offset}`), onReset: () => resets++ });
  f.check();
  assert.deepEqual(got, []);
  appendFileSync(path, '{"a":2}\n{"a":');
  f.check();
  assert.deepEqual(got, ['{"a":2}@16']);
  appendFileSync(path, "3}\n");
  f.check();
  assert.deepEqual(got, ['{"a":2}@16', '{"a":3}@24']);
  truncateSync(path, 8);
  f.check();
  assert.equal(resets, 1);
  assert.deepEqual(got.slice(2), ['{"a":1}@8']);
  // replaced by rename (what an atomic rewrite does), here with a longer file
  writeFileSync(path + ".new", '{"b":1}\n{"b":2}\n{"b":3}\n');
  renameSync(path + ".new", path);
  f.check();
  assert.equal(resets, 2);
  assert.deepEqual(got.slice(3), ['{"b":1}@8', '{"b":2}@16', '{"b":3}@24']);
  f.stop();
});

test("dashboard: lists the runs under a folder, serves their pages, streams appended log lines", async () => {
  const root = join(dir, "dash");
  cpSync(fixtures, root, { recursive: true });
  const app = createDashboard({ dirs: [root], pollMs: 100 });
  try {
    const list = await app.inject({ url: "/" });
    assert.equal(list.statusCode, 200);
    for (const id of ["ft-pre", "ft-scratch", "pre"]) assert.match(list.body, new RegExp(`href="/run/${id}"`));
    const page = await app.inject({ url: "/run/ft-pre" });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /connect-src 'self'/);
    const size = readFileSync(join(root, "ft-pre", "metrics.jsonl")).length;
    assert.ok(page.body.includes(`"live":{"url":"/events/ft-pre?from=${size}"}`), "the stream starts after the page's records");
    assert.equal((await app.inject({ url: "/run/nope" })).statusCode, 404);
    assert.equal((await app.inject({ url: "/run/..%2F..%2Fetc" })).statusCode, 404);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    const log = join(root, "ft-pre", "metrics.jsonl");
    const received = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: `/events/ft-pre?from=${size}` }, (res) => {
        assert.equal(res.headers["content-type"], "text/event-stream; charset=utf-8");
        let text = "";
        let appended = false;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
          if (!appended && text.includes("\n\n")) {
            appended = true; // the stream is open: the run writes its next step
            appendFileSync(log, '{"event":"step","step":73,"loss":0.5}\n');
          }
          if (text.includes('"step":73')) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on("error", reject);
      req.end();
    });
    assert.match(received, new RegExp(`event: record\\nid: ${size + 38}\\ndata: \\{"event":"step","step":73,"loss":0.5\\}\\n\\n`));
  } finally {
    await app.close();
  }
});

test("lmforge report: one run's report.html, several runs side by side, a folder that is no run refused", () => {
  const out = join(dir, "cmp.html");
  const r = spawnSync(process.execPath, [cli, "report", join(fixtures, "ft-pre"), join(fixtures, "ft-scratch"), "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /2 runs compared: .*cmp\.html/);
  const html = readFileSync(out, "utf8");
  assert.match(html, /<th><\/th><th>ft-pre<\/th><th>ft-scratch<\/th>/);
  assert.match(html, /<th>test_accuracy<\/th><td class="num">0\.875<\/td><td class="num">0\.7083<\/td>/);
  const one = join(dir, "one");
  cpSync(join(fixtures, "pre"), one, { recursive: true });
  assert.equal(writeRunReport(one), join(one, "report.html"));
  assert.ok(existsSync(join(one, "report.html")));
  const bad = spawnSync(process.execPath, [cli, "report", join(dir, "nothing-here")], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /nothing-here: no such folder/);
  assert.throws(() => renderComparison([]), /nothing to compare/);
});

test("a command's end writes its run's report, unless it never touched the run (arguments refused)", () => {
  const run = join(dir, "after");
  cpSync(join(fixtures, "pre"), run, { recursive: true });
  const old = Date.now() / 1000 - 3600;
  utimesSync(join(run, "metrics.jsonl"), old, old);
  reportAfterRun(run, "failed", Date.now());
  assert.ok(!existsSync(join(run, "report.html")), "an earlier run's folder is left as it was");
  appendFileSync(join(run, "metrics.jsonl"), JSON.stringify({ event: "step", step: 41, loss: 4 }) + "\n");
  reportAfterRun(run, "failed", Date.now() - 5000);
  assert.match(readFileSync(join(run, "report.html"), "utf8"), /<span class="badge failed">failed<\/span>/);
  reportAfterRun(join(dir, "no-such-run")); // nothing there: nothing written, nothing thrown
  assert.ok(!existsSync(join(dir, "no-such-run")));
});

test("progress off a terminal: a line every N seconds with the count, rate, time left and loss (fake clock)", () => {
  let now = 1_000_000;
  const out: string[] = [];
  const p = new Progress("finetune", "steps", { every: 30, tty: false, now: () => now, write: (t) => out.push(t), env: {} });
  now += 10_000;
  p.update(3, 40, "loss 0.7000");
  assert.deepEqual(out, [], "nothing before 30 s");
  now += 20_000;
  p.update(10, 40, "loss 0.5000");
  // 10 steps in 30 s: 0.33/s; 30 steps left at 3 s each: 90 s, "2 min"
  assert.deepEqual(out, ["finetune: 10/40 (25%), 0.33/s, 2 min left, loss 0.5000\n"]);
  now += 15_000;
  p.update(15, 40);
  assert.equal(out.length, 1);
  now += 16_000;
  p.update(20, 40, "loss 0.4000");
  assert.equal(out[1], `finetune: 20/40 (50%), 0.33/s, 1 min left, loss 0.4000\n`); // 20 steps in 61 s; 61 s left
  // the option, else the environment, else 30 s; 0 silences it; a terminal gets the bar
  assert.equal(progressSeconds(undefined, {}), 30);
  assert.equal(progressSeconds(undefined, { LMFORGE_PROGRESS_SECONDS: "5" }), 5);
  assert.equal(progressSeconds(2, { LMFORGE_PROGRESS_SECONDS: "5" }), 2);
  const silent: string[] = [];
  new Progress("x", "steps", { every: 0, tty: false, now: () => (now += 60_000), write: (t) => silent.push(t), env: {} }).update(1, 2);
  assert.deepEqual(silent, []);
  const bar: string[] = [];
  new Progress("x", "steps", { tty: true, now: () => (now += 1000), write: (t) => bar.push(t), env: {} }).update(1, 2, "loss 1");
  assert.match(bar[0]!, /^\rx \[=+> +\]  50% 1\/2 [\d.]+\/s 1 s loss 1\x1b\[K$/);
  assert.equal(formatEta(5400), "1.5 h");
});

test("progress of a resumed run: the rate and time left count from the checkpoint's step, not from 0", () => {
  let now = 0;
  const out: string[] = [];
  const p = new Progress("pretrain", "steps", { every: 30, tty: false, now: () => now, write: (t) => out.push(t), env: {} });
  now += 60_000;
  p.update(530, 2000, "", 500); // 30 steps in 60 s since step 500: 0.5/s; 1470 left: 49 min
  assert.deepEqual(out, ["pretrain: 530/2000 (27%), 0.5/s, 49 min left\n"]);
  now += 60_000;
  p.update(530, 2000); // counted from 0 it would read 4.4/s, 6 min left
  assert.equal(out[1], "pretrain: 530/2000 (27%), 4.4/s, 6 min left\n");
});

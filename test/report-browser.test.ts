// Reports and the dashboard in a real browser: Debian's chromium driven by playwright-core,
// headless. The runs are test/fixtures/runs (real tiny runs: a 40-step masked-LM pretraining
// and two 72-step classification fine-tunings of a 2-layer BERT, made with `lmforge pretrain`
// and `lmforge finetune`; their logs and result files kept, the weights not). Checked: every
// chart of a report renders (a canvas, and as many points as the log has records), no console
// errors (a script the page's CSP refused would be one), hovering shows values in the legend,
// dragging zooms into a range of steps, a comparison overlays two runs, hostile text stays
// text, and the dashboard's page grows when lines are appended to a running log.
// LMFORGE_SCREENSHOTS=DIR saves a screenshot of a report and of the dashboard there.
// Without a chromium the tests skip, saying so (scripts/bootstrap.sh installs it).
import { after, before, test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { AddressInfo } from "node:net";
import type { Browser, Page } from "playwright-core";
import { writeReports, writeRunReport } from "../src/report/write.js";
import { createDashboard } from "../src/report/dashboard.js";

const fixtures = new URL("../../test/fixtures/runs/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "lmforge-browser-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const shots = process.env.LMFORGE_SCREENSHOTS;

/** The chromium to drive: $LMFORGE_CHROMIUM when set, else Debian's or Ubuntu's. */
const candidates = process.env.LMFORGE_CHROMIUM ? [process.env.LMFORGE_CHROMIUM] : ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const executable = candidates.find((p) => existsSync(p));
let browser: Browser | undefined;

before(async () => {
  if (!executable) return;
  const { chromium } = createRequire(import.meta.url)("playwright-core") as typeof import("playwright-core");
  browser = await chromium.launch({ executablePath: executable, args: ["--no-sandbox"], headless: true });
});
after(async () => {
  await browser?.close();
});

/** A page that records console errors and uncaught exceptions, and fails on any dialog (an alert() from injected script). */
async function openPage(t: TestContext): Promise<{ page: Page; errors: string[] } | null> {
  if (!browser) {
    t.skip(`no chromium found (${candidates.join(", ")}): install it with scripts/bootstrap.sh or apt-get install chromium`);
    return null;
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  return { page, errors };
}

const count = (run: string, event: string): number => readFileSync(join(fixtures, run, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.includes(`"event":"${event}"`)).length;

/**
 * Waits until `predicate` (run in the page) is true, asking from here every 50 ms: page.evaluate
 * goes through the DevTools protocol, which the pages' Content-Security-Policy does not govern,
 * while waitForFunction's in-page poller compiles its predicate with eval, which the policy forbids.
 */
async function until(page: Page, predicate: string | (() => unknown), timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate(predicate as () => unknown)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${String(predicate)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each chart's id -> [x points, series, non-null values per series, has a canvas]. */
function chartState(page: Page): Promise<Record<string, { points: number; series: string[]; values: number[]; canvas: boolean }>> {
  return page.evaluate(() => {
    type U = { data: (number | null)[][]; series: { label: string }[]; root: { querySelector(s: string): unknown } };
    const charts = (globalThis as unknown as { lmforgeCharts: Record<string, U> }).lmforgeCharts;
    return Object.fromEntries(
      Object.entries(charts).map(([id, u]) => [
        id,
        { points: u.data[0]!.length, series: u.series.slice(1).map((s) => s.label), values: u.data.slice(1).map((ys) => ys.filter((y) => y !== null).length), canvas: u.root.querySelector("canvas") !== null },
      ]),
    );
  });
}

test("a run's report: every chart drawn with every logged point, no console errors, hover shows values, drag zooms", async (t) => {
  const opened = await openPage(t);
  if (!opened) return;
  const { page, errors } = opened;
  const run = join(dir, "ft-pre");
  cpSync(join(fixtures, "ft-pre"), run, { recursive: true });
  const path = writeRunReport(run);
  await page.goto(pathToFileURL(path).href);
  const charts = await chartState(page);
  const steps = count("ft-pre", "step");
  const evals = count("ft-pre", "eval");
  assert.deepEqual(Object.keys(charts), ["loss", "val_loss", "val_metrics", "lr", "grad_norm", "tokens_per_sec"]);
  for (const [id, c] of Object.entries(charts)) {
    assert.ok(c.canvas, `${id}: a canvas`);
    const n = id.startsWith("val_") ? evals : steps;
    assert.equal(c.points, n, `${id}: one point per logged record`);
    assert.deepEqual(c.values, c.series.map(() => n), `${id}: every series has every value`);
  }
  assert.deepEqual(charts.loss!.series, ["loss", "loss (smoothed)"]);
  // the tables: confusion matrix and the worst error
  assert.equal(await page.locator("table.cm tbody tr").count(), 2);
  assert.match((await page.locator("table.rows tbody tr").first().textContent())!, /whale ocean vote captain captain ship.*nation.*whale.*0\.8115/);
  // hover the loss chart's middle: the legend shows that step's values instead of "--"
  const loss = page.locator(".chart-loss .u-over");
  const box = (await loss.boundingBox())!;
  const values = page.locator(".chart-loss .u-legend .u-value");
  assert.equal(await values.nth(1).textContent(), "--");
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await until(page, `document.querySelectorAll(".chart-loss .u-legend .u-value")[1]?.textContent !== "--"`);
  const step = Number(await values.nth(0).textContent());
  assert.ok(step > 20 && step < 52, `the middle of 72 steps, got ${step}`);
  assert.match((await values.nth(1).textContent())!, /^0\.\d+$/);
  // drag across a range of steps: the x scale zooms in to it
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const scale = await page.evaluate(() => {
    const u = (globalThis as unknown as { lmforgeCharts: Record<string, { scales: { x: { min: number; max: number } } }> }).lmforgeCharts.loss!;
    return [u.scales.x.min, u.scales.x.max];
  });
  assert.ok(scale[0]! > 10 && scale[1]! < 45, `zoomed to [${scale}]`);
  if (shots) {
    mkdirSync(shots, { recursive: true });
    await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await page.screenshot({ path: join(shots, "report.png"), fullPage: true });
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test("a comparison overlays two runs' curves and puts their final metrics side by side", async (t) => {
  const opened = await openPage(t);
  if (!opened) return;
  const { page, errors } = opened;
  const out = join(dir, "compare.html");
  writeReports([join(fixtures, "ft-pre"), join(fixtures, "ft-scratch"), join(fixtures, "pre")], out);
  await page.goto(pathToFileURL(out).href);
  const charts = await chartState(page);
  assert.deepEqual(charts.loss!.series, ["ft-pre (smoothed)", "ft-scratch (smoothed)", "pre (smoothed)"]);
  assert.deepEqual(charts.loss!.values, [count("ft-pre", "step"), count("ft-scratch", "step"), count("pre", "step")]);
  assert.equal(charts.loss!.points, 72, "steps 1..72 of the union");
  assert.deepEqual(charts.val_perplexity!.series, ["pre perplexity"]);
  assert.ok(Object.values(charts).every((c) => c.canvas));
  assert.deepEqual(await page.locator("table.compare thead th").allTextContents(), ["", "ft-pre", "ft-scratch", "pre"]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("hostile text in a run's files shows as text and runs nothing", async (t) => {
  const opened = await openPage(t);
  if (!opened) return;
  const { page, errors } = opened;
  const run = join(dir, "evil");
  cpSync(join(fixtures, "ft-pre"), run, { recursive: true });
  const bad = `</script><img src=x onerror="alert(1)"><script>alert(2)</script>`;
  writeFileSync(join(run, "errors.jsonl"), JSON.stringify({ source: bad, text: bad, true_label: "<b>nation</b>", predicted_label: "whale", confidence: 0.9 }) + "\n");
  const tm = JSON.parse(readFileSync(join(run, "test_metrics.json"), "utf8")) as { report: { labels: string[] } };
  tm.report.labels = ["<img src=y onerror=alert(3)>", "whale"];
  writeFileSync(join(run, "test_metrics.json"), JSON.stringify(tm));
  // a hostile metric name reaches the charts' legends through the log
  appendFileSync(join(run, "metrics.jsonl"), JSON.stringify({ event: "eval", step: 72, [`val_${bad}`]: 0.5 }) + "\n");
  await page.goto(pathToFileURL(writeRunReport(run)).href);
  assert.equal(await page.locator("img").count(), 0);
  assert.equal(await page.locator("b").count(), 0);
  assert.equal(await page.locator("table.rows td.text").first().textContent(), bad);
  assert.ok((await page.locator(".chart-val_metrics .u-legend").textContent())!.includes(bad));
  assert.deepEqual(errors, []);
  await page.close();
});

test("the dashboard lists runs, and a run's page grows when lines are appended to its log", async (t) => {
  const opened = await openPage(t);
  if (!opened) return;
  const { page, errors } = opened;
  const root = join(dir, "dash");
  mkdirSync(root);
  cpSync(join(fixtures, "ft-scratch"), join(root, "ft-scratch"), { recursive: true });
  const hourAgo = Date.now() / 1000 - 3600;
  for (const f of ["metrics.jsonl", "train_summary.json", "test_metrics.json"]) utimesSync(join(root, "ft-scratch", f), hourAgo, hourAgo);
  // a running run: the first 30 steps of a log, and no summary yet
  const running = join(root, "running");
  mkdirSync(running);
  const all = readFileSync(join(fixtures, "ft-pre", "metrics.jsonl"), "utf8").trim().split("\n");
  const cut = all.findIndex((l) => l.includes('"step":30,') && l.includes('"event":"step"'));
  writeFileSync(join(running, "metrics.jsonl"), all.slice(0, cut + 1).join("\n") + "\n");
  cpSync(join(fixtures, "ft-pre", "config.json"), join(running, "config.json"));
  const shown = all.slice(0, cut + 1).filter((l) => /"event":"(step|eval)"/.test(l)).length; // 30 steps, 7 evaluations
  const app = createDashboard({ dirs: [root], pollMs: 200 });
  await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    const { port } = app.server.address() as AddressInfo;
    await page.goto(`http://127.0.0.1:${port}/`);
    assert.deepEqual(await page.locator("table.runs tbody td:first-child a").allTextContents(), ["running", "ft-scratch"]);
    assert.equal(await page.locator("table.runs .badge.running").count(), 1);
    await page.click('table.runs a[href="/run/running"]');
    await until(page, `document.getElementById("live-status")?.textContent?.startsWith("live: following")`);
    const before = await chartState(page);
    assert.equal(before.loss!.points, 30);
    // the run goes on: three steps and an evaluation, appended as the Trainer does
    const next = all.slice(cut + 1).filter((l) => /"event":"(step|eval)"/.test(l)).slice(0, 4);
    assert.deepEqual(next.map((l) => (JSON.parse(l) as { event: string }).event), ["step", "step", "eval", "step"]);
    for (const line of next) appendFileSync(join(running, "metrics.jsonl"), line + "\n");
    await until(page, () => (globalThis as unknown as { lmforgeCharts: Record<string, { data: unknown[][] }> }).lmforgeCharts.loss!.data[0]!.length === 33);
    await until(page, `document.getElementById("live-status").textContent.startsWith("live: ${shown + 4} records")`);
    const after = await chartState(page);
    assert.equal(after.val_loss!.points, before.val_loss!.points + 1);
    assert.equal(after.lr!.points, 33);
    if (shots) {
      mkdirSync(shots, { recursive: true });
      const box = (await page.locator(".chart-loss .u-over").boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
      await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
    }
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await app.close();
  }
});

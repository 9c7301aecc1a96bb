// The HTML building blocks of every report and dashboard page: escaping, tables, a confusion
// matrix, and the page itself, self-contained: uPlot's script and styles and the page's own
// script inlined, the data in an inline JSON script, and a Content-Security-Policy that lets
// only those exact scripts run (by their SHA-256) and nothing load from the network. Text from
// the data only ever reaches the page escaped (here) or through textContent (the client).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { formatValue } from "./charts.js";
import { escapeHtml, scriptJson } from "../io/html.js";

export { escapeHtml, scriptJson };

/** Code for an inline <script>: a `</script` inside a string or regex literal written as `<\/script`, which means the same. */
export function inlineScript(code: string): string {
  return code.replace(/<\/(script)/gi, "<\\/$1");
}

let uplot: { js: string; css: string } | undefined;

/** uPlot's minified script and styles, read once from the installed package (a runtime dependency). */
export function uplotAssets(): { js: string; css: string } {
  if (!uplot) {
    const require = createRequire(import.meta.url);
    let root: string;
    try {
      root = dirname(require.resolve("uplot/package.json"));
    } catch {
      throw new Error("the uplot package is not installed (a dependency of lmforge): run npm install in lmforge's folder");
    }
    uplot = { js: readFileSync(join(root, "dist", "uPlot.iife.min.js"), "utf8"), css: readFileSync(join(root, "dist", "uPlot.min.css"), "utf8") };
  }
  return uplot;
}

/** A table cell: text (escaped), a number (formatted), or HTML made here. */
export type Cell = string | number | null | undefined | { html: string };

function cell(x: Cell): string {
  if (x !== null && typeof x === "object") return x.html;
  if (typeof x === "number") return `<td class="num">${escapeHtml(formatValue(x))}</td>`;
  return `<td>${escapeHtml(x ?? "")}</td>`;
}

/** A table; a cell given as {html} is a whole <td> or <th>. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[], className = ""): string {
  const head = headers.length ? `<thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>` : "";
  const body = rows.map((r) => `<tr>${r.map(cell).join("")}</tr>`).join("");
  return `<table${className ? ` class="${escapeHtml(className)}"` : ""}>${head}<tbody>${body}</tbody></table>`;
}

/** A header cell of a row (escaped). */
export function rowHeader(text: string): { html: string } {
  return { html: `<th>${escapeHtml(text)}</th>` };
}

/** A cell of long text, wrapped. */
export function textCell(text: unknown): { html: string } {
  return { html: `<td class="text">${escapeHtml(text ?? "")}</td>` };
}

/** A confusion matrix (rows the true label, columns the predicted), cells shaded by their share of the row. */
export function confusionMatrix(labels: readonly string[], matrix: readonly (readonly number[])[]): string {
  const rows = matrix.map((row, i) => {
    const total = Math.max(1, row.reduce((a, b) => a + b, 0));
    const cells = row.map((n, j) => {
      const alpha = (0.08 + (0.8 * n) / total).toFixed(2);
      const rgb = i === j ? "40,130,70" : "200,50,50";
      return `<td class="num" style="background:rgba(${rgb},${n ? alpha : 0})" title="true ${escapeHtml(labels[i] ?? i)}, predicted ${escapeHtml(labels[j] ?? j)}: ${n}">${n}</td>`;
    });
    return `<tr><th>${escapeHtml(labels[i] ?? i)}</th>${cells.join("")}</tr>`;
  });
  return `<table class="cm"><thead><tr><th>true \\ predicted</th>${labels.map((l) => `<th>${escapeHtml(l)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

const STYLE = `
:root{--fg:#1d2330;--muted:#5c6578;--line:#d9dde5;--head:#f2f4f7;--accent:#2060c0}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);max-width:1240px;margin:1.5em auto;padding:0 1.2em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
h3{font-size:1em;margin:1.2em 0 .4em}.sub,.hint{color:var(--muted)}.hint{font-size:.9em}
a{color:var(--accent)}code{font-size:.92em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.93em}td,th{border:1px solid var(--line);padding:3px 9px;vertical-align:top;text-align:left}
th{background:var(--head);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{max-width:44em;white-space:pre-wrap;word-break:break-word}.cm td{min-width:3.5em;text-align:center}
#charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px 22px}
.chart{min-width:0}.badge{display:inline-block;padding:0 .5em;border-radius:.8em;background:var(--head);border:1px solid var(--line)}
.badge.running{background:#e3f4e6;border-color:#7bc48a}.badge.unfinished,.badge.interrupted{background:#fdf0dc;border-color:#e0b062}.badge.failed{background:#fbe3e3;border-color:#d27070}
.ok{color:#287a46}.bad{color:#b03030}
.uplot .u-title{font-size:14px;font-weight:600;text-align:left}
`;

export interface PageOptions {
  /** The page's own scripts (run in order after uPlot). */
  scripts?: readonly string[];
  /** Data for the scripts, as <script type="application/json" id="lmforge-data">. */
  data?: unknown;
  /** Whether the page includes uPlot. */
  charts?: boolean;
  /** Whether the page may connect back to its server (the dashboard's event stream). */
  connect?: boolean;
}

/** A whole page: head, styles, the body's sections, the data and the scripts, with a CSP that admits only these scripts. */
export function page(title: string, body: readonly string[], o: PageOptions = {}): string {
  const scripts = [...(o.charts ? [uplotAssets().js] : []), ...(o.scripts ?? [])].map(inlineScript);
  const hashes = scripts.map((s) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`);
  const csp = `default-src 'none'; script-src ${hashes.join(" ") || "'none'"}; style-src 'unsafe-inline'; img-src data:; connect-src ${o.connect ? "'self'" : "'none'"}; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${o.charts ? uplotAssets().css.replace(/<\/(style)/gi, "<\\/$1") : ""}${STYLE}</style></head>
<body>
${body.join("\n")}
${o.data !== undefined ? `<script type="application/json" id="lmforge-data">${scriptJson(o.data)}</script>` : ""}
${scripts.map((s) => `<script>${s}</script>`).join("\n")}
</body></html>
`;
}

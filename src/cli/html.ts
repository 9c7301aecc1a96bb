// A self-contained HTML report: loss curves as inline SVG, the metrics table, confusion matrices.

export interface Curve {
  name: string;
  points: [number, number][];
  color: string;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** A line chart of one or more curves, axes labelled with their ranges. */
export function lineChart(title: string, curves: Curve[], xLabel: string, yLabel: string): string {
  const W = 560;
  const H = 260;
  const pad = { l: 56, r: 16, t: 28, b: 40 };
  const all = curves.flatMap((c) => c.points).filter(([, y]) => Number.isFinite(y));
  if (all.length === 0) return `<p>${escapeHtml(title)}: no data</p>`;
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) || 1];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number): number => pad.l + ((x - x0) / Math.max(1e-9, x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number): number => H - pad.b - ((y - y0) / Math.max(1e-9, y1 - y0)) * (H - pad.t - pad.b);
  const lines = curves
    .map((c) => `<polyline fill="none" stroke="${c.color}" stroke-width="1.6" points="${c.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`)
    .join("");
  const legend = curves.map((c, i) => `<text x="${pad.l + 8 + i * 170}" y="18" fill="${c.color}" font-size="12">■ ${escapeHtml(c.name)}</text>`).join("");
  const ticks = [y0, (y0 + y1) / 2, y1].map((y) => `<text x="${pad.l - 6}" y="${sy(y) + 4}" font-size="11" text-anchor="end">${y.toPrecision(3)}</text>`).join("");
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">
<rect x="${pad.l}" y="${pad.t}" width="${W - pad.l - pad.r}" height="${H - pad.t - pad.b}" fill="#fafafa" stroke="#ccc"/>${lines}${legend}${ticks}
<text x="${pad.l}" y="${H - 22}" font-size="11">${x0}</text><text x="${W - pad.r}" y="${H - 22}" font-size="11" text-anchor="end">${x1}</text>
<text x="${(W + pad.l) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">${escapeHtml(xLabel)}</text>
<text x="14" y="${(H - pad.b + pad.t) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(H - pad.b + pad.t) / 2})">${escapeHtml(yLabel)}</text></svg></figure>`;
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cell = (x: string | number): string => (typeof x === "number" ? x.toFixed(4) : escapeHtml(x));
  return `<table><thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((x) => `<td>${cell(x)}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

export function confusionMatrix(title: string, labels: string[], cm: number[][]): string {
  const max = Math.max(1, ...cm.flat());
  const rows = cm
    .map((row, i) => `<tr><th>${escapeHtml(labels[i]!)}</th>${row.map((x, j) => `<td style="background:rgba(${i === j ? "40,120,60" : "180,40,40"},${(0.15 + (0.85 * x) / max).toFixed(2)})">${x}</td>`).join("")}</tr>`)
    .join("");
  return `<figure><figcaption>${escapeHtml(title)} (rows: true, columns: predicted)</figcaption><table class="cm"><thead><tr><th></th>${labels.map((l) => `<th>${escapeHtml(l)}</th>`).join("")}</tr></thead><tbody>${rows}</tbody></table></figure>`;
}

export function page(title: string, sections: string[]): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f0f0f0}
figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.4em}.cm td{min-width:4em;text-align:center}</style></head>
<body><h1>${escapeHtml(title)}</h1>${sections.join("\n")}</body></html>\n`;
}

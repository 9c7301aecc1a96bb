// The explanation as one self-contained HTML page (no network, no external script): tokens
// coloured by attribution (red for, blue against, the value on hover), the attention of each
// layer and head as token-to-token lines in SVG with layer and head selectors, attention
// rollout, and the probing accuracy per layer as a bar chart. Every piece of text the model or
// the user supplied is escaped: in HTML as entities, inside the page's JSON data block with
// <, > and & as \u escapes (so "</script>" cannot end the block), and drawn by the script with
// textContent, never innerHTML.
import type { Explanation } from "./attributions.js";
import type { AttentionMaps } from "./attention.js";
import type { ProbeResult } from "./probe.js";
import { escapeHtml, scriptJson } from "../io/html.js";

export { escapeHtml, scriptJson };

export interface ExplainReport {
  /** The model folder or name, for the title. */
  model?: string;
  text: string;
  explanation?: Explanation;
  attention?: AttentionMaps;
  probe?: ProbeResult;
}

/** A diverging colour for a score in [-max, max]: red for positive, blue for negative, white at 0. */
export function scoreColor(score: number, max: number): string {
  const a = max > 0 ? Math.min(1, Math.abs(score) / max) : 0;
  return score >= 0 ? `rgba(214,39,40,${a.toFixed(3)})` : `rgba(31,119,180,${a.toFixed(3)})`;
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(2);
}

/** Tokens as coloured spans, each score in its title (hover). */
export function coloredTokens(tokens: readonly string[], scores: readonly number[], special: readonly boolean[] = [], marked = -1): string {
  const max = Math.max(1e-12, ...scores.map((s) => Math.abs(s)));
  return `<p class="tokens">${tokens
    .map((t, i) => {
      const s = scores[i] ?? 0;
      const cls = `tok${special[i] ? " special" : ""}${i === marked ? " marked" : ""}`;
      return `<span class="${cls}" style="background:${scoreColor(s, max)}" title="${escapeHtml(`${t}: ${fmt(s)}`)}">${escapeHtml(t)}</span>`;
    })
    .join(" ")}</p>`;
}

function attributionSection(e: Explanation): string {
  const what = e.head === "token" ? `the tag of token ${e.position} (${escapeHtml(e.tokens[e.position!] ?? "")})` : "the sequence's class";
  const methodName = { gradxinput: "gradient × input", ig: "integrated gradients", occlusion: "occlusion (leave one word out)" }[e.method];
  const c = e.completeness;
  const completeness = c
    ? `<p class="note">Completeness: Σ attributions = ${fmt(c.attributionSum)}, f(x) − f(baseline) = ${fmt(c.fInput)} − ${fmt(c.fBaseline)} = ${fmt(c.fInput - c.fBaseline)}; error ${fmt(c.error)} (${(100 * c.relativeError).toFixed(3)}%), ${c.steps} ${escapeHtml(c.rule)} steps from the ${escapeHtml(c.baseline)} baseline.</p>`
    : "";
  const top = e.tokens
    .map((t, i) => ({ t, s: e.scores[i]!, i }))
    .filter((x) => !e.special[x.i])
    .sort((a, b) => b.s - a.s)
    .slice(0, 5)
    .map((x) => `<tr><td class="l">${escapeHtml(x.t)}</td><td>${x.i}</td><td>${fmt(x.s)}</td></tr>`)
    .join("");
  return `<section><h2>Attributions: ${methodName}</h2>
<p>Prediction for ${what}: <b>${escapeHtml(e.prediction.label)}</b> (p = ${e.prediction.probability.toFixed(4)}); explained class <b>${escapeHtml(e.target.label)}</b>, score: its ${e.score}.
<span class="legend"><span style="background:${scoreColor(1, 1)}">for</span> <span style="background:${scoreColor(-1, 1)}">against</span></span></p>
${coloredTokens(e.tokens, e.scores, e.special, e.position ?? -1)}${completeness}
<table><thead><tr><th class="l">top token</th><th>index</th><th>score</th></tr></thead><tbody>${top}</tbody></table></section>`;
}

/** Rollout's row of one token: how much of each token reaches it (the first, [CLS], is what a sequence head reads). */
function rolloutSection(a: AttentionMaps, query: number): string {
  const row = a.rollout[query] ?? [];
  const which = query === 0 ? "the first token" : `token ${query}`;
  return `<section><h2>Attention rollout</h2><p>What reaches ${which} (${escapeHtml(a.tokens[query] ?? "")}) through all ${a.attentions.length} layers, heads averaged and residuals counted (Abnar &amp; Zuidema 2020):</p>
${coloredTokens(a.tokens, row, [], query)}</section>`;
}

function attentionSection(a: AttentionMaps): string {
  const H = a.attentions[0]?.length ?? 0;
  const layers = a.attentions.map((_, l) => `<option value="${l}">layer ${l}</option>`).join("") + `<option value="rollout">rollout (all layers)</option>`;
  const heads = Array.from({ length: H }, (_, h) => `<option value="${h}">head ${h}</option>`).join("") + `<option value="mean">mean of heads</option>`;
  return `<section><h2>Attention</h2>
<p><label>Layer <select id="layer">${layers}</select></label> <label>Head <select id="head">${heads}</select></label>
<span class="note">lines from each token (left, attending) to the tokens it attends to (right); darker is more; hover a token on the left to see its lines alone</span></p>
<svg id="attn" role="img" aria-label="attention lines"></svg></section>`;
}

function probeSection(p: ProbeResult): string {
  const W = 560, Hh = 240;
  const pad = { l: 44, r: 12, t: 24, b: 36 };
  const n = p.layers.length;
  const slot = (W - pad.l - pad.r) / Math.max(1, n);
  const y = (v: number): number => Hh - pad.b - v * (Hh - pad.t - pad.b);
  const bars = p.layers
    .map((l, i) => {
      const x = pad.l + i * slot;
      const bw = slot * 0.36;
      return `<rect x="${(x + slot * 0.12).toFixed(1)}" y="${y(l.accuracy).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(0) - y(l.accuracy)).toFixed(1)}" fill="#2b6cb0"><title>layer ${l.layer}: accuracy ${l.accuracy.toFixed(4)}</title></rect>
<rect x="${(x + slot * 0.5).toFixed(1)}" y="${y(l.macroF1).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(0) - y(l.macroF1)).toFixed(1)}" fill="#90cdf4"><title>layer ${l.layer}: macro F1 ${l.macroF1.toFixed(4)}</title></rect>
<text x="${(x + slot / 2).toFixed(1)}" y="${Hh - pad.b + 14}" font-size="11" text-anchor="middle">${l.layer === 0 ? "emb" : l.layer}</text>`;
    })
    .join("");
  const ticks = [0, 0.5, 1].map((v) => `<text x="${pad.l - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text><line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`).join("");
  const base = `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(p.majority.accuracy)}" y2="${y(p.majority.accuracy)}" stroke="#c53030" stroke-dasharray="4 3"><title>always ${escapeHtml(p.majority.label)}: ${p.majority.accuracy.toFixed(4)}</title></line>`;
  const rows = p.layers.map((l) => `<tr><td>${l.layer === 0 ? "embeddings" : `layer ${l.layer}`}</td><td>${l.accuracy.toFixed(4)}</td><td>${l.macroF1.toFixed(4)}</td><td>${l.trainAccuracy.toFixed(4)}</td></tr>`).join("");
  return `<section><h2>Probing: which layer holds the labels</h2>
<p>A logistic regression per layer on each word's first-token state; labels ${p.labels.map(escapeHtml).join(", ")}; ${p.words.train} training and ${p.words.test} held-out words (${p.sentences.train} / ${p.sentences.test} sentences).
<span class="legend"><span style="background:#2b6cb0;color:#fff">accuracy</span> <span style="background:#90cdf4">macro F1</span> <span style="color:#c53030">- - always ${escapeHtml(p.majority.label)} (${p.majority.accuracy.toFixed(3)})</span></span></p>
<svg width="${W}" height="${Hh}" role="img" aria-label="probe accuracy per layer">${ticks}${bars}${base}<text x="${(W + pad.l) / 2}" y="${Hh - 4}" font-size="12" text-anchor="middle">layer</text></svg>
<table><thead><tr><th>layer</th><th>held-out accuracy</th><th>macro F1</th><th>train accuracy</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

// Draws the attention lines from the JSON data block; every token goes in with textContent.
const ATTENTION_SCRIPT = `(() => {
  const data = JSON.parse(document.getElementById("lmforge-data").textContent);
  const a = data.attention; if (!a) return;
  const svg = document.getElementById("attn"), layer = document.getElementById("layer"), head = document.getElementById("head");
  const NS = "http://www.w3.org/2000/svg", T = a.tokens.length, rowH = 20, W = 560, xl = 150, xr = 410;
  svg.setAttribute("width", W); svg.setAttribute("height", T * rowH + 16);
  const matrix = () => {
    if (layer.value === "rollout") return a.rollout;
    const heads = a.attentions[Number(layer.value)];
    if (head.value !== "mean") return heads[Number(head.value)];
    return heads[0].map((row, i) => row.map((_, j) => heads.reduce((s, h) => s + h[i][j], 0) / heads.length));
  };
  const el = (name, attrs, text) => { const e = document.createElementNS(NS, name); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };
  let focus = -1;
  const draw = () => {
    head.disabled = layer.value === "rollout";
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const m = matrix(), y = (i) => 12 + i * rowH;
    for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      const w = m[i][j]; if (w < 0.02 || (focus >= 0 && i !== focus)) continue;
      svg.appendChild(el("line", { x1: xl + 4, y1: y(i) - 4, x2: xr - 4, y2: y(j) - 4, stroke: "#c05621", "stroke-opacity": Math.min(1, w).toFixed(3), "stroke-width": (0.5 + 3 * w).toFixed(2) }));
    }
    a.tokens.forEach((t, i) => {
      const left = el("text", { x: xl, y: y(i), "text-anchor": "end", "font-size": 13, class: "qt" }, t);
      left.addEventListener("mouseenter", () => { focus = i; draw(); });
      left.addEventListener("mouseleave", () => { focus = -1; draw(); });
      if (i === focus) left.setAttribute("font-weight", "bold");
      svg.appendChild(left);
      svg.appendChild(el("text", { x: xr, y: y(i), "font-size": 13 }, t));
    });
  };
  layer.addEventListener("change", draw); head.addEventListener("change", draw);
  draw();
})();`;

/** The whole page. */
export function explanationHtml(r: ExplainReport): string {
  const sections: string[] = [];
  if (r.explanation) sections.push(attributionSection(r.explanation));
  if (r.attention) sections.push(attentionSection(r.attention), rolloutSection(r.attention, r.explanation?.head === "token" ? r.explanation.position ?? 0 : 0));
  if (r.probe) sections.push(probeSection(r.probe));
  // the script reads the attention only; rounded, it stays small for a page
  const round = (m: number[][]): number[][] => m.map((row) => row.map((v) => Math.round(v * 1e4) / 1e4));
  const data = r.attention ? { attention: { tokens: r.attention.tokens, attentions: r.attention.attentions.map((l) => l.map(round)), rollout: round(r.attention.rollout) } } : {};
  const title = `lmforge explain${r.model ? `: ${r.model}` : ""}`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
.tokens{line-height:2.2;font-size:17px}.tok{padding:3px 4px;border-radius:3px;border:1px solid #e2e2e2;white-space:pre}.special{color:#888;font-style:italic}.marked{outline:2px solid #222}
.note{color:#555;font-size:14px}.legend span{padding:1px 6px;margin-left:6px;border-radius:3px}section{margin:1.6em 0}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:3px 10px;text-align:right}th{background:#f0f0f0}.l{text-align:left}
svg text.qt{cursor:pointer}blockquote{background:#f7f7f7;padding:.6em 1em;margin:0}</style></head>
<body><h1>${escapeHtml(title)}</h1><blockquote>${escapeHtml(r.text)}</blockquote>
${sections.join("\n")}
<script type="application/json" id="lmforge-data">${scriptJson(data)}</script>
<script>${ATTENTION_SCRIPT}</script></body></html>
`;
}

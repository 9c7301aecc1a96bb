// Interpretability: quadrature rules against their closed forms, gradient × input and
// integrated gradients on hand-computed functions, IG's completeness on a small random BERT
// (and its error shrinking with the steps), a planted trigger word found first by IG and
// occlusion after fine-tuning, attention rollout on a hand-computed case, probes per layer,
// HTML that shows hostile tokens as text, and the command end to end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoModelForTokenClassification, savePretrained } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune } from "../src/train/index.js";
import { attentionMaps, attentionRollout, explain, explanationHtml, gaussLegendre, gradientTimesInput, integratedGradients, probeLayers, trapezoid } from "../src/explain/index.js";
import type { Explanation } from "../src/explain/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir("lmforge-explain-");
const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

test("quadrature: Gauss–Legendre's 3 points are (1 ± √(3/5)) / 2 and 1/2 with weights 5/18, 8/18, 5/18; the trapezoid's are k/n", () => {
  const g = gaussLegendre(3);
  const r = Math.sqrt(3 / 5);
  [(1 - r) / 2, 0.5, (1 + r) / 2].forEach((p, i) => close(g.points[i]!, p, 1e-14, `point ${i}`));
  [5 / 18, 8 / 18, 5 / 18].forEach((w, i) => close(g.weights[i]!, w, 1e-14, `weight ${i}`));
  // exact for degree 2n - 1: ∫₀¹ α⁹ = 1/10 with 5 points
  const g5 = gaussLegendre(5);
  close(g5.points.reduce((s, a, i) => s + g5.weights[i]! * a ** 9, 0), 0.1, 1e-14, "∫α⁹");
  assert.deepEqual(trapezoid(4), { points: [0, 0.25, 0.5, 0.75, 1], weights: [0.125, 0.25, 0.25, 0.25, 0.125] });
});

test("gradient × input and integrated gradients on hand-computed functions of the embeddings", () => {
  torch.scope(() => {
    const x = torch.tensor([[1, 2], [3, -1]], { dtype: "float64" }); // (T = 2, E = 2)
    const w = torch.tensor([[0.5, -1], [2, 1]], { dtype: "float64" });
    // f(x) = Σ w ⊙ x + 3: token 0 gets 0.5·1 - 1·2 = -1.5, token 1 gets 2·3 + 1·(-1) = 5
    const linear = (e: torch.Tensor): torch.Tensor => e.mul(w).sum([1, 2]).add(3);
    assert.deepEqual(gradientTimesInput(linear, x).scores, [-1.5, 5]);
    const ig = integratedGradients(linear, x, torch.zerosLike(x), { steps: 3 });
    ig.scores.forEach((s, i) => close(s, [-1.5, 5][i]!, 1e-12, `linear IG token ${i}`));
    close(ig.completeness.fInput - ig.completeness.fBaseline, 3.5, 1e-12, "f(x) - f(0)");
    close(ig.completeness.error, 0, 1e-12, "linear completeness");

    // f(x) = Σ x³ from 0: IG_i = x_i · ∫ 3α² x_i² dα = x_i³; the trapezoid's ∫α² with n intervals
    // is 1/3 + 1/(6n²), so it gives x_i³ (1 + 1/(2n²)); two Gauss–Legendre points are exact
    const y = torch.tensor([[1, 2], [-1, 0.5]], { dtype: "float64" });
    const cubic = (e: torch.Tensor): torch.Tensor => e.pow(3).sum([1, 2]);
    const exact = [9, -0.875];
    const trap = integratedGradients(cubic, y, torch.zerosLike(y), { steps: 4, rule: "trapezoid", batchSize: 2 });
    trap.scores.forEach((s, i) => close(s, exact[i]! * (1 + 1 / 32), 1e-12, `trapezoid token ${i}`));
    close(trap.completeness.error, 8.125 / 32, 1e-12, "trapezoid completeness gap");
    const gl = integratedGradients(cubic, y, torch.zerosLike(y), { steps: 2, rule: "gauss-legendre" });
    gl.scores.forEach((s, i) => close(s, exact[i]!, 1e-12, `Gauss–Legendre token ${i}`));
  });
});

// --- a tokenizer and small models -------------------------------------------------------------

const FILLER = "apple river stone cloud green table music window paper garden silver yellow orange candle forest mirror bottle pencil ladder rocket".split(" ");
function synth(n: number, seed: number): { text: string; label: string; source: string }[] {
  let s = seed;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 6 }, () => FILLER[Math.floor(rnd() * FILLER.length)]!);
    const zebra = i % 2 === 0;
    if (zebra) words[Math.floor(rnd() * words.length)] = "zebra";
    return { text: words.join(" "), label: zebra ? "zebra" : "plain", source: `synth:${i}` };
  });
}
const trainSet = synth(160, 1);
const tok = trainTokenizerFromTexts([...trainSet.map((e) => e.text), "zebra"], { kind: "wordpiece", vocabSize: 120, lowercase: true, minFrequency: 1 });
const tiny = { model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 };

test("integrated gradients on a small random BERT: completeness within 1% at 64 steps, the gap shrinking as steps grow", () => {
  torch.manualSeed(5);
  // a wide initialisation, so that the classifier is far from linear in its input
  const model = AutoModelForSequenceClassification.fromConfig({ ...tiny, initializer_range: 0.3, id2label: { 0: "a", 1: "b", 2: "c" } }) as PretrainedModel;
  const text = "green river stone under the silver cloud";
  const errors = [2, 8, 64].map((steps) => explain(model, tok, text, { method: "ig", steps, rule: "trapezoid" }).completeness!);
  const gap = errors[2]!.fInput - errors[2]!.fBaseline;
  assert.ok(Math.abs(gap) > 0.05, `f(x) - f(baseline) = ${gap} is too small to test completeness on`);
  assert.ok(errors[2]!.relativeError < 1e-2, `trapezoid, 64 steps: relative error ${errors[2]!.relativeError}`);
  assert.ok(errors[0]!.error > errors[1]!.error && errors[1]!.error > errors[2]!.error, `errors at 2, 8, 64 steps: ${errors.map((e) => e.error)}`);
  const gl = explain(model, tok, text, { method: "ig", steps: 64 });
  assert.ok(gl.completeness!.relativeError < 1e-2, `Gauss–Legendre, 64 steps: relative error ${gl.completeness!.relativeError}`);
  // special tokens keep their embeddings in the baseline, so they get exactly nothing
  gl.tokens.forEach((t, i) => gl.special[i] && assert.equal(gl.scores[i], 0, `${t}`));
  assert.equal(gl.scores.length, gl.tokens.length);
  assert.equal(gl.target.index, gl.prediction.index);
  const zero = explain(model, tok, text, { method: "ig", steps: 64, baseline: "zero", target: "c" });
  assert.equal(zero.target.label, "c");
  assert.ok(zero.completeness!.relativeError < 1e-2, `zero baseline: relative error ${zero.completeness!.relativeError}`);
  console.log(`IG completeness (relative): trapezoid 2/8/64 steps ${errors.map((e) => e.relativeError.toExponential(2)).join(" / ")}, Gauss–Legendre 64 ${gl.completeness!.relativeError.toExponential(2)}, zero baseline ${zero.completeness!.relativeError.toExponential(2)}`);
});

test("token classification: one token's tag is explained, completeness holds there too; wrong uses are errors that say why", () => {
  torch.manualSeed(6);
  const tagger = AutoModelForTokenClassification.fromConfig({ ...tiny, initializer_range: 0.3, id2label: { 0: "O", 1: "B-X", 2: "I-X" } }) as PretrainedModel;
  const text = "apple zebra river";
  const e = explain(tagger, tok, text, { method: "ig", steps: 64, position: 2, target: "B-X" });
  assert.equal(e.head, "token");
  assert.equal(e.position, 2);
  assert.equal(e.tokens[2], "zebra");
  assert.equal(e.target.label, "B-X");
  assert.ok(Math.abs(e.completeness!.fInput - e.completeness!.fBaseline) > 0.05);
  assert.ok(e.completeness!.relativeError < 1e-2, `relative error ${e.completeness!.relativeError}`);
  console.log(`IG completeness, token head (relative): ${e.completeness!.relativeError.toExponential(2)}`);
  // the default position is the first non-special token tagged other than O (else the first)
  const d = explain(tagger, tok, text, { method: "gradxinput" });
  const tags = ["[CLS]", "apple", "zebra", "river", "[SEP]"].map((_, i) => explain(tagger, tok, text, { method: "gradxinput", position: i }).prediction.label);
  const firstTagged = [1, 2, 3].find((i) => tags[i] !== "O") ?? 1;
  assert.equal(d.position, firstTagged, `tags ${tags}`);
  assert.throws(() => explain(tagger, tok, text, { position: 9 }), /position 9 is outside the text's 5 tokens \(0\.\.4\)/);
  assert.throws(() => explain(tagger, tok, text, { target: "B-Y" }), /target "B-Y" is no class of the model \(O, B-X, I-X\)/);
  assert.throws(() => explain(tagger, tok, text, { method: "occlusion", occlude: "delete" }), /deletion moves the explained token/);
  const mlm = AutoModelForMaskedLM.fromConfig(tiny) as PretrainedModel;
  assert.throws(() => explain(mlm, tok, text), /attributions need a sequence or token classification model; BertForMaskedLM is masked-lm/);
});

test("attention rollout on a hand-computed 2-layer, 3-token case", () => {
  // layer 1: two heads whose mean is [[1,0,0],[.5,.5,0],[0,.5,.5]]; + I, rows / 2 -> [[1,0,0],[.25,.75,0],[0,.25,.75]]
  const layer1 = [
    [[1, 0, 0], [0.5, 0.5, 0], [0, 0, 1]],
    [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0]],
  ];
  // layer 2: one head, a cyclic shift; + I, rows / 2 -> [[.5,.5,0],[0,.5,.5],[.5,0,.5]]
  const layer2 = [[[0, 1, 0], [0, 0, 1], [1, 0, 0]]];
  const r = attentionRollout([layer1, layer2]); // Â2 · Â1
  const expected = [
    [0.625, 0.375, 0],
    [0.125, 0.5, 0.375],
    [0.5, 0.125, 0.375],
  ];
  r.forEach((row, i) => row.forEach((v, j) => close(v, expected[i]![j]!, 1e-12, `rollout[${i}][${j}]`)));
});

test("attention maps of a small BERT: [layers][heads][T][T], rows of probabilities, rollout rows too", () => {
  torch.manualSeed(1);
  const model = AutoModelForSequenceClassification.fromConfig(tiny) as PretrainedModel;
  const a = attentionMaps(model, tok, "apple river zebra");
  assert.deepEqual(a.tokens, ["[CLS]", "apple", "river", "zebra", "[SEP]"]);
  assert.equal(a.attentions.length, 2);
  assert.equal(a.attentions[0]!.length, 4);
  for (const layer of a.attentions) for (const head of layer) for (const row of head) close(row.reduce((s, v) => s + v, 0), 1, 1e-5, "attention row sum");
  for (const row of a.rollout) close(row.reduce((s, v) => s + v, 0), 1, 1e-5, "rollout row sum");
});

// --- the planted trigger --------------------------------------------------------------------

const baseDir = join(dir, "base");
const ftDir = join(dir, "zebra");
let trained: PretrainedModel | undefined;
async function zebraModel(): Promise<PretrainedModel> {
  if (trained) return trained;
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig(tiny) as PretrainedModel, baseDir);
  saveTokenizer(tok, baseDir);
  const r = await finetune({ model: baseDir, train: trainSet, validation: synth(40, 2), strategy: "full", epochs: 6, batchSize: 16, learningRate: 6e-3, seed: 3, maxLength: 16, patience: 0, precision: "fp32", metric: "loss", evalEvery: "epoch", out: ftDir });
  // 60 steps: the validation loss falls to about 0.01 (every validation sentence right)
  assert.ok(r.train.best!.value < 0.1, `the trigger was not learnt: validation loss ${r.train.best!.value}`);
  return (trained = r.model);
}

const heldOut = ["river zebra stone cloud apple music", "zebra garden window paper silver candle", "forest mirror bottle pencil ladder zebra", "green table zebra orange yellow rocket", "music music apple zebra stone river"];

test("a planted trigger word: after fine-tuning, integrated gradients, gradient × input and occlusion rank it first", async () => {
  const model = await zebraModel();
  const top = (e: Explanation): string => {
    let best = -1;
    e.tokens.forEach((_, i) => {
      if (!e.special[i] && (best < 0 || e.scores[i]! > e.scores[best]!)) best = i;
    });
    return e.tokens[best]!;
  };
  for (const text of heldOut) {
    const ig = explain(model, tok, text, { method: "ig", steps: 32 });
    assert.equal(ig.prediction.label, "zebra", text);
    assert.equal(top(ig), "zebra", `IG on "${text}": ${ig.tokens.map((t, i) => `${t} ${ig.scores[i]!.toFixed(3)}`).join(", ")}`);
    // (no completeness bound here: the trained logit jumps from about -2.2 to 2.2 within 1% of the
    // path, a step that 32 points cannot integrate; the random model above is where it is checked)
    assert.ok(Number.isFinite(ig.completeness!.error));
    const occ = explain(model, tok, text, { method: "occlusion" });
    assert.equal(top(occ), "zebra", `occlusion on "${text}": ${occ.words!.map((w) => `${w.text} ${w.score.toFixed(3)}`).join(", ")}`);
    // occlusion's score is the drop in p(zebra): leaving zebra out leaves a plain sentence
    const zebraWord = occ.words!.find((w) => w.text === "zebra")!;
    assert.ok(zebraWord.score > 0.5, `dropping zebra from "${text}" moves p(zebra) by ${zebraWord.score}`);
  }
  const deleted = explain(model, tok, heldOut[0]!, { method: "occlusion", occlude: "delete" });
  assert.equal(top(deleted), "zebra");
  const gxi = explain(model, tok, heldOut[1]!, { method: "gradxinput" });
  assert.equal(gxi.scores.length, gxi.tokens.length);
});

test("a linear probe reads word identity off the embedding layer, above the majority baseline", async () => {
  const model = await zebraModel();
  const sentences = synth(60, 9).map((e) => {
    const tokens = e.text.split(" ");
    return { tokens, tags: tokens.map((t) => (t === "zebra" ? "B-ANIMAL" : "O")) };
  });
  const p = probeLayers(model, tok, sentences);
  assert.deepEqual(p.labels, ["O", "ANIMAL"]);
  assert.equal(p.layers.length, 3); // embeddings and 2 layers
  assert.equal(p.words.train + p.words.test, 60 * 6);
  assert.equal(p.sentences.test, 15);
  assert.ok(p.majority.accuracy < 0.95, `majority ${p.majority.accuracy}`);
  assert.equal(p.layers[0]!.accuracy, 1, `embedding layer probe: ${JSON.stringify(p.layers[0])}`);
  assert.equal(p.layers[0]!.macroF1, 1);
});

test("the HTML view shows hostile tokens as text: no element, no early end of the data block", () => {
  const tokens = ["[CLS]", "</script>", "<img src=x onerror=alert(1)>", "a\"b'c&", "[SEP]"];
  const T = tokens.length;
  const uniform = tokens.map(() => tokens.map(() => 1 / T));
  const html = explanationHtml({
    model: "<b>m</b>",
    text: "</script><img src=x onerror=alert(1)>",
    explanation: { method: "ig", text: "x", tokens, special: [true, false, false, false, true], scores: [0, 1, -0.5, 0.25, 0], head: "sequence", target: { index: 0, label: "<i>pos</i>" }, prediction: { index: 0, label: "<i>pos</i>", probability: 0.9, probabilities: {} }, score: "logit" },
    attention: { tokens, attentions: [[uniform]], rollout: uniform },
  });
  assert.ok(!/<img/i.test(html), "an <img> element got through");
  assert.ok(!/<b>m<\/b>|<i>pos/.test(html), "markup in a label or the model name got through");
  assert.equal(html.match(/<\/script>/g)!.length, 2, "only the page's own two scripts end");
  assert.ok(html.includes("&lt;img src=x onerror=alert(1)&gt;"));
  assert.ok(html.includes('title="&lt;/script&gt;: 1.0000"'));
  assert.ok(html.includes("a&quot;b&#39;c&amp;"));
  // the data block parses back to the very tokens
  const json = /<script type="application\/json" id="lmforge-data">([^]*?)<\/script>/.exec(html)![1]!;
  assert.deepEqual(JSON.parse(json).attention.tokens, tokens);
  // red for, blue against
  assert.match(html, /style="background:rgba\(214,39,40,1\.000\)" title="&lt;\/script&gt;/);
  assert.match(html, /style="background:rgba\(31,119,180,0\.500\)"/);
});

test("lmforge explain writes explanation.json and explanation.html and prints the top tokens", async () => {
  await zebraModel();
  const out = join(dir, "explained");
  const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
  const r = spawnSync(process.execPath, [cli, "explain", "--model", ftDir, "--text", heldOut[2]!, "--method", "occlusion", "--attention", "--out", out], { encoding: "utf8", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache") } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /prediction: zebra \(p = [\d.]+\); explaining zebra by occlusion/);
  assert.match(r.stdout, /top tokens:\n\s+[\d.]+\s+zebra\s+\(token 6\)/);
  const json = JSON.parse(readFileSync(join(out, "explanation.json"), "utf8")) as { explanation: Explanation; attention: { attentions: number[][][][]; rollout: number[][] } };
  assert.equal(json.explanation.method, "occlusion");
  assert.equal(json.attention.attentions.length, 2);
  assert.equal(json.attention.rollout.length, 8);
  const html = readFileSync(join(out, "explanation.html"), "utf8");
  assert.match(html, /<svg id="attn"/);
  assert.match(html, /title="zebra: 0\.\d+"/);
});

// Per-token attributions for classification and token classification:
// - gradient × input: Σ_e x_te · ∂f/∂x_te per token t (the signed sum over the embedding
//   dimension, not the L2 norm: it is IG's one-step, zero-baseline estimate, and signs say
//   for or against the class);
// - integrated gradients (Sundararajan et al. 2017): (x - x') · ∫₀¹ ∂f(x' + α(x - x'))/∂x dα,
//   summed over the embedding dimension, the integral by Gauss–Legendre or the trapezoid rule
//   over N steps, in batches; completeness says Σ_t IG_t = f(x) - f(x'), and the gap is reported;
// - occlusion: each word's tokens replaced by [MASK] (or [PAD], or deleted), the drop in the
//   target class's probability.
// x are the word embeddings (what inputsEmbeds replaces): positions and token types stay as
// they are, so a baseline changes the words only. f is the target class's logit for the two
// gradient methods (IG's usual choice: no softmax saturation) and its probability for occlusion.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { PretrainedModel } from "../models/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { encodeText, headKind, inEvalMode, labelNames, logitsFromEmbeddings, logitsFromIds, modelMaxLength, wordEmbeddings } from "./inputs.js";
import type { ExplainInput, HeadKind } from "./inputs.js";
import { quadrature } from "./quadrature.js";
import type { IntegrationRule } from "./quadrature.js";
import { EXPLAIN_DEFAULTS } from "./options.js";
import type { AttributionMethod, Baseline, Occluder } from "./options.js";

/** The explained score for n inputs' word embeddings (n, T, E) -> (n). */
export type EmbeddingScore = (embeds: Tensor) => Tensor;

/** Integrated gradients' completeness: Σ attributions against f(x) - f(baseline). */
export interface Completeness {
  steps: number;
  rule: IntegrationRule;
  baseline: Baseline;
  attributionSum: number;
  fInput: number;
  fBaseline: number;
  /** |Σ attributions - (f(x) - f(baseline))| */
  error: number;
  /** error / |f(x) - f(baseline)| */
  relativeError: number;
}

/** Per-token scores of one method (T), and f at the input. */
export interface TokenScores {
  scores: number[];
  fInput: number;
}

function perToken(t: Tensor): number[] {
  return Array.from(t.double().data() as Float64Array);
}

/**
 * Gradient × input: Σ_e x_te ∂f/∂x_te for each token t of x (T, E).
 * @example gradientTimesInput((e) => e.mul(w).sum([1, 2]), x) // f linear: w ⊙ x summed per token
 */
export function gradientTimesInput(score: EmbeddingScore, x: Tensor): TokenScores {
  return torch.scope(() =>
    torch.enableGrad(() => {
      const input = x.detach().unsqueeze(0).requiresGrad_(true); // (1, T, E)
      const f = score(input);
      const [g] = torch.grad(f.sum(), input);
      return { scores: perToken(g!.mul(input.detach()).sum([0, 2])), fInput: f.item() };
    }),
  );
}

/**
 * Integrated gradients of score from baseline (T, E) to x (T, E): per-token attributions and
 * the completeness check. The gradient is taken at the rule's points in batches of batchSize.
 */
export function integratedGradients(
  score: EmbeddingScore,
  x: Tensor,
  baseline: Tensor,
  options: { steps?: number; rule?: IntegrationRule; batchSize?: number; baselineName?: Baseline } = {},
): TokenScores & { completeness: Completeness } {
  const steps = options.steps ?? EXPLAIN_DEFAULTS.steps;
  const rule = options.rule ?? EXPLAIN_DEFAULTS.rule;
  const batchSize = options.batchSize ?? EXPLAIN_DEFAULTS.batchSize;
  if (x.shape.join() !== baseline.shape.join()) throw new Error(`integratedGradients: input [${x.shape}] and baseline [${baseline.shape}] differ in shape`);
  const { points, weights } = quadrature(rule, steps);
  return torch.scope(() => {
    const input = x.detach().double();
    const base = baseline.detach().double();
    const delta = input.sub(base); // (T, E)
    let avgGrad = torch.zerosLike(delta); // Σ_k w_k ∂f/∂x at x' + α_k (x - x'), in float64
    for (let s = 0; s < points.length; s += batchSize) {
      const alphas = points.slice(s, s + batchSize);
      const w = weights.slice(s, s + batchSize);
      const next = torch.scope(() =>
        torch.enableGrad(() => {
          const a = torch.tensor(alphas, { dtype: "float64" }).view([-1, 1, 1]);
          const path = base.unsqueeze(0).add(delta.unsqueeze(0).mul(a)).to(x.dtype).detach().requiresGrad_(true); // (m, T, E)
          const [g] = torch.grad(score(path).sum(), path);
          return avgGrad.add(g!.double().mul(torch.tensor(w, { dtype: "float64" }).view([-1, 1, 1])).sum(0));
        }),
      );
      avgGrad = next;
    }
    const scores = perToken(delta.mul(avgGrad).sum(1));
    const [fInput, fBaseline] = torch.noGrad(() => perToken(score(torch.stack([x.detach(), baseline.detach()], 0))));
    const attributionSum = scores.reduce((a, b) => a + b, 0);
    const gap = fInput! - fBaseline!;
    const error = Math.abs(attributionSum - gap);
    return {
      scores,
      fInput: fInput!,
      completeness: { steps, rule, baseline: options.baselineName ?? "zero", attributionSum, fInput: fInput!, fBaseline: fBaseline!, error, relativeError: error / Math.max(Math.abs(gap), 1e-12) },
    };
  });
}

// --- the model-level API ------------------------------------------------------------------

export interface ExplainOptions {
  method?: AttributionMethod;
  /** The class explained: its index or label; default the predicted one. */
  target?: number | string;
  /** Token classification: the token (index into tokens) whose tag is explained; default the first non-special token tagged other than O. */
  position?: number;
  /** Integrated gradients: quadrature steps and rule, the baseline, and points per forward pass. */
  steps?: number;
  rule?: IntegrationRule;
  baseline?: Baseline;
  batchSize?: number;
  /** Occlusion: what replaces a word. */
  occlude?: Occluder;
  /** Truncate the text to this many tokens (default: what the model's positions allow, at most 512). */
  maxLength?: number;
}

export interface Prediction {
  index: number;
  label: string;
  probability: number;
  probabilities: Record<string, number>;
}

/** One attribution: a score per token, with what it explains. */
export interface Explanation {
  method: AttributionMethod;
  text: string;
  tokens: string[];
  special: boolean[];
  scores: number[];
  head: HeadKind;
  /** Token classification: the explained token. */
  position?: number;
  target: { index: number; label: string };
  prediction: Prediction;
  /** What the scores attribute: the target's logit (gradient methods) or probability (occlusion). */
  score: "logit" | "probability";
  /** Integrated gradients. */
  completeness?: Completeness;
  /** Occlusion: each word's tokens and the drop in probability when it is left out. */
  words?: { text: string; tokens: number[]; score: number }[];
}

function softmax(row: readonly number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** The class logits of the explained row: the sequence's, or the chosen token's. */
function rowOf(logits: Tensor, head: HeadKind, position: number): Tensor {
  return head === "sequence" ? logits : logits.select(1, position);
}

function resolveTarget(target: number | string | undefined, labels: string[], predicted: number): number {
  if (target === undefined) return predicted;
  // a label by name, else a class index (also given as text: --target 1)
  const index = typeof target === "number" ? target : labels.includes(target) ? labels.indexOf(target) : /^\d+$/.test(target) ? Number(target) : -1;
  if (!Number.isInteger(index) || index < 0 || index >= labels.length) throw new Error(`explain: target ${JSON.stringify(target)} is no class of the model (${labels.join(", ")})`);
  return index;
}

/** The default explained token: the first non-special one tagged other than O, else the first non-special one. */
function defaultPosition(input: ExplainInput, tags: number[], labels: string[]): number {
  const candidates = input.special.map((s, i) => (s ? -1 : i)).filter((i) => i >= 0);
  if (candidates.length === 0) throw new Error(`explain: ${JSON.stringify(input.text)} has only special tokens`);
  return candidates.find((i) => labels[tags[i]!] !== "O") ?? candidates[0]!;
}

/** The words of a text: token indices grouped by word id (special tokens left out). */
export function wordGroups(input: ExplainInput): number[][] {
  const groups: number[][] = [];
  let last: number | null = null;
  input.tokens.forEach((_, i) => {
    if (input.special[i]) return;
    const w = input.wordIds[i] ?? null;
    if (w === null || w !== last || groups.length === 0) groups.push([i]);
    else groups[groups.length - 1]!.push(i);
    last = w;
  });
  return groups;
}

function occlusionScores(model: PretrainedModel, tokenizer: Tokenizer, input: ExplainInput, head: HeadKind, position: number, target: number, base: number, o: ExplainOptions): { scores: number[]; words: NonNullable<Explanation["words"]> } {
  const occlude = o.occlude ?? (tokenizer.specialTokens.mask ? "mask" : "pad");
  if (occlude === "delete" && head === "token") throw new Error("explain: occlusion by deletion moves the explained token; use --occlude mask or pad for token classification");
  const token = occlude === "mask" ? tokenizer.specialTokens.mask : occlude === "pad" ? tokenizer.specialTokens.pad : undefined;
  const fillId = token === undefined ? -1 : tokenizer.tokenToId(token) ?? -1;
  if (occlude !== "delete" && fillId < 0) throw new Error(`explain: the tokenizer has no ${occlude} token to occlude words with; use --occlude ${occlude === "mask" ? "pad or delete" : "mask or delete"}`);
  const padId = tokenizer.tokenToId(tokenizer.specialTokens.pad ?? "") ?? 0;
  const groups = wordGroups(input);
  const drops: number[] = [];
  const bs = o.batchSize ?? EXPLAIN_DEFAULTS.batchSize;
  for (let s = 0; s < groups.length; s += bs) {
    const chunk = groups.slice(s, s + bs);
    const rows = chunk.map((g) => (occlude === "delete" ? input.ids.filter((_, i) => !g.includes(i)) : input.ids.map((id, i) => (g.includes(i) ? fillId : id))));
    const types = chunk.map((g) => (occlude === "delete" ? input.typeIds.filter((_, i) => !g.includes(i)) : input.typeIds));
    const probs = torch.noGrad(() => torch.scope(() => rowOf(logitsFromIds(model, rows, types, padId), head, position).float().softmax(-1).select(1, target).toArray() as number[]));
    drops.push(...probs.map((p) => base - p));
  }
  const scores = input.tokens.map(() => 0);
  const words = groups.map((g, k) => {
    for (const i of g) scores[i] = drops[k]!;
    const from = input.offsets[g[0]!]![0];
    const to = input.offsets[g[g.length - 1]!]![1];
    return { text: to > from ? input.text.slice(from, to) : g.map((i) => input.tokens[i]).join(""), tokens: g, score: drops[k]! };
  });
  return { scores, words };
}

/**
 * Explains a classifier's prediction for a text, one score per token.
 * @example explain(model, tokenizer, "the zebra ran", { method: "ig", steps: 64 }).scores
 */
export function explain(model: PretrainedModel, tokenizer: Tokenizer, text: string, options: ExplainOptions = {}): Explanation {
  const method = options.method ?? EXPLAIN_DEFAULTS.method;
  const head = headKind(model);
  const input = encodeText(tokenizer, text, options.maxLength ?? modelMaxLength(model));
  return inEvalMode(model, () =>
    torch.scope(() => {
      const logits = torch.noGrad(() => logitsFromIds(model, [input.ids], [input.typeIds], 0).float());
      const K = logits.shape[logits.ndim - 1]!;
      const labels = labelNames(model, K);
      const tags = head === "token" ? (logits.squeeze(0).argmax(-1).toArray() as number[]) : [];
      const position = head === "token" ? options.position ?? defaultPosition(input, tags, labels) : 0;
      if (head === "token" && (!Number.isInteger(position) || position < 0 || position >= input.tokens.length)) {
        throw new Error(`explain: position ${position} is outside the text's ${input.tokens.length} tokens (0..${input.tokens.length - 1})`);
      }
      const row = rowOf(logits, head, position).squeeze(0).toArray() as number[];
      const probs = softmax(row);
      const predicted = probs.indexOf(Math.max(...probs));
      const target = resolveTarget(options.target, labels, predicted);
      const prediction: Prediction = { index: predicted, label: labels[predicted]!, probability: probs[predicted]!, probabilities: Object.fromEntries(labels.map((l, i) => [l, probs[i]!])) };
      const common = { method, text, tokens: input.tokens, special: input.special, head, ...(head === "token" ? { position } : {}), target: { index: target, label: labels[target]! }, prediction };
      if (method === "occlusion") {
        const r = occlusionScores(model, tokenizer, input, head, position, target, probs[target]!, options);
        return { ...common, score: "probability" as const, scores: r.scores, words: r.words };
      }
      const score: EmbeddingScore = (e) => rowOf(logitsFromEmbeddings(model, input, e), head, position).select(-1, target).float();
      const x = wordEmbeddings(model, input.ids);
      if (method === "gradxinput") return { ...common, score: "logit" as const, scores: gradientTimesInput(score, x).scores };
      if (method !== "ig") throw new Error(`explain: unknown method "${String(method)}"; use gradxinput, ig or occlusion`);
      const baselineName = options.baseline ?? EXPLAIN_DEFAULTS.baseline;
      const baseline = baselineEmbeddings(model, tokenizer, input, x, baselineName);
      const r = integratedGradients(score, x, baseline, { ...options, baselineName });
      return { ...common, score: "logit" as const, scores: r.scores, completeness: r.completeness };
    }),
  );
}

/**
 * IG's baseline: the text's word embeddings with every non-special token's replaced by the
 * [PAD] token's ("pad") or by zeros ("zero"). Special tokens keep theirs, so the baseline is
 * still a well-formed sequence and their attribution is exactly 0.
 */
export function baselineEmbeddings(model: PretrainedModel, tokenizer: Tokenizer, input: ExplainInput, x: Tensor, baseline: Baseline): Tensor {
  return torch.noGrad(() =>
    torch.scope(() => {
      const keep = torch.tensor(input.special.map((s) => (s ? 1 : 0)), { dtype: x.dtype }).view([-1, 1]); // (T, 1)
      let fill: Tensor;
      if (baseline === "zero") fill = torch.zerosLike(x);
      else if (baseline === "pad") {
        const pad = tokenizer.specialTokens.pad;
        const padId = pad === undefined ? undefined : tokenizer.tokenToId(pad);
        if (padId === undefined) throw new Error("explain: the tokenizer has no [PAD] token for the pad baseline; use --baseline zero");
        fill = wordEmbeddings(model, input.ids.map(() => padId));
      } else throw new Error(`explain: unknown baseline "${String(baseline)}"; use pad or zero`);
      return x.mul(keep).add(fill.mul(keep.rsub(1)));
    }),
  );
}

// DP-SGD (Abadi et al. 2016) as Opacus does it, for the Trainer's step: Poisson sampling of each
// step's examples (each with probability q = expected batch / examples), per-sample gradients,
// each clipped to norm C, summed, N(0, σ²C²) noise added, divided by the expected batch size;
// the RDP accountant (accountant.ts) says ε as training goes.
//
// Per-sample gradients come from one forward and one backward pass, not a loop over examples:
// while the loss runs, every Linear, Embedding and LayerNorm records its input and output (the
// modules get an own `forward` for that step only), then torch.grad gives the gradient at each
// output, g (B, ..., out), and for example b:
//   Linear     dW_b = Σ_t g_bt a_btᵀ  (einsum "bto,bti->boi"),   db_b = Σ_t g_bt
//   LayerNorm  dw_b = Σ_t g_bt ⊙ x̂_bt (x̂ normalised again from the input),   db_b = Σ_t g_bt
//   Embedding  dE_b = Σ_t onehot(id_bt) g_btᵀ: never built (it is vocab × dim per example); its
//              squared norm is Σ_{t,t'} [id_bt = id_bt'] g_bt·g_bt' (the "ghost norm"), and the
//              clipped sum scatters c_b g_bt into row id_bt. Padding ids get no gradient.
// A parameter reached by several records (a module called twice, a weight tied to another
// layer's) has its per-sample gradients summed before its norm is taken; there embeddings are
// built one-hot (correct, and costly for large vocabularies).
// Position ids shared by the batch ((1, T)) are expanded to (B, T) while recording, so that each
// example's position-embedding gradient is its own.
//
// The per-sample gradient of example b is B × the gradient of the batch's mean loss that flows
// through b's rows, Opacus's convention for loss_reduction="mean": for a loss averaged over
// examples (classification) that is exactly b's own loss's gradient; for a loss averaged over
// tokens each example is weighted by B / (tokens in the batch).
//
// Any other trainable parameter (a bias registered outside a Linear, RMSNorm, convolutions, LoRA
// adapters' raw tensors) is refused with its name: freeze it, or train without DP. Noise comes
// from libtorch's seeded generator (not a cryptographically secure one: Opacus's secure_mode
// is not offered).
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { Embedding, LayerNorm, Linear } from "../../nn/index.js";
import type { Module } from "../../nn/index.js";
import { Rng } from "../../data/random.js";
import { defineOptions } from "../../io/options.js";
import { epsilonFor, noiseMultiplierFor } from "./accountant.js";

/** The DP flags of finetune and pretrain, declared once. */
export const DP_OPTIONS = defineOptions([
  { flag: "dp-epsilon", key: "dpEpsilon", type: "number", min: 0, exclusiveMin: true, arg: "E", help: "train with DP-SGD to (E, --dp-delta)-differential privacy: the noise multiplier is chosen so that the planned steps end at E" },
  { flag: "dp-noise-multiplier", key: "dpNoiseMultiplier", type: "number", min: 0, exclusiveMin: true, arg: "SIGMA", help: "DP-SGD with this noise multiplier (ε is reported as training goes); with --dp-epsilon too, training stops before ε would pass it" },
  { flag: "dp-delta", key: "dpDelta", type: "number", min: 0, exclusiveMin: true, max: 0.1, arg: "D", help: "DP-SGD's δ (default 1/(10 n) for n training examples, rounded down to a power of ten)" },
  { flag: "dp-max-grad-norm", key: "dpMaxGradNorm", type: "number", min: 0, exclusiveMin: true, default: 1, arg: "C", help: "DP-SGD: every example's gradient is clipped to this norm" },
] as const);

/** DP-SGD settings of a run. */
export interface DpSettings {
  /** C: each example's gradient is clipped to this L2 norm. */
  maxGradNorm: number;
  /** σ: the noise's standard deviation is σC. */
  noiseMultiplier: number;
  /** q: each example's probability of being in a step's batch. */
  sampleRate: number;
  delta: number;
  /** The ε the run was planned to, if it was; the run stops before exceeding it. */
  targetEpsilon?: number;
}

/** The library's form of the flags, before the run's numbers are known. */
export interface DpRequest {
  epsilon?: number;
  noiseMultiplier?: number;
  delta?: number;
  maxGradNorm?: number;
}

/** δ by the usual rule, well under 1/n: 10^floor(log10(1 / (10 n))). */
export function defaultDelta(n: number): number {
  return Number(`1e${Math.floor(Math.log10(1 / (10 * n)))}`); // 1e-5, not 10⁻⁵ = 0.000009999...
}

/**
 * The settings of a run of `steps` steps over `examples` examples with an expected batch of
 * `expectedBatch`: the given noise multiplier, or the one that ends at the target ε (Opacus's
 * make_private_with_epsilon). Given both, the noise multiplier is used and the run stops before
 * ε would pass the target.
 */
export function planDp(r: DpRequest, o: { examples: number; expectedBatch: number; steps: number }): DpSettings {
  if (r.epsilon === undefined && r.noiseMultiplier === undefined) throw new Error("DP-SGD: give a target epsilon or a noise multiplier");
  const sampleRate = Math.min(1, o.expectedBatch / o.examples);
  const delta = r.delta ?? defaultDelta(o.examples);
  if (delta >= 1 / o.examples) throw new Error(`DP-SGD: delta ${delta} is not below 1/n = ${1 / o.examples}: such a δ allows leaking one example outright`);
  const noiseMultiplier = r.noiseMultiplier ?? noiseMultiplierFor({ targetEpsilon: r.epsilon!, delta, sampleRate, steps: o.steps });
  return { maxGradNorm: r.maxGradNorm ?? 1, noiseMultiplier, sampleRate, delta, ...(r.epsilon !== undefined ? { targetEpsilon: r.epsilon } : {}) };
}

// ---------------------------------------------------------------- recording

type Kind = "linear" | "embedding" | "layernorm";

interface Recorded {
  kind: Kind;
  module: Linear | Embedding | LayerNorm;
  input: Tensor;
  output: Tensor;
}

/** One parameter's share of the per-sample gradients: dense (B, ...shape), or an embedding's rows. */
type Contribution = { dense: Tensor } | { ids: Tensor; g: Tensor; paddingIdx: number };

function kindOf(m: Module): Kind | null {
  if (m instanceof Linear) return "linear";
  if (m instanceof Embedding) return "embedding";
  if (m instanceof LayerNorm) return "layernorm";
  return null;
}

/** The trainable parameters no supported layer owns, by name. */
export function unsupportedParameters(model: Module): string[] {
  const covered = new Set<Tensor>();
  for (const [, m] of model.namedModules()) {
    if (!kindOf(m)) continue;
    const l = m as Linear | LayerNorm;
    for (const p of [l.weight, "bias" in l ? l.bias : null]) if (p) covered.add(p);
  }
  return [...model.namedParameters()].filter(([, p]) => p.requiresGrad && !covered.has(p)).map(([name]) => name);
}

/**
 * Per-sample gradients of a model for one micro-batch. `lossFn` runs the forward pass and
 * returns the batch's mean loss over its B examples; the result maps every trainable parameter
 * to its per-sample contributions (for tests: `materialise`; for training: `clippedSum`).
 */
export class PerSampleGradients {
  private records: Recorded[] = [];
  private readonly layers: [Kind, Linear | Embedding | LayerNorm][];

  constructor(readonly model: Module) {
    const bad = unsupportedParameters(model);
    if (bad.length) throw new Error(`DP-SGD computes per-sample gradients of Linear, Embedding and LayerNorm parameters only; these trainable parameters are of other layers: ${bad.join(", ")} (freeze them, or train without DP)`);
    this.layers = [];
    for (const [, m] of model.namedModules()) {
      const kind = kindOf(m);
      const l = m as Linear;
      if (kind && (l.weight?.requiresGrad || l.bias?.requiresGrad)) this.layers.push([kind, m as Linear]);
    }
  }

  /** Runs lossFn recording the layers; returns the loss value and each parameter's contributions (tensors of the caller's scope). */
  run(batchSize: number, lossFn: () => Tensor): { loss: number; contributions: Map<Tensor, Contribution[]> } {
    this.records = [];
    for (const [kind, m] of this.layers) this.install(kind, m, batchSize);
    let loss: Tensor;
    try {
      loss = lossFn();
    } catch (e) {
      torch.dispose(this.records.map((r) => [r.input, r.output]));
      this.records = [];
      throw e;
    } finally {
      for (const [, m] of this.layers) delete (m as { forward?: unknown }).forward;
    }
    const all = this.records;
    this.records = [];
    try {
      return { loss: loss.item(), contributions: this.contributions(all.filter((r) => r.output.requiresGrad), loss, batchSize) };
    } finally {
      torch.dispose(all.map((r) => [r.input, r.output]));
    }
  }

  private contributions(records: Recorded[], loss: Tensor, batchSize: number): Map<Tensor, Contribution[]> {
    const grads = records.length ? torch.grad(loss.mul(batchSize), records.map((r) => r.output), { allowUnused: true }) : [];
    const contributions = new Map<Tensor, Contribution[]>();
    const add = (p: Tensor | null, c: Contribution): void => {
      if (!p?.requiresGrad) return;
      const list = contributions.get(p) ?? [];
      list.push(c);
      contributions.set(p, list);
    };
    torch.noGrad(() =>
      records.forEach((r, i) => {
        const g = grads[i];
        if (!g) return;
        if (r.kind === "embedding") {
          const e = r.module as Embedding;
          add(e.weight, { ids: r.input.reshape([batchSize, -1]), g: g.reshape([batchSize, -1, e.embeddingDim]), paddingIdx: e.paddingIdx });
          return;
        }
        const out = g.shape[g.shape.length - 1]!;
        const g3 = g.reshape([batchSize, -1, out]); // (B, T, out)
        if (r.kind === "linear") {
          const l = r.module as Linear;
          const a3 = r.input.reshape([batchSize, -1, l.inFeatures]); // (B, T, in)
          add(l.weight, { dense: torch.einsum("bto,bti->boi", [g3, a3]) }); // (B, out, in)
          add(l.bias, { dense: g3.sum(1) }); // (B, out)
        } else {
          const n = r.module as LayerNorm;
          const xHat = torch.layerNorm(r.input.to(g.dtype), n.normalizedShape, null, null, n.eps).reshape([batchSize, -1, out]);
          add(n.weight, { dense: g3.mul(xHat).sum(1).reshape([batchSize, ...n.normalizedShape]) });
          add(n.bias, { dense: g3.sum(1).reshape([batchSize, ...n.normalizedShape]) });
        }
      }),
    );
    return contributions;
  }

  private install(kind: Kind, m: Linear | Embedding | LayerNorm, batchSize: number): void {
    const forward = Object.getPrototypeOf(m).forward as (x: Tensor) => Tensor;
    (m as { forward: (x: Tensor) => Tensor }).forward = (x: Tensor): Tensor => {
      // ids shared by the batch (positions, (1, T)) become each example's own
      const input = kind === "embedding" && x.shape[0] === 1 && batchSize > 1 ? x.expand([batchSize, ...x.shape.slice(1)]) : x;
      const output = forward.call(m, input);
      if (output.shape[0] !== batchSize) throw new Error(`DP-SGD: a ${m.constructor.name} ran on a tensor of shape [${output.shape.join(", ")}], whose first dimension is not the batch's ${batchSize} examples`);
      // the model's inner scopes would free them before the backward pass: kept until run() ends
      this.records.push({ kind, module: m, input: torch.keep(input.detach()), output: torch.keep(output) });
      return output;
    };
  }
}

/** A contribution as (B, ...shape) (an embedding's one-hot rows built: tests and tied weights). */
export function materialise(c: Contribution, shape: readonly number[]): Tensor {
  if ("dense" in c) return c.dense;
  const [V] = shape as [number];
  const valid = c.ids.ne(c.paddingIdx).unsqueeze(-1).to(c.g.dtype); // (B, T, 1)
  const onehot = torch.oneHot(c.ids, V).to(c.g.dtype); // (B, T, V)
  return torch.bmm(onehot.transpose(1, 2), c.g.mul(valid)); // (B, V, D)
}

/** Each example's squared gradient norm over one parameter's contributions: (B). */
function squaredNorms(p: Tensor, list: Contribution[]): Tensor {
  const only = list[0]!;
  if (list.length === 1 && "ids" in only) {
    // ghost norm: Σ_{t,t'} [id_t = id_t'] g_t·g_t', padding positions out
    const valid = only.ids.ne(only.paddingIdx).to(only.g.dtype); // (B, T)
    const same = only.ids.unsqueeze(2).eq(only.ids.unsqueeze(1)).to(only.g.dtype).mul(valid.unsqueeze(2)).mul(valid.unsqueeze(1)); // (B, T, T)
    return torch.bmm(only.g, only.g.transpose(1, 2)).mul(same).sum([1, 2]);
  }
  const g = sumDense(p, list);
  return g.reshape([g.shape[0]!, -1]).square().sum(1);
}

function sumDense(p: Tensor, list: Contribution[]): Tensor {
  return list.map((c) => materialise(c, p.shape)).reduce((a, b) => a.add(b));
}

/** Σ_b coef_b × (per-sample gradient of b), shaped as the parameter. */
function weightedSum(p: Tensor, list: Contribution[], coef: Tensor): Tensor {
  const only = list[0]!;
  if (list.length === 1 && "ids" in only) {
    const [B, T, D] = only.g.shape as [number, number, number];
    const valid = only.ids.ne(only.paddingIdx).to(only.g.dtype).unsqueeze(-1); // (B, T, 1)
    const src = only.g.mul(coef.reshape([B, 1, 1])).mul(valid).reshape([B * T, D]);
    const index = only.ids.reshape([B * T, 1]).expand([B * T, D]);
    return torch.zeros(p.shape, { dtype: only.g.dtype }).scatterAdd(0, index, src);
  }
  const g = sumDense(p, list);
  return torch.einsum("b,bk->k", [coef, g.reshape([g.shape[0]!, -1])]).reshape(p.shape);
}

/** Every example's gradient norm over all parameters: (B). */
export function perSampleNorms(contributions: Map<Tensor, Contribution[]>): Tensor {
  return [...contributions].map(([p, list]) => squaredNorms(p, list)).reduce((a, b) => a.add(b)).sqrt();
}

// ---------------------------------------------------------------- the step

/**
 * DP-SGD inside the Trainer's step: `sample` draws the step's examples, `accumulate` adds a
 * micro-batch's clipped per-sample gradients, `finish` adds the noise and sets every trainable
 * parameter's .grad to (Σ clipped + N(0, σ²C²)) / expected batch size.
 */
export class DpSgd {
  private readonly sampler: PerSampleGradients;
  private sums = new Map<Tensor, Tensor>();
  private readonly params: Tensor[];
  /** Examples in the step so far, and their clipped-before norms (for the log). */
  examples = 0;
  private normSum = 0;
  private clipped = 0;

  constructor(readonly model: Module, readonly settings: DpSettings, readonly expectedBatch: number) {
    this.sampler = new PerSampleGradients(model);
    this.params = model.parameters().filter((p) => p.requiresGrad);
  }

  /** Poisson sampling: each of n examples in step `step`'s batch with probability q, seeded by (seed, step). */
  sample(n: number, seed: number, step: number): number[] {
    const rng = new Rng(seed, step, 0x0d9_5cd);
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (rng.next() < this.settings.sampleRate) out.push(i);
    return out;
  }

  /** Clips each example's gradient of one micro-batch (mean loss over `batchSize` examples) and adds them up; returns the mean loss. */
  accumulate(batchSize: number, lossFn: () => Tensor): number {
    return torch.scope(() => {
      const { loss, contributions } = this.sampler.run(batchSize, lossFn);
      torch.noGrad(() => {
        const norms = perSampleNorms(contributions); // (B)
        const coef = norms.add(1e-6).reciprocal().mul(this.settings.maxGradNorm).clamp(null, 1); // Opacus: C / (‖g‖ + 1e-6), at most 1
        const n = norms.toArray() as number[];
        this.normSum += n.reduce((a, b) => a + b, 0);
        this.clipped += n.filter((v) => v > this.settings.maxGradNorm).length;
        for (const [p, list] of contributions) {
          const s = weightedSum(p, list, coef);
          const have = this.sums.get(p);
          if (have) have.add_(s);
          else this.sums.set(p, torch.keep(s));
        }
      });
      this.examples += batchSize;
      return loss;
    });
  }

  /** Noise, the division by the expected batch size, the parameters' .grad; returns the step's mean per-sample norm and clipped share. */
  finish(): { meanNorm: number; clippedShare: number; examples: number } {
    const { maxGradNorm: C, noiseMultiplier: sigma } = this.settings;
    torch.noGrad(() =>
      torch.scope(() => {
        for (const p of this.params) {
          const sum = this.sums.get(p);
          const noise = torch.randn(p.shape, { dtype: p.dtype }).mul(sigma * C);
          p.grad = (sum ? noise.add(sum) : noise).div(this.expectedBatch);
        }
      }),
    );
    torch.dispose([...this.sums.values()]);
    this.sums = new Map();
    const r = { meanNorm: this.examples ? this.normSum / this.examples : 0, clippedShare: this.examples ? this.clipped / this.examples : 0, examples: this.examples };
    this.examples = 0;
    this.normSum = 0;
    this.clipped = 0;
    return r;
  }

  /** ε after `steps` steps at the run's δ. */
  epsilonAfter(steps: number): number {
    return epsilonFor(this.settings.sampleRate, this.settings.noiseMultiplier, steps, this.settings.delta);
  }
}

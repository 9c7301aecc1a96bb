// Performer attention (Choromanski et al. 2021, "Rethinking Attention with Performers"): FAVOR+,
// softmax attention estimated with positive orthogonal random features, in time and memory
// linear in the sequence length. Facts follow the reference code (google-research
// performer/fast_attention, lucidrains/performer-pytorch); the code is our own.
//
//   phi(x) = exp(w_i·x' − |x'|²/2) / sqrt(m), i < m,   x' = x · D^(-1/4)
//   E[phi(q)·phi(k)] = exp(q·k / sqrt(D)), the softmax kernel
//
// The rows w_i are orthogonal random features: blocks of D rows orthogonalised by QR, each row
// rescaled to a chi-distributed length (the norm of a fresh D-dimensional Gaussian), so every
// row is still marginally N(0, I_D) and the estimator unbiased; this is the reference code's
// default (scaling=0). The alternative, every row of length sqrt(D) (scaling=1), is kept in
// orthogonalRandomFeatures for comparison.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { minValue } from "./attention.js";
import { Module } from "./module.js";

/** Causal mode's default chunk length: exact prefix sums between chunks, a masked c×c product inside each. */
export const CAUSAL_CHUNK = 64;

// --- seeded draws ---------------------------------------------------------------------------
// The features are drawn in JavaScript from (seed, draw index), not from libtorch's generator:
// a redraw in training then leaves the global stream (dropout, init) untouched, and a resumed
// run reproduces any draw from the two numbers alone.

/** murmur3's 32-bit finaliser: a bijective mix of a 32-bit integer. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * count standard normal numbers from stream (seed, draw, part), float64: mulberry32 uniforms
 * through Box–Muller. Deterministic on every platform (integer arithmetic, V8's fdlibm log/cos).
 */
export function seededNormals(seed: number, draw: number, part: number, count: number): Float64Array {
  let state = mix32((seed >>> 0) ^ mix32((draw >>> 0) + mix32(part + 0x9e3779b9)));
  const next = (): number => {
    // mulberry32, as a uniform in (0, 1) (never 0, so the log below is finite)
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(next()));
    const angle = 2 * Math.PI * next();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/**
 * The (m, D) float64 matrix of orthogonal random features for draw `draw` of `seed`
 * (gaussian_orthogonal_random_matrix): ceil(m / D) blocks, each the transposed Q of a D×D
 * Gaussian's QR (D orthonormal rows; the last block keeps its first m mod D rows), then each
 * row rescaled to a chi-distributed length ("chi", the default) or to sqrt(D) ("sqrtD").
 * The Gaussians are stream part 1 (blocks one after another, row-major), the lengths part 0.
 */
export function orthogonalRandomFeatures(headDim: number, numFeatures: number, seed: number, draw: number, scaling: "chi" | "sqrtD" = "chi"): Tensor {
  const D = headDim;
  const blocks = Math.ceil(numFeatures / D);
  return torch.scope(() => {
    const gaussians = torch.tensor(seededNormals(seed, draw, 1, blocks * D * D), { shape: [blocks, D, D] });
    const [q, r] = torch.qr(gaussians); // (blocks, D, D) each, Q with orthonormal columns
    // Householder QR fixes the signs of R's diagonal, which biases Q's columns (LAPACK's first
    // column always points against the first axis); multiplying each column by the sign of
    // its R entry makes Q Haar-distributed, so every row direction is uniform on the sphere.
    const diagonal = r.mul(torch.eye(D, null, { dtype: "float64" })).sum(-2, true); // (blocks, 1, D)
    const signs = diagonal.ge(0).double().mul(2).sub(1);
    const rows = q.mul(signs).transpose(-1, -2).reshape([blocks * D, D]).narrow(0, 0, numFeatures); // (m, D): unit rows, orthogonal within a block
    let lengths: Tensor; // (m, 1)
    if (scaling === "chi") {
      lengths = torch.tensor(seededNormals(seed, draw, 0, numFeatures * D), { shape: [numFeatures, D] }).norm(2, [1], true);
    } else {
      lengths = torch.full([numFeatures, 1], Math.sqrt(D), { dtype: "float64" });
    }
    return rows.mul(lengths);
  });
}

// --- the feature map ------------------------------------------------------------------------

/**
 * FAVOR+'s positive features of x (B, H, T, D) under features (m, D), as (B, H, T, m):
 * exp(e − c) / sqrt(m) with e = x'·w − |x'|²/2, x' = x·D^(-1/4). The stabiliser c is a max of
 * e, a constant the normalisation cancels exactly: for queries each position's max over its m
 * features; for keys one max over every kept position and feature of the (batch, head), so the
 * largest key feature is 1 and none overflows. keep (B, S) bool, for keys: padding keys are
 * left out of the max and their features are exactly zero.
 *
 * The reference code subtracts the max of x'·w alone and then adds 1e-6 to every feature. That
 * floor does not cancel: one key far larger than the rest pushes every other key's features
 * below it, the weights turn uniform, and in causal mode a future key changes earlier outputs.
 * Without the floor the max cancels exactly, causal mode stays causal, and a feature is 0 only
 * where exp underflows (e more than ~87 below the max in float32), as it would in softmax.
 */
export function softmaxKernelFeatures(x: Tensor, features: Tensor, isQuery: boolean, keep: Tensor | null = null): Tensor {
  return torch.scope(() => {
    const D = x.shape[x.ndim - 1]!;
    const m = features.shape[0]!;
    const xs = x.mul(D ** -0.25);
    const w = features.dtype === x.dtype ? features : features.to(x.dtype);
    const halfNorm = xs.square().sum(-1, true).mul(0.5); // (B, H, T, 1)
    let exponent = xs.matmul(w.t()).sub(halfNorm); // (B, H, T, m)
    if (keep && !isQuery) {
      // exp(most negative) = 0: padding keys get zero features and no say in the max
      const padding = keep.logicalNot().view([keep.shape[0]!, 1, keep.shape[1]!, 1]); // (B, 1, S, 1)
      exponent = exponent.maskedFill(padding, minValue(x.dtype));
    }
    // detached: the constant cancels, so no gradient flows through it
    const stabiliser = exponent.detach().amax(isQuery ? [-1] : [-2, -1], true); // (B, H, T, 1) or (B, H, 1, 1)
    return exponent.sub(stabiliser).exp().mul(1 / Math.sqrt(m));
  });
}

// --- the two ways to combine them -----------------------------------------------------------

/** Bidirectional: phi(q) (phi(k)ᵀ v) and phi(q) (phi(k)ᵀ 1), each (B, H, T, ·). */
function bidirectionalSums(phiQ: Tensor, phiK: Tensor, v: Tensor): { numerator: Tensor; denominator: Tensor } {
  const kv = phiK.transpose(-2, -1).matmul(v); // (B, H, m, Dv)
  const kSum = phiK.sum(-2, true); // (B, H, 1, m)
  return { numerator: phiQ.matmul(kv), denominator: phiQ.mul(kSum).sum(-1, true) };
}

/**
 * Causal: out_t = phi(q_t) Σ_{s≤t} phi(k_s) ⊗ v_s, the same with 1 for the denominator. The
 * prefix sums run over chunks of `chunk` positions: the running sum of phi(k)ᵀ v over
 * earlier chunks (cumsum, (B, H, N, m, Dv+1)) plus each chunk's own lower-triangular c×c
 * product. The result is the per-position cumsum's, in O(T·(c·m + c·Dv + m·Dv)) time and
 * O(T·c + T/c · m · Dv) memory, where a cumsum of every outer product would keep O(T · m · Dv)
 * (2.2 GB at T = 8192, 4 heads, m = 266, Dv = 64, float32).
 */
function causalSums(phiQ: Tensor, phiK: Tensor, v: Tensor, chunk: number): { numerator: Tensor; denominator: Tensor } {
  const [B, H, T, m] = phiQ.shape as [number, number, number, number];
  const Dv = v.shape[3]!;
  const c = Math.min(chunk, T);
  const N = Math.ceil(T / c);
  const opts = { dtype: phiQ.dtype, device: phiQ.device as "cpu" };
  const padTo = (t: Tensor): Tensor => (N * c === T ? t : torch.cat([t, torch.zeros([B, H, N * c - T, t.shape[3]!], opts)], 2));
  const withOnes = torch.cat([v, torch.ones([B, H, T, 1], opts)], -1); // (B, H, T, Dv+1): the last column sums phi(k)
  const qc = padTo(phiQ).view([B, H, N, c, m]);
  const kc = padTo(phiK).view([B, H, N, c, m]);
  const vc = padTo(withOnes).view([B, H, N, c, Dv + 1]);
  const lower = torch.ones([c, c], opts).tril(); // position i of a chunk sees 0..i
  const within = qc.matmul(kc.transpose(-1, -2)).mul(lower).matmul(vc); // (B, H, N, c, Dv+1)
  const chunkState = kc.transpose(-1, -2).matmul(vc); // (B, H, N, m, Dv+1)
  const earlier = N === 1 ? null : torch.cat([torch.zeros([B, H, 1, m, Dv + 1], opts), chunkState.cumsum(2).narrow(2, 0, N - 1)], 2);
  const total = earlier ? within.add(qc.matmul(earlier)) : within;
  const flat = total.view([B, H, N * c, Dv + 1]).narrow(2, 0, T);
  return { numerator: flat.narrow(-1, 0, Dv), denominator: flat.narrow(-1, Dv, 1) };
}

// --- the module -----------------------------------------------------------------------------

export interface PerformerOptions {
  /** D, the size of each head's query and key. */
  headDim: number;
  /** m, the number of random features; default round(D · ln D) as the paper (266 for D = 64). */
  numFeatures?: number;
  /** Each position attends to itself and earlier ones only (prefix sums). */
  causal: boolean;
  /** Redraw the features every N training forward calls (0 = never); default 1000, performer-pytorch's. */
  redrawEvery?: number;
  /** Seeds every draw (with the draw's index); default drawn from the global generator at construction. */
  seed?: number;
}

/**
 * FAVOR+ attention over heads already split: forward(q, k, v, mask) with q (B, H, T, D), k and
 * v (B, H, S, D) (causal: S = T) and mask (B, S) 1 = keep, 0 = padding, gives (B, H, T, D).
 * No parameters; two buffers, both in the state dict: projection_matrix (m, D), the current
 * features, and redraw_state int64 [seed, training forward calls]. Draw n is a pure function of
 * (seed, n), made at call n · redrawEvery; loading a checkpoint restores both buffers, so a
 * resumed run uses the same features and redraws at the same steps with the same numbers.
 *
 * @example
 * const attn = new PerformerAttention({ headDim: 64, causal: true });
 * const out = attn.forward(q, k, v, null); // (B, H, T, 64)
 */
export class PerformerAttention extends Module {
  readonly headDim: number;
  readonly numFeatures: number;
  readonly causal: boolean;
  readonly redrawEvery: number;
  /** (m, D) the current random features. */
  projection_matrix: Tensor;
  /** int64 (2): the seed and the number of training forward calls so far. */
  redraw_state: Tensor;
  /** Causal mode's chunk length (any value gives the same result up to rounding; 1 is a per-position cumsum). */
  chunkSize = CAUSAL_CHUNK;

  constructor(opts: { headDim: number; numFeatures?: number; causal: boolean; redrawEvery?: number; seed?: number }) {
    super();
    const { headDim } = opts;
    if (!Number.isInteger(headDim) || headDim < 1) throw new RangeError(`PerformerAttention: headDim must be a positive integer, got ${headDim}`);
    this.headDim = headDim;
    this.numFeatures = opts.numFeatures ?? Math.max(1, Math.round(headDim * Math.log(headDim)));
    if (!Number.isInteger(this.numFeatures) || this.numFeatures < 1) throw new RangeError(`PerformerAttention: numFeatures must be a positive integer, got ${opts.numFeatures}`);
    this.causal = opts.causal;
    this.redrawEvery = opts.redrawEvery ?? 1000;
    if (!Number.isInteger(this.redrawEvery) || this.redrawEvery < 0) throw new RangeError(`PerformerAttention: redrawEvery must be an integer >= 0 (0 = never), got ${opts.redrawEvery}`);
    const seed = opts.seed ?? torch.scope(() => torch.randint(0, 2 ** 31 - 1, [1]).item());
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new RangeError(`PerformerAttention: seed must be an integer in [0, 2^32), got ${seed}`);
    this.projection_matrix = this.registerBuffer("projection_matrix", torch.scope(() => orthogonalRandomFeatures(headDim, this.numFeatures, seed, 0).float()));
    this.redraw_state = this.registerBuffer("redraw_state", torch.tensor([seed, 0], { dtype: "int64" }));
  }

  /** The seed of every draw. */
  get seed(): number {
    return torch.scope(() => this.redraw_state.cpu().select(0, 0).item());
  }

  /** Training forward calls so far (restored with the state dict). */
  get trainingCalls(): number {
    return torch.scope(() => this.redraw_state.cpu().select(0, 1).item());
  }

  /** Replaces the features by draw `draw` of this module's seed (draw 0 is the one made at construction). */
  redrawFeatures(draw: number): void {
    const seed = this.seed;
    torch.noGrad(() => torch.scope(() => this.projection_matrix.copy_(orthogonalRandomFeatures(this.headDim, this.numFeatures, seed, draw))));
  }

  /** (B, H, T, D) attention of q over k and v, the mask (B, S) leaving out padding keys. */
  forward(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    this.checkShapes(q, k, v, mask);
    if (this.training) this.countTrainingCall();
    // In float32 at least, and outside autocast (as performer-pytorch's causal path): exp of
    // bfloat16 projections and long prefix sums in half precision lose the estimate.
    const device = q.device.startsWith("cuda") ? "cuda" : "cpu";
    return torch.autocast(() => this.attend(q, k, v, mask), { enabled: false, deviceType: device });
  }

  private attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    return torch.scope(() => {
      const work = q.dtype === "float64" ? "float64" : "float32";
      const as = (t: Tensor): Tensor => (t.dtype === work ? t : t.to(work));
      const keep = mask ? mask.ne(0) : null; // (B, S) bool
      const phiQ = softmaxKernelFeatures(as(q), this.projection_matrix, true); // (B, H, T, m)
      const phiK = softmaxKernelFeatures(as(k), this.projection_matrix, false, keep); // (B, H, S, m)
      const { numerator, denominator } = this.causal ? causalSums(phiQ, phiK, as(v), this.chunkSize) : bidirectionalSums(phiQ, phiK, as(v));
      // A query that sees no kept key has 0/0: clamping the denominator makes its output 0.
      const out = numerator.div(denominator.clamp(work === "float64" ? 1e-300 : 1e-30, null));
      return out.dtype === q.dtype ? out : out.to(q.dtype);
    });
  }

  /** Advances the call count, redrawing at every multiple of redrawEvery (draw = calls / redrawEvery). */
  private countTrainingCall(): void {
    const calls = this.trainingCalls;
    if (this.redrawEvery > 0 && calls > 0 && calls % this.redrawEvery === 0) this.redrawFeatures(calls / this.redrawEvery);
    torch.noGrad(() => this.redraw_state.select(0, 1).fill_(calls + 1));
  }

  private checkShapes(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): void {
    const where = "PerformerAttention.forward";
    if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new Error(`${where}: q, k and v must be (B, H, T, D), got [${q.shape}], [${k.shape}], [${v.shape}]`);
    const [B, H, T, D] = q.shape as [number, number, number, number];
    if (D !== this.headDim || k.shape[3] !== D) throw new Error(`${where}: head size of q [${q.shape}] and k [${k.shape}] must be headDim ${this.headDim}`);
    if (k.shape[0] !== B || k.shape[1] !== H || v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== k.shape[2]) {
      throw new Error(`${where}: k [${k.shape}] and v [${v.shape}] must share q's batch and heads [${B}, ${H}] and one length`);
    }
    if (this.causal && k.shape[2] !== T) throw new Error(`${where}: causal attention needs as many keys as queries, got T=${T}, S=${k.shape[2]}`);
    if (mask && (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== k.shape[2])) {
      throw new Error(`${where}: mask must be (B, S) = [${B}, ${k.shape[2]}], got [${mask.shape}]`);
    }
  }
}

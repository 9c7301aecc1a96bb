// Input drift: fixed histogram bins per feature, a reference histogram from training time, and
// the population stability index (PSI) of live inputs against it. Pure TypeScript.
//
//   PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)
//
// over the bins i, with e the reference's and a the live inputs' proportions, each floored at a
// small epsilon so that an empty bin on one side counts as rare rather than infinite (a bin empty
// on both sides adds 0). Rule of thumb (Siddiqi, "Credit Risk Scorecards", 2006): below 0.1 the
// population is stable, 0.1 to 0.25 it moved moderately, above 0.25 it shifted.

/** A feature's bins: numeric cut points c (bin 0 is x < c[0], bin i is c[i-1] <= x < c[i], the last x >= c[k-1]), or categories. */
export type Bins = { kind: "numeric"; cuts: number[] } | { kind: "categorical"; categories: string[] };

/** The standard PSI thresholds. */
export const PSI_THRESHOLDS = { moderate: 0.1, major: 0.25 } as const;

/** The proportion floor of empty bins (a common choice; ln(1e-4) keeps one empty bin's term near 0.5·9 at most). */
export const PSI_EPSILON = 1e-4;

/** Features of one input text, as the server and fine-tuning both compute them. */
export interface InputFeatures {
  /** The text's tokens (special tokens excluded), before any truncation. */
  length: number;
  /** Share of words (the pre-tokenizer's) that are no single vocabulary token: split into pieces, or unknown. */
  oov_rate: number;
  /** Share of tokens that are the unknown token. */
  unk_rate: number;
}

/** A prediction's features: the label and its probability. */
export interface PredictionFeatures {
  label: string;
  confidence: number;
}

/** Every feature drift is measured on; the prediction's are only present for classifiers. */
export type Observation = InputFeatures & Partial<PredictionFeatures>;
export type DriftFeature = keyof InputFeatures | keyof PredictionFeatures;

/** The fixed bins of the numeric features (label's are the model's labels). */
export const NUMERIC_BINS: Readonly<Record<Exclude<DriftFeature, "label">, number[]>> = {
  // roughly logarithmic: a shift from short to long texts moves mass across several bins
  length: [2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
  // the first bin holds exactly 0
  oov_rate: [1e-9, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75],
  unk_rate: [1e-9, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75],
  confidence: [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99],
};

/** The bin of a value; -1 for a category the bins do not list. */
export function binIndex(bins: Bins, value: number | string): number {
  if (bins.kind === "categorical") return bins.categories.indexOf(String(value));
  const x = Number(value);
  let i = 0;
  while (i < bins.cuts.length && x >= bins.cuts[i]!) i++;
  return i;
}

/** How many bins there are. */
export function binCount(bins: Bins): number {
  return bins.kind === "categorical" ? bins.categories.length : bins.cuts.length + 1;
}

/** Counts per bin of the values (values outside a categorical feature's categories are left out). */
export function histogram(bins: Bins, values: Iterable<number | string>): number[] {
  const counts = new Array<number>(binCount(bins)).fill(0);
  for (const v of values) {
    const i = binIndex(bins, v);
    if (i >= 0) counts[i]!++;
  }
  return counts;
}

/**
 * The population stability index of actual counts against expected counts over the same bins.
 * Proportions below epsilon count as epsilon.
 *
 * @example psi([50, 50], [90, 10]) // 0.4·ln(1.8) + 0.4·ln(5) ≈ 0.8789
 */
export function psi(expected: readonly number[], actual: readonly number[], epsilon = PSI_EPSILON): number {
  if (expected.length !== actual.length) throw new RangeError(`psi: ${expected.length} expected bins but ${actual.length} actual ones`);
  const total = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);
  const te = total(expected);
  const ta = total(actual);
  if (te <= 0 || ta <= 0) throw new RangeError(`psi: both histograms need counts (expected ${te}, actual ${ta})`);
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]! / te, epsilon);
    const a = Math.max(actual[i]! / ta, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** "stable" below 0.1, "moderate" below 0.25, else "major". */
export function psiLevel(value: number): "stable" | "moderate" | "major" {
  return value < PSI_THRESHOLDS.moderate ? "stable" : value < PSI_THRESHOLDS.major ? "moderate" : "major";
}

/** The parts of a tokenizer's encoding the features read (src/tokenizers' Encoding fits). */
export interface EncodingLike {
  ids: readonly number[];
  specialTokensMask: readonly number[];
  /** Word of each token within its sequence; null for special tokens. */
  wordIds: readonly (number | null)[];
  sequenceIds: readonly (number | null)[];
}

/**
 * Length, out-of-vocabulary and unknown-token rates of one encoded text (or text pair), untruncated.
 * A word is out of vocabulary when the tokenizer needs more than one token for it or one of its
 * tokens is the unknown token; unkId undefined (byte-level tokenizers have none) makes unk_rate 0.
 */
export function textFeatures(e: EncodingLike, unkId: number | undefined): InputFeatures {
  const pieces = new Map<string, { tokens: number; unknown: boolean }>();
  let length = 0;
  let unknown = 0;
  for (let i = 0; i < e.ids.length; i++) {
    if (e.specialTokensMask[i] === 1) continue;
    length++;
    const unk = unkId !== undefined && e.ids[i] === unkId;
    if (unk) unknown++;
    const word = e.wordIds[i];
    const key = `${e.sequenceIds[i] ?? 0}:${word ?? `token${i}`}`;
    const w = pieces.get(key) ?? { tokens: 0, unknown: false };
    w.tokens++;
    w.unknown ||= unk;
    pieces.set(key, w);
  }
  const oov = [...pieces.values()].filter((w) => w.tokens > 1 || w.unknown).length;
  return { length, oov_rate: pieces.size ? oov / pieces.size : 0, unk_rate: length ? unknown / length : 0 };
}

/** One feature's reference: its bins and the training-time counts in them. */
export interface FeatureReference {
  bins: Bins;
  counts: number[];
}

/** What fine-tuning saves (input_stats.json) and the server compares live inputs with. */
export interface ReferenceStats {
  version: 1;
  /** Where the counts come from, in words ("train: 900 examples; predictions: validation, 100 examples"). */
  source: string;
  features: Partial<Record<DriftFeature, FeatureReference>>;
}

/**
 * Reference histograms: input features over the training texts, and, for a classifier, the
 * predicted label and its confidence over the validation set.
 */
export function referenceStats(inputs: readonly InputFeatures[], predictions: readonly PredictionFeatures[] = [], labels: readonly string[] = [], source = ""): ReferenceStats {
  const features: ReferenceStats["features"] = {};
  for (const f of ["length", "oov_rate", "unk_rate"] as const) {
    const bins: Bins = { kind: "numeric", cuts: [...NUMERIC_BINS[f]] };
    features[f] = { bins, counts: histogram(bins, inputs.map((x) => x[f])) };
  }
  if (predictions.length && labels.length) {
    const labelBins: Bins = { kind: "categorical", categories: [...labels] };
    features.label = { bins: labelBins, counts: histogram(labelBins, predictions.map((p) => p.label)) };
    const confBins: Bins = { kind: "numeric", cuts: [...NUMERIC_BINS.confidence] };
    features.confidence = { bins: confBins, counts: histogram(confBins, predictions.map((p) => p.confidence)) };
  }
  return { version: 1, source, features };
}

/**
 * Checks a parsed input_stats.json; throws naming the file and the field at fault.
 * Features with no counts are dropped (a PSI against nothing means nothing).
 */
export function parseReferenceStats(json: unknown, where: string): ReferenceStats {
  const fail = (field: string, what: string): never => {
    throw new Error(`${where}: ${field} ${what}`);
  };
  if (typeof json !== "object" || json === null) return fail("(top level)", "must be an object");
  const j = json as Record<string, unknown>;
  if (j.version !== 1) fail("version", `must be 1, got ${JSON.stringify(j.version)}`);
  if (typeof j.features !== "object" || j.features === null) fail("features", "must be an object");
  const features: ReferenceStats["features"] = {};
  const known: readonly string[] = ["length", "oov_rate", "unk_rate", "label", "confidence"];
  for (const [name, value] of Object.entries(j.features as Record<string, unknown>)) {
    const at = `features.${name}`;
    if (!known.includes(name)) fail(at, `is no drift feature (${known.join(", ")})`);
    const f = value as { bins?: { kind?: unknown; cuts?: unknown; categories?: unknown }; counts?: unknown };
    const kind = f?.bins?.kind;
    let bins: Bins;
    if (kind === "numeric" && Array.isArray(f.bins!.cuts) && f.bins!.cuts.every((c, i, cs) => typeof c === "number" && (i === 0 || c > (cs[i - 1] as number)))) bins = { kind, cuts: f.bins!.cuts as number[] };
    else if (kind === "categorical" && Array.isArray(f.bins!.categories) && f.bins!.categories.every((c) => typeof c === "string")) bins = { kind, categories: f.bins!.categories as string[] };
    else return fail(`${at}.bins`, "must be {kind: \"numeric\", cuts: increasing numbers} or {kind: \"categorical\", categories: strings}");
    if (!Array.isArray(f.counts) || f.counts.length !== binCount(bins) || !f.counts.every((c) => Number.isInteger(c) && (c as number) >= 0)) fail(`${at}.counts`, `must be ${binCount(bins)} counts (integers >= 0), one per bin`);
    if ((f.counts as number[]).some((c) => c > 0)) features[name as DriftFeature] = { bins, counts: f.counts as number[] };
  }
  return { version: 1, source: typeof j.source === "string" ? j.source : "", features };
}

/**
 * The last `size` observations' histograms per feature, kept up to date as observations arrive
 * (a ring of bin indices per feature), and their PSI against the reference.
 */
export class DriftWindow {
  private readonly rings = new Map<DriftFeature, { ring: Int32Array; next: number; filled: number; counts: number[] }>();

  constructor(readonly reference: ReferenceStats, readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`DriftWindow: size must be an integer >= 1, got ${size}`);
    for (const [name, f] of Object.entries(reference.features) as [DriftFeature, FeatureReference][]) {
      this.rings.set(name, { ring: new Int32Array(size), next: 0, filled: 0, counts: new Array<number>(f.counts.length).fill(0) });
    }
  }

  /** The features compared. */
  get features(): DriftFeature[] {
    return [...this.rings.keys()];
  }

  /** Adds one observation; its features the reference lacks, or values outside a feature's categories, are skipped. */
  add(o: Observation): void {
    for (const [name, r] of this.rings) {
      const value = o[name];
      if (value === undefined) continue;
      const bin = binIndex(this.reference.features[name]!.bins, value);
      if (bin < 0) continue;
      if (r.filled === this.size) r.counts[r.ring[r.next]!]!--; // the oldest leaves
      else r.filled++;
      r.ring[r.next] = bin;
      r.counts[bin]!++;
      r.next = (r.next + 1) % this.size;
    }
  }

  /** Observations in the window for a feature (at most size). */
  filled(feature: DriftFeature): number {
    return this.rings.get(feature)?.filled ?? 0;
  }

  /** The window's counts per bin for a feature. */
  counts(feature: DriftFeature): number[] {
    return [...(this.rings.get(feature)?.counts ?? [])];
  }

  /** PSI per feature whose window is full (a part-full window's PSI is mostly sampling noise). */
  psi(): Partial<Record<DriftFeature, number>> {
    const out: Partial<Record<DriftFeature, number>> = {};
    for (const [name, r] of this.rings) if (r.filled === this.size) out[name] = psi(this.reference.features[name]!.counts, r.counts);
    return out;
  }
}

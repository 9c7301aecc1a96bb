// A small seeded generator for data decisions (masking, shuffling, perturbation). Each
// decision is drawn from a stream keyed by (seed, epoch, index), so that masks are
// reproducible and a resumed run makes exactly the choices an uninterrupted one would.

/** splitmix64 over BigInt-free 32-bit halves: fast, well mixed, and keyed by integers. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream for a key: any integers (seed, epoch, index, purpose). */
  constructor(...key: number[]) {
    let h = 0x9e3779b9;
    // low and high 32-bit halves enter one after the other (so that 0 and -1 differ)
    for (const k of key) {
      h = mix(h ^ (k | 0));
      h = mix(h ^ ((Math.floor(k / 4294967296) | 0) + 0x7f4a7c15));
    }
    this.a = mix(h ^ 0x243f6a88);
    this.b = mix(this.a ^ 0x85a308d3);
    this.c = mix(this.b ^ 0x13198a2e);
    this.d = mix(this.c ^ 0x03707344);
  }

  /** sfc32: a uniform 32-bit integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher-Yates, in place. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }

  /** Geometric on {1, 2, ...} with success probability p. */
  geometric(p: number): number {
    return 1 + Math.floor(Math.log(1 - this.next()) / Math.log(1 - p));
  }
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

/** A permutation of 0..n-1 for an epoch. */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const order = Array.from({ length: n }, (_, i) => i);
  new Rng(seed, epoch, 0x5eed).shuffle(order);
  return Int32Array.from(order);
}

/**
 * Train / validation / test indices of n examples, seeded. With groupOf, examples of one group
 * (a document, a context) stay in one part, so that held-out parts share no text with training.
 */
export function splitIndices(n: number, fractions: { validation: number; test: number }, seed: number, groupOf?: (i: number) => string): { train: number[]; validation: number[]; test: number[] } {
  const groups = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groupOf ? groupOf(i) : String(i);
    const list = groups.get(g) ?? [];
    list.push(i);
    groups.set(g, list);
  }
  const order = new Rng(seed, 0x5911).shuffle([...groups.keys()].sort());
  const out = { train: [] as number[], validation: [] as number[], test: [] as number[] };
  const nTest = Math.round(n * fractions.test);
  const nVal = Math.round(n * fractions.validation);
  for (const g of order) {
    const members = groups.get(g)!;
    const part = out.test.length < nTest ? out.test : out.validation.length < nVal ? out.validation : out.train;
    part.push(...members);
  }
  for (const k of ["train", "validation", "test"] as const) out[k].sort((a, b) => a - b);
  return out;
}

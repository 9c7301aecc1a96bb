// The Module base: parameters, buffers and child modules whose dotted paths are PyTorch's
// state-dict keys (and so Hugging Face's tensor names).
import * as torch from "../torch/index.js";
import type { DType, DeviceLike, Tensor } from "../torch/index.js";

export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  /** Keys present on both sides with different shapes: "name: expected [..], got [..]". */
  mismatchedKeys: string[];
}

/** A name pattern: a RegExp, or a glob where `*` matches within one dotted part and `**` across parts. */
export type NamePattern = RegExp | string;

export function patternToRegExp(p: NamePattern): RegExp {
  if (p instanceof RegExp) return p;
  const escaped = p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*/g, "\u0000").replace(/\*/g, "[^.]*").replace(/\u0000/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`);
}

/**
 * Base class of every layer and model. Child modules are found from the instance's own
 * properties (their property names become path parts); parameters and buffers are declared
 * with registerParameter / registerBuffer.
 */
export class Module {
  /** Train mode (dropout active) or eval mode. */
  training = true;
  private readonly _params = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();

  /** Declares a trainable parameter (null for an absent optional one, such as a bias). */
  protected registerParameter<T extends Tensor | null>(name: string, t: T): T {
    if (t !== null) {
      torch.keep(t);
      if (!t.requiresGrad) t.requiresGrad_(true);
    }
    this._params.set(name, t);
    return t;
  }

  /** Declares a buffer: saved and moved with the module, not trained. */
  protected registerBuffer<T extends Tensor | null>(name: string, t: T): T {
    if (t !== null) torch.keep(t);
    this._buffers.set(name, t);
    return t;
  }

  /** The direct children, in declaration order. */
  *namedChildren(): Generator<[string, Module]> {
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Module) yield [key, value];
    }
  }

  /** This module and every descendant, with their dotted paths ("" for this one). */
  *namedModules(prefix = "", seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [name, child] of this.namedChildren()) {
      yield* child.namedModules(prefix ? `${prefix}.${name}` : name, seen);
    }
  }

  /**
   * Parameters with their state-dict names. A parameter shared by two modules (tied
   * weights) is listed once, under its first name, as PyTorch does.
   */
  *namedParameters(): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules()) {
      for (const [name, p] of m._params) {
        if (p === null || seen.has(p)) continue;
        seen.add(p);
        yield [path ? `${path}.${name}` : name, p];
      }
    }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(): Generator<[string, Tensor]> {
    for (const [path, m] of this.namedModules()) {
      for (const [name, b] of m._buffers) if (b !== null) yield [path ? `${path}.${name}` : name, b];
    }
  }

  /**
   * Every parameter and buffer by name; tied tensors appear under each of their names,
   * as in PyTorch's state_dict().
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [path, m] of this.namedModules()) {
      for (const [name, t] of [...m._params, ...m._buffers]) {
        if (t !== null) out.set(path ? `${path}.${name}` : name, t);
      }
    }
    return out;
  }

  /**
   * Copies tensors into the parameters and buffers with the same names (converting dtype and
   * device). Reports missing, unexpected and shape-mismatched keys; with strict (the
   * default) any of them is an error that lists them.
   */
  loadStateDict(dict: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    const result: LoadResult = { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] };
    for (const key of own.keys()) if (!src.has(key)) result.missingKeys.push(key);
    for (const key of src.keys()) if (!own.has(key)) result.unexpectedKeys.push(key);
    for (const [key, t] of own) {
      const s = src.get(key);
      if (s === undefined) continue;
      if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])) {
        result.mismatchedKeys.push(`${key}: expected [${t.shape.join(", ")}], got [${s.shape.join(", ")}]`);
      }
    }
    const strict = options.strict ?? true;
    if (strict && (result.missingKeys.length || result.unexpectedKeys.length || result.mismatchedKeys.length)) {
      const parts: string[] = [];
      if (result.missingKeys.length) parts.push(`missing keys: ${result.missingKeys.join(", ")}`);
      if (result.unexpectedKeys.length) parts.push(`unexpected keys: ${result.unexpectedKeys.join(", ")}`);
      if (result.mismatchedKeys.length) parts.push(`shape mismatches: ${result.mismatchedKeys.join("; ")}`);
      throw new Error(`loadStateDict: ${parts.join("; ")}`);
    }
    const mismatched = new Set(result.mismatchedKeys.map((k) => k.split(":")[0]!));
    torch.noGrad(() => {
      for (const [key, t] of own) {
        const s = src.get(key);
        if (s !== undefined && !mismatched.has(key)) t.copy_(s);
      }
    });
    return result;
  }

  /** Sets train mode (true) or eval mode (false) here and below. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Moves parameters and buffers to a dtype or device, keeping their identities. */
  to(target: DType | DeviceLike): this {
    torch.noGrad(() => {
      const seen = new Set<Tensor>();
      for (const [, m] of this.namedModules()) {
        for (const t of [...m._params.values(), ...m._buffers.values()]) {
          if (t === null || seen.has(t)) continue;
          seen.add(t);
          // Buffers of integer type (position ids) keep their dtype.
          if (torch.DTYPES[t.dtype].isFloatingPoint || !(target in torch.DTYPES)) {
            torch.scope(() => t.setData(t.to(target)));
          }
          t.zeroGrad();
        }
      }
    });
    return this;
  }

  /** The number of parameters (trainable ones only, if asked). */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    let n = 0;
    for (const [, p] of this.namedParameters()) if (!options.trainableOnly || p.requiresGrad) n += p.numel;
    return n;
  }

  /** Freezes (requiresGrad false) the parameters whose names match any pattern; all if none given. */
  freeze(...patterns: NamePattern[]): string[] {
    return this.setTrainable(false, patterns);
  }

  /** Unfreezes the parameters whose names match any pattern; all if none given. */
  unfreeze(...patterns: NamePattern[]): string[] {
    return this.setTrainable(true, patterns);
  }

  private setTrainable(on: boolean, patterns: NamePattern[]): string[] {
    const res = patterns.map(patternToRegExp);
    const changed: string[] = [];
    for (const [name, p] of this.namedParameters()) {
      if (res.length === 0 || res.some((r) => r.test(name))) {
        p.requiresGrad = on;
        if (!on) p.zeroGrad();
        changed.push(name);
      }
    }
    return changed;
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const [, p] of this.namedParameters()) p.zeroGrad();
  }

  /** Frees every parameter and buffer of this module and its children. */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
  }
}

/** An indexed list of modules; children are named "0", "1", ... as in PyTorch. */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[];

  constructor(items: M[] = []) {
    super();
    this.items = [];
    for (const m of items) this.push(m);
  }

  push(m: M): void {
    (this as unknown as Record<string, Module>)[String(this.items.length)] = m;
    this.items.push(m);
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (m === undefined) throw new RangeError(`ModuleList: index ${i} out of range for ${this.items.length} modules`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  override *namedChildren(): Generator<[string, Module]> {
    for (let i = 0; i < this.items.length; i++) yield [String(i), this.items[i]!];
  }
}

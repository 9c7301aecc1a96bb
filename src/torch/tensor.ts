// The Tensor class: a handle to a libtorch tensor with PyTorch's names and semantics. Ops
// are added to its prototype by generated/ops.ts, from the table in native/ops.def.
import { inspect } from "node:util";
import { DTYPES, dtypeOfArray, isDType, isDevice } from "./dtype.js";
import type { DType, DeviceLike, TensorOptions, TypedArray } from "./dtype.js";
import { native } from "./native.js";
import type { Handle } from "./native.js";
import { TENSOR_BRAND, track, unwatch } from "./scope.js";
import { runAfterBackward } from "./after-backward.js";
import type { Scoped } from "./scope.js";

/** Nested arrays of numbers or booleans, as `tensor()` takes and `toArray()` gives. */
export type NestedArray = number | boolean | readonly NestedArray[];

export class Tensor implements Scoped {
  /** @internal The native handle. */
  readonly _h: Handle;
  /** @internal The scope that owns this tensor, if any. */
  _scope: Scoped[] | null = null;
  /** @internal Taken out of scopes by keep(). */
  _kept = false;
  /** @internal Registered with the garbage-collection safety net. */
  _watched = false;
  private _meta: [number[], DType, string] | undefined;

  /** @internal Use the creation functions (tensor, zeros, ...) instead. */
  constructor(handle: Handle) {
    this._h = handle;
    track(this);
  }

  private meta(): [number[], DType, string] {
    return (this._meta ??= native.meta(this._h));
  }

  /** The size of each dimension. */
  get shape(): readonly number[] {
    return this.meta()[0];
  }
  get dtype(): DType {
    return this.meta()[1];
  }
  get device(): string {
    return this.meta()[2];
  }
  get ndim(): number {
    return this.meta()[0].length;
  }
  /** The number of elements. */
  get numel(): number {
    let n = 1;
    for (const s of this.meta()[0]) n *= s;
    return n;
  }
  /** The size of one dimension (negative counts from the end), or the whole shape. */
  size(dim?: number): number {
    const shape = this.meta()[0];
    if (dim === undefined) return shape.length;
    const d = dim < 0 ? dim + shape.length : dim;
    if (d < 0 || d >= shape.length) {
      throw new RangeError(`size: dimension ${dim} is out of range for a tensor of shape [${shape.join(", ")}]`);
    }
    return shape[d]!;
  }
  get strides(): readonly number[] {
    return native.strides(this._h);
  }
  get isContiguous(): boolean {
    return native.isContiguous(this._h);
  }

  // --- lifetime ----------------------------------------------------------------------------
  /** Frees the native tensor now. Using it afterwards throws; disposing twice is harmless. */
  dispose(): void {
    native.dispose(this._h);
    unwatch(this);
  }
  get isDisposed(): boolean {
    return native.isDisposed(this._h);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // --- autograd ------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this._h);
  }
  set requiresGrad(on: boolean) {
    native.setRequiresGrad(this._h, on);
  }
  /** Sets requiresGrad in place and returns this tensor, as PyTorch's requires_grad_(). */
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this._h, on);
    return this;
  }
  /** The accumulated gradient, or undefined before any backward pass (or after zeroGrad). */
  get grad(): Tensor | undefined {
    const g = native.grad(this._h);
    return g === undefined ? undefined : new Tensor(g);
  }
  set grad(g: Tensor | undefined) {
    native.setGrad(this._h, g === undefined ? null : g._h);
  }
  /** Clears the gradient (PyTorch's zero_grad with set_to_none). */
  zeroGrad(): void {
    native.setGrad(this._h, null);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this._h);
  }
  /**
   * A second handle on this very tensor (its storage, .grad and graph: not a view), freed on its
   * own, by its own scope.
   */
  share(): Tensor {
    return new Tensor(native.share(this._h));
  }
  /**
   * How many references the underlying tensor has: handles (share()), views' bases, autograd
   * nodes. 1: this handle is the only way left to it.
   */
  get useCount(): number {
    return native.useCount(this._h);
  }
  /** The name of the autograd node that made this tensor (e.g. "AddBackward0"). */
  get gradFn(): string | undefined {
    return native.gradFn(this._h);
  }
  retainGrad(): this {
    native.retainGrad(this._h);
    return this;
  }
  /** Accumulates gradients of this tensor into the .grad of the leaves it depends on. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    const create = options.createGraph ?? false;
    native.backward(this._h, gradient === undefined ? null : gradient._h, options.retainGraph ?? create, create);
    runAfterBackward(); // the backward through checkpointed layers (src/nn/checkpoint.ts)
  }

  /**
   * Replaces this tensor's data with src's, keeping its identity, autograd leaf status and
   * every reference to it (PyTorch's `param.data = src`).
   */
  setData(src: Tensor): this {
    native.setData(this._h, src._h);
    this._meta = undefined;
    return this;
  }

  // --- conversion ------------------------------------------------------------------------------
  /** Converts to a dtype, a device, or both: `t.to("bfloat16")`, `t.to("cuda")`, `t.to({ dtype, device })`. */
  to(target: DType | DeviceLike | { dtype?: DType; device?: DeviceLike; copy?: boolean }): Tensor {
    if (typeof target === "string") {
      if (isDType(target)) return wrap(native.toWith(this._h, target, null, false));
      if (isDevice(target)) return wrap(native.toWith(this._h, null, target, false));
      throw new TypeError(`to: "${String(target)}" is neither a dtype nor a device`);
    }
    return wrap(native.toWith(this._h, target.dtype ?? null, target.device ?? null, target.copy ?? false));
  }
  float(): Tensor {
    return this.to("float32");
  }
  double(): Tensor {
    return this.to("float64");
  }
  bfloat16(): Tensor {
    return this.to("bfloat16");
  }
  long(): Tensor {
    return this.to("int64");
  }
  int(): Tensor {
    return this.to("int32");
  }
  bool(): Tensor {
    return this.to("bool");
  }
  cpu(): Tensor {
    return this.to("cpu");
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }

  // --- data out --------------------------------------------------------------------------------
  /**
   * The raw bytes. With copy=false a contiguous CPU tensor's memory is shared, not copied:
   * writes through the buffer change the tensor (the buffer keeps the memory alive).
   */
  toBuffer(copy = true): ArrayBuffer {
    return native.toBuffer(this._h, copy);
  }
  /**
   * The elements as a TypedArray copy (Float32Array for bfloat16 and float16, BigInt64Array
   * for int64, Uint8Array for bool).
   */
  data(): TypedArray {
    const dt = this.dtype;
    if (dt === "bfloat16" || dt === "float16") {
      const f = wrap(native.toWith(this._h, "float32", null, false));
      try {
        return f.data();
      } finally {
        f.dispose();
      }
    }
    return new DTYPES[dt].array(native.toBuffer(this._h, true));
  }
  /** The elements as nested arrays of numbers (booleans for bool tensors). */
  toArray(): NestedArray {
    const flat = this.data();
    const isBool = this.dtype === "bool";
    const values: (number | boolean)[] = Array.from(flat as ArrayLike<number | bigint>, (x) =>
      isBool ? x !== 0 : Number(x),
    );
    const shape = this.shape;
    if (shape.length === 0) return values[0]!;
    let pos = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[d]!; i++) out.push(d === shape.length - 1 ? values[pos++]! : build(d + 1));
      return out;
    };
    return build(0);
  }

  // --- printing -----------------------------------------------------------------------------------
  toString(): string {
    if (this.isDisposed) return "tensor(<disposed>)";
    const body = formatTensor(this);
    const extras: string[] = [];
    if (this.dtype !== "float32" && this.dtype !== "int64" && this.dtype !== "bool") extras.push(`dtype=${this.dtype}`);
    if (this.device !== "cpu") extras.push(`device=${this.device}`);
    if (this.requiresGrad) extras.push(this.gradFn ? `gradFn=${this.gradFn}` : "requiresGrad=true");
    const shape = `shape=[${this.shape.join(", ")}]`;
    return `tensor(${body}, ${[shape, ...extras].join(", ")})`;
  }
  [inspect.custom](): string {
    return this.toString();
  }

  /** @internal Marks tensors for scopes. */
  get [TENSOR_BRAND](): boolean {
    return true;
  }
}

/** @internal Wraps a native handle (one per op result). */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}

/** @internal */
export function handleOf(t: Tensor): Handle {
  return t._h;
}

// --- creation from JavaScript data ----------------------------------------------------------

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = (cur as readonly NestedArray[])[0]!;
  }
  return shape;
}

function flatten(data: NestedArray, shape: readonly number[], out: (number | boolean)[], d = 0, path = ""): void {
  if (d === shape.length) {
    if (typeof data !== "number" && typeof data !== "boolean") {
      throw new TypeError(`tensor: element ${path || "(scalar)"} is ${Array.isArray(data) ? "an array" : typeof data}, expected a number or boolean`);
    }
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[d]) {
    throw new TypeError(
      `tensor: ragged nested array at ${path || "the top"}: expected ${shape[d]} elements, got ${Array.isArray(data) ? data.length : typeof data}`,
    );
  }
  (data as readonly NestedArray[]).forEach((x, i) => flatten(x, shape, out, d + 1, `${path}[${i}]`));
}

/**
 * Makes a tensor from nested arrays, a number, or a TypedArray (then give `shape`, or it is 1-D).
 * The dtype is inferred as PyTorch does (bool, int64 for integers, else float32) unless given.
 *
 * @example
 * const x = tensor([[1, 2], [3, 4]], { dtype: "float32", requiresGrad: true });
 */
export function tensor(data: NestedArray | TypedArray, options: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  let t: Tensor;
  if (ArrayBuffer.isView(data)) {
    const arr = data;
    let dt: DType;
    if (arr instanceof Uint16Array) {
      if (options.dtype !== "bfloat16" && options.dtype !== "float16") {
        throw new TypeError("tensor: a Uint16Array holds raw bfloat16 or float16 bits: pass { dtype: 'bfloat16' | 'float16' }");
      }
      dt = options.dtype;
    } else {
      dt = dtypeOfArray(arr);
    }
    t = wrap(native.fromBuffer(arr, dt, options.shape ?? [arr.length]));
  } else {
    const shape = inferShape(data);
    const flat: (number | boolean)[] = [];
    flatten(data, shape, flat);
    const inferred: DType = flat.length > 0 && flat.every((x) => typeof x === "boolean")
      ? "bool"
      : flat.every((x) => typeof x === "number" && Number.isInteger(x))
        ? "int64"
        : "float32";
    const dt = options.dtype ?? inferred;
    // Half-precision types are built in float32, then cast natively (exact rounding).
    const buildAs: DType = dt === "bfloat16" || dt === "float16" ? "float32" : dt;
    const info = DTYPES[buildAs];
    const arr = new info.array(new ArrayBuffer(flat.length * info.itemSize));
    if (arr instanceof BigInt64Array) {
      flat.forEach((x, i) => {
        const n = Number(x);
        if (!Number.isInteger(n)) throw new TypeError(`tensor: element ${i} is ${n}, not an integer, for dtype ${dt}`);
        arr[i] = BigInt(n);
      });
    } else {
      const a = arr as Exclude<TypedArray, BigInt64Array>;
      flat.forEach((x, i) => (a[i] = Number(x)));
    }
    t = wrap(native.fromBuffer(arr, buildAs, options.shape ?? shape));
    if (buildAs !== dt) {
      const cast = wrap(native.toWith(t._h, dt, null, false));
      t.dispose();
      t = cast;
    }
  }
  if (options.device !== undefined && options.device !== "cpu") {
    const moved = wrap(native.toWith(t._h, null, options.device, false));
    t.dispose();
    t = moved;
  }
  if (options.requiresGrad) native.setRequiresGrad(t._h, true);
  return t;
}

/** Shares nothing: copies a buffer's bytes into a new CPU tensor of the given dtype and shape. */
export function fromBuffer(data: ArrayBufferView | ArrayBuffer, dtype: DType, shape: readonly number[]): Tensor {
  return wrap(native.fromBuffer(data, dtype, shape));
}

/** The number of live native tensor handles (for tests and leak hunting). */
export function liveTensors(): number {
  return native.liveCount();
}

// --- printing ------------------------------------------------------------------------------------

const EDGE = 3; // elements shown at each end of a summarised dimension, as PyTorch
const SUMMARIZE_OVER = 1000;

function formatTensor(t: Tensor): string {
  const summarize = t.numel > SUMMARIZE_OVER;
  const shape = t.shape;
  // Gather only the elements that will be printed (PyTorch's get_summarized_data).
  const kept = shape.map((n) => (summarize && n > 2 * EDGE ? [...range(0, EDGE), ...range(n - EDGE, n)] : range(0, n)));
  const small = summarize ? gatherIndices(t, kept) : t;
  const flat = Array.from(small.data() as ArrayLike<number | bigint>, Number);
  if (small !== t) small.dispose();
  const isFloat = DTYPES[t.dtype].isFloatingPoint;
  const isBool = t.dtype === "bool";
  const fmt = numberFormatter(flat, isFloat);
  const cells = flat.map((x) => (isBool ? (x !== 0 ? "True" : "False") : fmt(x)));
  const width = Math.max(0, ...cells.map((c) => c.length));
  if (shape.length === 0) return cells[0] ?? "";
  let pos = 0;
  const render = (d: number, indent: string): string => {
    const n = kept[d]!.length;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      if (summarize && shape[d]! > 2 * EDGE && i === EDGE) parts.push("...");
      parts.push(d === shape.length - 1 ? cells[pos++]!.padStart(width) : render(d + 1, indent + " "));
    }
    const sep = d === shape.length - 1 ? ", " : ",\n" + "\n".repeat(Math.max(0, shape.length - d - 2)) + indent + " ";
    return "[" + parts.join(sep) + "]";
  };
  return render(0, "       ");
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i < b; i++) out.push(i);
  return out;
}

function gatherIndices(t: Tensor, kept: number[][]): Tensor {
  let cur = t;
  kept.forEach((idx, d) => {
    if (idx.length === t.shape[d]) return;
    const index = tensor(idx, { dtype: "int64" });
    const next = wrap(native.indexSelect(cur._h, d, index._h));
    index.dispose();
    if (cur !== t) cur.dispose();
    cur = next;
  });
  return cur === t ? wrap(native.clone(t._h)) : cur;
}

function numberFormatter(values: number[], isFloat: boolean): (x: number) => string {
  if (!isFloat) return (x) => String(x);
  const finite = values.filter((x) => Number.isFinite(x));
  const absMax = Math.max(0, ...finite.map(Math.abs));
  const absMinNonZero = Math.min(Infinity, ...finite.filter((x) => x !== 0).map(Math.abs));
  const allInts = finite.every((x) => Number.isInteger(x));
  const special = (x: number): string | undefined => (Number.isNaN(x) ? "nan" : x === Infinity ? "inf" : x === -Infinity ? "-inf" : undefined);
  if (allInts && absMax < 1e8) return (x) => special(x) ?? `${x}.`;
  if (absMax >= 1e8 || absMinNonZero < 1e-4) return (x) => special(x) ?? x.toExponential(4);
  return (x) => special(x) ?? x.toFixed(4);
}

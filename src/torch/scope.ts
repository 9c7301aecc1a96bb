// Lifetime scopes: every tensor made inside scope(fn) is freed when fn returns, except the
// tensors in its return value, which move to the enclosing scope (TorchSharp's dispose
// scopes, tf.tidy's contract). A tensor that lives outside every scope is watched by a
// FinalizationRegistry, the safety net that frees it if it is garbage collected undisposed;
// tensors inside scopes skip that cost, since their scope frees them.
import { native } from "./native.js";
import type { Handle } from "./native.js";

/** What a scope needs of a tensor. */
export interface Scoped {
  readonly _h: Handle;
  _scope: Scoped[] | null;
  _kept: boolean;
  _watched: boolean;
  dispose(): void;
}

const stack: Scoped[][] = [];
export const TENSOR_BRAND = Symbol.for("lmforge.tensor");

const registry = new FinalizationRegistry<Handle>((h) => {
  native.dispose(h);
});

/** Hands a tensor to the garbage-collection safety net. */
function watch(t: Scoped): void {
  if (!t._watched) {
    t._watched = true;
    registry.register(t, t._h, t);
    native.watchMemory(t._h); // V8 learns of the memory that collecting it would free
  }
}

/** Called when a tensor is disposed explicitly. */
export function unwatch(t: Scoped): void {
  if (t._watched) {
    t._watched = false;
    registry.unregister(t);
  }
}

/** Registers a new tensor with the innermost open scope, or with the safety net. */
export function track(t: Scoped): void {
  const top = stack[stack.length - 1];
  if (top !== undefined) {
    top.push(t);
    t._scope = top;
  } else {
    watch(t);
  }
}

function isScoped(x: unknown): x is Scoped {
  return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[TENSOR_BRAND] === true;
}

/** Collects the tensors reachable from a value: tensors, arrays, Maps, Sets and plain objects. */
function collect(value: unknown, out: Set<Scoped>, depth: number): void {
  if (depth > 8 || typeof value !== "object" || value === null) return;
  if (isScoped(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (value instanceof Set) {
    for (const v of value) collect(v, out, depth + 1);
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto === Object.prototype || proto === null) {
      for (const v of Object.values(value as Record<string, unknown>)) collect(v, out, depth + 1);
    }
  }
}

/** Frees a scope's tensors except those in keep, in one native call. */
function freeAll(mine: Scoped[], keepSet: Set<Scoped> | null): void {
  const ids = new Float64Array(mine.length);
  let n = 0;
  for (const t of mine) {
    if (t._kept || t._scope !== mine || (keepSet !== null && keepSet.has(t))) continue;
    ids[n++] = t._h as unknown as number;
    t._scope = null;
  }
  if (n > 0) native.disposeMany(n === ids.length ? ids : ids.subarray(0, n));
}

/**
 * Runs fn and frees every tensor created inside it, except those it returns (found inside
 * arrays, Maps, Sets and plain objects too), which are handed to the enclosing scope.
 * fn must be synchronous: a returned Promise is refused, since tensors made after an
 * await would escape.
 *
 * @example
 * const loss = scope(() => model.forward(batch).loss); // intermediates freed, loss kept
 */
export function scope<T>(fn: () => T): T {
  const mine: Scoped[] = [];
  stack.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    freeAll(mine, null);
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    freeAll(mine, null);
    throw new TypeError("scope(fn): fn returned a Promise; scopes are synchronous (await outside, or scope each step)");
  }
  const keepSet = new Set<Scoped>();
  collect(result, keepSet, 0);
  freeAll(mine, keepSet);
  const parent = stack[stack.length - 1] ?? null;
  for (const t of keepSet) {
    if (t._scope !== mine) continue;
    t._scope = parent;
    if (parent !== null) parent.push(t);
    else watch(t);
  }
  return result;
}

/** Takes tensors out of every scope: they live until disposed (or garbage collected). */
export function keep<T extends Scoped | readonly Scoped[]>(x: T): T {
  const items = Array.isArray(x) ? (x as readonly Scoped[]) : [x as Scoped];
  for (const t of items) {
    t._kept = true;
    t._scope = null;
    watch(t);
  }
  return x;
}

/** Frees tensors now (a tensor, or any structure of them). Disposing twice is harmless. */
export function dispose(x: unknown): void {
  const found = new Set<Scoped>();
  collect(x, found, 0);
  for (const t of found) t.dispose();
}

/** How many scopes are open (for tests and leak hunting). */
export function scopeDepth(): number {
  return stack.length;
}

// Lifetime scopes: every tensor made inside scope(fn) is freed when fn returns, except the
// tensors in its return value, which move to the enclosing scope (TorchSharp's dispose
// scopes, tf.tidy's contract). Finalizers remain a safety net only.

/** What a scope needs of a tensor: its owner slot and a way to free it. */
export interface Scoped {
  _scope: Scoped[] | null;
  _kept: boolean;
  dispose(): void;
}

const stack: Scoped[][] = [];
const TENSOR_BRAND = Symbol.for("lmforge.tensor");

/** Registers a new tensor with the innermost open scope, if any. */
export function track(t: Scoped): void {
  const top = stack.length > 0 ? stack[stack.length - 1] : undefined;
  if (top !== undefined) {
    top.push(t);
    t._scope = top;
  }
}

function isScoped(x: unknown): x is Scoped {
  return typeof x === "object" && x !== null && (x as Record<symbol, unknown>)[TENSOR_BRAND] === true;
}

export { TENSOR_BRAND };

/** Collects the tensors reachable from a return value: tensors, arrays, Maps, Sets and plain objects. */
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
    for (const t of mine) if (!t._kept) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of mine) if (!t._kept) t.dispose();
    throw new TypeError("scope(fn): fn returned a Promise; scopes are synchronous (await outside, or scope each step)");
  }
  const keep = new Set<Scoped>();
  collect(result, keep, 0);
  const parent = stack[stack.length - 1] ?? null;
  for (const t of mine) {
    if (t._kept || t._scope !== mine) continue;
    if (keep.has(t)) {
      t._scope = parent;
      if (parent !== null) parent.push(t);
    } else {
      t.dispose();
    }
  }
  return result;
}

/** Takes tensors out of every scope: they live until disposed (or garbage collected). */
export function keep<T extends Scoped | readonly Scoped[]>(x: T): T {
  const items = Array.isArray(x) ? (x as readonly Scoped[]) : [x as Scoped];
  for (const t of items) {
    t._kept = true;
    t._scope = null;
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

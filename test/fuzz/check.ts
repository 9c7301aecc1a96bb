// What every fuzz case must end in: a load, or an Error of a typed kind whose message names
// the file, within a time bound. TypeError, RangeError and the other built-in errors leaking
// out of a loader are bugs (an unchecked field reached code that assumed its type).
import assert from "node:assert/strict";
import fc from "fast-check";

/** The seed of every property: LMFORGE_FUZZ_SEED, or a fixed one so that CI runs are repeatable. */
export const FUZZ_SEED = process.env.LMFORGE_FUZZ_SEED === "random" ? Date.now() % 2 ** 31 : Number(process.env.LMFORGE_FUZZ_SEED ?? 20261201);

/** Cases per format: LMFORGE_FUZZ_RUNS overrides each format's CI default. */
export function fuzzRuns(ciDefault: number): number {
  const n = Number(process.env.LMFORGE_FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : ciDefault;
}

/** A loader's single case may take this long (a loaded, shared machine; the files are tiny). */
export const CASE_MS = Number(process.env.LMFORGE_FUZZ_CASE_MS ?? 2000);

const BUILTIN: (new (...args: never[]) => Error)[] = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/** An allowed error kind: its class, or the name of a class the module keeps private (BadRow). */
export type ErrorKind = (new (...args: never[]) => Error) | string;

function isKind(e: Error, k: ErrorKind): boolean {
  return typeof k === "string" ? e.constructor.name === k : e instanceof k;
}

export interface Tally {
  loaded: number;
  refused: number;
  slowestMs: number;
  /** Refusals by kind (a safetensors rule, an error class), to show what the runs reached. */
  kinds: Map<string, number>;
}

export function tally(): Tally {
  return { loaded: 0, refused: 0, slowestMs: 0, kinds: new Map() };
}

/**
 * Checks one thrown value: an Error, of an allowed kind, not a leaked built-in error, whose
 * message names `file`. Returns the kind to tally.
 */
export function checkRefusal(e: unknown, file: string, allowed: readonly ErrorKind[], kindOf: (e: Error) => string = (x) => x.constructor.name): string {
  assert.ok(e instanceof Error, `a non-Error was thrown: ${String(e)}`);
  const leaked = BUILTIN.find((c) => e instanceof c && !allowed.some((a) => isKind(e, a)));
  assert.ok(!leaked, `${leaked?.name} leaked from the loader: ${e.message}\n${e.stack ?? ""}`);
  assert.ok(e.constructor === Error || allowed.some((a) => isKind(e, a)), `unexpected error class ${e.constructor.name}: ${e.message}`);
  assert.ok(e.message.includes(file), `the message does not name ${file}: ${e.message}`);
  return kindOf(e);
}

/** A failing case's input, readable: its length and its bytes as Latin-1 text. */
function describeInput(input: Uint8Array | undefined): string {
  if (!input) return "";
  const text = Buffer.from(input).toString("latin1");
  return `\ninput (${input.length} bytes): ${JSON.stringify(text.length > 600 ? `${text.slice(0, 600)}...` : text)}`;
}

/** Tallies a refusal after checking it (see checkRefusal); a failed check shows the input. */
function refused(t: Tally, e: unknown, file: string, allowed: readonly ErrorKind[], kindOf: ((e: Error) => string) | undefined, input: Uint8Array | undefined): void {
  let kind: string;
  try {
    kind = checkRefusal(e, file, allowed, kindOf);
  } catch (failure) {
    (failure as Error).message += describeInput(input);
    throw failure;
  }
  t.refused++;
  t.kinds.set(kind, (t.kinds.get(kind) ?? 0) + 1);
}

function timed(t: Tally, start: number): void {
  const ms = performance.now() - start;
  t.slowestMs = Math.max(t.slowestMs, ms);
  assert.ok(ms < CASE_MS, `one case took ${ms.toFixed(0)} ms (bound ${CASE_MS} ms)`);
}

/**
 * Runs one case: load must succeed or be refused (see checkRefusal), within CASE_MS. `input`
 * (the file's bytes) is shown when the case fails.
 */
export function attempt(t: Tally, file: string, load: () => void, allowed: readonly ErrorKind[], kindOf?: (e: Error) => string, input?: Uint8Array): void {
  const start = performance.now();
  try {
    load();
    t.loaded++;
  } catch (e) {
    refused(t, e, file, allowed, kindOf, input);
  }
  timed(t, start);
}

/** The async twin of attempt. */
export async function attemptAsync(t: Tally, file: string, load: () => Promise<void>, allowed: readonly ErrorKind[], kindOf?: (e: Error) => string, input?: Uint8Array): Promise<void> {
  const start = performance.now();
  try {
    await load();
    t.loaded++;
  } catch (e) {
    refused(t, e, file, allowed, kindOf, input);
  }
  timed(t, start);
}

/**
 * Uses what a loader returned (encodes with a tokenizer, say): refusing is allowed there (a
 * plain Error), but a built-in error leaking out means the loader let something broken through.
 */
export function use(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (BUILTIN.some((c) => e instanceof c)) throw new Error(`the loaded object failed in use with ${(e as Error).constructor.name}, a bug the loader let through: ${(e as Error).message}\n${(e as Error).stack ?? ""}`);
    assert.ok(e instanceof Error, `a non-Error was thrown in use: ${String(e)}`);
  }
}

/** fast-check's parameters for a format: the shared seed, this format's run count. */
export function params(runs: number): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns: fuzzRuns(runs) };
}

/** One line for the test's diagnostics: how the cases ended. */
export function summary(t: Tally): string {
  const kinds = [...t.kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ");
  return `${t.loaded} loaded, ${t.refused} refused (${kinds}); slowest case ${t.slowestMs.toFixed(1)} ms`;
}

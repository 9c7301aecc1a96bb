// Argument checks shared by the commands: each failure is a UsageError with a one-line reason.
import { UsageError } from "./errors.js";

export function intArg(values: Record<string, unknown>, name: string, options: { min?: number; default?: number } = {}): number {
  const raw = values[name];
  if (raw === undefined) {
    if (options.default !== undefined) return options.default;
    throw new UsageError(`--${name} is required`);
  }
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got "${String(raw)}"`);
  if (options.min !== undefined && n < options.min) throw new UsageError(`--${name} must be at least ${options.min}, got ${n}`);
  return n;
}

export function choiceArg<T extends string>(values: Record<string, unknown>, name: string, choices: readonly T[], fallback?: T): T {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`--${name} is required (${choices.join(" or ")})`);
  }
  if (!choices.includes(raw as T)) throw new UsageError(`--${name} must be ${choices.join(" or ")}, got "${String(raw)}"`);
  return raw as T;
}

export function stringArg(values: Record<string, unknown>, name: string): string {
  const raw = values[name];
  if (typeof raw !== "string" || raw.length === 0) throw new UsageError(`--${name} is required`);
  return raw;
}

export function numberArg(values: Record<string, unknown>, name: string, options: { min?: number; max?: number; default?: number } = {}): number {
  const raw = values[name];
  if (raw === undefined) {
    if (options.default !== undefined) return options.default;
    throw new UsageError(`--${name} is required`);
  }
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${String(raw)}"`);
  if (options.min !== undefined && n < options.min) throw new UsageError(`--${name} must be at least ${options.min}, got ${n}`);
  if (options.max !== undefined && n > options.max) throw new UsageError(`--${name} must be at most ${options.max}, got ${n}`);
  return n;
}

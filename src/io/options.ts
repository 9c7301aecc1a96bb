// Options declared once. A declaration (flag, type, range, default, help line) lives beside the
// library code that uses the option; from it come the library's defaults and checks, the
// command line's parser and --help text, and the reading of a JSON --config file. Nothing else
// declares an option.

export type OptionType = "int" | "number" | "string" | "boolean" | "strings";

export interface OptionSpec {
  /** The command-line flag without dashes, kebab-case: "learning-rate". */
  flag: string;
  /** The library's name for it, camelCase: "learningRate". */
  key: string;
  type: OptionType;
  /** One line for --help. */
  help: string;
  /** The value's placeholder in --help ("N", "X", "DIR"). */
  arg?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** The value must be greater than min, not equal to it. */
  exclusiveMin?: boolean;
  /** A value, or a function of the other options (a warmup of 6% of the steps). */
  default?: unknown;
  /** How the default reads in --help when it is a function. */
  defaultText?: string;
  required?: boolean;
  /** Numbers: words accepted beside them, passed on as they are (--eval-every epoch). */
  words?: readonly string[];
  /** Text -> the library's value, for structured flags (--mixing temperature:2); throws with the reason. */
  parse?: (text: string) => unknown;
}

/** Declares options; returns them unchanged (typed as a readonly list for the caller). */
export function defineOptions<const T extends readonly OptionSpec[]>(specs: T): T {
  const flags = new Set<string>();
  for (const s of specs) {
    if (flags.has(s.flag)) throw new Error(`option --${s.flag} is declared twice`);
    flags.add(s.flag);
  }
  return specs;
}

export class OptionError extends Error {}

function describeRange(s: OptionSpec): string {
  const parts: string[] = [];
  if (s.min !== undefined) parts.push(`${s.exclusiveMin ? ">" : ">="} ${s.min}`);
  if (s.max !== undefined) parts.push(`<= ${s.max}`);
  return parts.join(" and ");
}

/**
 * Checks a value against its declaration; `name` is how the error names it (--flag on the
 * command line, the key in the library). Returns the value, converted from text where the
 * declaration says how (numbers, structured flags).
 */
export function checkOption(s: OptionSpec, value: unknown, name = `--${s.flag}`): unknown {
  if (value === undefined || value === null) return undefined;
  const fail = (why: string): never => {
    const shown = JSON.stringify(value) ?? String(value);
    throw new OptionError(`${name} ${why}, got ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}`);
  };
  switch (s.type) {
    case "boolean":
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "false") return value === "true";
      return fail("must be true or false");
    case "int":
    case "number": {
      if (typeof value === "string" && s.words?.includes(value)) return value;
      const what = `${s.type === "int" ? "an integer" : "a number"}${s.words?.length ? ` or ${s.words.join(" or ")}` : ""}`;
      if (typeof value !== "number" && typeof value !== "string") return fail(`must be ${what}`);
      const n = typeof value === "number" ? value : value.trim() === "" ? NaN : Number(value);
      if (!Number.isFinite(n)) return fail(`must be ${what}`);
      if (s.type === "int" && !Number.isInteger(n)) return fail(`must be ${what}`);
      const low = s.min !== undefined && (s.exclusiveMin ? n <= s.min : n < s.min);
      const high = s.max !== undefined && n > s.max;
      if (low || high) return fail(`must be ${describeRange(s)}`);
      return n;
    }
    case "strings": {
      const list = Array.isArray(value) ? value : [value];
      return list.map((v) => {
        // a structured value given directly (from the library or a JSON config) passes as it is
        if (s.parse && typeof v === "object" && v !== null) return v;
        if (typeof v !== "string") return fail("must be text");
        return s.parse ? parseText(s, v, name) : v;
      });
    }
    case "string": {
      if (typeof value !== "string") {
        // a structured value given directly (from the library or a JSON config) passes as it is
        if (s.parse && typeof value === "object") return value;
        return fail("must be text");
      }
      if (s.choices && !s.choices.includes(value)) return fail(`must be ${s.choices.join(", ").replace(/, ([^,]*)$/, " or $1")}`);
      return s.parse ? parseText(s, value, name) : value;
    }
  }
}

function parseText(s: OptionSpec, text: string, name: string): unknown {
  try {
    return s.parse!(text);
  } catch (e) {
    throw new OptionError(`${name}: ${(e as Error).message}`);
  }
}

/**
 * Fills in defaults and checks every declared option of a library call's options object; an
 * option left undefined takes its default (a function default sees the other options).
 * Keys that are not declared are left alone (callbacks, data given directly).
 */
export function resolveOptions<T extends Record<string, unknown>>(specs: readonly OptionSpec[], given: T, where = ""): T {
  const out: Record<string, unknown> = { ...given };
  const name = (s: OptionSpec): string => `${where}${s.key}`;
  for (const s of specs) {
    if (out[s.key] === undefined && s.default !== undefined && typeof s.default !== "function") out[s.key] = s.default;
    if (out[s.key] !== undefined) out[s.key] = checkOption(s, out[s.key], name(s));
  }
  for (const s of specs) {
    if (out[s.key] === undefined && typeof s.default === "function") out[s.key] = checkOption(s, (s.default as (o: Record<string, unknown>) => unknown)(out), name(s));
    if (s.required && out[s.key] === undefined) throw new OptionError(`${name(s)} is required`);
  }
  return out as T;
}

/** The defaults of the declared options that have static ones, by key. */
export function optionDefaults(specs: readonly OptionSpec[]): Record<string, unknown> {
  return Object.fromEntries(specs.filter((s) => s.default !== undefined && typeof s.default !== "function").map((s) => [s.key, s.default]));
}

/** One --help line per option: flag, placeholder, help, default and range. */
export function formatOptionHelp(specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const arg = s.type === "boolean" ? "" : ` ${s.arg ?? (s.choices ? s.choices.join("|") : s.type === "int" ? ["N", ...(s.words ?? [])].join("|") : s.type === "number" ? "X" : "VALUE")}`;
    const notes: string[] = [];
    if (s.required) notes.push("required");
    if (typeof s.default === "function") {
      if (s.defaultText) notes.push(`default ${s.defaultText}`);
    } else if (s.default !== undefined && s.default !== false) notes.push(`default ${Array.isArray(s.default) ? s.default.join(",") : String(s.default)}`);
    const range = describeRange(s);
    if (range) notes.push(range);
    if (s.type === "strings") notes.push("repeatable");
    return [`  --${s.flag}${arg}`, `${s.help}${notes.length ? ` (${notes.join("; ")})` : ""}`] as const;
  });
  const width = Math.min(40, Math.max(...rows.map(([a]) => a.length)) + 2);
  return rows.map(([a, b]) => (a.length + 2 > width ? `${a}\n${" ".repeat(width)}${b}` : `${a.padEnd(width)}${b}`)).join("\n");
}

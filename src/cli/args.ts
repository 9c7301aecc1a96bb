// Parsing a command's arguments from its option declarations (src/io/options.ts): node's
// parseArgs does the tokenising; the declarations give the flags, the checks (types, ranges,
// choices, structured values) and the --help text, so an accepted flag is always documented.
// A JSON --config file may hold any of the flags; flags on the command line win.
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { OptionError, checkOption, formatOptionHelp } from "../io/options.js";
import type { OptionSpec } from "../io/options.js";
import { UsageError } from "./errors.js";

/** --config, for the commands with many options. */
export const CONFIG_OPTION: OptionSpec = { flag: "config", key: "config", type: "string", arg: "FILE.json", help: "a JSON object of any of these options (keys as flags, camelCase or snake_case); flags given here win" };

/** Merges declarations of several owners (a command's and every task's), refusing one flag declared two ways. */
export function mergeSpecs(...lists: (readonly OptionSpec[])[]): OptionSpec[] {
  const out = new Map<string, OptionSpec>();
  for (const s of lists.flat()) {
    const had = out.get(s.flag);
    if (had && (had.key !== s.key || had.type !== s.type)) throw new Error(`option --${s.flag} is declared twice, differently (${had.key}: ${had.type} and ${s.key}: ${s.type})`);
    if (!had) out.set(s.flag, s);
  }
  return [...out.values()];
}

/**
 * `--flag -1` reads as a flag followed by a negative number (parseArgs would take "-1" for
 * another option and answer "ambiguous"): the value is joined to its flag as --flag=-1.
 */
function joinDashValues(argv: readonly string[], specs: readonly OptionSpec[]): string[] {
  const valued = new Set(specs.filter((s) => s.type !== "boolean").map((s) => `--${s.flag}`));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (valued.has(a) && next !== undefined && next.startsWith("-") && next !== "--") {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** A JSON --config file's values, by flag; an unknown key or a bad file is a UsageError naming it. */
function readConfigFile(path: string, specs: readonly OptionSpec[]): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UsageError(`--config ${path}: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new UsageError(`--config ${path}: must be a JSON object of options`);
  const byName = new Map<string, OptionSpec>();
  for (const s of specs) for (const n of [s.flag, s.key, s.flag.replace(/-/g, "_")]) byName.set(n, s);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const s = byName.get(k);
    if (!s || s.flag === "config") throw new UsageError(`--config ${path}: unknown option "${k}"; see --help for the options`);
    out[s.flag] = typeof v === "number" || typeof v === "boolean" || Array.isArray(v) || (typeof v === "object" && v !== null) ? v : String(v);
  }
  return out;
}

/**
 * Parses argv against declarations: every value checked and converted (the error names the
 * flag), returned by the library's key. Defaults are the library's to apply.
 */
export function parseCommand(argv: readonly string[], specs: readonly OptionSpec[], options: { positionals?: boolean } = {}): { values: Record<string, unknown>; positionals: string[] } {
  const config: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {};
  for (const s of specs) config[s.flag] = { type: s.type === "boolean" ? "boolean" : "string", ...(s.type === "strings" ? { multiple: true } : {}) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: joinDashValues(argv, specs), options: config, allowPositionals: true, strict: true });
  } catch (e) {
    const m = /Unknown option '([^']+)'/.exec((e as Error).message);
    throw new UsageError(m ? `unknown option ${m[1]}; see --help for the options` : (e as Error).message.split("\n")[0]!);
  }
  if (!options.positionals && parsed.positionals.length) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"; options are given as --name value`);
  let raw: Record<string, unknown> = parsed.values as Record<string, unknown>;
  if (typeof raw.config === "string") raw = { ...readConfigFile(raw.config, specs), ...raw };
  const values: Record<string, unknown> = {};
  for (const s of specs) {
    if (raw[s.flag] === undefined) continue;
    try {
      values[s.key] = checkOption(s, raw[s.flag], `--${s.flag}`);
    } catch (e) {
      throw e instanceof OptionError ? new UsageError(e.message) : e;
    }
  }
  // every command's required flags, here once (a command that does not hand its values to the
  // library's resolveOptions would otherwise run with "undefined")
  for (const s of specs) if (s.required && values[s.key] === undefined) throw new UsageError(`--${s.flag} is required`);
  return { values, positionals: parsed.positionals };
}

/** A command's --help: its summary, usage line, notes and every declared option. */
export function commandHelp(c: { summary: string; usage: string; notes?: string; specs: readonly OptionSpec[] }): string {
  return [c.summary, "", `usage: ${c.usage}`, ...(c.notes ? ["", c.notes] : []), ...(c.specs.length ? ["", "options:", formatOptionHelp(c.specs)] : [])].join("\n");
}

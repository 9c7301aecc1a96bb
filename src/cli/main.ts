// The `lmforge` command: one binary, subcommands. Each subcommand's flags come from the option
// declarations of the library code it runs (its --help, its parser and its checks with them);
// arguments are checked before any work, and bad input exits non-zero with a one-line reason.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { OptionSpec } from "../io/options.js";
import { UsageError } from "./errors.js";
import { commandHelp, parseCommand } from "./args.js";
import { COMMANDS } from "./commands.js";
export { UsageError };

/** A subcommand: its help, its options (declared once, by their owners) and what it runs. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  notes?: string;
  /** The declarations of its flags (loaded lazily: --help of one command loads only its owners). */
  specs(): Promise<readonly OptionSpec[]>;
  /** Whether it takes positional arguments (texts to label, a benchmark's name). */
  positionals?: boolean;
  run(values: Record<string, unknown>, positionals: string[]): Promise<void>;
}

function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, "../../package.json"), join(here, "../../../package.json")]) {
    try {
      return (JSON.parse(readFileSync(p, "utf8")) as { version: string }).version;
    } catch {
      // try the next layout
    }
  }
  return "unknown";
}

function help(): string {
  return [
    "lmforge: pretrain and fine-tune transformer language models in TypeScript",
    "",
    "usage: lmforge <command> [options]     (lmforge <command> --help for its options)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
  ].join("\n");
}

/** A command's full --help text. */
export async function helpOf(name: string): Promise<string> {
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) throw new UsageError(`unknown command "${name}"`);
  return commandHelp({ ...cmd, specs: await cmd.specs() });
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return;
  }
  if (name === "--version") {
    console.log(version());
    return;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`lmforge: unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(", ")}`);
    process.exitCode = 2;
    return;
  }
  try {
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(await helpOf(name));
      return;
    }
    const { values, positionals } = parseCommand(rest, await cmd.specs(), { positionals: cmd.positionals ?? false });
    await cmd.run(values, positionals);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`lmforge ${name}: ${msg.split("\n")[0]}`);
    process.exitCode = e instanceof UsageError || (e as { name?: string }).name === "OptionError" ? 2 : 1;
  }
}

// Progress of long work on stderr: a bar redrawn in place on a terminal; elsewhere (CI, nohup,
// a pipe) a plain line every N seconds (--progress-every, else LMFORGE_PROGRESS_SECONDS, else
// 30; 0 silences it) with the count, rate, time left and the caller's extra (the last loss),
// so that a log shows the run is alive and how fast it goes. LMFORGE_NO_PROGRESS=1: none.
import type { OptionSpec } from "../io/options.js";

/** Seconds between progress lines when stderr is not a terminal, unless said otherwise. */
export const PROGRESS_SECONDS_DEFAULT = 30;

/** --progress-every, for the long commands (pretrain, finetune, quickstart). */
export const PROGRESS_OPTION: OptionSpec = {
  flag: "progress-every",
  key: "progressEvery",
  type: "number",
  min: 0,
  arg: "SECONDS",
  help: `when stderr is not a terminal (CI, nohup, a pipe): a progress line every SECONDS (default $LMFORGE_PROGRESS_SECONDS, else ${PROGRESS_SECONDS_DEFAULT}; 0: none)`,
};

export interface ProgressOptions {
  /** Seconds between lines off a terminal (default: the environment's, else 30). */
  every?: number;
  /** Whether stderr is a terminal (default: process.stderr.isTTY). */
  tty?: boolean;
  /** The clock in ms (default Date.now; tests give a fake one). */
  now?: () => number;
  /** Where the text goes (default stderr). */
  write?: (text: string) => void;
  env?: Record<string, string | undefined>;
}

/** The seconds between progress lines: the option, else LMFORGE_PROGRESS_SECONDS, else the default. */
export function progressSeconds(given: number | undefined, env: Record<string, string | undefined> = process.env): number {
  if (given !== undefined && Number.isFinite(given) && given >= 0) return given;
  const fromEnv = Number(env.LMFORGE_PROGRESS_SECONDS);
  return env.LMFORGE_PROGRESS_SECONDS !== undefined && env.LMFORGE_PROGRESS_SECONDS !== "" && Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : PROGRESS_SECONDS_DEFAULT;
}

/** Seconds left as "42 s", "7 min", "1.5 h". */
export function formatEta(seconds: number): string {
  return seconds >= 3600 ? `${(seconds / 3600).toFixed(1)} h` : seconds >= 60 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
}

export class Progress {
  private last = 0;
  private readonly started: number;
  private readonly mode: "bar" | "lines" | "off";
  private readonly every: number;
  private readonly now: () => number;
  private readonly write: (text: string) => void;

  constructor(private readonly label: string, private readonly unit: "bytes" | "steps" = "steps", o: ProgressOptions = {}) {
    const env = o.env ?? process.env;
    this.now = o.now ?? Date.now;
    this.write = o.write ?? ((text) => process.stderr.write(text));
    this.started = this.now();
    this.every = progressSeconds(o.every, env) * 1000;
    this.mode = env.LMFORGE_NO_PROGRESS === "1" ? "off" : (o.tty ?? process.stderr.isTTY) ? "bar" : this.every > 0 ? "lines" : "off";
    this.last = this.mode === "lines" ? this.started : 0;
  }

  private fmt(n: number): string {
    if (this.unit === "steps") return String(Math.round(n));
    return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
  }

  /** A rate: steps with two significant digits below 10/s (a slow run reads 0.25/s, not 0/s). */
  private fmtRate(rate: number): string {
    return this.unit === "steps" && rate < 10 ? String(Number(rate.toPrecision(2))) : this.fmt(rate);
  }

  private eta(done: number, total: number, secs: number): string {
    if (done <= 0 || done >= total) return "";
    return formatEta(((total - done) * secs) / done);
  }

  /** `from`: what was already done when this run began (a resumed run's step), left out of the rate and time left. */
  update(done: number, total: number, extra = "", from = 0): void {
    if (this.mode === "off") return;
    const now = this.now();
    const secs = (now - this.started) / 1000;
    const rate = (done - from) / Math.max(0.001, secs);
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const eta = this.eta(done - from, total - from, secs);
    if (this.mode === "lines") {
      if (now - this.last < this.every) return;
      this.last = now;
      this.write(`${this.label}: ${this.fmt(done)}/${this.fmt(total)} (${(frac * 100).toFixed(0)}%), ${this.fmtRate(rate)}/s${eta ? `, ${eta} left` : ""}${extra ? `, ${extra}` : ""}\n`);
      return;
    }
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const width = 30;
    const filled = Math.round(frac * width);
    const bar = "=".repeat(Math.max(0, filled - 1)) + (filled > 0 ? ">" : "") + " ".repeat(width - filled);
    this.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${this.fmt(done)}/${this.fmt(total)} ${this.fmtRate(rate)}/s${eta ? ` ${eta}` : ""} ${extra}\x1b[K`);
  }

  done(message = ""): void {
    if (this.mode === "bar") this.write(`\r\x1b[K`);
    if (message) this.write(message + "\n");
  }
}

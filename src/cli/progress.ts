// A progress bar on stderr when it is a terminal; silent otherwise (logs stay clean).

export class Progress {
  private last = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  constructor(private readonly label: string, private readonly unit: "bytes" | "steps" = "steps") {
    this.enabled = Boolean(process.stderr.isTTY) && process.env.LMFORGE_NO_PROGRESS !== "1";
  }

  private fmt(n: number): string {
    if (this.unit === "steps") return String(Math.round(n));
    return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
  }

  update(done: number, total: number, extra = ""): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const width = 30;
    const filled = Math.round(frac * width);
    const rate = done / Math.max(0.001, (now - this.started) / 1000);
    const bar = "=".repeat(Math.max(0, filled - 1)) + (filled > 0 ? ">" : "") + " ".repeat(width - filled);
    process.stderr.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${this.fmt(done)}/${this.fmt(total)} ${this.fmt(rate)}/s ${extra}\x1b[K`);
  }

  done(message = ""): void {
    if (this.enabled) process.stderr.write(`\r\x1b[K`);
    if (message) console.error(message);
  }
}

// Progress of long work on stderr: a bar redrawn in place on a terminal; elsewhere (CI, nohup,
// a pipe) a plain line every few seconds (LMFORGE_PROGRESS_SECONDS, default 10; 0 silences
// it), so that a log shows the run is alive and how fast it goes. LMFORGE_NO_PROGRESS=1: none.

export class Progress {
  private last = 0;
  private readonly started = Date.now();
  private readonly mode: "bar" | "lines" | "off";
  private readonly every: number;

  constructor(private readonly label: string, private readonly unit: "bytes" | "steps" = "steps") {
    const seconds = Number(process.env.LMFORGE_PROGRESS_SECONDS ?? 10);
    this.every = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 10000;
    this.mode = process.env.LMFORGE_NO_PROGRESS === "1" ? "off" : process.stderr.isTTY ? "bar" : this.every > 0 ? "lines" : "off";
    this.last = this.mode === "lines" ? Date.now() : 0;
  }

  private fmt(n: number): string {
    if (this.unit === "steps") return String(Math.round(n));
    return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
  }

  private eta(done: number, total: number, secs: number): string {
    if (done <= 0 || done >= total) return "";
    const left = ((total - done) * secs) / done;
    return left >= 3600 ? `${(left / 3600).toFixed(1)} h` : left >= 60 ? `${Math.round(left / 60)} min` : `${Math.round(left)} s`;
  }

  update(done: number, total: number, extra = ""): void {
    if (this.mode === "off") return;
    const now = Date.now();
    const secs = (now - this.started) / 1000;
    const rate = done / Math.max(0.001, secs);
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const eta = this.eta(done, total, secs);
    if (this.mode === "lines") {
      if (now - this.last < this.every) return;
      this.last = now;
      process.stderr.write(`${this.label}: ${this.fmt(done)}/${this.fmt(total)} (${(frac * 100).toFixed(0)}%), ${this.fmt(rate)}/s${eta ? `, ${eta} left` : ""}${extra ? `, ${extra}` : ""}\n`);
      return;
    }
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const width = 30;
    const filled = Math.round(frac * width);
    const bar = "=".repeat(Math.max(0, filled - 1)) + (filled > 0 ? ">" : "") + " ".repeat(width - filled);
    process.stderr.write(`\r${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${this.fmt(done)}/${this.fmt(total)} ${this.fmt(rate)}/s${eta ? ` ${eta}` : ""} ${extra}\x1b[K`);
  }

  done(message = ""): void {
    if (this.mode === "bar") process.stderr.write(`\r\x1b[K`);
    if (message) console.error(message);
  }
}

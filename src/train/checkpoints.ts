// A training run's folder: checkpoint-N/ folders (each written atomically, the last K kept,
// and the best one kept too when the run restores its best weights) and the JSONL log, which
// a resumed run cuts back to the checkpoint it resumes from, so that the log reads as one
// uninterrupted run.
import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeTextAtomic } from "../io/index.js";

/** The steps of the checkpoint-N folders in out, ascending. */
export function checkpointSteps(out: string): number[] {
  if (!existsSync(out)) return [];
  return readdirSync(out)
    .map((d) => /^checkpoint-(\d+)$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The last checkpoint folder in out (checkpoint-N with the largest N), if any. */
export function lastCheckpoint(out: string): string | null {
  const steps = checkpointSteps(out);
  return steps.length ? join(out, `checkpoint-${steps[steps.length - 1]}`) : null;
}

/** Removes all but the newest `keep` checkpoints, never the ones in `protect`. */
export function rotateCheckpoints(out: string, keep: number, protect: ReadonlySet<number> = new Set()): void {
  const steps = checkpointSteps(out).reverse();
  for (const s of steps.slice(keep)) if (!protect.has(s)) rmSync(join(out, `checkpoint-${s}`), { recursive: true, force: true });
}

/** The run's JSONL log: one record per line, each with the time. */
export class RunLog {
  /** readOnly: a log other ranks of a distributed run read but only rank 0 writes. */
  constructor(
    readonly path: string,
    readonly readOnly = false,
  ) {}

  append(record: Record<string, unknown>): void {
    if (this.readOnly) return;
    appendFileSync(this.path, JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n");
  }

  /** Every record, in order (a torn last line from a crash is skipped). */
  read(): Record<string, unknown>[] {
    if (!existsSync(this.path)) return [];
    const out: Record<string, unknown>[] = [];
    for (const line of readFileSync(this.path, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by a crash: the records before it stand
      }
    }
    return out;
  }

  /** Keeps the records up to a step (steps, evaluations and checkpoints after it are dropped), atomically. */
  truncateAfter(step: number): void {
    if (this.readOnly) return;
    const kept = this.read().filter((r) => typeof r.step !== "number" || r.step <= step || r.event === "start");
    writeTextAtomic(this.path, kept.map((r) => JSON.stringify(r)).join("\n") + (kept.length ? "\n" : ""));
  }
}

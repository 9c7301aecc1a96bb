// A training run's folder: checkpoint-N/ folders (each written atomically with a manifest, the
// last K kept, and the best one kept too when the run restores its best weights) and the JSONL
// log, which a resumed run cuts back to the checkpoint it resumes from, so that the log reads
// as one uninterrupted run.
//
// What a crash can leave, and what becomes of it: a .checkpoint-N.tmp-* folder (killed while
// writing; never a checkpoint-N, removed on resume), a .checkpoint-N.deleting-* folder (killed
// while rotating; removed on resume), a torn last log line (skipped). A checkpoint-N that fails
// its manifest (a disk error, a file altered) is renamed checkpoint-N.invalid and the one
// before it is used.
import { appendFileSync, existsSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeError, writeTextAtomic } from "../io/atomic.js";
import { CheckpointVerificationError, verifyManifest } from "../io/manifest.js";

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

/**
 * The newest checkpoint-N in out that passes its manifest (one without a manifest, from an
 * older lmforge, is taken as it is). Each newer one that fails is renamed checkpoint-N.invalid,
 * with a warning naming the file at fault, so that neither this run nor a later one takes it.
 */
export function resumableCheckpoint(out: string, warn: (line: string) => void = () => {}): string | null {
  for (const step of checkpointSteps(out).reverse()) {
    const dir = join(out, `checkpoint-${step}`);
    try {
      if (!verifyManifest(dir)) warn(`${dir} has no manifest.json (an older lmforge wrote it): resuming from it unverified`);
      if (!existsSync(join(dir, "trainer_state.json"))) throw new CheckpointVerificationError(dir, "trainer_state.json", "missing: not a training checkpoint");
      return dir;
    } catch (e) {
      if (!(e instanceof CheckpointVerificationError)) throw e;
      const invalid = `${dir}.invalid`;
      rmSync(invalid, { recursive: true, force: true });
      renameSync(dir, invalid);
      warn(`skipping checkpoint-${step}: ${e.message}; moved it to ${invalid}`);
    }
  }
  return null;
}

/** Removes the temporaries a killed run left in out (.checkpoint-N.tmp-*, .checkpoint-N.deleting-*). */
export function removeStaleTemporaries(out: string): string[] {
  if (!existsSync(out)) return [];
  const stale = readdirSync(out).filter((d) => /^\.checkpoint-\d+\.(tmp|deleting)-/.test(d));
  for (const d of stale) rmSync(join(out, d), { recursive: true, force: true });
  return stale;
}

/**
 * Removes all but the newest `keep` checkpoints, never the ones in `protect`. Each is renamed
 * away first, so a crash mid-removal leaves no half-deleted checkpoint-N.
 */
export function rotateCheckpoints(out: string, keep: number, protect: ReadonlySet<number> = new Set()): void {
  const steps = checkpointSteps(out).reverse();
  for (const s of steps.slice(keep)) {
    if (protect.has(s)) continue;
    const doomed = join(out, `.checkpoint-${s}.deleting-${process.pid}`);
    renameSync(join(out, `checkpoint-${s}`), doomed);
    rmSync(doomed, { recursive: true, force: true });
  }
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
    try {
      appendFileSync(this.path, JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n");
    } catch (e) {
      throw writeError(this.path, e);
    }
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

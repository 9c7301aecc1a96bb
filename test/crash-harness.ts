// The crash harness: runs an `lmforge` training command as a child process, kills it with
// SIGKILL at seeded random moments, resumes it with --resume until it finishes, and checks
// after every kill that the output folder holds no checkpoint-N that --resume would take and
// that is not whole. crash.test.ts compares the survivor's losses and weights with an
// uninterrupted run's.
//
// Two kinds of kill point:
// - after-step: the child's progress line shows step k, then the harness waits delayMs (a
//   fraction of a step to a few steps) and kills: the kill lands in a forward or backward
//   pass, an evaluation, a log write or a checkpoint write, wherever the child then is;
// - in-write: the child runs with LMFORGE_TEST_PAUSE_IN_WRITE (the checkpoint writer stops
//   halfway through a folder), and the harness kills it inside the first pause at a
//   checkpoint of step k or later (or in the final save), after waitMs of the pause.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { Rng } from "../src/data/random.js";
import { verifyManifest } from "../src/io/manifest.js";

/**
 * A tiny BERT with dropout (so that a resume must restore the random state) and its tokenizer
 * in dir/base, 120 two-topic texts as documents (dir/docs.txt) and as a labelled TSV (dir/data.tsv).
 */
export function tinySetup(dir: string): { base: string; docs: string; tsv: string } {
  const base = join(dir, "base");
  const texts = Array.from({ length: 120 }, (_, i) => (i % 2 ? "whale ship sea harpoon captain ocean" : "nation congress president law people tax").split(" ").sort(() => 0.5 - ((i * 7919) % 13) / 13).join(" "));
  const tok = trainTokenizerFromTexts(texts, { kind: "wordpiece", vocabSize: 120, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 }), base);
  saveTokenizer(tok, base);
  const docs = join(dir, "docs.txt");
  const tsv = join(dir, "data.tsv");
  writeFileSync(docs, texts.join("\n\n") + "\n");
  writeFileSync(tsv, "sentence\tlabel\n" + texts.map((t, i) => `${t}\t${i % 2 ? "whale" : "nation"}`).join("\n") + "\n");
  return { base, docs, tsv };
}

export type KillPoint = { kind: "after-step"; step: number; delayMs: number } | { kind: "in-write"; step: number; waitMs: number };

/** How long the checkpoint writer pauses in an in-write run (ms); the kill falls inside it. */
export const PAUSE_MS = 400;

const CLI = new URL("../../bin/lmforge.js", import.meta.url).pathname;

/** `count` kill points over steps 1..maxSteps-1, ascending by step, half of each kind (drawn from seed). */
export function drawKillPoints(seed: number, count: number, maxSteps: number): KillPoint[] {
  const rng = new Rng(seed, 0xc4a5);
  const points: KillPoint[] = [];
  for (let i = 0; i < count; i++) {
    const step = 1 + Math.floor(rng.next() * (maxSteps - 1));
    points.push(rng.next() < 0.5 ? { kind: "after-step", step, delayMs: Math.floor(rng.next() * 60) } : { kind: "in-write", step, waitMs: Math.floor(rng.next() * (PAUSE_MS - 100)) });
  }
  return points.sort((a, b) => a.step - b.step);
}

/** What became of one child: killed at the point, or it ended on its own (code or signal) first. */
export interface ChildOutcome {
  killed: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** The environment of every child: one thread (bit-identical runs), a progress line per step, the data cache. */
export function childEnv(cache: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1", OMP_WAIT_POLICY: "PASSIVE", LMFORGE_CACHE: cache, LMFORGE_PROGRESS_SECONDS: "0.000001", ...extra };
}

/**
 * Starts `lmforge ...args`, and calls `act(child, line)` on each stderr line as it comes;
 * resolves when the child is gone.
 */
export function runChild(args: string[], env: NodeJS.ProcessEnv, act: (kill: (signal: NodeJS.Signals) => void, line: string) => void = () => {}): Promise<ChildOutcome & { killedAt: number | null; exitedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"], env });
    let stderr = "";
    let pending = "";
    let killed = false;
    let killedAt: number | null = null;
    const kill = (signal: NodeJS.Signals): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (signal === "SIGKILL") killed = true;
      killedAt = performance.now();
      child.kill(signal);
    };
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) act(kill, line);
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ killed, code, signal, stderr, killedAt, exitedAt: performance.now() }));
  });
}

const PROGRESS = /^(?:pretrain|finetune): (\d+)\/\d+/;
const PAUSE = /^lmforge test pause: writing (.*)$/;

/** Runs the command once, killing it with SIGKILL at the point (the child may finish first). */
export async function runToKillPoint(args: string[], env: NodeJS.ProcessEnv, point: KillPoint, out: string): Promise<ChildOutcome> {
  let armed = true;
  return runChild(args, point.kind === "in-write" ? { ...env, LMFORGE_TEST_PAUSE_IN_WRITE: String(PAUSE_MS) } : env, (kill, line) => {
    if (!armed) return;
    if (point.kind === "after-step") {
      const m = PROGRESS.exec(line);
      if (m && Number(m[1]) >= point.step) {
        armed = false;
        setTimeout(() => kill("SIGKILL"), point.delayMs);
      }
      return;
    }
    const m = PAUSE.exec(line);
    if (!m) return;
    const step = /checkpoint-(\d+)\.tmp-/.exec(m[1]!);
    // a checkpoint at or after the step, or the final save into the output folder itself
    if ((step && Number(step[1]) >= point.step) || m[1] === out) {
      armed = false;
      setTimeout(() => kill("SIGKILL"), point.waitMs);
    }
  });
}

/**
 * What --resume may take after a crash: every checkpoint-N folder passes its manifest and has
 * its trainer state (a kill leaves only hidden temporaries beside them).
 */
export function assertCheckpointsWhole(out: string, context: string): number[] {
  const steps: number[] = [];
  for (const d of existsSync(out) ? readdirSync(out) : []) {
    const m = /^checkpoint-(\d+)$/.exec(d);
    if (!m) continue;
    assert.equal(verifyManifest(join(out, d)), true, `${context}: ${d} has no manifest.json`);
    assert.ok(existsSync(join(out, d, "trainer_state.json")), `${context}: ${d} has no trainer_state.json`);
    steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

/** One crash chain's record: each kill and what the folder held after it. */
export interface ChainReport {
  kills: { point: KillPoint; checkpoints: number[] }[];
  /** Kill points the run passed without being killed (it finished first). */
  missed: KillPoint[];
  runs: number;
}

/**
 * Runs `args` (which must hold `--out out`) to the end through the kill points: start, kill
 * at the first point, check the folder, resume (a fresh start when no checkpoint exists yet),
 * kill at the next, ..., then resume until the run finishes. Fails if a resumed run fails.
 */
export async function crashChain(args: string[], out: string, env: NodeJS.ProcessEnv, points: readonly KillPoint[]): Promise<ChainReport> {
  rmSync(out, { recursive: true, force: true });
  const report: ChainReport = { kills: [], missed: [], runs: 0 };
  const argsNow = (): string[] => {
    const resumable = existsSync(out) && readdirSync(out).some((d) => /^checkpoint-\d+$/.test(d));
    // killed before its first checkpoint: nothing to resume, start again from scratch
    if (!resumable) rmSync(out, { recursive: true, force: true });
    return resumable ? [...args, "--resume"] : args;
  };
  for (const point of points) {
    const r = await runToKillPoint(argsNow(), env, point, out);
    report.runs++;
    if (!r.killed) {
      assert.equal(r.code, 0, `the run ended (${r.code ?? r.signal}) before the kill point ${JSON.stringify(point)}:\n${r.stderr}`);
      report.missed.push(point);
      return report; // finished: the remaining points are past its end
    }
    report.kills.push({ point, checkpoints: assertCheckpointsWhole(out, `after the kill at ${JSON.stringify(point)}`) });
  }
  const last = await runChild(argsNow(), env);
  report.runs++;
  assert.equal(last.code, 0, `the last resume failed:\n${last.stderr}`);
  return report;
}

// Crash consistency with real processes: `lmforge pretrain` and `lmforge finetune` killed with
// SIGKILL at seeded random moments (some inside a checkpoint write, paused there by the
// test-only LMFORGE_TEST_PAUSE_IN_WRITE), resumed until done, end with the losses, evaluations
// and final weights of an uninterrupted run, bit for bit; after every kill each checkpoint-N
// in the folder passes its manifest. SIGTERM and SIGINT write a checkpoint and exit 143 and
// 130; a second signal ends the process at once, leaving nothing --resume would take.
//
// LMFORGE_CRASH_SEED=S replays a run's kill points (each run prints its seed);
// LMFORGE_CRASH_POINTS=N sets the kill points per command (default 3).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomInt } from "node:crypto";
import { verifyManifest } from "../src/io/manifest.js";
import { runLog, tempDir } from "./helpers.js";
import { assertCheckpointsWhole, childEnv, crashChain, drawKillPoints, runChild, tinySetup } from "./crash-harness.js";
import type { ChainReport } from "./crash-harness.js";

const dir = await tempDir("lmforge-crash-");
const env = childEnv(join(dir, "cache"));
const SEED = Number(process.env.LMFORGE_CRASH_SEED ?? randomInt(2 ** 31));
const POINTS = Number(process.env.LMFORGE_CRASH_POINTS ?? 3);
/** Kill points per chain: a chain is one run killed and resumed several times. */
const PER_CHAIN = 4;

const { base, docs, tsv } = tinySetup(dir);

const COMMANDS = {
  // 40 steps, a checkpoint every 5, an evaluation every 10
  pretrain: { maxSteps: 40, args: (out: string) => ["pretrain", "--model", base, "--input", docs, "--out", out, "--max-steps", "40", "--batch-size", "8", "--seq-len", "32", "--save-every", "5", "--eval-every", "10", "--precision", "fp32"] },
  // 3 epochs of 12 steps (96 training examples), a checkpoint every 4, an evaluation and the best kept per epoch
  finetune: { maxSteps: 36, args: (out: string) => ["finetune", "--model", base, "--train", tsv, "--out", out, "--epochs", "3", "--batch-size", "8", "--max-length", "16", "--save-every", "4", "--learning-rate", "3e-3", "--precision", "fp32", "--dropout", "0.2"] },
} as const;

/** The uninterrupted run of each command, made once. */
const references = new Map<string, Promise<string>>();
function reference(name: keyof typeof COMMANDS): Promise<string> {
  if (!references.has(name)) {
    references.set(name, (async () => {
      const out = join(dir, `${name}-reference`);
      const r = await runChild([...COMMANDS[name].args(out)], env);
      assert.equal(r.code, 0, r.stderr);
      return out;
    })());
  }
  return references.get(name)!;
}

/** The run in `out` ended as the reference did: each step's loss, each evaluation, the final weights' bytes. */
async function assertSameAsReference(name: keyof typeof COMMANDS, out: string, context: string): Promise<void> {
  const ref = await reference(name);
  const a = runLog(out);
  const b = runLog(ref);
  assert.equal(a.losses.length, COMMANDS[name].maxSteps, context);
  assert.deepEqual(a.losses, b.losses, `${context}: losses`);
  assert.deepEqual(a.evals, b.evals, `${context}: evaluations`);
  assert.ok(readFileSync(join(out, "model.safetensors")).equals(readFileSync(join(ref, "model.safetensors"))), `${context}: model.safetensors differs`);
}

for (const name of ["pretrain", "finetune"] as const) {
  test(`${name} killed with SIGKILL at seeded random moments (some inside a checkpoint write) resumes to the uninterrupted run's losses and weights`, async (t) => {
    t.diagnostic(`seed ${SEED}, ${POINTS} kill points (reproduce with LMFORGE_CRASH_SEED=${SEED} LMFORGE_CRASH_POINTS=${POINTS})`);
    let kills = 0;
    for (let chain = 0; chain * PER_CHAIN < POINTS; chain++) {
      const points = drawKillPoints(SEED + chain, Math.min(PER_CHAIN, POINTS - chain * PER_CHAIN), COMMANDS[name].maxSteps);
      const out = join(dir, `${name}-chain-${chain}`);
      const context = `${name}, seed ${SEED}, chain ${chain} (${JSON.stringify(points)})`;
      const report: ChainReport = await crashChain([...COMMANDS[name].args(out)], out, env, points);
      await assertSameAsReference(name, out, context);
      kills += report.kills.length;
      t.diagnostic(`chain ${chain}: ${report.kills.map((k) => `${k.point.kind}@${k.point.step} -> [${k.checkpoints.join(",")}]`).join("; ")}${report.missed.length ? `; the run finished before ${report.missed.length} point(s)` : ""}`);
    }
    t.diagnostic(`${name}: survived ${kills} kills`);
    assert.ok(kills >= Math.ceil(POINTS / 2), `only ${kills} of ${POINTS} kill points were reached`);
  });
}

/** Sends `signal` once the progress line shows step `atStep`; `then` may act on later lines. */
function signalAt(args: string[], atStep: number, signal: NodeJS.Signals, extraEnv: Record<string, string> = {}, then?: (kill: (s: NodeJS.Signals) => void, line: string) => void) {
  let sent = false;
  return runChild(args, { ...env, ...extraEnv }, (kill, line) => {
    const m = /^(?:pretrain|finetune): (\d+)\//.exec(line);
    if (!sent && m && Number(m[1]) >= atStep) {
      sent = true;
      kill(signal);
    } else if (sent) then?.(kill, line);
  });
}

for (const [name, signal, code] of [["pretrain", "SIGTERM", 143], ["finetune", "SIGINT", 130]] as const) {
  test(`${signal} during ${name}: the step finishes, a checkpoint is written, exit ${code}; --resume ends as the uninterrupted run`, async () => {
    const out = join(dir, `${name}-${signal}`);
    const args = [...COMMANDS[name].args(out)];
    const r = await signalAt(args, 13, signal);
    assert.equal(r.code, code, r.stderr);
    const stopped = new RegExp(`interrupted by ${signal}: checkpoint saved at step (\\d+)`).exec(r.stderr);
    assert.ok(stopped, r.stderr);
    const step = Number(stopped[1]);
    // the step under way when the signal came finished; no other began
    assert.ok(step >= 13 && step < COMMANDS[name].maxSteps, `stopped at step ${step}`);
    assert.equal(runLog(out).losses.length, step);
    assert.ok(assertCheckpointsWhole(out, signal).includes(step));
    const resumed = await runChild([...args, "--resume"], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resumed from .*checkpoint-${step} at step ${step}`));
    await assertSameAsReference(name, out, `${name} after ${signal}`);
  });
}

test("a second SIGINT ends the process at once, inside the checkpoint write the first one started; nothing is left that --resume would take", async () => {
  const out = join(dir, "second-signal");
  const args = ["pretrain", "--model", base, "--input", docs, "--out", out, "--max-steps", "40", "--batch-size", "8", "--seq-len", "32", "--save-every", "100", "--eval-every", "100", "--precision", "fp32"];
  let paused = false;
  // the first SIGINT at step 5 starts the checkpoint write, which pauses 8 s halfway; the second comes in the pause
  const r = await signalAt(args, 5, "SIGINT", { LMFORGE_TEST_PAUSE_IN_WRITE: "8000" }, (kill, line) => {
    if (!paused && line.startsWith("lmforge test pause: writing")) {
      paused = true;
      kill("SIGINT");
    }
  });
  assert.ok(paused, r.stderr);
  assert.equal(r.signal, "SIGINT", `ended by the signal itself, not an exit code (${r.code}):\n${r.stderr}`);
  const took = r.exitedAt - r.killedAt!;
  assert.ok(took < 4000, `the second signal took ${took.toFixed(0)} ms to end the process (the write's pause is 8000 ms)`);
  // the half-written folder is a hidden temporary, never checkpoint-N
  assert.deepEqual(readdirSync(out).filter((d) => d.startsWith("checkpoint-")), []);
  assert.ok(readdirSync(out).some((d) => /^\.checkpoint-\d+\.tmp-/.test(d)), "the interrupted write's temporary is there");
  const resumed = await runChild([...args, "--resume"], env);
  assert.equal(resumed.code, 1);
  assert.match(resumed.stderr, /--resume: no checkpoint-N folder in /);
});

test("--resume skips a checkpoint that fails its manifest, naming the file, and resumes from the one before", async () => {
  const out = join(dir, "corrupt");
  const args = [...COMMANDS.pretrain.args(out)];
  const r = await signalAt(args, 12, "SIGTERM");
  assert.equal(r.code, 143, r.stderr);
  const steps = assertCheckpointsWhole(out, "before the damage");
  assert.ok(steps.length >= 2, `checkpoints ${steps}`);
  const [before, last] = steps.slice(-2) as [number, number];
  // one byte of the newest checkpoint's weights changed: same size, another hash
  const weights = join(out, `checkpoint-${last}`, "model.safetensors");
  const bytes = readFileSync(weights);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
  writeFileSync(weights, bytes);
  assert.throws(() => verifyManifest(join(out, `checkpoint-${last}`)), /model\.safetensors: SHA-256 [0-9a-f]{12}\.\.\. where the manifest says/);
  const resumed = await runChild([...args, "--resume"], env);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`skipping checkpoint-${last}: .*checkpoint-${last}/model\\.safetensors: SHA-256 .* moved it to .*checkpoint-${last}\\.invalid`));
  assert.match(resumed.stderr, new RegExp(`resumed from .*checkpoint-${before} at step ${before}`));
  assert.ok(existsSync(join(out, `checkpoint-${last}.invalid`)));
  await assertSameAsReference("pretrain", out, "after skipping a damaged checkpoint");
});

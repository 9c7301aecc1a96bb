// A full disk during training: `lmforge pretrain` writes into a size-limited tmpfs that holds
// one checkpoint but not two. The second checkpoint's write fails: the process exits non-zero
// with an error naming the path and "no space left on device", the first checkpoint stays whole
// (its manifest passes, its tensors load), no half-written checkpoint or temporary is left, and
// the folder, moved to a disk with room, resumes to the uninterrupted run's losses and weights.
// Mounting needs root (or CAP_SYS_ADMIN): elsewhere the test is skipped, saying why.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { readCheckpoint } from "../src/io/index.js";
import { verifyManifest } from "../src/io/manifest.js";
import { runLog, tempDir } from "./helpers.js";
import { childEnv, runChild, tinySetup } from "./crash-harness.js";

const dir = await tempDir("lmforge-disk-full-");
const env = childEnv(join(dir, "cache"));
const { base, docs } = tinySetup(dir);
const args = (out: string): string[] => ["pretrain", "--model", base, "--input", docs, "--out", out, "--max-steps", "20", "--batch-size", "8", "--seq-len", "32", "--save-every", "5", "--eval-every", "10", "--precision", "fp32"];

/** What a folder's files take on tmpfs: each file rounded up to whole 4 KiB pages. */
function pagesOf(folder: string): number {
  return readdirSync(folder).reduce((n, f) => n + Math.ceil(statSync(join(folder, f)).size / 4096) * 4096, 0);
}

test("a checkpoint that does not fit fails with a clear error, keeps the previous one whole, and leaves nothing half-written", async (t) => {
  const reference = join(dir, "reference");
  const whole = await runChild(args(reference), env);
  assert.equal(whole.code, 0, whole.stderr);
  // every checkpoint of the run has the same files and sizes: room for one and a half
  const checkpoint = pagesOf(join(reference, "checkpoint-20"));
  const size = Math.ceil((checkpoint * 1.5) / 4096) * 4096;
  const mnt = mkdtempSync(join(tmpdir(), "lmforge-tmpfs-"));
  const mount = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt], { encoding: "utf8" });
  if (mount.status !== 0) {
    rmdirSync(mnt);
    t.skip(`cannot mount a tmpfs here (${(mount.stderr || mount.error?.message || "").trim()}): the disk-full test needs root or CAP_SYS_ADMIN`);
    return;
  }
  try {
    const out = join(mnt, "out");
    const r = await runChild(args(out), env);
    assert.equal(r.code, 1, r.stderr);
    const error = r.stderr.trim().split("\n").pop()!;
    const at = (s: string): string => s.replace(/[/.]/g, "\\$&");
    assert.match(error, new RegExp(`^lmforge pretrain: checkpoint ${at(out)}/checkpoint-10 not written: ${at(out)}/\\.checkpoint-10\\.tmp-[0-9a-f-]+/model\\.safetensors: no space left on device \\(ENOSPC\\); the partial file was removed; the last complete checkpoint, ${at(out)}/checkpoint-5, is intact`));
    // the first checkpoint and the log, nothing else: the failed folder was removed (the failed
    // run's report.html is written when the small file still fits, else its error is logged)
    assert.deepEqual(readdirSync(out).filter((f) => f !== "report.html").sort(), ["checkpoint-5", "metrics.jsonl"]);
    assert.equal(runLog(out).losses.length, 10);
    assert.equal(verifyManifest(join(out, "checkpoint-5")), true);
    const ck = readCheckpoint(join(out, "checkpoint-5"), { verify: true });
    for (const name of ck.names()) {
      const tensor = ck.get(name);
      assert.ok(tensor.isfinite().all().item(), name);
      tensor.dispose();
    }
    // with room again, the run resumes from checkpoint-5 and ends as the uninterrupted one
    const moved = join(dir, "moved");
    cpSync(out, moved, { recursive: true });
    const resumed = await runChild([...args(moved), "--resume"], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-5 at step 5/);
    assert.deepEqual(runLog(moved).losses, runLog(reference).losses);
    assert.ok(readFileSync(join(moved, "model.safetensors")).equals(readFileSync(join(reference, "model.safetensors"))));
  } finally {
    spawnSync("umount", [mnt]);
    rmdirSync(mnt);
  }
});

// Names read from files never lead outside the folder the user gave: "..", absolute paths and
// symlinks out are refused, with errors naming the file and the field; Hugging Face's cache
// layout (snapshot symlinks into the repository's blobs/) still loads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { readCheckpoint, saveSafetensors } from "../src/io/index.js";
import { PathEscapeError, resolveInside } from "../src/io/paths.js";
import { tempDir } from "./helpers.js";

const root = await tempDir("lmforge-paths-");
const what = { file: "index.json", field: "weight_map[\"w\"]" };

function refused(fn: () => unknown, reason: RegExp, file = what.file, field = what.field): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof PathEscapeError, `not a PathEscapeError: ${e.message}`);
    assert.equal(e.file, file);
    assert.equal(e.field, field);
    assert.ok(e.message.startsWith(`${file}: ${field} `), e.message);
    assert.match(e.message, reason);
    return true;
  });
}

test("resolveInside: plain names resolve into the folder; .., absolute, NUL, empty and non-strings are refused", () => {
  const dir = join(root, "plain");
  mkdirSync(dir);
  assert.equal(resolveInside(dir, "model.safetensors", what), join(dir, "model.safetensors"));
  assert.equal(resolveInside(dir, "sub/model.safetensors", what), join(dir, "sub", "model.safetensors"));
  refused(() => resolveInside(dir, "../model.safetensors", what), /climbs out of the folder with '\.\.'/);
  refused(() => resolveInside(dir, "a/../../x", what), /climbs out/);
  refused(() => resolveInside(dir, "..", what), /climbs out/);
  refused(() => resolveInside(dir, "a\\..\\..\\x", what), /climbs out/);
  refused(() => resolveInside(dir, "/etc/passwd", what), /is an absolute path/);
  refused(() => resolveInside(dir, "C:\\Windows\\x", what), /is an absolute path/);
  refused(() => resolveInside(dir, "\\\\server\\share", what), /is an absolute path/);
  refused(() => resolveInside(dir, "", what), /is empty/);
  refused(() => resolveInside(dir, "a\0b", what), /holds a NUL/);
  refused(() => resolveInside(dir, 7, what), /must be a file name \(a string\), got number/);
  refused(() => resolveInside(dir, null, what), /got null/);
});

test("resolveInside: a symlink out of the folder is refused; one inside it is followed", () => {
  const dir = join(root, "links");
  mkdirSync(dir);
  const outside = join(root, "secret.safetensors");
  writeFileSync(outside, "x");
  writeFileSync(join(dir, "real.safetensors"), "x");
  symlinkSync(outside, join(dir, "out.safetensors"));
  symlinkSync("../secret.safetensors", join(dir, "rel-out.safetensors"));
  symlinkSync("real.safetensors", join(dir, "in.safetensors"));
  mkdirSync(join(dir, "escape-dir"));
  symlinkSync(root, join(dir, "escape-dir", "up"));
  refused(() => resolveInside(dir, "out.safetensors", what), new RegExp(`is a symlink to ${outside}, outside the folder`));
  refused(() => resolveInside(dir, "rel-out.safetensors", what), /is a symlink to .*secret\.safetensors, outside the folder/);
  refused(() => resolveInside(dir, "escape-dir/up/secret.safetensors", what), /outside the folder/);
  assert.equal(resolveInside(dir, "in.safetensors", what), join(dir, "in.safetensors"));
  // a folder reached through a symlink is fine: containment is checked on real paths
  symlinkSync(dir, join(root, "alias"));
  assert.equal(resolveInside(join(root, "alias"), "real.safetensors", what), join(root, "alias", "real.safetensors"));
});

test("resolveInside: Hugging Face's cache layout (snapshot symlinks into ../../blobs) is allowed, nothing else outside", () => {
  const repo = join(root, "hub", "models--org--tiny");
  const snap = join(repo, "snapshots", "abc123");
  mkdirSync(join(repo, "blobs"), { recursive: true });
  mkdirSync(snap, { recursive: true });
  writeFileSync(join(repo, "blobs", "deadbeef"), "x");
  writeFileSync(join(repo, "elsewhere"), "x");
  symlinkSync("../../blobs/deadbeef", join(snap, "model.safetensors"));
  symlinkSync("../../elsewhere", join(snap, "other.safetensors"));
  assert.equal(resolveInside(snap, "model.safetensors", what), join(snap, "model.safetensors"));
  refused(() => resolveInside(snap, "other.safetensors", what), /outside the folder/);
});

/** A checkpoint folder whose index maps tensor "w" to `shard`. */
function indexedFolder(name: string, shard: unknown): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), "{}");
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: { w: shard } }));
  return dir;
}

test("readCheckpoint: shard names in model.safetensors.index.json cannot leave the folder", () => {
  torch.scope(() => saveSafetensors(join(root, "outside.safetensors"), { w: torch.tensor([1, 2], { dtype: "float32" }) }));
  const cases: [string, unknown, RegExp][] = [
    ["dotdot", "../outside.safetensors", /climbs out/],
    ["absolute", join(root, "outside.safetensors"), /is an absolute path/],
    ["number", 5, /must be a file name \(a string\), got number/],
    ["subfolder", "sub/w.safetensors", /must be a file name in the folder/],
    ["pickle", "pytorch_model.bin", /must name a \.safetensors file.*never reads: unpickling/],
  ];
  for (const [name, shard, reason] of cases) {
    const dir = indexedFolder(name, shard);
    refused(() => readCheckpoint(dir), reason, join(dir, "model.safetensors.index.json"), 'weight_map["w"]');
  }
  const linked = indexedFolder("symlinked", "model-00001-of-00001.safetensors");
  symlinkSync(join(root, "outside.safetensors"), join(linked, "model-00001-of-00001.safetensors"));
  refused(() => readCheckpoint(linked), /is a symlink to .*outside\.safetensors, outside the folder/, join(linked, "model.safetensors.index.json"), 'weight_map["w"]');
  // the same shard, inside the folder, loads
  const fine = indexedFolder("fine", "model-00001-of-00001.safetensors");
  torch.scope(() => saveSafetensors(join(fine, "model-00001-of-00001.safetensors"), { w: torch.tensor([1, 2], { dtype: "float32" }) }));
  assert.deepEqual(readCheckpoint(fine).get("w").toArray(), [1, 2]);
});

test("readCheckpoint: an index or config that is no JSON object is refused naming the file", () => {
  const dir = indexedFolder("bad-map", "x.safetensors");
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: ["x.safetensors"] }));
  assert.throws(() => readCheckpoint(dir), new RegExp(`${join(dir, "model.safetensors.index.json")}: weight_map must be an object`));
  writeFileSync(join(dir, "model.safetensors.index.json"), "null");
  assert.throws(() => readCheckpoint(dir), new RegExp(`${join(dir, "model.safetensors.index.json")}: must hold a JSON object, found null`));
  writeFileSync(join(dir, "config.json"), "[1]");
  assert.throws(() => readCheckpoint(dir), new RegExp(`${join(dir, "config.json")}: must hold a JSON object, found an array`));
});

test("a FIFO named like a shard is refused by name, never opened (opening it would block)", () => {
  const dir = indexedFolder("fifo", "pytorch_model.bin");
  execFileSync("mkfifo", [join(dir, "pytorch_model.bin")]);
  refused(() => readCheckpoint(dir), /must name a \.safetensors file/, join(dir, "model.safetensors.index.json"), 'weight_map["w"]');
  // and a FIFO named model.safetensors is opened without blocking, then refused as no regular file
  const dir2 = join(root, "fifo2");
  mkdirSync(dir2);
  writeFileSync(join(dir2, "config.json"), "{}");
  execFileSync("mkfifo", [join(dir2, "model.safetensors")]);
  assert.throws(() => readCheckpoint(dir2), /model\.safetensors: safetensors file-open: not a regular file/);
});

test("resume: a trainer_state.json whose best.step is no integer is refused (it names a checkpoint folder)", async () => {
  const { embeddedCorpus } = await import("../src/data/index.js");
  const { saveTokenizer, trainTokenizerFromTexts } = await import("../src/tokenizers/index.js");
  const { pretrain } = await import("../src/train/index.js");
  const docs = embeddedCorpus("moby-dick").slice(0, 10);
  const tokDir = join(root, "tok");
  saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 400, lowercase: true }), tokDir);
  const out = join(root, "run");
  const opts = { model: "bert-tiny", modelConfig: { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_hidden_layers: 1 }, tokenizer: tokDir, documents: docs, batchSize: 2, seqLen: 16, precision: "fp32" as const, out, saveEvery: 1 };
  await pretrain({ ...opts, maxSteps: 1 });
  const statePath = join(out, "checkpoint-1", "trainer_state.json");
  const state = JSON.parse(readFileSync(statePath, "utf8")) as Record<string, unknown>;
  writeFileSync(statePath, JSON.stringify({ ...state, best: { step: "1/../../../elsewhere", value: 0, metric: "loss" } }));
  // a hostile checkpoint that is whole: its manifest says so, so the check of its contents is what refuses it
  const { writeManifest } = await import("../src/io/manifest.js");
  writeManifest(join(out, "checkpoint-1"));
  await assert.rejects(pretrain({ ...opts, maxSteps: 2, resume: true }), new RegExp(`${statePath}: best\\.step must be a non-negative integer, got "1/\\.\\./\\.\\./\\.\\./elsewhere"`));
});

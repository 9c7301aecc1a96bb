// Checkpoint folders: Hugging Face layout, sharding, atomic replacement, pickle refusal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, copyFileSync } from "node:fs";
import { join, basename, dirname } from "node:path";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { Embedding, LayerNorm, Linear, Module, loadPretrained, savePretrained } from "../src/nn/index.js";
import { readCheckpoint, saveCheckpoint } from "../src/io/index.js";
import { fixture, tempDir } from "./helpers.js";

const root = await tempDir();

class Net extends Module {
  embeddings = new Embedding(50, 16);
  dense = new Linear(16, 16);
  LayerNorm = new LayerNorm(16);
  decoder = new Linear(16, 50);
  constructor() {
    super();
    // tie the decoder to the embeddings, as masked-LM heads do
    this.decoder.weight.dispose();
    this.decoder.weight = (this.decoder as unknown as { registerParameter(n: string, t: Tensor): Tensor }).registerParameter("weight", this.embeddings.weight);
  }
}

test("save then load gives identical tensors; tied weights are saved once", () => {
  torch.manualSeed(5);
  const a = new Net();
  const dir = join(root, "net");
  savePretrained(a, dir, { model_type: "test", hidden_size: 16 });
  assert.deepEqual(readdirSync(dir).sort(), ["config.json", "model.safetensors"]);
  const ck = readCheckpoint(dir);
  assert.equal(ck.config.hidden_size, 16);
  assert.ok(!ck.names().includes("decoder.weight"), "the tied decoder weight is left out, as Hugging Face does");
  const b = new Net();
  const r = loadPretrained(b, dir, { strict: true });
  assert.deepEqual(r.missingKeys, []);
  for (const [name, t] of a.stateDict()) assert.ok(t.equal(b.stateDict().get(name)!), name);
  assert.equal(b.decoder.weight, b.embeddings.weight);
});

test("above the shard limit the weights are sharded with an index, and load back", () => {
  torch.manualSeed(6);
  const a = new Net();
  const dir = join(root, "sharded");
  savePretrained(a, dir, { model_type: "test" }, { maxShardBytes: 2000 });
  const files = readdirSync(dir).sort();
  assert.ok(files.includes("model.safetensors.index.json"));
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.equal(shards.length, 2); // the 3,200-byte embedding fills one shard, the rest the other
  const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  assert.equal(index.metadata.total_size, (50 * 16 + 16 * 16 + 16 + 32 + 50) * 4);
  assert.equal(Object.keys(index.weight_map).length, 6); // the tied decoder weight is not saved
  const b = new Net();
  loadPretrained(b, dir, { strict: true });
  for (const [name, t] of a.stateDict()) assert.ok(t.equal(b.stateDict().get(name)!), name);
});

test("loading reports missing and unexpected weights by name; strict throws", () => {
  const dir = join(root, "partial");
  const emb = torch.randn([50, 16]);
  saveCheckpoint(dir, { model_type: "test" }, new Map([["embeddings.weight", emb], ["pooler.dense.weight", torch.zeros([2, 2])]]));
  const b = new Net();
  const r = loadPretrained(b, dir);
  assert.deepEqual(r.unexpectedKeys, ["pooler.dense.weight"]);
  assert.deepEqual(r.missingKeys, ["dense.weight", "dense.bias", "LayerNorm.weight", "LayerNorm.bias", "decoder.bias"]);
  assert.ok(b.embeddings.weight.equal(emb));
  assert.throws(() => loadPretrained(b, dir, { strict: true }), /missing \["dense\.weight"/);
  // renames map older names (LayerNorm.gamma) onto the module's
  const old = join(root, "old-names");
  saveCheckpoint(old, {}, new Map([["LayerNorm.gamma", torch.full([16], 2)]]));
  loadPretrained(b, old, { rename: (n) => n.replace(/\.gamma$/, ".weight") });
  assert.equal(b.LayerNorm.weight!.mean().item(), 2);
});

test("a failed save leaves the previous folder intact and readable", () => {
  const dir = join(root, "atomic");
  const good = torch.ones([4]);
  saveCheckpoint(dir, { version: 1 }, new Map([["w", good]]));
  const bad = torch.ones([4]);
  bad.dispose();
  assert.throws(() => saveCheckpoint(dir, { version: 2 }, new Map([["w", torch.zeros([4])], ["broken", bad]])), /tensor "broken" was disposed/);
  const ck = readCheckpoint(dir);
  assert.equal(ck.config.version, 1);
  assert.ok(ck.get("w").equal(good));
  const leftovers = readdirSync(dirname(dir)).filter((f) => f.startsWith(`.${basename(dir)}.tmp-`));
  assert.deepEqual(leftovers, []);
  // replacing works, and a crash between the two renames is recovered from the aside copy
  saveCheckpoint(dir, { version: 3 }, new Map([["w", torch.full([4], 3)]]));
  assert.equal(readCheckpoint(dir).config.version, 3);
  renameSync(dir, join(dirname(dir), `.${basename(dir)}.old`));
  assert.equal(readCheckpoint(dir).config.version, 3);
});

test("a folder holding only pickle weights is refused, with how to convert it", () => {
  const dir = join(root, "pickle-only");
  mkdirSync(dir);
  copyFileSync(fixture("hf-tiny/bert/config.json"), join(dir, "config.json"));
  copyFileSync(fixture("hf-tiny/bert/pytorch_model.bin"), join(dir, "pytorch_model.bin"));
  assert.throws(() => readCheckpoint(dir), /holds only pickle weights \(pytorch_model\.bin\), which lmforge never reads.*safe_serialization=True/);
  writeFileSync(join(dir, "config.json"), "{oops");
  assert.throws(() => readCheckpoint(dir), /config\.json: not valid JSON/);
  assert.throws(() => readCheckpoint(join(root, "nowhere")), /no such checkpoint folder/);
  assert.equal(existsSync(join(root, "nowhere")), false);
});

test("a Hugging Face checkpoint folder opens: config and all its weights", () => {
  const ck = readCheckpoint(fixture("hf-tiny/bert"));
  assert.equal(ck.config.model_type, "bert");
  assert.equal(ck.names().length, 63);
  assert.deepEqual([...ck.get("cls.predictions.bias").shape], [1000]);
});

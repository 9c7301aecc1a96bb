// Pickle weights (.bin, .pt, .pth, .pkl, .ckpt) are refused with how to convert them, and are
// never opened: the source mentions their extensions only where it refuses them, and a folder
// whose pytorch_model.bin is a FIFO (opening it would block forever) is refused promptly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { readCheckpoint } from "../src/io/index.js";
import { AutoModelForMaskedLM } from "../src/models/index.js";
import { fixture, tempDir } from "./helpers.js";

const root = await tempDir("lmforge-pickle-");
const HINT = /holds only pickle weights \((.+)\), which lmforge never reads: unpickling can run arbitrary code\. Convert them once with Python: .*save_pretrained\(DIR, safe_serialization=True\)/;

function folder(name: string, files: string[]): string {
  const dir = join(root, name);
  mkdirSync(dir);
  copyFileSync(fixture("hf-tiny/bert/config.json"), join(dir, "config.json"));
  for (const f of files) writeFileSync(join(dir, f), Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e])); // a pickle: PROTO 2, EMPTY_DICT, STOP
  return dir;
}

test("a folder holding only pickle weights is refused with the conversion hint, whatever the extension", async () => {
  for (const file of ["pytorch_model.bin", "model.pt", "model.pth", "weights.pkl", "last.ckpt"]) {
    const dir = folder(file.replace(/\W/g, "-"), [file]);
    assert.throws(() => readCheckpoint(dir), (e: Error) => {
      const m = HINT.exec(e.message);
      assert.ok(m, e.message);
      assert.equal(m[1], file);
      assert.ok(e.message.startsWith(dir));
      return true;
    });
  }
  // through the Auto classes too (config.json read, model built, then the weights refused)
  const dir = folder("auto", ["pytorch_model.bin"]);
  await assert.rejects(AutoModelForMaskedLM.fromPretrained(dir, { verbose: false }), HINT);
});

/** src/**\/*.ts, relative to the repository root. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

test("the source names pickle extensions only where it refuses them (and lmforge's own token cache)", () => {
  const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
  // every mention of a pickle extension in src, as a string or in a regular expression
  const mention = /\.\(?(?:bin|pt|pth|pkl|pickle|ckpt)\b/;
  const found: string[] = [];
  for (const file of sources(join(repo, "src"))) {
    readFileSync(file, "utf8").split("\n").forEach((line) => {
      if (mention.test(line)) found.push(`${relative(repo, file)}: ${line.trim()}`);
    });
  }
  const allowed: [string, RegExp][] = [
    // lmforge's own tokenized-corpus cache: written and decoded by lmforge, never a model file
    ["src/data/pretraining.ts", /^const file = join\(cacheDir\(\), `\$\{key\}\.bin`\);$/],
    // the refusals: the hint in SafetensorsFile.open, the folder scan (names only) and the shard check of readCheckpoint
    ["src/io/safetensors.ts", /^"lmforge never reads pickle checkpoints \(\.bin, \.pt, \.pth\)/],
    ["src/io/checkpoint.ts", /^const pickles = readdirSync\(folder\)\.filter\(\(f\) => \/\\\.\(bin\|pt\|pth\|ckpt\|pkl\|pickle\)\$\/\.test\(f\)\);$/],
    ["src/io/checkpoint.ts", /throw new PathEscapeError\(.*must name a \.safetensors file; other weights may be pickles/],
  ];
  for (const line of found) assert.ok(allowed.some(([file, re]) => line.startsWith(`${file}: `) && re.test(line.slice(file.length + 2))), `an unexpected mention of a pickle extension: ${line}`);
  for (const [file, re] of allowed) assert.ok(found.some((line) => line.startsWith(`${file}: `) && re.test(line.slice(file.length + 2))), `the allowed mention ${file} ${re} is gone: update this list`);
});

test("a booby-trapped pytorch_model.bin (a FIFO: opening it blocks) is refused without being opened", () => {
  const dir = join(root, "fifo");
  mkdirSync(dir);
  copyFileSync(fixture("hf-tiny/bert/config.json"), join(dir, "config.json"));
  for (const f of ["pytorch_model.bin", "model.pt", "model.pkl"]) execFileSync("mkfifo", [join(dir, f)]);
  // in a child process: a blocked open would block this process's event loop, timeouts included
  const checkpoint = join(dirname(fileURLToPath(import.meta.url)), "../src/io/checkpoint.js");
  const script = `import(${JSON.stringify(checkpoint)}).then((m) => { try { m.readCheckpoint(${JSON.stringify(dir)}); console.log("loaded"); } catch (e) { console.log(e.message); } });`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000, env: { ...process.env, OMP_NUM_THREADS: "1" } });
  assert.equal(r.signal, null, `the loader hung (killed after ${Date.now() - started} ms): it opened a FIFO`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /holds only pickle weights \(model\.pkl, model\.pt, pytorch_model\.bin\), which lmforge never reads/);
});

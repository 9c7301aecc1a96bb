// The bench tells the truth about itself: the race alternates which side runs first, peak RSS
// is a per-case reading, MFU's FLOPs and the MLM labels are as documented, and `lmforge bench
// --quick` (every bench but serve, both sides, tiny sizes: the CI run) gives every row both
// sides' finite figures, its work, the peer's variant, peak RSS and, for training rows, MFU.
// No timing is asserted: the machine is shared.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { peakRssMB, race, resetPeakRss } from "../bench/row.js";
import type { BenchRow, Measured } from "../bench/row.js";
import { flopsPerToken, matmulParameters, mlmLabels, modelCases } from "../bench/models.js";
import { SUITE } from "../bench/suite.js";
import { findPython, peerAllocator, peerEnv } from "../bench/peer.js";
import type { BenchResult } from "../bench/suite.js";
import { tempDir } from "./helpers.js";

const root = new URL("../../", import.meta.url).pathname; // dist/test -> the repository
const env = { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE" };

test("race: the first side alternates per repeat, and each side's median, largest RSS and variant are kept", () => {
  const calls: string[] = [];
  let n = 0;
  const ours = (c: string): Measured => (calls.push(`ours ${c}`), { value: [5, 1, 3][n++ % 3]!, rssMB: 10 + n });
  let p = 0;
  const peer = (cs: string[]): { torch: string; results: Measured[] } => {
    calls.push(`peer ${cs.join(",")}`);
    p++;
    return { torch: "x", results: cs.map(() => ({ value: p * 2, rssMB: 100 - p, variant: `v${p}` })) };
  };
  const r = race(["a"], 3, ours, peer);
  assert.deepEqual(calls, ["ours a", "peer a", "peer a", "ours a", "ours a", "peer a"]);
  // ours: values 5, 1, 3 -> median 3; RSS 11, 12, 13 -> 13. peer: 2, 4, 6 -> 4 (variant v2); RSS 99, 98, 97 -> 99
  assert.deepEqual(r.sides[0], { ours: { value: 3, rssMB: 13 }, theirs: { value: 4, rssMB: 99, variant: "v2" } });
});

test("peak RSS is this case's: reset, then 64 MiB touched reads at least 64 MiB more", () => {
  assert.ok(resetPeakRss(), "/proc/self/clear_refs is writable (Linux)");
  const before = peakRssMB();
  const b = Buffer.alloc(64 * 2 ** 20, 1);
  const after = peakRssMB();
  assert.ok(after - before >= 63, `peak rose ${after - before} MiB`);
  assert.equal(b[b.length - 1], 1);
});

test("MFU's FLOPs per token and the MLM labels, by hand", () => {
  const gpt = modelCases(true).find((c) => c.model === "gpt2")!; // 2 layers, hidden 64, seq 32
  assert.equal(flopsPerToken(gpt, 1000), 6 * 1000 + 12 * 2 * 64 * 32); // 55,152
  // multiplied weights only: embedding tables out, a tied output layer in once, an untied one as it is
  const p = (numel: number): { numel: number } => ({ numel });
  const bertLike: [string, { numel: number }][] = [["bert.embeddings.word_embeddings.weight", p(100 * 8)], ["bert.embeddings.position_embeddings.weight", p(16 * 8)], ["bert.embeddings.token_type_embeddings.weight", p(2 * 8)], ["bert.encoder.layer.0.attention.self.query.weight", p(64)], ["cls.predictions.bias", p(100)]];
  assert.equal(matmulParameters(bertLike, false), 64 + 100); // a classifier multiplies no table
  assert.equal(matmulParameters(bertLike, true), 64 + 100 + 800); // the masked-LM decoder is the word table
  const llamaLike: [string, { numel: number }][] = [["model.embed_tokens.weight", p(800)], ["model.layers.0.mlp.up_proj.weight", p(64)], ["lm_head.weight", p(800)]];
  assert.equal(matmulParameters(llamaLike, true), 64 + 800); // its own head counts, the input table does not
  const labels = mlmLabels([Array.from({ length: 22 }, (_, i) => i + 100)]);
  assert.deepEqual(labels[0], [100, 101, 102, ...Array(17).fill(-100), 120, 121]);
});

test("the peer's allocator: tcmalloc preloaded where installed (the peer's Python maps it), a bad choice named", () => {
  const saved = process.env.LMFORGE_BENCH_PEER_ALLOCATOR;
  try {
    process.env.LMFORGE_BENCH_PEER_ALLOCATOR = "mimalloc";
    assert.throws(() => peerAllocator(), /LMFORGE_BENCH_PEER_ALLOCATOR=mimalloc: expected tcmalloc, jemalloc or default/);
    process.env.LMFORGE_BENCH_PEER_ALLOCATOR = "default";
    assert.deepEqual(peerAllocator(), { name: "default" });
    delete process.env.LMFORGE_BENCH_PEER_ALLOCATOR;
    const a = peerAllocator();
    if (a.name === "default") return; // not installed and not root: glibc's, as the header says
    assert.equal(a.name, "tcmalloc");
    const env = peerEnv(undefined); // what every peer gets
    const maps = spawnSync(findPython(), ["-c", "print(open('/proc/self/maps').read())"], { encoding: "utf8", env });
    assert.equal(maps.status, 0, maps.stderr);
    assert.ok(maps.stdout.includes("libtcmalloc"), "tcmalloc is mapped in the peer's process");
  } finally {
    if (saved === undefined) delete process.env.LMFORGE_BENCH_PEER_ALLOCATOR;
    else process.env.LMFORGE_BENCH_PEER_ALLOCATOR = saved;
  }
});

test("lmforge bench takes several benches (one process, suite order) and names a bad choice", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [join(root, "bin/lmforge.js"), "bench", ...args], { encoding: "utf8", env, cwd: root, maxBuffer: 1 << 26 });
  const r = run("optim", "gemm", "--quick", "--json");
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as BenchResult;
  assert.deepEqual([...new Set(result.rows.map((x) => x.bench))], ["gemm", "optim"]);
  assert.ok(result.ceiling && result.ceiling.bf16 > 0, "gemm ran first: the ceiling is there");
  const bad = run("gemm", "tokenisers", "--quick");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /lmforge bench: unknown benchmark "tokenisers"; available: gemm, engine/);
  const alone = run("gemm", "serve", "--quick");
  assert.notEqual(alone.status, 0);
  assert.match(alone.stderr, /lmforge bench: serve runs alone, got gemm serve/);
});

test("lmforge bench --quick: every bench but serve, every row with both sides, finite", async () => {
  const r = spawnSync(process.execPath, [join(root, "bin/lmforge.js"), "bench", "--quick", "--json"], { encoding: "utf8", env, cwd: root, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as BenchResult;
  assert.equal(result.quick, true);
  assert.match(result.pytorch, /^\d+\.\d+/);
  assert.match(result.libtorch, /^\d+\.\d+/);
  assert.ok(result.threads >= 1 && result.cpu.length > 0 && !Number.isNaN(Date.parse(result.date)));
  assert.ok(result.ceiling && result.ceiling.fp32 > 0 && result.ceiling.bf16 > 0);
  assert.ok(["tcmalloc", "jemalloc", "default"].includes(result.peerAllocator), result.peerAllocator);
  assert.deepEqual([...new Set(result.rows.map((x) => x.bench))], [...SUITE]);
  const finite = (x: number): boolean => Number.isFinite(x) && x > 0;
  for (const row of result.rows) {
    const at = `row "${row.name}"`;
    assert.ok(["equal", "as-run"].includes(row.work), at);
    assert.ok(finite(row.lmforge) && finite(row.pytorch), at);
    assert.ok(finite(row.rssMB.lmforge) && finite(row.rssMB.pytorch), at);
    assert.ok(row.peer.length > 0, at);
    const expected = row.higherIsBetter ? row.lmforge / row.pytorch : row.pytorch / row.lmforge;
    assert.ok(Math.abs(row.speedup - expected) <= 1e-9 * expected, at);
    const training = /train step|pretrain step/.test(row.name) && row.bench === "models";
    if (training && row.work === "equal") assert.ok(row.mfu && finite(row.mfu.lmforge) && finite(row.mfu.pytorch), `${at}: MFU`);
    else assert.equal(row.mfu, undefined, `${at}: no MFU (not a training row, or an as-run row that skips FLOPs)`);
  }
  // the shortcut cases come in pairs: equal work and as run
  const models = result.rows.filter((x: BenchRow) => x.bench === "models");
  const pairs = models.filter((x) => x.work === "as-run");
  assert.equal(pairs.length, 8); // (forward x2, classify train, MLM pretrain) x (fp32, bf16)
  for (const a of pairs) assert.ok(models.some((x) => x.work === "equal" && x.name === a.name.replace(", as run", ", equal work")), a.name);
  assert.equal(models.filter((x) => /MLM pretrain/.test(x.name)).length, 4);

  // the README's table from the JSON: a header, a rule, one line per row
  const file = join(await tempDir("lmforge-bench-"), "LAST.json");
  writeFileSync(file, JSON.stringify(result));
  const t = spawnSync(process.execPath, [join(root, "scripts/bench-table.mjs"), file], { encoding: "utf8" });
  assert.equal(t.status, 0, t.stderr);
  const tableLines = t.stdout.split("\n").filter((l) => l.startsWith("|"));
  assert.equal(tableLines.length, result.rows.length + 2);
  assert.match(tableLines[0]!, /\| case \| work \|.*PyTorch variant \| MFU lmforge \/ PyTorch \| peak RSS MiB lmforge \/ PyTorch \|/);
});

test("bench runs from the packed package (npm pack, extracted, node_modules and build/ linked)", async () => {
  const dir = await tempDir("lmforge-pack-");
  const pack = spawnSync("npm", ["pack", "--ignore-scripts", "--pack-destination", dir, "--json"], { encoding: "utf8", cwd: root, maxBuffer: 1 << 26 });
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = (JSON.parse(pack.stdout) as { filename: string }[])[0]!.filename;
  assert.equal(spawnSync("tar", ["-xzf", join(dir, tarball), "-C", dir]).status, 0);
  const pkg = join(dir, "package");
  for (const link of ["node_modules", "build"]) assert.equal(spawnSync("ln", ["-s", join(root, link), join(pkg, link)]).status, 0);
  const r = spawnSync(process.execPath, ["bin/lmforge.js", "bench", "optim", "--quick", "--repeats", "1", "--json"], { encoding: "utf8", cwd: pkg, env });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as BenchResult;
  assert.equal(result.rows.length, 1);
  const row = result.rows[0]!;
  assert.equal(row.bench, "optim");
  assert.equal(row.work, "equal");
  assert.ok(Number.isFinite(row.lmforge) && Number.isFinite(row.pytorch) && row.rssMB.pytorch > 0);
  assert.match(row.peer, /AdamW/);
});

// Data parallelism beyond the gradients: the sampler's epoch tail (hand-worked index lists,
// torch's DistributedSampler's), a multi-task mixture that stays in step over the ranks,
// evaluation divided over the ranks (= one process, to the bit), the communication hidden
// behind the backward, the checks that the ranks were given the same data and settings, and
// NCCL's absence from a CPU build. Multi-process cases run this file again as workers
// (LMF_DP_ROLE) on loopback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as torch from "../src/torch/index.js";
import { distBackends, initProcessGroup, rendezvousFromEnv } from "../src/torch/distributed.js";
import type { ProcessGroup } from "../src/torch/distributed.js";
import { AutoModelForMaskedLM, AutoModelForTokenClassification, evaluateByLoss, presetConfig } from "../src/models/index.js";
import type { Batch, Objective } from "../src/models/index.js";
import { MaskedLM } from "../src/objectives/index.js";
import type { Example } from "../src/data/index.js";
import { trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { taskEntry } from "../src/tasks/index.js";
import { Trainer } from "../src/train/index.js";
import { joinFromEnv } from "../src/train/data-parallel.js";
import { epochLength, fitToRanks, rankShare } from "../src/train/sampler.js";
import { batchesOfRank, evaluateDivided } from "../src/train/divided-eval.js";
import { schedules } from "../src/optim/index.js";
import { tempDir } from "./helpers.js";

const self = fileURLToPath(import.meta.url);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs this file as a worker with a role; rank r of a world of `world` when given one. */
function worker(role: string, env: Record<string, string>, rank?: { rank: number; world: number; port: number }): Promise<Ran> {
  const group = rank ? { RANK: String(rank.rank), WORLD_SIZE: String(rank.world), LOCAL_RANK: String(rank.rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(rank.port) } : {};
  return new Promise((done) => {
    const child = spawn(process.execPath, [self], {
      env: { ...process.env, OMP_NUM_THREADS: "1", OMP_WAIT_POLICY: "PASSIVE", LMF_DP_ROLE: role, ...group, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Two ranks of a role and, optionally, the one-process run beside them. */
async function ranksAndSingle(role: string, env: Record<string, string>, rankEnv: (r: number) => Record<string, string> = () => ({})): Promise<[Ran, Ran, Ran]> {
  const port = await freePort();
  return Promise.all([worker(role, { ...env, ...rankEnv(0) }, { rank: 0, world: 2, port }), worker(role, { ...env, ...rankEnv(1) }, { rank: 1, world: 2, port }), worker(role, env)]);
}

const lastLine = <T>(r: Ran, who: string): T => {
  assert.equal(r.code, 0, `${who} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as T;
};

/** n synthetic sequences of 10-25 tokens ([CLS]=1 ... [SEP]=2, words 5-99), the same in every process. */
function sequences(n: number, seed: number): Example[] {
  let state = seed;
  const next = (k: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % k;
  };
  return Array.from({ length: n }, () => {
    const len = 10 + next(16);
    const ids = Int32Array.from({ length: len }, (_, i) => (i === 0 ? 1 : i === len - 1 ? 2 : 5 + next(95)));
    const special = Uint8Array.from(ids, (_, i) => (i === 0 || i === len - 1 ? 1 : 0));
    return { ids, special, wordStart: new Uint8Array(len).fill(1), typeIds: new Int32Array(len) };
  });
}

const tinyBert = { ...presetConfig("bert-tiny"), hidden_size: 32, intermediate_size: 64, vocab_size: 100, max_position_embeddings: 64, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 };
const masking = (seed: number) => new MaskedLM({ strategy: "token", dynamic: true, probability: 0.15, maskId: 3, vocabSize: 100, specialIds: new Set([0, 1, 2, 3, 4]), seed }, 0);

// --- workers ----------------------------------------------------------------------------------

/** Sentences of people and cities for named entities: 23 of them (an odd number). */
function nerSentences(): { tokens: string[]; tags: string[]; source: string }[] {
  const people = ["John", "Mary", "Anna", "Peter"];
  const cities = ["Boston", "Paris", "Berlin", "Rome", "Oslo"];
  return Array.from({ length: 23 }, (_, i) => ({
    tokens: [...(i % 3 ? ["today"] : []), people[i % 4]!, "went", "to", cities[i % 5]!, "."],
    tags: [...(i % 3 ? ["O"] : []), "B-PER", "O", "O", "B-LOC", "O"],
    source: `s${i}`,
  }));
}

/** Evaluates the same models on the same data, divided over the ranks when there are ranks; prints the metrics. */
async function evalWorker(): Promise<void> {
  const env = rendezvousFromEnv();
  const group: ProcessGroup | null = env ? await initProcessGroup({ ...env, timeoutMs: 60_000, threads: 1 }) : null;
  const out: Record<string, unknown> = {};
  if (group) out.objects = group.allGatherObject({ rank: group.rank, odd: [NaN, -Infinity, 0.1 + 0.2], text: "é".repeat(group.rank * 3) });
  torch.manualSeed(7);
  const mlm = AutoModelForMaskedLM.fromConfig(tinyBert);
  const objective = masking(3);
  const examples = sequences(97, 12345);
  for (const [key, maxBatches] of [["mlm", undefined], ["mlmFirst7", 7]] as const) {
    const ctx = { batchSize: 4, precision: "fp32" as const, ...(maxBatches ? { maxBatches } : {}) };
    out[key] = (group ? evaluateDivided(objective, mlm, examples, ctx, group) : evaluateByLoss(objective, mlm, examples, ctx)).metrics;
  }
  const sentences = nerSentences();
  const labels = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"];
  const tok = trainTokenizerFromTexts(sentences.map((s) => s.tokens.join(" ")), { kind: "wordpiece", vocabSize: 80, minFrequency: 1 });
  torch.manualSeed(11);
  const ner = AutoModelForTokenClassification.fromConfig({ ...tinyBert, vocab_size: tok.vocabSize, id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])), label2id: Object.fromEntries(labels.map((l, i) => [l, i])) });
  const task = taskEntry("token-classification").objective({ tokenizer: tok, labels, maxLength: 16, options: { decode: "argmax" } }) as unknown as Objective<unknown, Batch, unknown>;
  const ctx = { batchSize: 4, precision: "fp32" as const };
  const r = group ? evaluateDivided(task, ner, sentences, ctx, group) : task.evaluate!(ner, sentences, ctx);
  out.ner = r.metrics;
  out.nerTags = (r.predictions as { tags: string[] }[]).map((p) => p.tags.join(" "));
  group?.destroy();
  process.stdout.write(JSON.stringify(out, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)) + "\n");
}

/** An objective that records each batch it makes: its task, epoch and example indices. */
function recording(name: string, inner: MaskedLM, log: [string, number, number[]][]): Objective<unknown, Batch, unknown> {
  return {
    name,
    batch: (examples: readonly unknown[], idx: number[], epoch: number) => {
      if (epoch >= 0) log.push([name, epoch, [...idx]]);
      return inner.batch(examples as Example[], idx, epoch);
    },
    loss: (model, batch) => inner.loss(model, batch as Parameters<MaskedLM["loss"]>[1]),
  };
}

/**
 * A two-task mixture (11 and 7 sequences: odd, and never one example left for 2 ranks' global
 * batch of 4, which would leave rank 1 without a batch to record) of a tiny BERT: per-rank batch LMF_BATCH, 2 micro-batches
 * a step, 8 steps, the tail LMF_TAIL; prints every batch's examples and the communication figures.
 */
async function trainWorker(): Promise<void> {
  const out = process.env.LMF_OUT!;
  const distributed = await joinFromEnv(undefined, { tail: (process.env.LMF_TAIL ?? "uneven") as "uneven", bucketMb: 0.01 });
  const rank = distributed?.group.rank ?? 0;
  torch.manualSeed(7);
  const model = AutoModelForMaskedLM.fromConfig(tinyBert);
  const log: [string, number, number[]][] = [];
  const a = sequences(11, 1);
  // the fault: rank 1 was given other data (one token of one sequence), or another seed
  if (process.env.LMF_OTHER_DATA === String(rank)) a[5]!.ids[3] = 99;
  const infos: (number | undefined)[] = [];
  try {
    const trainer = new Trainer({
      model, tasks: [{ name: "a", objective: recording("a", masking(3), log), train: a }, { name: "b", objective: recording("b", masking(4), log), train: sequences(7, 2) }],
      mixing: { kind: "equal" }, batchSize: Number(process.env.LMF_BATCH), gradientAccumulation: 2, maxSteps: 8,
      learningRate: 1e-3, schedule: schedules.constant(), seed: Number(process.env.LMF_SEED ?? 5), out,
      ...(distributed ? { distributed } : {}),
      onStep: (s) => infos.push(s.commHidden),
    });
    trainer.train();
    // rank 0 alone writes the log
    const steps = rank === 0 ? readFileSync(join(out, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.includes('"event":"step"')).map((l) => (JSON.parse(l) as { comm_hidden?: number }).comm_hidden) : null;
    process.stdout.write(JSON.stringify({ rank, log, infos, logged: steps, comm: trainer.parallel?.lastComm, overlap: trainer.parallel?.lastOverlap }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ rank, error: (err as Error).message }) + "\n");
  }
  distributed?.group.destroy();
}

const role = process.env.LMF_DP_ROLE;
if (role === "eval") await evalWorker();
else if (role === "train") await trainWorker();
else {
  test("the epoch's tail over the ranks, worked by hand: pad repeats the first examples, drop cuts, uneven keeps", () => {
    const order = [4, 2, 0, 3, 1];
    assert.deepEqual([...fitToRanks(order, 2, "pad")], [4, 2, 0, 3, 1, 4]);
    assert.deepEqual([...fitToRanks(order, 2, "drop")], [4, 2, 0, 3]);
    assert.deepEqual([...fitToRanks(order, 2, "uneven")], order);
    assert.deepEqual([...fitToRanks(order, 4, "pad")], [4, 2, 0, 3, 1, 4, 2, 0]);
    assert.deepEqual([...fitToRanks(order, 4, "drop")], [4, 2, 0, 3]);
    // a padding longer than the order cycles through it again (DistributedSampler: indices * ceil(padding / n))
    assert.deepEqual([...fitToRanks([7, 8], 5, "pad")], [7, 8, 7, 8, 7]);
    assert.deepEqual([...fitToRanks([7, 8], 5, "drop")], []);
    assert.deepEqual([5, 6, 7].map((n) => epochLength(n, 3, "pad")), [6, 6, 9]);
    assert.deepEqual([5, 6, 7].map((n) => epochLength(n, 3, "drop")), [3, 6, 6]);
  });

  test("a rank's share: every worldSize-th example with pad and drop, so that an epoch gives DistributedSampler's indices[rank::worldSize]", () => {
    assert.deepEqual(rankShare([10, 11, 12, 13, 14, 15], 1, 3, "pad"), [11, 14]);
    assert.deepEqual(rankShare([10, 11, 12, 13, 14, 15], 0, 2, "drop"), [10, 12, 14]);
    assert.deepEqual(rankShare([10, 11, 12], 0, 2, "uneven"), [10, 11]); // contiguous, the last rank gets fewer
    assert.deepEqual(rankShare([10, 11, 12], 1, 2, "uneven"), [12]);
    assert.throws(() => rankShare([10, 11, 12], 1, 2, "pad"), /a global batch of 3 examples does not divide among 2 ranks/);
    // torch: DistributedSampler(range(5), num_replicas=2, shuffle=False) gives rank 0 [0, 2, 4] and
    // rank 1 [1, 3, 0] (padded with index 0); with drop_last=True [0, 2] and [1, 3]. Here: global
    // batches of 2 ranks x 2 examples from the fitted order, each rank's shares in turn.
    const epoch = (tail: "pad" | "drop", rank: number): number[] => {
      const fitted = [...fitToRanks([0, 1, 2, 3, 4], 2, tail)];
      const mine: number[] = [];
      for (let s = 0; s < fitted.length; s += 4) mine.push(...rankShare(fitted.slice(s, s + 4), rank, 2, tail));
      return mine;
    };
    assert.deepEqual([epoch("pad", 0), epoch("pad", 1)], [[0, 2, 4], [1, 3, 0]]);
    assert.deepEqual([epoch("drop", 0), epoch("drop", 1)], [[0, 2], [1, 3]]);
  });

  test("evaluation batches by rank: batch k to rank k mod worldSize, whole", () => {
    // 11 examples in batches of 4: batches 0 (0-3), 1 (4-7), 2 (8-10)
    assert.deepEqual(batchesOfRank(11, 4, 0, 2), [0, 2]);
    assert.deepEqual(batchesOfRank(11, 4, 1, 2), [1]);
    assert.deepEqual(batchesOfRank(11, 4, 2, 4), [2]);
    assert.deepEqual(batchesOfRank(11, 4, 3, 4), []);
    assert.deepEqual(batchesOfRank(100, 4, 1, 2, 5), [1, 3]); // at most 5 batches: 0-4
  });

  test("divided evaluation = one process, to the bit: masked-LM loss and accuracy (97 sequences, also the first 7 batches), NER entity F1 (23 sentences); allGatherObject", async () => {
    const [r0, r1, single] = await ranksAndSingle("eval", {});
    type Got = { objects?: unknown; mlm: Record<string, number>; mlmFirst7: Record<string, number>; ner: Record<string, number>; nerTags: string[] };
    const [a, b, one] = [lastLine<Got>(r0, "rank 0"), lastLine<Got>(r1, "rank 1"), lastLine<Got>(single, "one process")];
    for (const got of [a, b]) {
      assert.deepEqual(got.mlm, one.mlm);
      assert.deepEqual(got.mlmFirst7, one.mlmFirst7);
      assert.deepEqual(got.ner, one.ner);
      assert.deepEqual(got.nerTags, one.nerTags);
      // NaN and -Infinity survive the trip (JSON alone would make them null); 0.1 + 0.2's last bit too
      assert.deepEqual(got.objects, [{ rank: 0, odd: ["NaN", "-Infinity", 0.30000000000000004], text: "" }, { rank: 1, odd: ["NaN", "-Infinity", 0.30000000000000004], text: "ééé" }]);
    }
    // the evaluations are not empty: 25 batches of masked tokens, 7 of them, and entities found or missed
    assert.ok(one.mlm.loss! > 1 && one.mlmFirst7.loss !== one.mlm.loss, JSON.stringify(one));
    assert.ok(Number.isFinite(one.ner.f1) && Number.isFinite(one.ner.loss), JSON.stringify(one.ner));
  });

  test("a two-task mixture over 2 ranks: the same task per micro-batch everywhere; uneven = one process's batches; pad and drop fit each task's epoch to the ranks", async () => {
    const dir = await tempDir();
    const runs: Record<string, Ran[]> = {};
    for (const tail of ["uneven", "pad", "drop"]) {
      const port = await freePort();
      const env = (r: number) => ({ LMF_TAIL: tail, LMF_BATCH: "2", LMF_OUT: join(dir, `${tail}-${r}`) });
      runs[tail] = await Promise.all([worker("train", env(0), { rank: 0, world: 2, port }), worker("train", env(1), { rank: 1, world: 2, port })]);
    }
    const single = await worker("train", { LMF_BATCH: "4", LMF_OUT: join(dir, "single") });
    type Got = { log: [string, number, number[]][]; infos: (number | undefined)[]; logged: (number | undefined)[] | null; comm: { ms: number; hiddenMs: number }; overlap: { during: number; of: number } };
    const one = lastLine<Got>(single, "one process");
    // a task's examples in the order they were trained on (a batch never spans two epochs; the
    // epoch a batch records is the one before its indices were drawn, so it is not used here)
    const sequenceOf = (log: Got["log"], task: string): number[][] => log.filter(([t]) => t === task).map(([, , idx]) => idx);
    for (const [tail, [r0, r1]] of Object.entries(runs)) {
      const [a, b] = [lastLine<Got>(r0!, `${tail} rank 0`), lastLine<Got>(r1!, `${tail} rank 1`)];
      assert.equal(a.log.length, 16, `${tail}: 8 steps x 2 micro-batches`);
      assert.deepEqual(a.log.map(([t]) => t), b.log.map(([t]) => t), `${tail}: the ranks drew other tasks`);
      assert.deepEqual(a.log.map(([t]) => t), one.log.map(([t]) => t), `${tail}: the mixture differs from one process's`);
      for (const [task, n] of [["a", 11], ["b", 7]] as const) {
        const order = sequenceOf(one.log, task).flat().slice(0, n); // the one process's epoch 0
        assert.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i)); // one process: a permutation
        if (tail === "uneven") continue;
        // each micro-batch gives the ranks as many examples; merged back (rank 0's i-th, rank 1's i-th, ...) they are the fitted order
        const [ma, mb] = [sequenceOf(a.log, task), sequenceOf(b.log, task)];
        assert.deepEqual(ma.map((x) => x.length), mb.map((x) => x.length));
        const merged = ma.flatMap((x, i) => x.flatMap((v, j) => [v, mb[i]![j]!]));
        const fitted = tail === "pad" ? n + 1 : n - 1; // n is odd
        assert.deepEqual(merged.slice(0, fitted), tail === "pad" ? [...order, order[0]] : order.slice(0, n - 1));
      }
      if (tail === "uneven") {
        // each micro-batch: rank 0's slice then rank 1's is the one process's batch
        for (const [i, [, epoch, idx]] of one.log.entries()) assert.deepEqual([...a.log[i]![2], ...b.log[i]![2]], idx, `micro-batch ${i} (epoch ${epoch})`);
      }
      // the communication hidden behind the backward: 10 KB buckets, most sent during it
      assert.ok(a.overlap.during > 0 && a.comm.ms > 0, JSON.stringify(a));
      for (const h of a.infos) assert.ok(h !== undefined && h > 0 && h <= 1, `comm hidden ${h}`);
      assert.deepEqual(a.logged, a.infos.map((h) => Number(h!.toFixed(4))));
      assert.ok(Math.abs(a.comm.hiddenMs / a.comm.ms - a.infos.at(-1)!) < 1e-12);
    }
    assert.deepEqual(one.infos, new Array(8).fill(null)); // one process: no communication (undefined, null in JSON)
  });

  test("ranks given other data, or another seed: every rank is told which rank differs, before any step", async () => {
    const dir = await tempDir();
    for (const [fault, env, message] of [
      ["data", { LMF_OTHER_DATA: "1" }, /training data differs across ranks: rank 1 has another than rank 0's; start every rank with the same training data/],
      ["seed", {}, /training settings \(batch size, steps, seed, schedule, \.\.\.\) differs across ranks: rank 1 has another than rank 0's/],
    ] as const) {
      const port = await freePort();
      const common = { LMF_BATCH: "2", LMF_OUT: join(dir, fault) };
      const runs = await Promise.all([0, 1].map((r) => worker("train", { ...common, ...env, ...(fault === "seed" ? { LMF_SEED: String(5 + r) } : {}) }, { rank: r, world: 2, port })));
      for (const [r, run] of runs.entries()) {
        const got = lastLine<{ error?: string }>(run, `rank ${r}`);
        assert.match(got.error ?? "no error", new RegExp(`^rank ${r}/2: ` + message.source));
      }
    }
  });

  test("NCCL: a CPU build says why it has none; find-libtorch defines LMFORGE_NCCL only for a CUDA libtorch with every piece NCCL needs", async () => {
    if (!distBackends().includes("nccl")) {
      assert.deepEqual(distBackends(), ["gloo"]);
      await assert.rejects(initProcessGroup({ backend: "nccl", rank: 1, worldSize: 2, masterAddr: "127.0.0.1", masterPort: 1 }), /^Error: rank 1\/2: backend nccl is not in this build of lmforge's addon: it was compiled without a CUDA libtorch/);
    }
    await assert.rejects(initProcessGroup({ backend: "mpi" as "gloo", rank: 0, worldSize: 1, masterAddr: "127.0.0.1", masterPort: 1 }), /unknown backend "mpi"; use gloo \(CPU tensors\) or nccl \(CUDA tensors\)/);
    // a fake libtorch: headers and libraries by name only (find-libtorch looks, it does not link)
    const root = await tempDir();
    const touch = (path: string, text = ""): void => {
      mkdirSync(join(path, ".."), { recursive: true });
      writeFileSync(path, text);
    };
    touch(join(root, "include/torch/csrc/api/include/torch/version.h"), "#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 1\n#define TORCH_VERSION_PATCH 0\n");
    touch(join(root, "include/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp"));
    for (const lib of ["libtorch.so", "libtorch_cpu.so", "libc10.so", "libtorch_cuda.so"]) touch(join(root, "lib", lib));
    touch(join(root, "cuda/include/nccl.h"));
    touch(join(root, "cuda/include/cuda_runtime_api.h"));
    const script = fileURLToPath(new URL("../../scripts/find-libtorch.mjs", import.meta.url));
    const find = (arg: string): string => execFileSync(process.execPath, [script, arg], { env: { ...process.env, LIBTORCH: root, CUDA_HOME: join(root, "cuda") }, encoding: "utf8" }).trim();
    // no libc10_cuda: no NCCL, and --json says what was missing
    assert.equal(find("--defines"), "");
    assert.match(find("--json"), /NCCL: not built \(missing libc10_cuda\)/);
    touch(join(root, "lib/libc10_cuda.so"));
    assert.equal(find("--defines"), "LMFORGE_NCCL=1");
    assert.ok(find("--include").split(" ").includes(join(root, "cuda/include")));
    assert.match(find("--libs"), /-ltorch_cuda -lc10_cuda/);
  });
}

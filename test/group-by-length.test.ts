// Batches grouped by length (--group-by-length): the order that Hugging Face's
// LengthGroupedSampler makes, worked by hand; the Trainer's batches from it; and the padding it
// saves on real text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { AutoModelForMaskedLM, presetConfig } from "../src/models/index.js";
import type { Batch, Objective, PretrainedModel } from "../src/models/index.js";
import { Trainer } from "../src/train/index.js";
import { inputTokens } from "../src/train/trainer.js";
import { lengthGroupedOrder } from "../src/train/sampler.js";
import { epochOrder } from "../src/data/random.js";
import { embeddedCorpus } from "../src/data/index.js";
import { schedules } from "../src/optim/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();

test("the length-grouped order, worked by hand: megabatches sorted longest first, the longest one first", () => {
  // 8 examples in batches of 2: min(50, floor(8 / (4 x 2))) = 1 batch per megabatch
  const lengths = [5, 9, 1, 7, 3, 3, 8, 2];
  const order = [3, 0, 2, 6, 4, 7, 1, 5];
  // megabatches [3, 0] [2, 6] [4, 7] [1, 5], each longest first: [3, 0] [6, 2] [4, 7] [1, 5];
  // the longest example (1, length 9) heads the fourth, which swaps places with the first
  assert.deepEqual([...lengthGroupedOrder(order, lengths, 2)], [1, 5, 6, 2, 4, 7, 3, 0]);
  // 40 examples in batches of 2: megabatches of 2 x 5 = 10; ties keep the shuffled order
  const n = 40;
  const equal = lengthGroupedOrder(Array.from({ length: n }, (_, i) => i), new Array<number>(n).fill(4), 2);
  assert.deepEqual([...equal], Array.from({ length: n }, (_, i) => i));
});

test("the length-grouped order is a permutation of the epoch, each megabatch of 50 batches sorted, and saves most of the padding on real text", () => {
  // real lengths: the words of the State of the Union addresses' sentences
  const lengths = embeddedCorpus("sotu")
    .flatMap((doc) => doc.split(/(?<=[.!?])\s+/))
    .map((p) => p.split(/\s+/).filter(Boolean).length)
    .filter((n) => n > 0);
  const n = lengths.length;
  const batch = 4;
  assert.ok(n > batch * 50 * 4, `the corpus has ${n} paragraphs`);
  const shuffled = epochOrder(n, 7, 0);
  const grouped = lengthGroupedOrder(shuffled, lengths, batch);
  assert.deepEqual([...grouped].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  const mega = batch * 50;
  for (let s = 0; s < n; s += mega) {
    const g = [...grouped.slice(s, s + mega)];
    // the same examples as the shuffled order's megabatch (one of them swapped with the first), sorted
    for (let i = 1; i < g.length; i++) assert.ok(lengths[g[i - 1]!]! >= lengths[g[i]!]!, `megabatch at ${s} is sorted`);
  }
  assert.equal(lengths[grouped[0]!], Math.max(...lengths), "the longest example is in the first batch");
  const padded = (order: ArrayLike<number>): number => {
    let total = 0;
    for (let s = 0; s < n; s += batch) {
      const rows = Array.from(order).slice(s, s + batch);
      total += rows.length * Math.max(...rows.map((i) => lengths[i]!));
    }
    return total;
  };
  const real = lengths.reduce((a, b) => a + b, 0);
  const before = padded(shuffled) - real;
  const after = padded(grouped) - real;
  assert.ok(after < before / 3, `padding ${after} tokens grouped against ${before} shuffled`);
});

/** An objective over examples that are their own lengths: records each micro-batch's examples. */
function recorder(seen: number[][]): Objective<number, Batch, number> {
  return {
    name: "recorder",
    length: (f) => f,
    batch: (examples, indices) => {
      seen.push(indices.map((i) => examples[i]!));
      return { inputIds: torch.zeros([indices.length, Math.max(...indices.map((i) => examples[i]!))], { dtype: "int64" }), targets: indices.length };
    },
    loss: (model) => ({ loss: model.parameters()[0]!.sum().mul(0), metrics: {} }),
  };
}

function tinyModel(): PretrainedModel {
  torch.manualSeed(1);
  return AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, vocab_size: 50, max_position_embeddings: 64 });
}

test("the Trainer with groupByLength: every example once an epoch, batches of like length, the same batches on a rerun", () => {
  // 400 examples of lengths 1..40 in batches of 4: megabatches of 4 x 25 = 100
  const train = Array.from({ length: 400 }, (_, i) => 1 + ((i * 37) % 40));
  const run = (group: boolean, out: string): number[][] => {
    const seen: number[][] = [];
    const t = new Trainer({ model: tinyModel(), objective: recorder(seen), train, batchSize: 4, maxSteps: 100, learningRate: 1e-3, schedule: schedules.constant(), seed: 3, out: join(dir, out), saveEvery: 1000, groupByLength: group });
    t.train();
    t.optimizer.dispose();
    return seen;
  };
  const grouped = run(true, "grouped");
  const shuffled = run(false, "shuffled");
  assert.equal(grouped.length, 100);
  assert.deepEqual(grouped.flat().sort((a, b) => a - b), [...train].sort((a, b) => a - b), "one epoch: every example once");
  const spread = (batches: number[][]): number => batches.reduce((s, b) => s + Math.max(...b) - Math.min(...b), 0) / batches.length;
  assert.ok(spread(grouped) < 2, `lengths within a grouped batch differ by ${spread(grouped)} on average`);
  assert.ok(spread(shuffled) > 15, `lengths within a shuffled batch differ by ${spread(shuffled)} on average`);
  assert.equal(Math.max(...grouped[0]!), 40, "the longest example comes first");
  assert.deepEqual(run(true, "grouped-again"), grouped, "the order follows the seed and the epoch alone (so --resume continues it)");
});

test("groupByLength needs its objective's lengths and refuses DP-SGD, naming why", () => {
  const { length: _drop, ...noLength } = recorder([]);
  assert.throws(
    () => new Trainer({ model: tinyModel(), objective: noLength, train: [1, 2, 3], batchSize: 2, maxSteps: 1, learningRate: 1e-3, seed: 1, out: join(dir, "no-length"), groupByLength: true }),
    /task recorder: grouping batches by length \(--group-by-length\) needs the lengths of its features, and the recorder objective gives none/,
  );
  assert.throws(
    () => new Trainer({ model: tinyModel(), objective: recorder([]), train: [1, 2, 3], batchSize: 2, maxSteps: 1, learningRate: 1e-3, seed: 1, out: join(dir, "dp"), groupByLength: true, privacy: { epsilon: 8, maxGradNorm: 1 } }),
    /DP-SGD draws its batches by Poisson sampling/,
  );
});

test("tokens per second count the input's tokens, not its padding", () => {
  const inputIds = torch.tensor([[5, 6, 7, 0], [5, 0, 0, 0]], { dtype: "int64" });
  const attentionMask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], { dtype: "int64" });
  assert.equal(inputTokens({ inputIds, attentionMask, targets: 2 } as Batch), 4);
  assert.equal(inputTokens({ inputIds, targets: 2 }), 8, "without a mask, every id");
});

#!/usr/bin/env node
// lmforge's side of several model-bench cases, one after another in one process, with the CPU
// cache's state after each: how a long-lived process's history (the cache full of earlier
// cases' blocks) changes a training step. The figures of the cache's eviction order (issue 20):
//   node scripts/experiments/cache-history.mjs "bert-base MLM pretrain step.*bf16, equal|gpt2 train step.*bf16|llama-style 124M train step.*bf16"
//   the same with --empty-between (the cache emptied before each case), and one case alone for a fresh process.
// Needs the compiled bench (npx tsc -p tsconfig.json). Usage: cache-history.mjs REGEX [--steps N] [--empty-between]
import { parseArgs } from "node:util";
import * as torch from "../../dist/src/torch/index.js";
import { lmforgeCase, modelCases } from "../../dist/bench/models.js";

const { values: o, positionals } = parseArgs({ allowPositionals: true, options: { steps: { type: "string", default: "3" }, "empty-between": { type: "boolean", default: false } } });
if (positionals.length !== 1) {
  console.error("usage: node scripts/experiments/cache-history.mjs REGEX [--steps N] [--empty-between]");
  process.exit(2);
}
const steps = Number(o.steps);
if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`--steps must be a whole number >= 1, got "${o.steps}"`);
const re = new RegExp(positionals[0]);
const cases = modelCases(false).filter((c) => re.test(c.name));
if (!cases.length) throw new Error(`no model-bench case matches /${positionals[0]}/ (cases: ${modelCases(false).map((c) => c.name).join("; ")})`);
const GiB = 2 ** 30;
for (const c of cases) {
  if (o["empty-between"]) torch.cpuCache.empty();
  const tokensPerSec = lmforgeCase({ ...c, warmup: 1, steps });
  const s = torch.cpuCache.stats();
  console.log(`${c.name}: ${Math.round(tokensPerSec)} tokens/s; cache mapped ${(s.mapped / GiB).toFixed(2)} GiB, cached ${(s.cached / GiB).toFixed(2)} GiB, hits ${s.hits}, misses ${s.misses}`);
}

#!/usr/bin/env node
// A masked-LM training step (forward, backward, AdamW) with the last encoder layer computed
// everywhere and at the labelled positions only (lastLayerAtLabels), alternated step by step
// in one process so that a shared machine's drift hits both alike. 15% of positions labelled,
// logits at those positions only in both (maskedOnly).
// Usage: node scripts/mlm-step.mjs [preset, default bert-mini] [steps, default 8] [batch, default 32] [seq, default 128]
import * as torch from "../dist/src/torch/index.js";
import { AdamW } from "../dist/src/optim/index.js";
import { bert } from "../dist/src/models/index.js";
import { presetConfig } from "../dist/src/models/presets.js";

const name = process.argv[2] ?? "bert-mini";
const steps = Number(process.argv[3] ?? 8);
const B = Number(process.argv[4] ?? 32);
const T = Number(process.argv[5] ?? 128);
torch.manualSeed(0);
const { model_type: type, ...sizes } = presetConfig(name, { vocab_size: 8000 });
if (type !== "bert") throw new Error(`mlm-step: a BERT preset is needed (bert-tiny, bert-mini, bert-small, bert-medium, bert-base), got ${name}`);
const m = new bert.BertForMaskedLM(bert.bertConfig(sizes));
m.train();
const ids = torch.keep(torch.randint(5, 8000, [B, T]));
const mask = torch.keep(torch.ones([B, T], { dtype: "int64" }));
const labels = torch.keep(torch.where(torch.rand([B, T]).lt(0.15), ids, -100));
const opt = new AdamW(m.parameters(), { lr: 1e-4 });
const step = (at) => {
  torch.scope(() => m.forward({ inputIds: ids, attentionMask: mask, labels, maskedOnly: true, lastLayerAtLabels: at }).loss.backward());
  opt.step();
  opt.zeroGrad();
};
for (let i = 0; i < 2; i++) for (const at of [false, true]) step(at);
const times = { full: [], atLabels: [] };
for (let i = 0; i < steps; i++) {
  for (const at of [false, true]) {
    const t = performance.now();
    step(at);
    times[at ? "atLabels" : "full"].push(performance.now() - t);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${name}, batch ${B} x ${T}: last layer everywhere ${median(times.full).toFixed(1)} ms, at labels ${median(times.atLabels).toFixed(1)} ms per step`);

// Where does a checkpointed bert-base masked-LM step hold its memory? Bytes in use by tensors of
// 1 MiB and more (the caching allocator's count) after setup, after the forward, and the peaks of
// the forward and of the backward.  node scripts/experiments/ckpt-memory.mjs BATCH on|off
import * as torch from "../../dist/src/torch/index.js";
import { setGradientCheckpointing } from "../../dist/src/nn/index.js";
import { AutoModelForMaskedLM } from "../../dist/src/models/index.js";
const B = Number(process.argv[2] ?? 16), on = (process.argv[3] ?? "on") === "on";
torch.setNumThreads(2);
torch.manualSeed(0);
const model = AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: 30522, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 }).train();
if (on) setGradientCheckpointing(model);
const ids = torch.keep(torch.randint(5, 30522, [B, 128]));
const mask = torch.keep(torch.onesLike(ids));
const labels = torch.keep(torch.where(torch.rand([B, 128]).lt(0.15), ids, torch.fullLike(ids, -100)));
const mb = (x) => (x / 2 ** 20).toFixed(0);
const c = torch.cpuCache;
const steps = Number(process.argv[4] ?? 2);
const rp = c.resetPeak; c.resetPeak = () => { try { rp(); } catch {} };
const times = [];
for (let step = 0; step < steps; step++) {
  const t0 = performance.now();
  const base = c.stats().inUse;
  c.resetPeak();
  torch.scope(() => {
    const loss = torch.scope(() => model.forward({ inputIds: ids, attentionMask: mask, labels }).loss);
    const s1 = c.stats();
    console.log(`step ${step}: setup ${mb(base)} MB; after forward ${mb(s1.inUse)} (+${mb(s1.inUse - base)}), forward peak +${mb(s1.peakInUse - base)}`);
    c.resetPeak();
    loss.backward();
    const s2 = c.stats();
    console.log(`         backward peak +${mb(s2.peakInUse - base)}, after backward +${mb(s2.inUse - base)}; mapped ${mb(s2.mapped)} cached ${mb(s2.cached)}`);
  });
  for (const p of model.parameters()) p.zeroGrad();
  times.push(performance.now() - t0);
}
console.log(`step ms: ${times.map((t) => t.toFixed(0)).join(" ")}`);
console.log(`peak RSS ${mb(process.resourceUsage().maxRSS * 1024)} MB`);

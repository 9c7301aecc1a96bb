// lmforge's and PyTorch's bert masked-LM step (the checkpointing benchmark's, checkpointing off)
// op by op, each under its own engine's profiler, side by side: self ms per op name.
//   node scripts/experiments/profile-step.mjs '{"threads":1,"batch":8}'
import { spawnSync } from "node:child_process";
import * as torch from "../../dist/src/torch/index.js";
import { AutoModelForMaskedLM } from "../../dist/src/models/index.js";
import { BERT_BASE } from "../../dist/bench/checkpointing.js";
import { runPeer } from "../../dist/bench/peer.js";
const o = { ...BERT_BASE, ...JSON.parse(process.argv[2] ?? "{}") };
torch.setNumThreads(o.threads);
torch.manualSeed(0);
const model = AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: o.vocab, hidden_size: o.hidden, num_hidden_layers: o.layers, num_attention_heads: o.heads, intermediate_size: o.intermediate }).train();
const ids = torch.keep(torch.randint(5, o.vocab, [o.batch, o.seq]));
const mask = torch.keep(torch.onesLike(ids));
const labels = torch.keep(torch.where(torch.rand([o.batch, o.seq]).lt(0.15), ids, torch.fullLike(ids, -100)));
const step = () => {
  torch.scope(() => torch.scope(() => model.forward({ inputIds: ids, attentionMask: mask, labels }).loss).backward());
  for (const p of model.parameters()) p.zeroGrad();
};
step();
const mine = torch.profile(step);
const peer = runPeer("profile_torch.py", o, undefined);
const total = (ops) => ops.reduce((s, x) => s + x.selfMs, 0);
console.log(`lmforge: wall ${mine.wallMs.toFixed(0)} ms, ops' self time ${total(mine.ops).toFixed(0)} ms; PyTorch: ops' self time ${total(peer.ops).toFixed(0)} ms`);
const names = [...new Set([...mine.ops.slice(0, 30).map((x) => x.name), ...peer.ops.slice(0, 30).map((x) => x.name)])];
const row = (list, n) => list.find((x) => x.name === n);
console.log("op".padEnd(44), "lmforge calls    ms", "  PyTorch calls    ms");
for (const n of names) {
  const a = row(mine.ops, n), b = row(peer.ops, n);
  console.log(n.slice(0, 44).padEnd(44), String(a?.calls ?? "").padStart(13), (a ? a.selfMs.toFixed(1) : "").padStart(6), String(b?.calls ?? "").padStart(13), (b ? b.selfMs.toFixed(1) : "").padStart(6));
}

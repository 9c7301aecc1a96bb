// Diagnostic: can t5-tiny learn to copy a random token sequence from scratch?
import * as torch from "../../dist/src/torch/index.js";
import { t5 } from "../../dist/src/models/index.js";
import { AdamW } from "../../dist/src/optim/index.js";
const steps = Number(process.argv[2] ?? 300), lr = Number(process.argv[3] ?? 1e-3), bf16 = process.argv[4] === "bf16";
const V = 128, L = 12, B = 32;
const cfg = t5.t5Config({ vocab_size: V, d_model: 256, d_ff: 1024, d_kv: 64, num_layers: 4, num_heads: 4, feed_forward_proj: "relu", dropout_rate: 0 });
torch.manualSeed(0);
const model = new t5.T5ForConditionalGeneration(cfg);
const opt = new AdamW(model.parameters(), { lr, weightDecay: 0 });
let seed = 1; const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
for (let s = 1; s <= steps; s++) {
  const src = [], lab = [];
  for (let b = 0; b < B; b++) { const row = Array.from({ length: L }, () => 2 + Math.floor(rnd() * (V - 2))); src.push([...row, 1]); lab.push([...row, 1]); }
  const loss = torch.scope(() => {
    const f = () => model.forward({ inputIds: torch.tensor(src, { dtype: "int64" }), labels: torch.tensor(lab, { dtype: "int64" }) }).loss;
    const loss = bf16 ? torch.autocast(f) : f();
    loss.backward();
    return loss.item();
  });
  opt.step(); opt.zeroGrad();
  if (s % 25 === 0 || s === 1) console.log(s, loss.toFixed(4));
}

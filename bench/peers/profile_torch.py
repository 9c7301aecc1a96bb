# Op-by-op profile of the checkpointing benchmark's PyTorch step (bert masked LM, forward and
# backward, no checkpointing) under torch.autograd.profiler, to set beside lmforge's
# torch.profile (scripts/experiments/profile-step.mjs). Prints one JSON line: per op name,
# calls and self time in ms, the largest first.
import json, sys
import torch
from bert_torch import BertForMaskedLM

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
B, T = cfg["batch"], cfg["seq"]
model = BertForMaskedLM(cfg["vocab"], cfg["hidden"], cfg["layers"], cfg["heads"], cfg["intermediate"]).train()
ids = torch.randint(5, cfg["vocab"], (B, T))
mask = torch.ones(B, T, dtype=torch.long)
labels = torch.where(torch.rand(B, T) < 0.15, ids, torch.full_like(ids, -100))

def step():
    model(ids, mask, labels).backward()
    for p in model.parameters(): p.grad = None

step()
with torch.autograd.profiler.profile() as prof:
    step()
ops = [{"name": e.key, "calls": e.count, "selfMs": e.self_cpu_time_total / 1e3, "totalMs": e.cpu_time_total / 1e3} for e in prof.key_averages()]
ops.sort(key=lambda o: -o["selfMs"])
print(json.dumps({"ops": ops}))

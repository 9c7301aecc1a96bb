# The PyTorch side of bench/checkpointing.ts: one BERT masked-LM training step (forward and
# backward, no optimizer) as Hugging Face's eager modeling_bert.py computes it, with or
# without torch.utils.checkpoint around each layer (preserve_rng_state=True, the default;
# reentrant, 1.13's default), timed; the process's peak RSS. One case per process: the peak
# is a process's high-water mark. Prints one JSON line.
import json, resource, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from bert_torch import BertForMaskedLM

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

torch.manual_seed(0)
B, T = cfg["batch"], cfg["seq"]
model = BertForMaskedLM(cfg["vocab"], cfg["hidden"], cfg["layers"], cfg["heads"], cfg["intermediate"]).train()
ids = torch.randint(5, cfg["vocab"], (B, T))
mask = torch.ones(B, T, dtype=torch.long)
labels = torch.where(torch.rand(B, T) < 0.15, ids, torch.full_like(ids, -100))
setup = rss_mb()

def step():
    loss = model(ids, mask, labels, cfg["checkpointing"])
    loss.backward()
    for p in model.parameters(): p.grad = None

for _ in range(cfg["warmup"]): step()
times = []
for _ in range(cfg["steps"]):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
times.sort()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"torch": torch.__version__, "stepMs": times[len(times) // 2] * 1e3, "setupRssMb": setup, "peakRssMb": peak}))

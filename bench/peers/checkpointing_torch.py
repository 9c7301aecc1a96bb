# The PyTorch side of bench/checkpointing.ts: one BERT masked-LM training step (forward and
# backward, no optimizer) as Hugging Face's eager modeling_bert.py computes it, with or
# without torch.utils.checkpoint around each layer (preserve_rng_state=True, the default;
# reentrant, 1.13's default), timed; the process's peak RSS. One case per process: the peak
# is a process's high-water mark. Prints one JSON line.
import json, resource, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from bert_torch import BertLayer

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

class BertForMaskedLM(nn.Module):
    def __init__(s, V, H, L, heads, I):
        super().__init__()
        s.word, s.pos, s.tok_type = nn.Embedding(V, H, padding_idx=0), nn.Embedding(512, H), nn.Embedding(2, H)
        s.ln, s.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        s.layers = nn.ModuleList([BertLayer(H, I, heads) for _ in range(L)])
        # the MLM head: dense, GELU, LayerNorm, the decoder tied to the word embeddings
        s.transform, s.head_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        s.bias = nn.Parameter(torch.zeros(V))
    def forward(s, ids, mask, labels, checkpointing):
        B, T = ids.shape
        x = s.drop(s.ln(s.word(ids) + s.tok_type(torch.zeros_like(ids)) + s.pos(torch.arange(T).unsqueeze(0))))
        m = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for l in s.layers:
            x = checkpoint(l, x, m) if checkpointing else l(x, m)
        logits = F.linear(s.head_ln(F.gelu(s.transform(x))), s.word.weight, s.bias)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)

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

# The PyTorch side of bench/models.ts: BERT, GPT-2 and Llama written as Hugging Face's eager
# modeling code computes them (separate q/k/v projections, matmul-softmax attention, exact
# or tanh GELU, post-/pre-LayerNorm; Llama from llama_torch.py), timed the same way. Prints
# one JSON line per case.
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from llama_torch import LlamaForCausalLM
from bert_torch import BertLayer

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)

class Bert(nn.Module):
    def __init__(s, V, H, L, heads, I, labels=2):
        super().__init__()
        s.word, s.pos, s.tok_type = nn.Embedding(V, H, padding_idx=0), nn.Embedding(512, H), nn.Embedding(2, H)
        s.ln, s.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        s.layers = nn.ModuleList([BertLayer(H, I, heads) for _ in range(L)])
        s.pooler, s.cls = nn.Linear(H, H), nn.Linear(H, labels)
    def forward(s, ids, mask, labels=None):
        B, T = ids.shape
        x = s.word(ids) + s.tok_type(torch.zeros_like(ids)) + s.pos(torch.arange(T).unsqueeze(0))
        x = s.drop(s.ln(x))
        m = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for l in s.layers:
            x = l(x, m)
        logits = s.cls(s.drop(torch.tanh(s.pooler(x[:, 0]))))
        return logits if labels is None else F.cross_entropy(logits.float(), labels)

class GPT2Block(nn.Module):
    def __init__(s, C, heads):
        super().__init__()
        s.h = heads
        s.ln_1, s.c_attn, s.c_proj = nn.LayerNorm(C), nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.ln_2, s.c_fc, s.mlp_proj = nn.LayerNorm(C), nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        s.drop = nn.Dropout(0.1)
    def forward(s, x, causal):
        B, T, C = x.shape
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        sp = lambda t: t.view(B, T, s.h, C // s.h).permute(0, 2, 1, 3)
        q, k, v = sp(q), sp(k), sp(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(C // s.h)
        w = torch.where(causal[:T, :T], w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        p = s.drop(F.softmax(w, dim=-1).type(v.dtype))
        a = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(B, T, C)
        x = x + s.drop(s.c_proj(a))
        return x + s.drop(s.mlp_proj(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh")))

class GPT2(nn.Module):
    def __init__(s, V, C, L, heads, P=1024):
        super().__init__()
        s.wte, s.wpe, s.drop = nn.Embedding(V, C), nn.Embedding(P, C), nn.Dropout(0.1)
        s.h = nn.ModuleList([GPT2Block(C, heads) for _ in range(L)])
        s.ln_f = nn.LayerNorm(C)
        s.register_buffer("causal", torch.tril(torch.ones(P, P, dtype=torch.bool)))
    def forward(s, ids, labels):
        B, T = ids.shape
        x = s.drop(s.wte(ids) + s.wpe(torch.arange(T).unsqueeze(0)))
        for b in s.h:
            x = b(x, s.causal)
        logits = F.linear(s.ln_f(x), s.wte.weight)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1))

def timeit(fn, warmup, steps):
    for _ in range(warmup): fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]

results = []
for case in cfg["cases"]:
    torch.manual_seed(0)
    bf16 = case["precision"] == "bf16"
    B, T = case["batch"], case["seq"]
    ids = torch.randint(1, 1000, (B, T))
    if case["model"] == "gpt2":
        m = GPT2(50257, 768, 12, 12)
    elif case["model"] == "llama":
        llama = LlamaForCausalLM(case["config"])
        positions = torch.arange(T).unsqueeze(0).expand(B, T)
        def m(ids, labels):
            # LlamaForCausalLM.forward: float32 logits, the loss over shifted labels
            logits, _ = llama(ids, None, torch.ones_like(ids), positions)
            return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        m.parameters, m.train, m.eval = llama.parameters, llama.train, llama.eval
    else:
        H, L, heads, I = case["hidden"], case["layers"], case["heads"], case["intermediate"]
        m = Bert(30522, H, L, heads, I)
    mask = torch.ones(B, T, dtype=torch.long)
    if case["train"]:
        m.train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
        causal = case["model"] in ("gpt2", "llama")
        labels = ids if causal else torch.randint(0, 2, (B,))
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = m(ids, labels) if causal else m(ids, mask, labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    else:
        m.eval()
        def step():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                m(ids, mask)
    secs = timeit(step, case["warmup"], case["steps"])
    results.append({"name": case["name"], "tokensPerSec": B * T / secs})
print(json.dumps({"torch": torch.__version__, "results": results}))

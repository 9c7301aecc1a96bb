# Hugging Face's eager GPT-2 (GPT2LMHeadModel.forward with labels: c_attn split into q/k/v,
# matmul-softmax attention under a causal mask, tanh GELU, pre-LayerNorm, the head tied to wte,
# dropout 0.1), shared by the model and data-parallel peers.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

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
    def __init__(s, c):
        super().__init__()
        V, C, P = c["vocab_size"], c["n_embd"], c["n_positions"]
        s.wte, s.wpe, s.drop = nn.Embedding(V, C), nn.Embedding(P, C), nn.Dropout(0.1)
        s.h = nn.ModuleList([GPT2Block(C, c["n_head"]) for _ in range(c["n_layer"])])
        s.ln_f = nn.LayerNorm(C)
        s.register_buffer("causal", torch.tril(torch.ones(P, P, dtype=torch.bool)))
    def forward(s, ids, labels):
        B, T = ids.shape
        x = s.drop(s.wte(ids) + s.wpe(torch.arange(T).unsqueeze(0)))
        for b in s.h:
            x = b(x, s.causal)
        logits = F.linear(s.ln_f(x), s.wte.weight)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1))

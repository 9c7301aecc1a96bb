# A BERT layer as Hugging Face's eager modeling_bert.py computes it (separate q/k/v
# projections, matmul-softmax attention, exact GELU, post-LayerNorm, dropout 0.1), shared by
# the model and data-parallel benchmarks' PyTorch sides; and BERT's masked-LM model on it
# (the data-parallel and checkpointing benchmarks), checkpointing its layers when asked.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

class BertLayer(nn.Module):
    def __init__(s, H, I, heads):
        super().__init__()
        s.h = heads
        s.query, s.key, s.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        s.attn_out, s.ln1 = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        s.inter, s.out, s.ln2 = nn.Linear(H, I), nn.Linear(I, H), nn.LayerNorm(H, eps=1e-12)
        s.drop = nn.Dropout(0.1)
    def split(s, x):
        B, T, C = x.shape
        return x.view(B, T, s.h, C // s.h).permute(0, 2, 1, 3)
    def forward(s, x, mask):
        q, k, v = s.split(s.query(x)), s.split(s.key(x)), s.split(s.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + mask
        p = s.drop(F.softmax(scores, dim=-1))
        ctx = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(x.shape)
        a = s.ln1(s.drop(s.attn_out(ctx)) + x)
        return s.ln2(s.drop(s.out(F.gelu(s.inter(a)))) + a)

class BertForMaskedLM(nn.Module):
    def __init__(s, V, H, L, heads, I):
        super().__init__()
        s.word, s.pos, s.tok_type = nn.Embedding(V, H, padding_idx=0), nn.Embedding(512, H), nn.Embedding(2, H)
        s.ln, s.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        s.layers = nn.ModuleList([BertLayer(H, I, heads) for _ in range(L)])
        # the MLM head: dense, GELU, LayerNorm, the decoder tied to the word embeddings
        s.transform, s.head_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        s.bias = nn.Parameter(torch.zeros(V))
    def forward(s, ids, mask, labels, checkpointing=False):
        B, T = ids.shape
        x = s.drop(s.ln(s.word(ids) + s.tok_type(torch.zeros_like(ids)) + s.pos(torch.arange(T).unsqueeze(0))))
        m = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for l in s.layers:
            x = checkpoint(l, x, m) if checkpointing else l(x, m)
        logits = F.linear(s.head_ln(F.gelu(s.transform(x))), s.word.weight, s.bias)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)

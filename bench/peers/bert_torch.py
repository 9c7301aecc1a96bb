# A BERT layer as Hugging Face's eager modeling_bert.py computes it (separate q/k/v
# projections, matmul-softmax attention, exact GELU, post-LayerNorm, dropout 0.1), shared by
# the model and data-parallel benchmarks' PyTorch sides.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

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

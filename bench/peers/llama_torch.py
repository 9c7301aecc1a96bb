# Llama as Hugging Face's modeling_llama.py computes it in eager mode (RMSNorm in float32,
# rotate_half rotary, repeat_kv for grouped-query attention, SwiGLU, a 4-d additive causal and
# padding mask), shared by the generation and model benchmarks' PyTorch sides.
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

# --- Llama (modeling_llama.py, eager attention) ------------------------------------------------

class LlamaRMSNorm(nn.Module):
    def __init__(s, C, eps):
        super().__init__()
        s.weight, s.eps = nn.Parameter(torch.ones(C)), eps
    def forward(s, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps)
        return s.weight * x.to(dtype)

def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

def repeat_kv(x, n_rep):
    B, Hkv, S, D = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(B, Hkv, n_rep, S, D).reshape(B, Hkv * n_rep, S, D)

class LlamaAttention(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.C, s.H, s.Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        s.D = c.get("head_dim") or s.C // s.H
        s.q_proj = nn.Linear(s.C, s.H * s.D, bias=False)
        s.k_proj = nn.Linear(s.C, s.Hkv * s.D, bias=False)
        s.v_proj = nn.Linear(s.C, s.Hkv * s.D, bias=False)
        s.o_proj = nn.Linear(s.H * s.D, s.C, bias=False)
    def forward(s, x, cos, sin, mask, layer_past):
        B, T, _ = x.shape
        q = s.q_proj(x).view(B, T, s.H, s.D).transpose(1, 2)
        k = s.k_proj(x).view(B, T, s.Hkv, s.D).transpose(1, 2)
        v = s.v_proj(x).view(B, T, s.Hkv, s.D).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, D)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if layer_past is not None:
            k = torch.cat([layer_past[0], k], dim=2)
            v = torch.cat([layer_past[1], v], dim=2)
        present = (k, v)
        k, v = repeat_kv(k, s.H // s.Hkv), repeat_kv(v, s.H // s.Hkv)
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(s.D) + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        a = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, s.H * s.D)
        return s.o_proj(a), present

class LlamaDecoderLayer(nn.Module):
    def __init__(s, c):
        super().__init__()
        C, I, eps = c["hidden_size"], c["intermediate_size"], c["rms_norm_eps"]
        s.self_attn = LlamaAttention(c)
        s.mlp = nn.Module()
        s.mlp.gate_proj, s.mlp.up_proj, s.mlp.down_proj = nn.Linear(C, I, bias=False), nn.Linear(C, I, bias=False), nn.Linear(I, C, bias=False)
        s.input_layernorm, s.post_attention_layernorm = LlamaRMSNorm(C, eps), LlamaRMSNorm(C, eps)
    def forward(s, x, cos, sin, mask, layer_past):
        a, present = s.self_attn(s.input_layernorm(x), cos, sin, mask, layer_past)
        x = x + a
        h = s.post_attention_layernorm(x)
        return x + s.mlp.down_proj(F.silu(s.mlp.gate_proj(h)) * s.mlp.up_proj(h)), present

class LlamaForCausalLM(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.model = nn.Module()
        m = s.model
        m.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        m.layers = nn.ModuleList([LlamaDecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        m.norm = LlamaRMSNorm(c["hidden_size"], c["rms_norm_eps"])
        s.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        D = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        s.register_buffer("inv_freq", 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D)), persistent=False)
    def rotary(s, x, position_ids):
        """cos, sin (B, T, D) for the positions, computed in float32 (LlamaRotaryEmbedding)."""
        inv = s.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    def causal_mask(s, attention_mask, T, past, dtype):
        """_prepare_4d_causal_attention_mask: (B, 1, T, past + T) additive, causal and padding."""
        B, S = attention_mask.shape[0], past + T
        lowest = torch.finfo(dtype).min
        causal = torch.full((T, T), lowest)
        cond = torch.arange(T)
        causal.masked_fill_(cond < (cond + 1).view(T, 1), 0)
        causal = causal.to(dtype)
        if past > 0:
            causal = torch.cat([torch.zeros(T, past, dtype=dtype), causal], dim=-1)
        causal = causal[None, None, :, :].expand(B, 1, T, S)
        inverted = 1.0 - attention_mask[:, None, None, :].expand(B, 1, T, S).to(dtype)
        padding = inverted.masked_fill(inverted.to(torch.bool), lowest)
        return padding.masked_fill(causal.to(torch.bool), lowest)
    def forward(s, input_ids, past_key_values, attention_mask, position_ids):
        m = s.model
        x = m.embed_tokens(input_ids)
        past = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        mask = s.causal_mask(attention_mask, input_ids.shape[1], past, x.dtype)
        cos, sin = s.rotary(x, position_ids)
        presents = ()
        for i, layer in enumerate(m.layers):
            x, present = layer(x, cos, sin, mask, past_key_values[i] if past_key_values is not None else None)
            presents = presents + (present,)
        return s.lm_head(m.norm(x)).float(), presents

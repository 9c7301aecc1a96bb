# T5 written as Hugging Face's modeling_t5.py computes it in eager mode (v1.0 relu and v1.1
# gated-gelu feed-forward, RMS norm with the variance in float32, relative position bias in the
# first layer of each stack, no 1/sqrt(d) in attention, the tied head's d_model^-0.5 scaling),
# built from config.json keys (is_gated_act filled in). Shared by the PyTorch peers:
# generate_torch.py (the encoder once, then the decoder with its cache) and models_torch.py
# (a teacher-forced training step: forward, labels shifted right into the decoder, the loss).
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

class T5LayerNorm(nn.Module):
    """Root mean square norm without mean subtraction or bias, the variance in float32."""
    def __init__(s, C, eps):
        super().__init__()
        s.weight, s.eps = nn.Parameter(torch.ones(C)), eps
    def forward(s, x):
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + s.eps)
        if s.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(s.weight.dtype)
        return s.weight * x

def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)

class T5Attention(nn.Module):
    def __init__(s, c, is_decoder, has_bias):
        super().__init__()
        s.c, s.is_decoder, s.H, s.D = c, is_decoder, c["num_heads"], c["d_kv"]
        inner = s.H * s.D
        s.q, s.k, s.v = nn.Linear(c["d_model"], inner, bias=False), nn.Linear(c["d_model"], inner, bias=False), nn.Linear(c["d_model"], inner, bias=False)
        s.o = nn.Linear(inner, c["d_model"], bias=False)
        s.has_bias = has_bias
        if has_bias:
            s.relative_attention_bias = nn.Embedding(c["relative_attention_num_buckets"], s.H)
    def compute_bias(s, q_len, k_len):
        """(1, H, q_len, k_len) over every query position from 0, as Hugging Face computes it each step."""
        context = torch.arange(q_len, dtype=torch.long)[:, None]
        memory = torch.arange(k_len, dtype=torch.long)[None, :]
        buckets = relative_position_bucket(memory - context, not s.is_decoder, s.c["relative_attention_num_buckets"], s.c["relative_attention_max_distance"])
        return s.relative_attention_bias(buckets).permute([2, 0, 1]).unsqueeze(0)
    def forward(s, x, mask, position_bias, past, source=None):
        B, T = x.shape[:2]
        real = T + (past[0].shape[2] if past is not None else 0)
        k_len = real if source is None else source.shape[1]
        shape = lambda t: t.view(B, -1, s.H, s.D).transpose(1, 2)
        q = shape(s.q(x))
        if source is None:  # self-attention: the new keys and values appended to the cache
            k, v = shape(s.k(x)), shape(s.v(x))
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        elif past is None:  # cross-attention, first step: the encoder's keys and values
            k, v = shape(s.k(source)), shape(s.v(source))
        else:
            k, v = past
        scores = torch.matmul(q, k.transpose(3, 2))  # no 1/sqrt(d)
        if position_bias is None:
            position_bias = s.compute_bias(real, k_len) if s.has_bias else torch.zeros((1, s.H, real, k_len), dtype=scores.dtype)
            if past is not None:
                position_bias = position_bias[:, :, -T:, :]
            if mask is not None:
                position_bias = position_bias + mask
        scores = scores + position_bias
        w = F.dropout(F.softmax(scores.float(), dim=-1).type_as(scores), p=s.c["dropout_rate"], training=s.training)
        out = s.o(torch.matmul(w, v).transpose(1, 2).contiguous().view(B, -1, s.H * s.D))
        return out, (k, v), position_bias

class T5FF(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.gated = c["is_gated_act"]
        s.DenseReluDense = nn.Module()
        d = s.DenseReluDense
        if s.gated:
            d.wi_0, d.wi_1 = nn.Linear(c["d_model"], c["d_ff"], bias=False), nn.Linear(c["d_model"], c["d_ff"], bias=False)
        else:
            d.wi = nn.Linear(c["d_model"], c["d_ff"], bias=False)
        d.wo = nn.Linear(c["d_ff"], c["d_model"], bias=False)
        s.layer_norm = T5LayerNorm(c["d_model"], c["layer_norm_epsilon"])
        s.dropout = nn.Dropout(c["dropout_rate"])
    def forward(s, x):
        d, h = s.DenseReluDense, s.layer_norm(x)
        h = gelu_new(d.wi_0(h)) * d.wi_1(h) if s.gated else F.relu(d.wi(h))
        return x + s.dropout(d.wo(s.dropout(h)))

class T5Sub(nn.Module):
    """layer.N of a block: a norm and one attention (SelfAttention or EncDecAttention)."""
    def __init__(s, c, name, is_decoder, has_bias):
        super().__init__()
        s.name = name
        setattr(s, name, T5Attention(c, is_decoder, has_bias))
        s.layer_norm = T5LayerNorm(c["d_model"], c["layer_norm_epsilon"])
        s.dropout = nn.Dropout(c["dropout_rate"])
    def forward(s, x, mask, bias, past, source=None):
        out, present, bias = getattr(s, s.name)(s.layer_norm(x), mask, bias, past, source)
        return x + s.dropout(out), present, bias

class T5Block(nn.Module):
    def __init__(s, c, is_decoder, has_bias):
        super().__init__()
        subs = [T5Sub(c, "SelfAttention", is_decoder, has_bias)]
        if is_decoder:
            subs.append(T5Sub(c, "EncDecAttention", True, False))
        subs.append(T5FF(c))
        s.layer = nn.ModuleList(subs)
        s.is_decoder = is_decoder
    def forward(s, x, mask, bias, past, source=None, source_mask=None, cross_bias=None):
        x, self_kv, bias = s.layer[0](x, mask, bias, past[:2] if past is not None else None)
        if not s.is_decoder:
            return s.layer[1](x), bias
        x, cross_kv, cross_bias = s.layer[1](x, source_mask, cross_bias, past[2:] if past is not None else None, source)
        return s.layer[2](x), self_kv + cross_kv, bias, cross_bias

class T5Stack(nn.Module):
    def __init__(s, c, is_decoder, embed):
        super().__init__()
        s.is_decoder = is_decoder
        s.embed_tokens = embed
        n = c["num_decoder_layers"] if is_decoder else c["num_layers"]
        s.block = nn.ModuleList([T5Block(c, is_decoder, i == 0) for i in range(n)])
        s.final_layer_norm = T5LayerNorm(c["d_model"], c["layer_norm_epsilon"])
        s.dropout = nn.Dropout(c["dropout_rate"])

def extended(mask, dtype):
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

class T5ForConditionalGeneration(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.c = c
        s.shared = nn.Embedding(c["vocab_size"], c["d_model"])
        s.encoder, s.decoder = T5Stack(c, False, s.shared), T5Stack(c, True, s.shared)
        s.lm_head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        if c["tie_word_embeddings"]:
            s.lm_head.weight = s.shared.weight
    def encode(s, input_ids, attention_mask):
        x = s.encoder.dropout(s.shared(input_ids))
        mask, bias = extended(attention_mask, x.dtype), None
        for block in s.encoder.block:
            x, bias = block(x, mask, bias, None)
        return s.encoder.dropout(s.encoder.final_layer_norm(x))
    def decode(s, decoder_ids, past, source, source_mask):
        """One decoder call as T5Stack runs it with a cache: (logits (B, T, V), presents: 4 tensors a layer)."""
        B, T = decoder_ids.shape
        x = s.decoder.dropout(s.shared(decoder_ids))
        past_len = past[0][0].shape[2] if past is not None else 0
        S = past_len + T
        # get_extended_attention_mask(is_decoder): causal over every position, the cache's columns open
        ids = torch.arange(T)
        causal = (torch.arange(S)[None, :] <= (ids + past_len)[:, None]).to(x.dtype)[None, None]
        mask = (1.0 - causal) * torch.finfo(x.dtype).min
        cross_mask = extended(source_mask, x.dtype)
        bias = cross_bias = None
        presents = ()
        for i, block in enumerate(s.decoder.block):
            x, present, bias, cross_bias = block(x, mask, bias, past[i] if past is not None else None, source, cross_mask, cross_bias)
            presents = presents + (present,)
        x = s.decoder.dropout(s.decoder.final_layer_norm(x))
        if s.c["tie_word_embeddings"]:
            x = x * (s.c["d_model"] ** -0.5)
        return s.lm_head(x), presents

    def forward(s, input_ids, attention_mask, labels):
        """T5ForConditionalGeneration.forward with labels: the decoder reads the labels shifted right
        (decoder_start_token_id first, -100 as pad), the loss is the mean cross-entropy over labels."""
        dec = torch.cat([torch.full_like(labels[:, :1], s.c["decoder_start_token_id"]), labels[:, :-1]], 1)
        dec = dec.masked_fill(dec == -100, s.c["pad_token_id"])
        logits, _ = s.decode(dec, None, s.encode(input_ids, attention_mask), attention_mask)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)

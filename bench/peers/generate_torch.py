# The PyTorch side of bench/generate.ts: GPT-2, Llama and T5 written as Hugging Face's eager
# modeling code (modeling_gpt2.py: Conv1D addmm, matmul-softmax attention, gelu_new;
# modeling_llama.py: RMSNorm in float32, rotate_half rotary, repeat_kv, SwiGLU; modeling_t5.py:
# RMS norm, relative position bias recomputed over the whole length each step and sliced,
# cross-attention keys cached after the first step, all four cached tensors reordered in beam
# search), run by the
# loop Hugging Face's generate() runs in eager mode (transformers 4.3x greedy_search and
# beam_search): past_key_values as a tuple of (key, value) tensors concatenated each step,
# attention_mask grown by one column per step, position_ids = cumsum(mask) - 1. Weights are
# lmforge's, read from the safetensors file the bench wrote; bf16 cases run both bf16 weights
# and autocast, the faster answered. Prints one JSON line (common.answer).
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from llama_torch import LlamaForCausalLM
from common import config, reset_peak_rss, peak_rss_mb, answer

cfg = config()

# --- weights --------------------------------------------------------------------------------

SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}

def load_safetensors(path):
    """A safetensors file (8-byte header length, JSON header, raw little-endian data) as a dict of tensors."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        count = (b - a) // torch.empty(0, dtype=dtype).element_size()
        out[name] = torch.frombuffer(data, dtype=dtype, count=count, offset=8 + n + a).reshape(info["shape"]).clone()
    return out

# --- GPT-2 (modeling_gpt2.py, eager attention) -------------------------------------------------

class Conv1D(nn.Module):
    """A linear layer whose weight is stored (in, out): addmm(bias, x, W)."""
    def __init__(s, nf, nx):
        super().__init__()
        s.nf = nf
        s.weight = nn.Parameter(torch.empty(nx, nf))
        s.bias = nn.Parameter(torch.zeros(nf))
    def forward(s, x):
        size_out = x.size()[:-1] + (s.nf,)
        return torch.addmm(s.bias, x.view(-1, x.size(-1)), s.weight).view(size_out)

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

class GPT2Attention(nn.Module):
    def __init__(s, c):
        super().__init__()
        P, s.C, s.H = c["n_positions"], c["n_embd"], c["n_head"]
        s.D = s.C // s.H
        s.register_buffer("bias", torch.tril(torch.ones((P, P), dtype=torch.bool)).view(1, 1, P, P), persistent=False)
        s.c_attn, s.c_proj = Conv1D(3 * s.C, s.C), Conv1D(s.C, s.C)
    def split_heads(s, x):
        return x.view(x.size()[:-1] + (s.H, s.D)).permute(0, 2, 1, 3)  # (B, H, T, D)
    def attn(s, q, k, v, attention_mask):
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype, device=w.device)
        T, S = q.size(-2), k.size(-2)
        causal = s.bias[:, :, S - T:S, :S]
        w = torch.where(causal, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
        w = w + attention_mask
        w = F.softmax(w, dim=-1).type(v.dtype)
        return torch.matmul(w, v)
    def forward(s, x, layer_past, attention_mask):
        q, k, v = s.c_attn(x).split(s.C, dim=2)
        q, k, v = s.split_heads(q), s.split_heads(k), s.split_heads(v)
        if layer_past is not None:
            k = torch.cat((layer_past[0], k), dim=-2)
            v = torch.cat((layer_past[1], v), dim=-2)
        a = s.attn(q, k, v, attention_mask).permute(0, 2, 1, 3).contiguous()
        a = a.view(a.size()[:-2] + (s.C,))
        return s.c_proj(a), (k, v)

class GPT2Block(nn.Module):
    def __init__(s, c):
        super().__init__()
        C, eps = c["n_embd"], c["layer_norm_epsilon"]
        inner = c.get("n_inner") or 4 * C
        s.ln_1, s.attn, s.ln_2 = nn.LayerNorm(C, eps=eps), GPT2Attention(c), nn.LayerNorm(C, eps=eps)
        s.mlp = nn.Module()
        s.mlp.c_fc, s.mlp.c_proj = Conv1D(inner, C), Conv1D(C, inner)
    def forward(s, x, layer_past, attention_mask):
        a, present = s.attn(s.ln_1(x), layer_past, attention_mask)
        x = x + a
        return x + s.mlp.c_proj(gelu_new(s.mlp.c_fc(s.ln_2(x)))), present

class GPT2LMHeadModel(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.transformer = nn.Module()
        t = s.transformer
        t.wte, t.wpe = nn.Embedding(c["vocab_size"], c["n_embd"]), nn.Embedding(c["n_positions"], c["n_embd"])
        t.h = nn.ModuleList([GPT2Block(c) for _ in range(c["n_layer"])])
        t.ln_f = nn.LayerNorm(c["n_embd"], eps=c["layer_norm_epsilon"])
        s.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        s.lm_head.weight = t.wte.weight  # tied
    def forward(s, input_ids, past_key_values, attention_mask, position_ids):
        t = s.transformer
        B = input_ids.shape[0]
        x = t.wte(input_ids) + t.wpe(position_ids)
        dtype = x.dtype
        mask = attention_mask.view(B, -1)[:, None, None, :].to(dtype)
        mask = (1.0 - mask) * torch.finfo(dtype).min  # (B, 1, 1, S) additive
        presents = ()
        for i, block in enumerate(t.h):
            x, present = block(x, past_key_values[i] if past_key_values is not None else None, mask)
            presents = presents + (present,)
        return s.lm_head(t.ln_f(x)), presents  # logits (B, T, V) for every position, as Hugging Face

# --- T5 (modeling_t5.py, eager attention) ----------------------------------------------------------

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
        w = F.softmax(scores.float(), dim=-1).type_as(scores)
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
    def forward(s, x):
        d, h = s.DenseReluDense, s.layer_norm(x)
        h = gelu_new(d.wi_0(h)) * d.wi_1(h) if s.gated else F.relu(d.wi(h))
        return x + d.wo(h)

class T5Sub(nn.Module):
    """layer.N of a block: a norm and one attention (SelfAttention or EncDecAttention)."""
    def __init__(s, c, name, is_decoder, has_bias):
        super().__init__()
        s.name = name
        setattr(s, name, T5Attention(c, is_decoder, has_bias))
        s.layer_norm = T5LayerNorm(c["d_model"], c["layer_norm_epsilon"])
    def forward(s, x, mask, bias, past, source=None):
        out, present, bias = getattr(s, s.name)(s.layer_norm(x), mask, bias, past, source)
        return x + out, present, bias

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
        x = s.shared(input_ids)
        mask, bias = extended(attention_mask, x.dtype), None
        for block in s.encoder.block:
            x, bias = block(x, mask, bias, None)
        return s.encoder.final_layer_norm(x)
    def decode(s, decoder_ids, past, source, source_mask):
        """One decoder call as T5Stack runs it with a cache: (logits (B, T, V), presents: 4 tensors a layer)."""
        B, T = decoder_ids.shape
        x = s.shared(decoder_ids)
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
        x = s.decoder.final_layer_norm(x)
        if s.c["tie_word_embeddings"]:
            x = x * (s.c["d_model"] ** -0.5)
        return s.lm_head(x), presents

def t5_greedy(model, input_ids, new_tokens):
    """greedy_search for an encoder-decoder: the encoder once, then one decoder token a step with the cache."""
    attention_mask = torch.ones_like(input_ids)
    source = model.encode(input_ids, attention_mask)
    out = torch.full((input_ids.shape[0], 1), model.c["decoder_start_token_id"], dtype=torch.long)
    past = None
    while out.shape[1] < new_tokens + 1:
        logits, past = model.decode(out[:, -1:] if past is not None else out, past, source, attention_mask)
        out = torch.cat([out, torch.argmax(logits[:, -1, :], dim=-1)[:, None]], dim=-1)
    return out

def t5_beam_search(model, input_ids, new_tokens, num_beams):
    """beam_search for an encoder-decoder: the encoder once, its output expanded to the beams,
    every layer's four cached tensors reordered each step (T5's _reorder_cache)."""
    B = input_ids.shape[0]
    attention_mask = torch.ones_like(input_ids)
    source = model.encode(input_ids, attention_mask)
    expand = torch.arange(B).repeat_interleave(num_beams)
    source, attention_mask = source.index_select(0, expand), attention_mask.index_select(0, expand)
    out = torch.full((B * num_beams, 1), model.c["decoder_start_token_id"], dtype=torch.long)
    beam_scores = torch.zeros((B, num_beams), dtype=torch.float)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    past = None
    while out.shape[1] < new_tokens + 1:
        logits, past = model.decode(out[:, -1:] if past is not None else out, past, source, attention_mask)
        scores = F.log_softmax(logits[:, -1, :].float(), dim=-1) + beam_scores[:, None]
        V = scores.shape[-1]
        top_scores, top_ids = torch.topk(scores.view(B, num_beams * V), 2 * num_beams, dim=1, largest=True, sorted=True)
        # no eos: the first `beams` candidates of each prompt go on (BeamSearchScorer.process)
        beam_scores = top_scores[:, :num_beams].reshape(-1)
        beam_idx = (torch.div(top_ids[:, :num_beams], V, rounding_mode="floor") + torch.arange(B)[:, None] * num_beams).reshape(-1)
        out = torch.cat([out[beam_idx, :], (top_ids[:, :num_beams] % V).reshape(-1, 1)], dim=-1)
        past = tuple(tuple(t.index_select(0, beam_idx) for t in layer) for layer in past)
    best = beam_scores.view(B, num_beams).argmax(-1) + torch.arange(B) * num_beams
    return out.index_select(0, best)

# --- generate(), eager ---------------------------------------------------------------------------

def prepare_inputs(input_ids, past, attention_mask):
    """prepare_inputs_for_generation: the last token once there is a cache; positions from the mask."""
    position_ids = attention_mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(attention_mask == 0, 1)
    if past is not None:
        input_ids = input_ids[:, -1:]
        position_ids = position_ids[:, -1:]
    return input_ids, position_ids

def greedy(model, input_ids, new_tokens):
    """greedy_search with max_new_tokens = min_new_tokens = N and no eos: N forwards, argmax each."""
    attention_mask = torch.ones_like(input_ids)
    past = None
    max_length = input_ids.shape[1] + new_tokens
    while True:
        ids, pos = prepare_inputs(input_ids, past, attention_mask)
        logits, past = model(ids, past, attention_mask, pos)
        next_tokens = torch.argmax(logits[:, -1, :], dim=-1)
        input_ids = torch.cat([input_ids, next_tokens[:, None]], dim=-1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1)
        if input_ids.shape[-1] >= max_length:  # MaxLengthCriteria
            return input_ids

def beam_search(model, prompt_ids, new_tokens, num_beams):
    """
    beam_search with BeamSearchScorer's semantics and no eos (no hypothesis finishes early): each
    step log_softmax, add the beam scores, topk 2·beams over beams·vocab, keep the first `beams`,
    reorder the cache with index_select. The prompt runs once per prompt and its cache is
    expanded to the beams (Hugging Face runs it once per beam; this is the work lmforge does).
    """
    B, T = prompt_ids.shape
    expand = torch.arange(B).repeat_interleave(num_beams)
    attention_mask = torch.ones_like(prompt_ids)
    ids, pos = prepare_inputs(prompt_ids, None, attention_mask)
    logits, past = model(ids, None, attention_mask, pos)
    logits = logits.index_select(0, expand)
    past = tuple(tuple(t.index_select(0, expand) for t in layer) for layer in past)
    input_ids, attention_mask = prompt_ids.index_select(0, expand), attention_mask.index_select(0, expand)
    beam_scores = torch.zeros((B, num_beams), dtype=torch.float)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view((B * num_beams,))
    max_length = T + new_tokens
    while True:
        scores = F.log_softmax(logits[:, -1, :], dim=-1)  # (B·beams, V)
        scores = scores + beam_scores[:, None].expand_as(scores)
        V = scores.shape[-1]
        scores = scores.view(B, num_beams * V)
        top_scores, top_ids = torch.topk(scores, 2 * num_beams, dim=1, largest=True, sorted=True)
        top_beams = torch.div(top_ids, V, rounding_mode="floor")
        top_tokens = top_ids % V
        # BeamSearchScorer.process: per prompt, the first `beams` candidates (none ends: no eos)
        next_scores = torch.zeros((B, num_beams), dtype=top_scores.dtype)
        next_tokens = torch.zeros((B, num_beams), dtype=top_tokens.dtype)
        next_indices = torch.zeros((B, num_beams), dtype=top_beams.dtype)
        for b in range(B):
            kept = 0
            for token, score, index in zip(top_tokens[b], top_scores[b], top_beams[b]):
                next_scores[b, kept] = score
                next_tokens[b, kept] = token
                next_indices[b, kept] = b * num_beams + index
                kept += 1
                if kept == num_beams:
                    break
        beam_scores, beam_idx = next_scores.view(-1), next_indices.view(-1)
        input_ids = torch.cat([input_ids[beam_idx, :], next_tokens.view(-1).unsqueeze(-1)], dim=-1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], dim=-1)
        past = tuple(tuple(t.index_select(0, beam_idx) for t in layer) for layer in past)  # _reorder_cache
        if input_ids.shape[-1] >= max_length:
            break
        ids, pos = prepare_inputs(input_ids, past, attention_mask)
        logits, past = model(ids, past, attention_mask, pos)
    # finalize: every running beam is a hypothesis; all have N tokens, so the best is the highest sum
    best = beam_scores.view(B, num_beams).argmax(-1) + torch.arange(B) * num_beams
    return input_ids.index_select(0, best)

# --- the cases -------------------------------------------------------------------------------------

def timeit(fn, warmup, runs):
    out = None
    for _ in range(warmup):
        out = fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2], out

def run(case, variant):
    """(median seconds, output ids) of the case under the variant."""
    c = case["config"]
    model = {"gpt2": GPT2LMHeadModel, "llama": LlamaForCausalLM, "t5": T5ForConditionalGeneration}[case["model"]](c)
    weights = load_safetensors(case["weights"])
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise SystemExit(f"generate_torch.py: weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.eval()
    if variant.startswith("bf16 weights"):
        model.to(torch.bfloat16)  # as from_pretrained(torch_dtype=torch.bfloat16)
    prompt = torch.tensor(case["prompt"], dtype=torch.long)
    N = case["newTokens"]
    # one autocast context (the autocast variant) around the warm-up and the timed calls
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.startswith("autocast")):
        if case["model"] == "t5":
            search = (lambda: t5_beam_search(model, prompt, N, case["beams"])) if case["beams"] > 1 else (lambda: t5_greedy(model, prompt, N))
        else:
            search = (lambda: beam_search(model, prompt, N, case["beams"])) if case["beams"] > 1 else (lambda: greedy(model, prompt, N))
        return timeit(search, case["warmup"], case["runs"])

results = []
for case in cfg["cases"]:
    reset_peak_rss()
    variants = ["bf16 weights, inference_mode", "autocast, inference_mode"] if case["precision"] == "bf16" else ["fp32 weights, inference_mode"]
    best = None
    for v in variants:
        secs, out = run(case, v)
        if best is None or secs < best[0]:
            best = (secs, out, v)
    secs, out, variant = best
    # the new tokens: after the prompt (decoder-only) or after the decoder start token (T5)
    first = 1 if case["model"] == "t5" else len(case["prompt"][0])
    tokens = case["batch"] * case["newTokens"]
    results.append({"value": tokens / secs, "rssMB": peak_rss_mb(), "variant": variant, "generated": out[:, first:].tolist()})
answer(results)

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
from t5_torch import T5ForConditionalGeneration, gelu_new
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

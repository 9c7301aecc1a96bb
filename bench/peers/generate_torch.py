# The PyTorch side of bench/generate.ts: GPT-2 and Llama written as Hugging Face's eager
# modeling code (modeling_gpt2.py: Conv1D addmm, matmul-softmax attention, gelu_new;
# modeling_llama.py: RMSNorm in float32, rotate_half rotary, repeat_kv, SwiGLU), run by the
# loop Hugging Face's generate() runs in eager mode (transformers 4.3x greedy_search and
# beam_search): past_key_values as a tuple of (key, value) tensors concatenated each step,
# attention_mask grown by one column per step, position_ids = cumsum(mask) - 1. Weights are
# lmforge's, read from the safetensors file the bench wrote. Prints one JSON line.
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])

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

results = []
for case in cfg["cases"]:
    c = case["config"]
    model = GPT2LMHeadModel(c) if case["model"] == "gpt2" else LlamaForCausalLM(c)
    weights = load_safetensors(case["weights"])
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise SystemExit(f"generate_torch.py: weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.eval()
    if case["precision"] == "bf16":
        model.to(torch.bfloat16)  # as from_pretrained(torch_dtype=torch.bfloat16)
    prompt = torch.tensor(case["prompt"], dtype=torch.long)
    N = case["newTokens"]
    with torch.inference_mode():
        if case["beams"] > 1:
            secs, out = timeit(lambda: beam_search(model, prompt, N, case["beams"]), case["warmup"], case["runs"])
        else:
            secs, out = timeit(lambda: greedy(model, prompt, N), case["warmup"], case["runs"])
    results.append({"name": case["name"], "seconds": secs, "generated": out[:, prompt.shape[1]:].tolist()})
print(json.dumps({"torch": torch.__version__, "results": results}))

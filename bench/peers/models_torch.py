# The PyTorch side of bench/models.ts: BERT (sequence classification, masked LM), GPT-2 and
# Llama written as Hugging Face's eager modeling code computes them (separate q/k/v
# projections, matmul-softmax attention, exact or tanh GELU, post-/pre-LayerNorm; Llama from
# llama_torch.py; T5 from t5_torch.py), built from the same config.json keys, timed the same way, each case at its
# best among its variants (common.fastest). Prints one JSON line (common.answer).
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from llama_torch import LlamaForCausalLM
from bert_torch import BertLayer
from gpt2_torch import GPT2
from t5_torch import T5ForConditionalGeneration
from common import config, reset_peak_rss, peak_rss_mb, median_time, fastest, answer

cfg = config()

class Bert(nn.Module):
    """BertForSequenceClassification (head "cls") or BertForMaskedLM (head "mlm")."""
    def __init__(s, c, head, labels=2):
        super().__init__()
        V, H = c["vocab_size"], c["hidden_size"]
        s.head = head
        s.word = nn.Embedding(V, H, padding_idx=0)
        s.pos, s.tok_type = nn.Embedding(c["max_position_embeddings"], H), nn.Embedding(c["type_vocab_size"], H)
        s.ln, s.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(0.1)
        s.layers = nn.ModuleList([BertLayer(H, c["intermediate_size"], c["num_attention_heads"]) for _ in range(c["num_hidden_layers"])])
        if head == "mlm":
            # BertLMPredictionHead: dense + GELU + LayerNorm, decoder tied to the word embeddings
            s.transform, s.transform_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
            s.decoder_bias = nn.Parameter(torch.zeros(V))
        else:
            s.pooler, s.cls = nn.Linear(H, H), nn.Linear(H, labels)
    def forward(s, ids, mask, labels=None):
        B, T = ids.shape
        x = s.word(ids) + s.tok_type(torch.zeros_like(ids)) + s.pos(torch.arange(T).unsqueeze(0))
        x = s.drop(s.ln(x))
        m = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for l in s.layers:
            x = l(x, m)
        if s.head == "mlm":
            # torch 1.13's CPU layer_norm refuses a bf16 input with float32 weights (autocast): cast as later versions do inside
            h = F.gelu(s.transform(x))
            logits = F.linear(s.transform_ln(h.to(s.transform_ln.weight.dtype)), s.word.weight, s.decoder_bias)  # (B, T, V)
            return logits if labels is None else F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
        logits = s.cls(s.drop(torch.tanh(s.pooler(x[:, 0]))))
        return logits if labels is None else F.cross_entropy(logits.float(), labels)

class Llama(nn.Module):
    """LlamaForCausalLM.forward with labels: float32 logits, the loss over shifted labels."""
    def __init__(s, c):
        super().__init__()
        s.llama = LlamaForCausalLM(c)
    def forward(s, ids, labels):
        B, T = ids.shape
        logits, _ = s.llama(ids, None, torch.ones_like(ids), torch.arange(T).unsqueeze(0).expand(B, T))
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))

def build(case):
    torch.manual_seed(0)
    if case["model"] == "gpt2": return GPT2(case["config"])
    if case["model"] == "llama": return Llama(case["config"])
    if case["model"] == "t5": return T5ForConditionalGeneration(case["config"])
    return Bert(case["config"], case["head"])

def mlm_labels(ids):
    # as bench/models.ts mlmLabels: position t labelled when t % 20 < 3, else -100
    t = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
    return torch.where(t % 20 < 3, ids, torch.full_like(ids, -100))

def seconds(case, variant):
    """Median seconds of one step of the case under the variant."""
    B, T = case["batch"], case["seq"]
    bf16 = case["precision"] == "bf16"
    torch.manual_seed(0)
    ids = torch.randint(1, min(1000, case["config"]["vocab_size"]), (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    m = build(case)
    if not case["train"]:
        m.eval()
        if variant.startswith("bf16 weights"):
            m.bfloat16()  # as from_pretrained(torch_dtype=torch.bfloat16)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.startswith("autocast")):
            return median_time(lambda: m(ids, mask), case["warmup"], case["steps"])
    m.train()
    labels = ids if case["head"] in ("clm", "s2s") else mlm_labels(ids) if case["head"] == "mlm" else torch.randint(0, 2, (B,))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, foreach="foreach" in variant)
    def step():
        # autocast around the forward and the loss of each step, the backward outside, as PyTorch's
        # AMP recipe and Hugging Face's Trainer do. One context around the whole loop would keep the
        # first step's bf16 copies of the weights in autocast's cast cache (leaves updated in place
        # keep their key): every later forward would run on stale weights and skip the casts.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = m(ids, labels) if case["head"] == "clm" else m(ids, mask, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return median_time(step, case["warmup"], case["steps"])

def variants(case):
    bf16 = case["precision"] == "bf16"
    if not case["train"]:
        return ["autocast, inference_mode", "bf16 weights, inference_mode"] if bf16 else ["fp32 weights, inference_mode"]
    mode = "autocast, " if bf16 else ""
    return [mode + "AdamW()", mode + "AdamW(foreach=True)"]

results = []
for case in cfg["cases"]:
    reset_peak_rss()
    secs, variant = fastest(variants(case), lambda v: seconds(case, v), higher_is_better=False)
    results.append({"value": case["batch"] * case["seq"] / secs, "rssMB": peak_rss_mb(), "variant": variant})
answer(results)

# The PyTorch side of bench/distributed.ts, alone or under torchrun (gloo):
#   mode "train": bert-mini masked-LM steps (Hugging Face's eager BERT: separate q/k/v,
#     matmul-softmax attention, exact GELU, post-LayerNorm, the MLM head tied to the word
#     embeddings, dropout 0.1) or GPT-2 small causal-LM steps (gpt2_torch.py), AdamW,
#     DistributedDataParallel when launched with WORLD_SIZE > 1;
#     prints rank 0's median step time and the global tokens/s.
#   mode "allreduce": torch.distributed.all_reduce of 1-100 MB float32 buffers; prints the
#     median seconds per allreduce by size in MB.
import json, math, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.distributed as dist
from bert_torch import BertForMaskedLM
from gpt2_torch import GPT2

cfg = json.loads(sys.argv[1])
world = int(os.environ.get("WORLD_SIZE", "1"))
if world > 1:
    dist.init_process_group("gloo")
rank = dist.get_rank() if world > 1 else 0
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

def train_step_seconds(foreach):
    """Median seconds of a training step with AdamW(foreach=foreach), every rank alike."""
    torch.manual_seed(0)
    V, T, B = cfg["vocab"], cfg["seq"], cfg["batch"]
    gpt = cfg.get("model") == "gpt2"
    model = GPT2({"vocab_size": V, "n_embd": 768, "n_positions": 1024, "n_layer": 12, "n_head": 12}) if gpt else BertForMaskedLM(V, 256, 4, 4, 1024)
    if gpt and world > 1:
        # the causal mask is a bool buffer, the same on every rank, which gloo cannot broadcast
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ["causal"])
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, foreach=foreach)
    ids = torch.randint(5, V, (B, T))
    labels = ids if gpt else torch.where(torch.rand(B, T) < 0.15, ids, torch.full_like(ids, -100))
    times = []
    for step in range(cfg["steps"] + 2):
        t = time.perf_counter()
        loss = ddp(ids, labels) if gpt else ddp(ids, torch.ones_like(ids), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= 2:
            times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]

if cfg["mode"] == "train":
    # the peer at its best: AdamW's default (the single-tensor loop on CPU) and foreach=True, the faster kept
    step, foreach = min((train_step_seconds(f), f) for f in (False, True))
    if rank == 0:
        V, T, B = cfg["vocab"], cfg["seq"], cfg["batch"]
        print(json.dumps({"step": step, "tokensPerSec": B * world * T / step, "variant": "AdamW(foreach=True)" if foreach else "AdamW() default"}))
else:
    out = {}
    for mb in cfg["sizes"]:
        t = torch.zeros(int(mb * 1e6 / 4))
        reps = 5 if mb >= 100 else 10 if mb >= 10 else 30
        times = []
        for i in range(reps + 2):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        times.sort()
        out[str(mb)] = times[len(times) // 2]
    if rank == 0:
        print(json.dumps(out))
if world > 1:
    dist.destroy_process_group()

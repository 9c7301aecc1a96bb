# The PyTorch side of bench/engine.ts and bench/gemm.ts: the same work, timed the same way.
# Prints one JSON line (common.answer).
import time
import torch
from common import config, reset_peak_rss, peak_rss_mb, median_time, answer

cfg = config()

def op_overhead(n):
    x = torch.ones(1); y = torch.ones(1)
    for _ in range(1000): x + y
    t = time.perf_counter()
    for _ in range(n): x + y
    return (time.perf_counter() - t) / n * 1e6  # microseconds per op

def mlp_step(batch, dIn, dHidden, dOut, steps, warmup, precision, **_):
    torch.manual_seed(0)
    w1 = (torch.randn(dHidden, dIn) * 0.02).requires_grad_()
    b1 = torch.zeros(dHidden, requires_grad=True)
    w2 = (torch.randn(dOut, dHidden) * 0.02).requires_grad_()
    b2 = torch.zeros(dOut, requires_grad=True)
    params = [w1, b1, w2, b2]
    x = torch.randn(batch, dIn)
    y = torch.randint(0, dOut, (batch,))
    def step():
        # autocast per step around the forward (see models_torch.py: one context around the loop
        # would reuse the first step's casts of the updated weights)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            h = torch.nn.functional.linear(x, w1, b1).relu()
            logits = torch.nn.functional.linear(h, w2, b2)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=0.01)
                p.grad = None
    for _ in range(warmup): step()
    t = time.perf_counter()
    for _ in range(steps): step()
    return (time.perf_counter() - t) / steps * 1e3  # milliseconds per step

def gemm(n, precision, steps, warmup, **_):
    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    with torch.inference_mode():
        secs = median_time(lambda: torch.matmul(a, b), warmup, steps)
    return 2 * n ** 3 / secs / 1e9  # GFLOP/s

results = []
for case in cfg["cases"]:
    reset_peak_rss()
    kind = case["kind"]
    value = op_overhead(case["n"]) if kind == "op" else mlp_step(**case) if kind == "mlp" else gemm(**case)
    results.append({"value": value, "rssMB": peak_rss_mb(), "variant": "default"})
answer(results)

# The PyTorch side of bench/optim.ts: one AdamW step over a model of the given parameter
# shapes (bert-base's: ~110M), torch.optim.AdamW both with its defaults (the single-tensor loop
# on CPU) and with foreach=True; the faster is answered. Prints one JSON line (common.answer).
import time
import torch
from common import config, reset_peak_rss, peak_rss_mb, fastest, answer

cfg = config()

def step_ms(shapes, steps, foreach):
    torch.manual_seed(0)
    params = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, foreach=foreach)
    opt.step()  # the first step allocates the moments (lmforge's side warms up alike)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3

results = []
for case in cfg["cases"]:
    reset_peak_rss()
    ms, foreach = fastest([False, True], lambda f: step_ms(case["shapes"], case["steps"], f), higher_is_better=False)
    results.append({"value": ms, "rssMB": peak_rss_mb(), "variant": "AdamW(foreach=True)" if foreach else "AdamW() default"})
answer(results)

# The PyTorch side of bench/optim.ts: one AdamW step over a ~110M-parameter model (the
# shapes of bert-base), torch.optim.AdamW with its defaults. Prints one JSON line.
import json, sys, time
import torch

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
params = [torch.randn(s, requires_grad=True) for s in cfg["shapes"]]
for p in params:
    p.grad = torch.randn_like(p) * 1e-3
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
opt.step()  # the first step allocates the moments
times = []
for _ in range(cfg["steps"]):
    t = time.perf_counter()
    opt.step()
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"torch": torch.__version__, "stepMs": times[len(times) // 2] * 1e3, "numel": sum(p.numel() for p in params)}))

# Why the peers' training steps enter autocast once per step: under one autocast context, the
# cast cache keeps the first step's bf16 copy of each weight (a leaf that the optimizer updates in
# place keeps its key), so later forwards run on stale weights. Prints, per step, how far the
# output under the long-lived context is from the same layer run on the current weights.
# Run: python3 bench/peers/autocast_cache.py (torch 1.13: step 0 ~1e-3, step 1 ~15).
import torch

torch.manual_seed(0)
lin = torch.nn.Linear(4, 3)
opt = torch.optim.SGD(lin.parameters(), lr=1.0)
x = torch.randn(2, 4)
with torch.autocast("cpu", dtype=torch.bfloat16):
    for step in range(2):
        y = lin(x)
        current = x.bfloat16() @ lin.weight.detach().bfloat16().t() + lin.bias.detach().bfloat16()
        print(f"step {step}: largest difference from the current weights' output {(y.float() - current.float()).abs().max().item():.4g}")
        y.float().sum().backward()
        opt.step()
        opt.zero_grad()

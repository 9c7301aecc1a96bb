# The PyTorch side of bench/engine.ts: the same work, timed the same way. Prints one JSON line.
import json, sys, time
import torch

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)

def op_overhead(n):
    x = torch.ones(1); y = torch.ones(1)
    for _ in range(1000): x + y
    t = time.perf_counter()
    for _ in range(n): x + y
    return (time.perf_counter() - t) / n * 1e6  # microseconds per op

def mlp_step(batch, d_in, d_hidden, d_out, steps, warmup, dtype):
    w1 = (torch.randn(d_hidden, d_in) * 0.02).requires_grad_()
    b1 = torch.zeros(d_hidden, requires_grad=True)
    w2 = (torch.randn(d_out, d_hidden) * 0.02).requires_grad_()
    b2 = torch.zeros(d_out, requires_grad=True)
    params = [w1, b1, w2, b2]
    x = torch.randn(batch, d_in)
    y = torch.randint(0, d_out, (batch,))
    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            h = torch.nn.functional.linear(x, w1, b1).relu()
            logits = torch.nn.functional.linear(h, w2, b2)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=0.01)
                p.grad = None
        return loss
    for _ in range(warmup): step()
    t = time.perf_counter()
    for _ in range(steps): step()
    return (time.perf_counter() - t) / steps * 1e3  # milliseconds per step

out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
if "opOverhead" in cfg:
    out["opOverheadUs"] = op_overhead(cfg["opOverhead"])
if "mlp" in cfg:
    m = cfg["mlp"]
    out["mlpStepMs"] = mlp_step(m["batch"], m["dIn"], m["dHidden"], m["dOut"], m["steps"], m["warmup"], m["precision"])
print(json.dumps(out))

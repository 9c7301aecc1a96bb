# Makes test/fixtures/optim_reference.json: 20 steps of torch.optim.AdamW and SGD in float64
# on fixed parameters and gradients, so that the tests compare against PyTorch's numbers
# without needing Python. Run: /usr/bin/python3 bench/peers/optim_reference.py
import json, math, torch

torch.set_default_dtype(torch.float64)
def init():
    return [torch.tensor([[0.5, -1.0, 2.0], [0.1, 0.0, -0.3]]), torch.tensor([1.5, -0.5, 0.25])]
def grads(t):
    # gradients vary with the step: the update must track each one
    return [torch.tensor([[math.sin(t + i * 0.7 + j) for j in range(3)] for i in range(2)]),
            torch.tensor([math.cos(0.3 * t + k) * (k + 1) for k in range(3)])]

def run(make_opt, steps=20):
    ps = [p.clone().requires_grad_() for p in init()]
    opt = make_opt(ps)
    traj = []
    for t in range(steps):
        for p, g in zip(ps, grads(t)):
            p.grad = g.clone()
        opt.step()
        traj.append([p.detach().flatten().tolist() for p in ps])
    return traj

out = {
    "torch": torch.__version__,
    "init": [p.flatten().tolist() for p in init()],
    "shapes": [list(p.shape) for p in init()],
    "grads": [[g.flatten().tolist() for g in grads(t)] for t in range(20)],
    "adamw": {"options": {"lr": 0.01, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": [0.1, 0.0]},
              "trajectory": run(lambda ps: torch.optim.AdamW([{"params": [ps[0]], "weight_decay": 0.1}, {"params": [ps[1]], "weight_decay": 0.0}], lr=0.01, betas=(0.9, 0.99), eps=1e-8))},
    "sgd": {"options": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
            "trajectory": run(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01))},
}
json.dump(out, open("test/fixtures/optim_reference.json", "w"))
print("wrote test/fixtures/optim_reference.json with", out["torch"])

# float32: torch.optim.AdamW in single precision (its default single-tensor loop and foreach=True)
# on 1,027 elements (SIMD lanes and a tail), 50 steps; the fused kernel must track it to a few
# float32 ulps. Gradients and initial values are float32 numbers written exactly in JSON.
torch.set_default_dtype(torch.float32)
n = 1027
init32 = [torch.tensor([math.sin(0.37 * i) * 2.0 for i in range(n)], dtype=torch.float32).reshape(79, 13), torch.tensor([0.5 - 0.1 * k for k in range(13)], dtype=torch.float32)]
def grads32(t):
    return [torch.tensor([math.cos(0.11 * i + 0.9 * t) * (1.0 + (i % 7)) for i in range(n)], dtype=torch.float32).reshape(79, 13),
            torch.tensor([math.sin(0.5 * t + k) * 1e-3 for k in range(13)], dtype=torch.float32)]
def run32(foreach):
    ps = [p.clone().requires_grad_() for p in init32]
    opt = torch.optim.AdamW([{"params": [ps[0]], "weight_decay": 0.01}, {"params": [ps[1]], "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.999), eps=1e-6, foreach=foreach)
    kept = {}
    for t in range(50):
        for p, g in zip(ps, grads32(t)):
            p.grad = g.clone()
        opt.step()
        if t + 1 in (1, 10, 50):
            kept[str(t + 1)] = [p.detach().flatten().tolist() for p in ps]
    return kept
out32 = {
    "torch": torch.__version__,
    "options": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-6, "weight_decay": [0.01, 0.0]},
    "shapes": [list(p.shape) for p in init32],
    "init": [p.flatten().tolist() for p in init32],
    "grads": [[g.flatten().tolist() for g in grads32(t)] for t in range(50)],
    "single": run32(False),
    "foreach": run32(True),
}
json.dump(out32, open("test/fixtures/optim_reference_float32.json", "w"))
print("wrote test/fixtures/optim_reference_float32.json")

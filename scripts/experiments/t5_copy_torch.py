"""The peer of t5-copy.mjs: the same t5-tiny copying task, the same data and Hugging Face's init,
on bench/peers' PyTorch T5 (t5_torch.py: modeling_t5.py's math, dropout off as in t5-copy.mjs) with torch.optim.AdamW.
python3 scripts/experiments/t5_copy_torch.py STEPS LR"""
import sys, os, math, torch, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "peers"))
from t5_torch import T5ForConditionalGeneration, T5Attention, T5FF

args = sys.argv[1:]
steps, lr = int(args[0]) if len(args) > 0 else 300, float(args[1]) if len(args) > 1 else 1e-3
V, L, B = 128, 12, 32
c = dict(vocab_size=V, d_model=256, d_ff=1024, d_kv=64, num_layers=4, num_decoder_layers=4, num_heads=4, is_gated_act=False, dropout_rate=0.0,
         relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6,
         tie_word_embeddings=True, decoder_start_token_id=0)
torch.manual_seed(0)
m = T5ForConditionalGeneration(c)
with torch.no_grad():  # modeling_t5.py's _init_weights, factor 1
    for mod in m.modules():
        if isinstance(mod, T5Attention):
            mod.q.weight.normal_(0, (c["d_model"] * c["d_kv"]) ** -0.5)
            mod.k.weight.normal_(0, c["d_model"] ** -0.5); mod.v.weight.normal_(0, c["d_model"] ** -0.5)
            mod.o.weight.normal_(0, (c["num_heads"] * c["d_kv"]) ** -0.5)
            if mod.has_bias: mod.relative_attention_bias.weight.normal_(0, c["d_model"] ** -0.5)
        elif isinstance(mod, T5FF):
            mod.DenseReluDense.wi.weight.normal_(0, c["d_model"] ** -0.5)
            mod.DenseReluDense.wo.weight.normal_(0, c["d_ff"] ** -0.5)
    m.shared.weight.normal_(0, 1.0)
opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=0)
seed = 1
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
for s in range(1, steps + 1):
    src = []
    for b in range(B):
        row = [2 + math.floor(rnd() * (V - 2)) for _ in range(L)]
        src.append(row + [1])
    ids = torch.tensor(src)
    labels = ids.clone()
    dec = torch.cat([torch.zeros(B, 1, dtype=torch.long), labels[:, :-1]], 1)
    mask = torch.ones_like(ids)
    logits, _ = m.decode(dec, None, m.encode(ids, mask), mask)
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1))
    loss.backward(); opt.step(); opt.zero_grad()
    if s % 25 == 0 or s == 1: print(s, f"{loss.item():.4f}", flush=True)

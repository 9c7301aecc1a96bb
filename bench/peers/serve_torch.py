# The PyTorch side of bench/serve.ts: a minimal HTTP server (the standard library's
# ThreadingHTTPServer, a thread per connection, keep-alive) in front of the same fine-tuned BERT
# classifier folder that `lmforge serve` serves. It answers POST /v1/models/<name>/classify with
# {"texts": [...]} like lmforge (label, probabilities, truncated), and computes the same things per
# request: WordPiece tokenisation of each text from the folder's tokenizer.json (BERT normaliser
# and pre-tokenizer, greedy longest match), truncation to max_length, one eager forward of the
# texts of the request (no batching across requests), softmax. The weights are read from
# model.safetensors without the safetensors package (8-byte header length, JSON header, raw data).
#
#   python3 serve_torch.py '{"dir": "...", "port": 0, "threads": 1}'   -> prints "ready PORT"
import json, math, struct, sys, unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import torch
import torch.nn as nn
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
folder = cfg["dir"]
config = json.load(open(f"{folder}/config.json"))
meta = config["lmforge"]
labels, max_length = meta["labels"], meta["max_length"]


def read_safetensors(path):
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[t["dtype"]]).reshape(t["shape"]).clone()
    return out


# --- the tokenizer: BertNormalizer, BertPreTokenizer, WordPiece (as tokenizer.json says) -----------
tok = json.load(open(f"{folder}/tokenizer.json"))
norm = tok["normalizer"] or {}
vocab = tok["model"]["vocab"]
unk, prefix, max_chars = tok["model"]["unk_token"], tok["model"]["continuing_subword_prefix"], tok["model"]["max_input_chars_per_word"]
CLS, SEP, PAD = vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"]


def is_punct(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or unicodedata.category(c).startswith("P")


def is_cjk(o):
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or 0x2A700 <= o <= 0x2B73F or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or 0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F


def normalize(text):
    out = []
    for c in text:
        o = ord(c)
        if norm.get("clean_text", True):
            if o == 0 or o == 0xFFFD or (unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"):
                continue
            if c in "\t\n\r" or unicodedata.category(c) == "Zs":
                c = " "
        if norm.get("handle_chinese_chars", True) and is_cjk(o):
            out.append(f" {c} ")
        else:
            out.append(c)
    s = "".join(out)
    lower = norm.get("lowercase", True)
    strip = norm.get("strip_accents")
    if strip is None:
        strip = lower
    if strip:
        s = "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")
    return s.lower() if lower else s


def words(text):
    for chunk in text.split():
        word = ""
        for c in chunk:
            if is_punct(c):
                if word:
                    yield word
                word = ""
                yield c
            else:
                word += c
        if word:
            yield word


def wordpiece(word):
    if len(word) > max_chars:
        return [vocab[unk]]
    ids, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [vocab[unk]]
        ids.append(found)
        start = end
    return ids


def encode(text):
    ids = [i for w in words(normalize(text)) for i in wordpiece(w)]
    truncated = len(ids) + 2 > max_length
    return [CLS] + ids[: max_length - 2] + [SEP], truncated


# --- BERT for sequence classification, attribute names as the checkpoint's tensors -------------
class SelfAttention(nn.Module):
    def __init__(s, H):
        super().__init__()
        s.query, s.key, s.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)


class AttentionOutput(nn.Module):
    def __init__(s, H, eps):
        super().__init__()
        s.dense, s.LayerNorm = nn.Linear(H, H), nn.LayerNorm(H, eps=eps)


class Attention(nn.Module):
    def __init__(s, H, eps):
        super().__init__()
        s.self, s.output = SelfAttention(H), AttentionOutput(H, eps)


class Dense(nn.Module):
    def __init__(s, i, o):
        super().__init__()
        s.dense = nn.Linear(i, o)


class Output(nn.Module):
    def __init__(s, I, H, eps):
        super().__init__()
        s.dense, s.LayerNorm = nn.Linear(I, H), nn.LayerNorm(H, eps=eps)


class Layer(nn.Module):
    def __init__(s, H, I, heads, eps):
        super().__init__()
        s.heads = heads
        s.attention, s.intermediate, s.output = Attention(H, eps), Dense(H, I), Output(I, H, eps)

    def forward(s, x, mask):  # x (B, T, H), mask (B, 1, 1, T) additive
        B, T, H = x.shape
        sp = lambda t: t.view(B, T, s.heads, H // s.heads).transpose(1, 2)  # (B, nh, T, hs)
        a = s.attention.self
        q, k, v = sp(a.query(x)), sp(a.key(x)), sp(a.value(x))
        p = F.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // s.heads) + mask, dim=-1)
        ctx = (p @ v).transpose(1, 2).reshape(B, T, H)
        h = s.attention.output.LayerNorm(s.attention.output.dense(ctx) + x)
        return s.output.LayerNorm(s.output.dense(F.gelu(s.intermediate.dense(h))) + h)


class Embeddings(nn.Module):
    def __init__(s, V, H, P, types, eps):
        super().__init__()
        s.word_embeddings, s.position_embeddings, s.token_type_embeddings = nn.Embedding(V, H), nn.Embedding(P, H), nn.Embedding(types, H)
        s.LayerNorm = nn.LayerNorm(H, eps=eps)


class Encoder(nn.Module):
    def __init__(s, H, I, heads, L, eps):
        super().__init__()
        s.layer = nn.ModuleList([Layer(H, I, heads, eps) for _ in range(L)])


class Bert(nn.Module):
    def __init__(s, c):
        super().__init__()
        H, eps = c["hidden_size"], c.get("layer_norm_eps", 1e-12)
        s.embeddings = Embeddings(c["vocab_size"], H, c["max_position_embeddings"], c.get("type_vocab_size", 2), eps)
        s.encoder = Encoder(H, c["intermediate_size"], c["num_attention_heads"], c["num_hidden_layers"], eps)
        s.pooler = Dense(H, H)


class BertForSequenceClassification(nn.Module):
    def __init__(s, c, n):
        super().__init__()
        s.bert, s.classifier = Bert(c), nn.Linear(c["hidden_size"], n)

    def forward(s, ids, attention):  # ids, attention (B, T)
        e = s.bert.embeddings
        T = ids.shape[1]
        x = e.LayerNorm(e.word_embeddings(ids) + e.position_embeddings(torch.arange(T)) + e.token_type_embeddings(torch.zeros_like(ids)))
        mask = (1.0 - attention[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in s.bert.encoder.layer:
            x = layer(x, mask)
        return s.classifier(torch.tanh(s.bert.pooler.dense(x[:, 0])))  # (B, labels)


assert config.get("hidden_act", "gelu") == "gelu", "the baseline implements exact GELU only"
model = BertForSequenceClassification(config, len(labels))
weights = read_safetensors(f"{folder}/model.safetensors")
weights = {k: v for k, v in weights.items() if not k.endswith("position_ids")}
model.load_state_dict(weights, strict=True)
model.eval()


def classify(texts):
    encoded = [encode(t) for t in texts]
    T = max(len(ids) for ids, _ in encoded)
    ids = torch.tensor([ids + [PAD] * (T - len(ids)) for ids, _ in encoded])
    attention = torch.tensor([[1] * len(ids) + [0] * (T - len(ids)) for ids, _ in encoded])
    with torch.inference_mode():
        probs = F.softmax(model(ids, attention), dim=-1).tolist()
    out = []
    for p, (_, truncated) in zip(probs, encoded):
        best = max(range(len(labels)), key=lambda i: p[i])
        out.append({"label": labels[best], "probabilities": dict(zip(labels, p)), "truncated": truncated})
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as autocannon's connections expect
    disable_nagle_algorithm = True  # else the body, written after the headers, waits for a delayed ACK (40 ms)

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        parts = self.path.split("/")
        if len(parts) != 5 or parts[4] != "classify":
            return self.answer(404, {"message": f"no route {self.path}"})
        try:
            texts = json.loads(body)["texts"]
            assert isinstance(texts, list) and texts and all(isinstance(t, str) and t for t in texts)
        except Exception:
            return self.answer(422, {"message": "body must be {\"texts\": [non-empty strings]}"})
        self.answer(200, {"model": parts[3], "results": classify(texts)})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a load generator closing its connections at the end of a run is no error
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


server = Server(("127.0.0.1", cfg.get("port", 0)), Handler)
print(f"ready {server.server_address[1]}", flush=True)
server.serve_forever()

// Model benchmark, side by side with PyTorch (the same architectures written as Hugging
// Face's eager code, bench/peers/models_torch.py) in one run: a bert-base forward pass for
// sequence classification, and full training steps (forward, backward, AdamW) of bert-mini,
// GPT-2 small and a Llama-style model of the same size, in float32 and bfloat16 autocast.
// Reports tokens per second.
import * as torch from "../src/torch/index.js";
import { AdamW } from "../src/optim/index.js";
import { bert, gpt2, llama } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { median, runPeer } from "./peer.js";
import type { EngineBenchRow } from "./engine.js";

interface Case {
  name: string;
  model: "bert" | "gpt2" | "llama";
  /** Hugging Face's config.json keys, every default filled in (Llama: the peer builds from these). */
  config?: Record<string, unknown>;
  train: boolean;
  precision: "fp32" | "bf16";
  batch: number;
  seq: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  intermediate?: number;
  warmup: number;
  steps: number;
}

/** A Llama-style model the size of GPT-2 small (12 layers, hidden 768, GQA 12/4 heads, SwiGLU 2048, 32,000 tokens, untied head). */
const LLAMA_124M = llama.llamaConfig({ vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 2048 }) as unknown as Record<string, unknown>;

export function modelCases(quick = false): Case[] {
  const base = { model: "bert" as const, hidden: 768, layers: 12, heads: 12, intermediate: 3072 };
  const mini = { model: "bert" as const, hidden: 256, layers: 4, heads: 4, intermediate: 1024 };
  const cases: Case[] = [];
  for (const precision of ["fp32", "bf16"] as const) {
    cases.push({ name: `bert-base forward, batch 1, seq 128, ${precision}`, ...base, train: false, precision, batch: 1, seq: 128, warmup: 2, steps: quick ? 3 : 10 });
    cases.push({ name: `bert-base forward, batch 32, seq 128, ${precision}`, ...base, train: false, precision, batch: 32, seq: 128, warmup: 1, steps: quick ? 2 : 3 });
    cases.push({ name: `bert-mini train step, batch 16, seq 128, ${precision}`, ...mini, train: true, precision, batch: 16, seq: 128, warmup: 2, steps: quick ? 3 : 8 });
    cases.push({ name: `gpt2 train step, batch 4, seq 256, ${precision}`, model: "gpt2", train: true, precision, batch: 4, seq: 256, warmup: 1, steps: quick ? 2 : 3 });
    cases.push({ name: `llama-style 124M train step, batch 4, seq 256, ${precision}`, model: "llama", config: LLAMA_124M, train: true, precision, batch: 4, seq: 256, warmup: 1, steps: quick ? 2 : 3 });
  }
  return cases;
}

function build(c: Case): PretrainedModel {
  if (c.model === "gpt2") return new gpt2.GPT2LMHeadModel(gpt2.gpt2Config({})) as unknown as PretrainedModel;
  if (c.model === "llama") return new llama.LlamaForCausalLM(llama.llamaConfig(c.config)) as unknown as PretrainedModel;
  return new bert.BertForSequenceClassification(
    bert.bertConfig({ hidden_size: c.hidden, num_hidden_layers: c.layers, num_attention_heads: c.heads, intermediate_size: c.intermediate }),
  ) as unknown as PretrainedModel;
}

function lmforgeCase(c: Case): number {
  torch.manualSeed(0);
  const m = build(c);
  const ids = torch.keep(torch.randint(1, 1000, [c.batch, c.seq]));
  const mask = torch.keep(torch.ones([c.batch, c.seq], { dtype: "int64" }));
  const causal = c.model === "gpt2" || c.model === "llama";
  const labels = torch.keep(causal ? ids.clone() : torch.randint(0, 2, [c.batch]));
  const opt = c.train ? new AdamW(m.parameters(), { lr: 1e-4 }) : null;
  const bf16 = c.precision === "bf16";
  if (c.train) m.train();
  else m.eval();
  const step = (): void => {
    if (opt) {
      torch.scope(() => {
        const loss = torch.autocast(() => (causal ? m.forward({ inputIds: ids, labels }) : m.forward({ inputIds: ids, attentionMask: mask, labels })).loss!, { enabled: bf16 });
        loss.backward();
      });
      opt.step();
      opt.zeroGrad();
    } else {
      torch.noGrad(() => torch.scope(() => torch.autocast(() => m.forward({ inputIds: ids, attentionMask: mask }).logits, { enabled: bf16 })));
    }
  };
  for (let i = 0; i < c.warmup; i++) step();
  const times: number[] = [];
  for (let i = 0; i < c.steps; i++) {
    const t = process.hrtime.bigint();
    step();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  opt?.dispose();
  m.dispose();
  torch.dispose([ids, mask, labels]);
  return (c.batch * c.seq) / median(times);
}

export function runModelBench(options: { quick?: boolean; filter?: RegExp; repeats?: number } = {}): { rows: EngineBenchRow[]; torch: string } {
  const cases = modelCases(options.quick).filter((c) => !options.filter || options.filter.test(c.name));
  const info = torch.runtimeInfo();
  const repeats = options.repeats ?? (options.quick ? 1 : 2);
  let version = "";
  const rows = cases.map((c) => {
    // Interleaved case by case, so that the shared machine's drift hits both sides alike.
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      ours.push(lmforgeCase(c));
      const peer = runPeer<{ torch: string; results: { name: string; tokensPerSec: number }[] }>("models_torch.py", { threads: info.threads, cases: [c] }, info.openblasCoreType);
      theirs.push(peer.results[0]!.tokensPerSec);
      version = peer.torch;
    }
    const a = median(ours);
    const b = median(theirs);
    return { name: c.name, unit: "tokens/s", lmforge: a, pytorch: b, speedup: a / b };
  });
  return { rows, torch: version };
}

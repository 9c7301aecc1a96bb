// Model benchmark, side by side with PyTorch (the same architectures written as Hugging
// Face's eager code, bench/peers/models_torch.py): bert-base forward passes for sequence
// classification, and full training steps (forward, backward, AdamW) of bert-mini (sequence
// classification and masked-LM pretraining), GPT-2 small, a Llama-style model of the same
// size and t5-small (teacher-forced sequence to sequence: the labels as long as the source, so
// a "token" is one source token and one target token), in float32 and bfloat16 autocast. Reports tokens per second (B*T over a step's median
// wall time) and, for training rows, model FLOPs utilisation (flopsPerToken below).
//
// Where lmforge skips work nobody sees (firstTokenOnly: a sequence head reads token 0 only, so
// the last layer computes that row; maskedOnly + lastLayerAtLabels: the MLM head and the last
// layer compute the labelled positions only), a case runs twice: "as-run" (the shortcut on, as
// the CLI and the Trainer run it) and "equal" (off: the same work and output shapes as the peer).
// The peer is Hugging Face's code both times, at its best: inference under inference_mode with
// fp32 weights, or for bf16 the faster of autocast and bf16 weights (model.bfloat16()); training
// under autocast entered per step around the forward and loss (as PyTorch's AMP recipe: one
// context around the loop would train on stale bf16 weights), with the faster of AdamW() and
// AdamW(foreach=True).
import * as torch from "../src/torch/index.js";
import { AdamW } from "../src/optim/index.js";
import { bert, gpt2, llama, t5 } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { runPeer } from "./peer.js";
import { makeRow, measureOurs, race } from "./row.js";
import type { BenchRow, PeerResults, Work } from "./row.js";
import { runGemmBench } from "./gemm.js";
import type { GemmCeiling } from "./gemm.js";

export interface ModelCase {
  name: string;
  model: "bert" | "gpt2" | "llama" | "t5";
  /** bert: sequence classification (2 labels) or masked-LM pretraining; gpt2, llama: causal LM; t5: sequence to sequence, the labels the source ids. */
  head: "cls" | "mlm" | "clm" | "s2s";
  /** Hugging Face's config.json keys, every default filled in: both sides build from these. */
  config: Record<string, unknown>;
  train: boolean;
  precision: "fp32" | "bf16";
  work: Work;
  batch: number;
  seq: number;
  warmup: number;
  steps: number;
}

/** A Llama-style model the size of GPT-2 small (12 layers, hidden 768, GQA 12/4 heads, SwiGLU 2048, 32,000 tokens, untied head). */
const LLAMA_124M = { vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 2048 };

const SIZES = {
  full: {
    base: { hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
    mini: { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
    gpt2: {},
    llama: LLAMA_124M,
    t5: {},
  },
  // the tiny test configs: hidden 64, 2 layers, 4 heads, 1,000 tokens
  quick: {
    base: { vocab_size: 1000, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128 },
    mini: { vocab_size: 1000, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128 },
    gpt2: { vocab_size: 1000, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4 },
    llama: { vocab_size: 1000, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 },
    t5: { vocab_size: 1000, d_model: 64, d_kv: 16, d_ff: 128, num_layers: 2, num_decoder_layers: 2, num_heads: 4 },
  },
} as const;

/** The model cases, each shortcut case twice (as run, equal work), in fp32 and bf16; quick: the tiny test configs. */
export function modelCases(quick = false): ModelCase[] {
  const s = quick ? SIZES.quick : SIZES.full;
  const base = bert.bertConfig(s.base) as unknown as Record<string, unknown>;
  const mini = bert.bertConfig(s.mini) as unknown as Record<string, unknown>;
  const label = quick ? { base: "bert tiny", mini: "bert tiny", gpt2: "gpt2 tiny", llama: "llama-style tiny", t5: "t5 tiny" } : { base: "bert-base", mini: "bert-mini", gpt2: "gpt2", llama: "llama-style 124M", t5: "t5-small" };
  const [b1, b32, bt, tt] = quick ? [{ batch: 1, seq: 32 }, { batch: 4, seq: 32 }, { batch: 4, seq: 32 }, { batch: 2, seq: 32 }] : [{ batch: 1, seq: 128 }, { batch: 32, seq: 128 }, { batch: 16, seq: 128 }, { batch: 4, seq: 256 }];
  const steps = (full: number): { warmup: number; steps: number } => ({ warmup: quick ? 1 : Math.min(2, full), steps: quick ? 3 : full });
  const cases: ModelCase[] = [];
  const both = (c: Omit<ModelCase, "work" | "name">, name: string): void => {
    cases.push({ ...c, name: `${name}, as run`, work: "as-run" }, { ...c, name: `${name}, equal work`, work: "equal" });
  };
  for (const precision of ["fp32", "bf16"] as const) {
    const shape = (x: { batch: number; seq: number }): string => `batch ${x.batch}, seq ${x.seq}, ${precision}`;
    both({ model: "bert", head: "cls", config: base, train: false, precision, ...b1, ...steps(10) }, `${label.base} classify forward, ${shape(b1)}`);
    both({ model: "bert", head: "cls", config: base, train: false, precision, ...b32, ...steps(3) }, `${label.base} classify forward, ${shape(b32)}`);
    both({ model: "bert", head: "cls", config: mini, train: true, precision, ...bt, ...steps(8) }, `${label.mini} classify train step, ${shape(bt)}`);
    both({ model: "bert", head: "mlm", config: mini, train: true, precision, ...bt, ...steps(8) }, `${label.mini} MLM pretrain step (15% labelled), ${shape(bt)}`);
    // bert-base training (MFU's goal is stated for bert-base and GPT-2 small); quick: the mini row is the same tiny model
    if (!quick) both({ model: "bert", head: "mlm", config: base, train: true, precision, ...bt, ...steps(3) }, `${label.base} MLM pretrain step (15% labelled), ${shape(bt)}`);
    const gpt = gpt2.gpt2Config(s.gpt2) as unknown as Record<string, unknown>;
    cases.push({ name: `${label.gpt2} train step, ${shape(tt)}`, model: "gpt2", head: "clm", config: gpt, train: true, precision, work: "equal", ...tt, ...steps(3) });
    const ll = llama.llamaConfig(s.llama) as unknown as Record<string, unknown>;
    cases.push({ name: `${label.llama} train step, ${shape(tt)}`, model: "llama", head: "clm", config: ll, train: true, precision, work: "equal", ...tt, ...steps(3) });
    // t5-small (v1.0: relu, tied head, dropout 0.1 as its config), source and target of seq tokens each
    const s2s = t5.t5Config(s.t5) as unknown as Record<string, unknown>;
    cases.push({ name: `${label.t5} train step, batch ${bt.batch}, source ${bt.seq} + target ${bt.seq}, ${precision}`, model: "t5", head: "s2s", config: s2s, train: true, precision, work: "equal", ...bt, ...steps(3) });
  }
  return cases;
}

function build(c: ModelCase): PretrainedModel {
  if (c.model === "gpt2") return new gpt2.GPT2LMHeadModel(gpt2.gpt2Config(c.config)) as unknown as PretrainedModel;
  if (c.model === "llama") return new llama.LlamaForCausalLM(llama.llamaConfig(c.config)) as unknown as PretrainedModel;
  if (c.model === "t5") return new t5.T5ForConditionalGeneration(t5.t5Config(c.config)) as unknown as PretrainedModel;
  const config = bert.bertConfig(c.config);
  return (c.head === "mlm" ? new bert.BertForMaskedLM(config) : new bert.BertForSequenceClassification(config)) as unknown as PretrainedModel;
}

/** MLM labels, the same on both sides: position t of each row is labelled when t % 20 < 3 (15%), else -100. */
export function mlmLabels(ids: number[][]): number[][] {
  return ids.map((row) => row.map((id, t) => (t % 20 < 3 ? id : -100)));
}

/** Embedding tables: looked up, not multiplied, so they add no FLOPs unless tied to an output layer. */
const EMBEDDING = /(^|\.)(word_embeddings|position_embeddings|token_type_embeddings|wte|wpe|embed_tokens|shared|relative_attention_bias)\.weight$/;
/** Output layers of their own (untied): a plain weight, counted like any other. */
const OUTPUT = /(^|\.)(lm_head|decoder)\.weight$/;

/**
 * The parameters a token's forward multiplies by: every weight but the embedding tables, plus
 * the tied output layer (vocabulary x hidden) where a language-model head reads the word
 * embeddings as its weight (BERT's masked LM, GPT-2). Counting the tables themselves, as 6·N over
 * all parameters does, overstates a classifier's FLOPs by its whole vocabulary (bert-mini:
 * 7.8M of 11.2M parameters) and put MFU above 100%.
 */
export function matmulParameters(named: Iterable<[string, { numel: number }]>, languageModel: boolean): number {
  let n = 0;
  let tiedOutput = 0;
  let ownOutput = false;
  for (const [name, p] of named) {
    if (OUTPUT.test(name)) ownOutput = true;
    if (!EMBEDDING.test(name)) n += p.numel;
    else if (/(word_embeddings|wte|embed_tokens|^shared)\.weight$/.test(name)) tiedOutput = p.numel;
  }
  return n + (languageModel && !ownOutput ? tiedOutput : 0);
}

/**
 * Model FLOPs per trained token (forward + backward): 6 per multiplied parameter (a multiply-add
 * forward, two backward; matmulParameters) plus attention's 12·L·d·T (scores and weighted sum,
 * PaLM's appendix B, no causal halving). The model's FLOPs: only equal-work rows get an MFU
 * (an as-run row skips some of them, so the same formula would overstate it). T5, a source and
 * a target token of seq each: every weight meets one token of its stack, and attention's term
 * counts twice for a decoder layer (self and cross) and once for an encoder layer.
 */
export function flopsPerToken(c: ModelCase, parameters: number): number {
  const g = (k: string): number => c.config[k] as number;
  if (c.model === "t5") return 6 * parameters + 12 * (g("num_layers") + 2 * g("num_decoder_layers")) * g("num_heads") * g("d_kv") * c.seq;
  const [L, d] = c.model === "gpt2" ? [g("n_layer"), g("n_embd")] : [g("num_hidden_layers"), g("hidden_size")];
  return 6 * parameters + 12 * L * d * c.seq;
}

/** lmforge's tokens per second on one case (exported for scripts/experiments/cache-history.mjs). */
export function lmforgeCase(c: ModelCase): number {
  torch.manualSeed(0);
  const m = build(c);
  const ids = torch.keep(torch.randint(1, Math.min(1000, c.config.vocab_size as number), [c.batch, c.seq]));
  const mask = torch.keep(torch.ones([c.batch, c.seq], { dtype: "int64" }));
  const labels = torch.keep(
    c.head === "clm" || c.head === "s2s" ? ids.clone() : c.head === "mlm" ? torch.tensor(mlmLabels(ids.toArray() as number[][]).flat(), { dtype: "int64", shape: [c.batch, c.seq] }) : torch.randint(0, 2, [c.batch]),
  );
  const opt = c.train ? new AdamW(m.parameters(), { lr: 1e-4 }) : null;
  const bf16 = c.precision === "bf16";
  const asRun = c.work === "as-run";
  // the shortcuts: on as users run them (the Trainer's MLM objective, the sequence heads' default), off for equal work
  const inputs =
    c.head === "clm"
      ? { inputIds: ids, labels }
      : c.head === "s2s"
        ? { inputIds: ids, attentionMask: mask, labels }
        : c.head === "mlm"
          ? { inputIds: ids, attentionMask: mask, labels, maskedOnly: asRun, lastLayerAtLabels: asRun }
          : { inputIds: ids, attentionMask: mask, firstTokenOnly: asRun, ...(c.train ? { labels } : {}) };
  if (c.train) m.train();
  else m.eval();
  const step = (): void => {
    if (opt) {
      // as the Trainer steps (and the peer, whose outputs object dies once .loss is taken): only
      // the loss leaves the forward's scope, so the logits are freed before the backward
      torch.scope(() => torch.scope(() => torch.autocast(() => m.forward(inputs).loss!, { enabled: bf16 })).backward());
      opt.step();
      opt.zeroGrad();
    } else {
      torch.noGrad(() =>
        torch.scope(() => {
          torch.autocast(() => m.forward(inputs).logits, { enabled: bf16 }); // not returned: the logits die with the scope
        }),
      );
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
  return (c.batch * c.seq) / times.sort((a, b) => a - b)[Math.floor(c.steps / 2)]!;
}

/** The case's matmul parameters (matmulParameters), from the built model. */
export function parameterCount(c: ModelCase): number {
  torch.manualSeed(0);
  const m = build(c);
  const n = matmulParameters(m.namedParameters(), c.head !== "cls");
  m.dispose();
  return n;
}

/**
 * Runs every case (or those whose name matches `filter`), both sides alternating per repeat.
 * Training rows get MFU against `ceiling` (measured here by the GEMM bench when not given).
 */
export function runModelBench(options: { quick?: boolean; filter?: RegExp; repeats?: number; ceiling?: GemmCeiling } = {}): { rows: BenchRow[]; torch: string; ceiling?: GemmCeiling } {
  const cases = modelCases(options.quick).filter((c) => !options.filter || options.filter.test(c.name));
  const info = torch.runtimeInfo();
  const ceiling = options.ceiling ?? (cases.some((c) => c.train) ? runGemmBench({ quick: options.quick ?? false, repeats: 1 }).ceiling : undefined);
  const { torch: version, sides } = race(cases, options.repeats ?? (options.quick ? 1 : 2), (c) => measureOurs(() => lmforgeCase(c)), (cs) =>
    runPeer<PeerResults>("models_torch.py", { threads: info.threads, cases: cs }, info.openblasCoreType),
  );
  const rows = cases.map((c, i) => {
    const s = sides[i]!;
    let mfu: BenchRow["mfu"];
    if (c.train && c.work === "equal" && ceiling) {
      const flops = flopsPerToken(c, parameterCount(c));
      const gflops = ceiling[c.precision];
      mfu = { lmforge: (s.ours.value * flops) / 1e9 / gflops, pytorch: (s.theirs.value * flops) / 1e9 / gflops };
    }
    return makeRow({ bench: "models", name: c.name, work: c.work, unit: "tokens/s", higherIsBetter: true, ...(mfu ? { mfu } : {}) }, s.ours, s.theirs);
  });
  return { rows, torch: version, ...(ceiling ? { ceiling } : {}) };
}

// Generation benchmark, side by side with PyTorch in one run: lmforge's generate() (src/generate,
// block key/value cache) against Hugging Face's eager generate() loop over the same
// architectures (bench/peers/generate_torch.py: tuple-of-tensors cache concatenated each step),
// for GPT-2, a Llama-style model and T5 (encoder once, then the decoder), greedy and 4-beam search. Both sides run the same weights
// (lmforge's, passed through a safetensors file) on the same prompt ids and make exactly N new
// tokens (no end-of-sequence token); fp32 outputs are compared token for token.
// Reports new tokens per second: B·N over the wall time of one whole generate call.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { CPU_FLAGS } from "../src/torch/native.js";
import { saveSafetensors } from "../src/io/safetensors.js";
import { gpt2, llama, t5 } from "../src/models/index.js";
import { generateOutput } from "../src/generate/index.js";
import { median, runPeer } from "./peer.js";
import { makeRow, peakRssMB, resetPeakRss, race } from "./row.js";
import type { BenchRow, Measured } from "./row.js";

export interface GenerateCase {
  name: string;
  model: "gpt2" | "llama" | "t5";
  /** config.json keys (Hugging Face's), given to both sides. */
  config: Record<string, unknown>;
  precision: "fp32" | "bf16";
  batch: number;
  /** Prompt tokens per row (T5: the encoder's input; its decoder starts from decoder_start_token_id). */
  prompt: number;
  /** New tokens per row, exactly: no end-of-sequence token stops a row. */
  newTokens: number;
  /** 1: greedy; more: beam search with this many beams. */
  beams: number;
  warmup: number;
  /** Timed generate calls per measurement (the median is kept). */
  runs: number;
}

/** Whether the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 rows measure an emulation. */
export function cpuHasBf16(): boolean {
  return CPU_FLAGS.has("avx512_bf16") || CPU_FLAGS.has("amx_bf16");
}

// Full sizes: GPT-2 small (124M) and a Llama-style model of the same size (12 layers, hidden
// 768, grouped-query attention 12/4 heads, SwiGLU 2048, 32,000 tokens, untied head: ~124M).
// Quick sizes: the tiny test configs (hidden 64, 2 layers, 4 heads, 1,000 tokens).
const MODELS = {
  full: {
    gpt2: { label: "gpt2 124M", config: {} },
    llama: { label: "llama-style 124M", config: { vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 2048 } },
    t5: { label: "t5-small 60M", config: {} },
  },
  quick: {
    gpt2: { label: "gpt2 tiny", config: { vocab_size: 1000, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4 } },
    llama: { label: "llama-style tiny", config: { vocab_size: 1000, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 } },
    t5: { label: "t5 tiny", config: { vocab_size: 1000, d_model: 64, d_kv: 16, d_ff: 128, num_layers: 2, num_decoder_layers: 2, num_heads: 4 } },
  },
} as const;

/** The cases: for each model and precision, greedy at batch 1 and 8 (quick: 2) and 4-beam search. */
export function generateCases(quick = false, bf16 = cpuHasBf16()): GenerateCase[] {
  const sizes = quick ? MODELS.quick : MODELS.full;
  const shapes = quick
    ? [{ batch: 2, prompt: 8, newTokens: 8, beams: 1 }, { batch: 2, prompt: 8, newTokens: 8, beams: 4 }]
    : [{ batch: 1, prompt: 32, newTokens: 64, beams: 1 }, { batch: 8, prompt: 32, newTokens: 64, beams: 1 }, { batch: 1, prompt: 32, newTokens: 32, beams: 4 }];
  const cases: GenerateCase[] = [];
  for (const precision of bf16 ? (["fp32", "bf16"] as const) : (["fp32"] as const)) {
    for (const model of ["gpt2", "llama", "t5"] as const) {
      for (const s of shapes) {
        const search = s.beams > 1 ? `beam ${s.beams}` : "greedy";
        cases.push({
          name: `${sizes[model].label} ${search}, B${s.batch} P${s.prompt} +${s.newTokens}, ${precision}`,
          model,
          config: sizes[model].config,
          precision,
          ...s,
          warmup: 1,
          runs: quick ? 2 : 3,
        });
      }
    }
  }
  return cases;
}

interface Built {
  model: gpt2.GPT2LMHeadModel | llama.LlamaForCausalLM | t5.T5ForConditionalGeneration;
  /** Hugging Face's config.json keys, every default filled in (the peer builds from these). */
  config: Record<string, unknown>;
}

function build(c: GenerateCase): Built {
  torch.manualSeed(0);
  if (c.model === "gpt2") {
    const config = gpt2.gpt2Config(c.config);
    return { model: new gpt2.GPT2LMHeadModel(config), config };
  }
  if (c.model === "t5") {
    const config = t5.t5Config(c.config);
    return { model: new t5.T5ForConditionalGeneration(config), config };
  }
  const config = llama.llamaConfig(c.config);
  return { model: new llama.LlamaForCausalLM(config), config };
}

/** Times lmforge's generate(): median seconds of `runs` calls after `warmup`, and the new tokens (B, N) of the last. */
function lmforgeCase(model: Built["model"], prompt: number[][], c: GenerateCase): { seconds: number; generated: number[][] } {
  const ids = torch.keep(torch.tensor(prompt.flat(), { dtype: "int64", shape: [c.batch, c.prompt] }));
  // exactly N new tokens: no eos (so none can stop a row early), min = max
  const options = { maxNewTokens: c.newTokens, minNewTokens: c.newTokens, numBeams: c.beams, eosTokenId: null };
  let generated: number[][] = [];
  const once = (): void => {
    const out = generateOutput(model, ids, options).sequences; // (B, P + N)
    // the new tokens: after the prompt (decoder-only) or after the decoder start token (T5)
    generated = (out.toArray() as number[][]).map((row) => row.slice(c.model === "t5" ? 1 : c.prompt));
    out.dispose();
  };
  for (let i = 0; i < c.warmup; i++) once();
  const times: number[] = [];
  for (let i = 0; i < c.runs; i++) {
    const t = process.hrtime.bigint();
    once();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  ids.dispose();
  return { seconds: median(times), generated };
}

/** "equal", or where the two sides' new tokens first differ. */
function compareIds(a: number[][], b: number[][]): string {
  for (let r = 0; r < a.length; r++) {
    const x = a[r]!;
    const y = b[r] ?? [];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if (x[i] !== y[i]) return `differ (row ${r}, new token ${i}: ${x[i]} vs ${y[i]})`;
  }
  return a.length === b.length ? "equal" : `differ (${a.length} rows vs ${b.length})`;
}

/**
 * Runs every case (or those whose name matches `filter`), both sides alternating which goes
 * first per repeat, and returns one row per case (new tokens/s) with notes saying what both
 * sides computed and whether their tokens agreed.
 */
export function runGenerateBench(options: { quick?: boolean; filter?: RegExp; repeats?: number } = {}): { rows: BenchRow[]; torch: string; notes: string[] } {
  const cases = generateCases(options.quick).filter((c) => !options.filter || options.filter.test(c.name));
  const info = torch.runtimeInfo();
  const repeats = options.repeats ?? (options.quick ? 1 : 2);
  const dir = mkdtempSync(join(tmpdir(), "lmforge-bench-generate-"));
  const notes = [
    "generate (B prompts of P tokens, +N new tokens each): both sides run the same weights (lmforge's random init, through safetensors)",
    "  on the same prompt ids and make exactly N new tokens per row (no eos): 1 prompt forward + N-1 one-token forwards with a key/value",
    "  cache; tokens/s = B*N / the wall time of one generate call; fp32 rows compare the new token ids of both sides.",
    "  greedy: argmax of the last logits. beam: prompt run once and expanded to the beams on both sides (HF would run it once per beam),",
    "  log_softmax + beam scores, topk 2*beams over beams*vocab, cache reordered by row index. bf16: lmforge casts the weights to bfloat16;",
    "  the peer runs bf16 weights and fp32 weights under autocast, the faster shown.",
    "  lmforge: block KV cache written in place; PyTorch: Hugging Face eager (tuple cache concatenated each step, mask and positions rebuilt).",
  ];
  if (!cpuHasBf16()) notes.push("generate: bf16 rows left out: this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16)");
  try {
    // each case's weights and prompt, written once: both sides read them every repeat
    const prepared = cases.map((c, i) => {
      const { model, config } = build(c);
      const weights = join(dir, `weights-${i}.safetensors`);
      saveSafetensors(weights, model.stateDict()); // float32: each side casts for bf16 itself
      model.dispose();
      torch.manualSeed(1);
      const prompt = torch.scope(() => torch.randint(0, config.vocab_size as number, [c.batch, c.prompt]).toArray() as number[][]);
      return { ...c, fullConfig: config, weights, ids: prompt };
    });
    const ours = new Map<string, number[][]>();
    const theirs = new Map<string, number[][]>();
    const { torch: version, sides } = race(
      prepared,
      repeats,
      (c) => {
        resetPeakRss();
        const { model } = build(c); // the same seed: the weights the file holds
        if (c.precision === "bf16") model.to("bfloat16"); // as Hugging Face's from_pretrained(torch_dtype=torch.bfloat16)
        const a = lmforgeCase(model, c.ids, c);
        model.dispose();
        ours.set(c.name, a.generated);
        return { value: (c.batch * c.newTokens) / a.seconds, rssMB: peakRssMB() };
      },
      (cs) => {
        // the peer's case: Hugging Face's config with every default, the weights file, the prompt ids
        const peerCases = cs.map(({ fullConfig, ids, ...c }) => ({ ...c, config: fullConfig, prompt: ids }));
        const peer = runPeer<{ torch: string; results: (Measured & { generated: number[][] })[] }>("generate_torch.py", { threads: info.threads, cases: peerCases }, info.openblasCoreType);
        peer.results.forEach((r, i) => theirs.set(cs[i]!.name, r.generated));
        return peer;
      },
    );
    const rows = prepared.map((c, i) => {
      const agreement = compareIds(ours.get(c.name)!, theirs.get(c.name)!);
      // bf16 rounds differently along each side's kernels: near-ties may flip, so only fp32 tokens must agree
      const ids = c.precision === "fp32" ? `ids ${agreement === "equal" ? "equal" : "DIFFER"}` : "ids not compared";
      if (c.precision === "fp32" && agreement !== "equal") notes.push(`generate: ${c.name}: the new tokens ${agreement}`);
      return makeRow({ bench: "generate", name: `${c.name}, ${ids}`, work: "equal", unit: "new tokens/s", higherIsBetter: true }, sides[i]!.ours, sides[i]!.theirs);
    });
    return { rows, torch: version, notes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

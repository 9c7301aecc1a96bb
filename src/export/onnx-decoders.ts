// GPT-2 and Llama causal LMs as ONNX graphs, as src/models computes them in inference.
// Inputs: input_ids and position_ids int64 [batch, sequence], attention_mask int64 [batch,
// total_sequence] covering the cached and the new tokens, and with the past
// past_key_values.{i}.key/value float32 [batch, kv_heads, past_sequence, head_dim]. Outputs:
// logits [batch, sequence, vocab] and present.{i}.key/value (the past and the new keys and
// values, Llama's keys after rotation, as Hugging Face caches them).
// Positions are an input, as in Hugging Face's ONNX exports of Llama: they depend on the
// padding side and the cache, which the caller knows. Hugging Face's generate() and lmforge's
// give cumsum(attention_mask) - 1 over the prompt (1 at padding), then one more per new token.
import * as torch from "../torch/index.js";
import { inverseFrequencies } from "../nn/index.js";
import type { OnnxGraph } from "./onnx-graph.js";
import { activation, attention, causalMask, layerNorm, linear, mergeHeads, param, rmsNorm, splitHeads } from "./onnx-layers.js";
import type { Ctx } from "./onnx-layers.js";

/** The inputs every decoder graph has, and how a layer's keys and values meet the cache. */
interface DecoderIO {
  ids: string;
  positions: string;
  /** The additive causal and padding mask, (B, 1, T, S). */
  bias: string;
  /** Prepends the past (when the graph has one) to a layer's new keys and values; returns (B, Hkv, S, D). */
  cache(layer: number, k: string, v: string): [string, string];
  /** Declares the outputs: logits, then each layer's present key and value. */
  finish(logits: string, vocab: number): void;
}

/** The graph's inputs and present outputs; the past inputs with `withPast`. */
function decoderIO(g: OnnxGraph, layers: number, kvHeads: number, headDim: number, withPast: boolean): DecoderIO {
  const ids = g.input("input_ids", "int64", ["batch", "sequence"]);
  const total = withPast ? "total_sequence" : "sequence";
  const mask = g.input("attention_mask", "int64", ["batch", total]);
  const positions = g.input("position_ids", "int64", ["batch", "sequence"]);
  const past = withPast
    ? Array.from({ length: layers }, (_, i) => [
        g.input(`past_key_values.${i}.key`, "float32", ["batch", kvHeads, "past_sequence", headDim]),
        g.input(`past_key_values.${i}.value`, "float32", ["batch", kvHeads, "past_sequence", headDim]),
      ])
    : null;
  const presents: [string, string][] = [];
  return {
    ids,
    positions,
    bias: causalMask(g, mask, ids),
    cache(layer, k, v) {
      const p = past?.[layer];
      const key = p ? g.op("Concat", [p[0]!, k], { axis: { int: 2 } }) : k;
      const value = p ? g.op("Concat", [p[1]!, v], { axis: { int: 2 } }) : v;
      presents.push([key, value]);
      return [key, value];
    },
    finish(logits, vocab) {
      g.output(logits, "logits", "float32", ["batch", "sequence", vocab]);
      presents.forEach(([key, value], i) => {
        g.output(key, `present.${i}.key`, "float32", ["batch", kvHeads, total, headDim]);
        g.output(value, `present.${i}.value`, "float32", ["batch", kvHeads, total, headDim]);
      });
    },
  };
}

/** x[..., start:end] on the last axis (static bounds). */
function lastAxisSlice(g: OnnxGraph, x: string, start: number, end: number): string {
  return g.op("Slice", [x, g.ints([start]), g.ints([end]), g.ints([-1])]);
}

// --- GPT-2 -----------------------------------------------------------------------------------------

interface GPT2Keys {
  n_embd: number;
  n_head: number;
  n_layer: number;
  layer_norm_epsilon: number;
  activation_function: string;
  scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean;
}

/** GPT2LMHeadModel: learned positions, pre-LayerNorm blocks with Conv1D weights, ln_f, the tied head. */
export function gpt2CausalLm(ctx: Ctx, config: Record<string, unknown>, withPast: boolean): void {
  const c = config as unknown as GPT2Keys;
  const { g } = ctx;
  const C = c.n_embd;
  const H = c.n_head;
  const D = C / H;
  const io = decoderIO(g, c.n_layer, H, D, withPast);
  const gather = (table: string, idx: string): string => g.op("Gather", [param(ctx, table), idx], { axis: { int: 0 } });
  let h = g.op("Add", [gather("transformer.wte.weight", io.ids), gather("transformer.wpe.weight", io.positions)], {}, "embeddings"); // (B, T, C)
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    const qkv = linear(ctx, layerNorm(ctx, h, `${p}.ln_1`, c.layer_norm_epsilon), `${p}.attn.c_attn`, { conv1d: true }); // (B, T, 3C)
    const q = splitHeads(g, lastAxisSlice(g, qkv, 0, C), H, D);
    const [k, v] = io.cache(i, splitHeads(g, lastAxisSlice(g, qkv, C, 2 * C), H, D), splitHeads(g, lastAxisSlice(g, qkv, 2 * C, 3 * C), H, D));
    let scale = c.scale_attn_weights ? 1 / Math.sqrt(D) : 1;
    if (c.scale_attn_by_inverse_layer_idx) scale /= i + 1;
    const context = mergeHeads(g, attention(g, q, k, v, io.bias, scale), C);
    h = g.op("Add", [h, linear(ctx, context, `${p}.attn.c_proj`, { conv1d: true })]);
    const inner = activation(g, linear(ctx, layerNorm(ctx, h, `${p}.ln_2`, c.layer_norm_epsilon), `${p}.mlp.c_fc`, { conv1d: true }), c.activation_function);
    h = g.op("Add", [h, linear(ctx, inner, `${p}.mlp.c_proj`, { conv1d: true })]);
  }
  h = layerNorm(ctx, h, "transformer.ln_f", c.layer_norm_epsilon);
  io.finish(linear(ctx, h, "lm_head"), config.vocab_size as number);
}

// --- Llama -----------------------------------------------------------------------------------------

interface LlamaKeys {
  hidden_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  num_hidden_layers: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: Record<string, unknown> | null;
  hidden_act: string;
  vocab_size: number;
}

/** cos and sin of the rotary angles, (B, 1, T, D) each, from position_ids (src/nn rotaryTables). */
function rotaryTables(g: OnnxGraph, c: LlamaKeys, positions: string): { cos: string; sin: string } {
  const invFreq = torch.scope(() => inverseFrequencies(c.head_dim, c.rope_theta).data() as Float32Array);
  let t = g.op("Cast", [positions], { to: { int: 1 } }); // (B, T)
  const kind = c.rope_scaling ? (c.rope_scaling.rope_type ?? c.rope_scaling.type) : null;
  if (c.rope_scaling && kind !== "default") t = g.op("Div", [t, g.floats([c.rope_scaling.factor as number], [])]); // linear scaling (the config parser refuses other kinds)
  const freqs = g.op("Mul", [g.op("Unsqueeze", [t, g.ints([-1])]), g.floats(invFreq, [invFreq.length], "rotary.inv_freq")]); // (B, T, D/2)
  const angles = g.op("Unsqueeze", [g.op("Concat", [freqs, freqs], { axis: { int: -1 } }), g.ints([1])], {}, "rotary.angles"); // (B, 1, T, D)
  return { cos: g.op("Cos", [angles], {}, "rotary.cos"), sin: g.op("Sin", [angles], {}, "rotary.sin") };
}

/** x · cos + rotate_half(x) · sin for x (B, H, T, D); rotate_half(x1, x2) = (-x2, x1). */
function applyRotary(g: OnnxGraph, x: string, rope: { cos: string; sin: string }, headDim: number): string {
  const half = headDim / 2;
  const rotated = g.op("Concat", [g.op("Neg", [lastAxisSlice(g, x, half, headDim)]), lastAxisSlice(g, x, 0, half)], { axis: { int: -1 } });
  return g.op("Add", [g.op("Mul", [x, rope.cos]), g.op("Mul", [rotated, rope.sin])]);
}

/** (B, Hkv, S, D) -> (B, H, S, D): each key/value head repeated for its group of query heads (llama.ts repeatKv). */
function repeatKv(g: OnnxGraph, x: string, kvHeads: number, heads: number, headDim: number): string {
  if (kvHeads === heads) return x;
  const u = g.op("Unsqueeze", [x, g.ints([2])]); // (B, Hkv, 1, S, D)
  const copies = g.op("Concat", Array.from({ length: heads / kvHeads }, () => u), { axis: { int: 2 } }); // (B, Hkv, H/Hkv, S, D)
  return g.op("Reshape", [copies, g.ints([0, heads, -1, headDim])]);
}

/** LlamaForCausalLM: rotary positions, pre-RMSNorm layers with grouped-query attention and SwiGLU, the final norm, the head. */
export function llamaCausalLm(ctx: Ctx, config: Record<string, unknown>, withPast: boolean): void {
  const c = config as unknown as LlamaKeys;
  const { g } = ctx;
  const H = c.num_attention_heads;
  const Hkv = c.num_key_value_heads;
  const D = c.head_dim;
  const io = decoderIO(g, c.num_hidden_layers, Hkv, D, withPast);
  const rope = rotaryTables(g, c, io.positions);
  let h = g.op("Gather", [param(ctx, "model.embed_tokens.weight"), io.ids], { axis: { int: 0 } }, "embeddings"); // (B, T, C)
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const x = rmsNorm(ctx, h, `${p}.input_layernorm`, c.rms_norm_eps);
    const q = applyRotary(g, splitHeads(g, linear(ctx, x, `${p}.self_attn.q_proj`), H, D), rope, D);
    const k0 = applyRotary(g, splitHeads(g, linear(ctx, x, `${p}.self_attn.k_proj`), Hkv, D), rope, D);
    const [k, v] = io.cache(i, k0, splitHeads(g, linear(ctx, x, `${p}.self_attn.v_proj`), Hkv, D));
    const context = mergeHeads(g, attention(g, q, repeatKv(g, k, Hkv, H, D), repeatKv(g, v, Hkv, H, D), io.bias, 1 / Math.sqrt(D)), H * D);
    h = g.op("Add", [h, linear(ctx, context, `${p}.self_attn.o_proj`)]);
    const y = rmsNorm(ctx, h, `${p}.post_attention_layernorm`, c.rms_norm_eps);
    const gate = activation(g, linear(ctx, y, `${p}.mlp.gate_proj`), c.hidden_act);
    h = g.op("Add", [h, linear(ctx, g.op("Mul", [gate, linear(ctx, y, `${p}.mlp.up_proj`)]), `${p}.mlp.down_proj`)]);
  }
  h = rmsNorm(ctx, h, "model.norm", c.rms_norm_eps);
  io.finish(linear(ctx, h, "lm_head"), c.vocab_size);
}

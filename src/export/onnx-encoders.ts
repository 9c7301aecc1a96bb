// The BERT family's sequence classifiers as ONNX graphs: BERT, RoBERTa, ALBERT and ELECTRA as
// src/models computes them in inference (dropout off). Embeddings: word + token type +
// position (RoBERTa's positions counted from padding_idx + 1 over the non-pad tokens), then
// LayerNorm; ELECTRA's and ALBERT's projection to hidden_size; post-LayerNorm layers (ALBERT's
// shared across depth); each family's own classification head on the first token.
// Inputs: input_ids, attention_mask, token_type_ids (not RoBERTa's, of one token type), int64
// [batch, sequence]. Output: logits [batch, num_labels].
import type { OnnxGraph } from "./onnx-graph.js";
import { activation, attention, geluErf, layerNorm, linear, mergeHeads, paddingMask, param, splitHeads } from "./onnx-layers.js";
import type { Ctx } from "./onnx-layers.js";

/** The config keys the encoder graphs read (BERT's names; ALBERT and ELECTRA add embedding_size). */
interface EncoderKeys {
  model_type: string;
  hidden_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  hidden_act: string;
  layer_norm_eps: number;
  pad_token_id: number;
  embedding_size?: number;
  num_hidden_groups?: number;
  inner_group_num?: number;
}

export type EncoderFamily = "bert" | "roberta" | "albert" | "electra";

/** Where each family keeps its trunk (the head classes' prefix). */
const PREFIX: Record<EncoderFamily, string> = { bert: "bert", roberta: "roberta", albert: "albert", electra: "electra" };

/** Embeddings (B, T, E) -> LayerNorm, as BertEmbeddings (RoBERTa's positions where asked). */
function embeddings(ctx: Ctx, c: EncoderKeys, family: EncoderFamily, ids: string, types: string | null): string {
  const { g } = ctx;
  const p = `${PREFIX[family]}.embeddings`;
  const words = g.op("Gather", [param(ctx, `${p}.word_embeddings.weight`), ids], { axis: { int: 0 } }, "words"); // (B, T, E)
  // no token_type_ids: every token is type 0 (row 0 broadcast over the batch)
  const typeIds = types ?? g.ints([0], []);
  const typed = g.op("Add", [words, g.op("Gather", [param(ctx, `${p}.token_type_embeddings.weight`), typeIds], { axis: { int: 0 } })]);
  let positions: string;
  if (family === "roberta") {
    // padding_idx + cumsum(real) · real: pads keep padding_idx, real tokens count from padding_idx + 1
    const real = g.op("Cast", [g.op("Not", [g.op("Equal", [ids, g.ints([c.pad_token_id], [])])])], { to: { int: 7 } });
    const counted = g.op("Mul", [g.op("CumSum", [real, g.ints([1], [])]), real]);
    positions = g.op("Add", [counted, g.ints([c.pad_token_id], [])], {}, "position_ids"); // (B, T)
  } else {
    const T = g.op("Gather", [g.op("Shape", [ids]), g.ints([1], [])], { axis: { int: 0 } });
    positions = g.op("Range", [g.ints([0], []), T, g.ints([1], [])], {}, "position_ids"); // (T)
  }
  const x = g.op("Add", [typed, g.op("Gather", [param(ctx, `${p}.position_embeddings.weight`), positions], { axis: { int: 0 } })]);
  return layerNorm(ctx, x, `${p}.LayerNorm`, c.layer_norm_eps);
}

/** Self-attention over x (B, T, C) with the additive mask; query/key/value at `path` + q, k, v names. */
function selfAttention(ctx: Ctx, c: EncoderKeys, x: string, mask: string, names: { q: string; k: string; v: string }): string {
  const { g } = ctx;
  const H = c.num_attention_heads;
  const D = c.hidden_size / H;
  const q = splitHeads(g, linear(ctx, x, names.q), H, D);
  const k = splitHeads(g, linear(ctx, x, names.k), H, D);
  const v = splitHeads(g, linear(ctx, x, names.v), H, D);
  return mergeHeads(g, attention(g, q, k, v, mask, 1 / Math.sqrt(D)), c.hidden_size); // (B, T, C)
}

/** BertLayer: attention -> dense -> LayerNorm(+ x); intermediate -> output -> LayerNorm(+ a). */
function bertLayer(ctx: Ctx, c: EncoderKeys, x: string, mask: string, p: string): string {
  const { g } = ctx;
  const context = selfAttention(ctx, c, x, mask, { q: `${p}.attention.self.query`, k: `${p}.attention.self.key`, v: `${p}.attention.self.value` });
  const a = layerNorm(ctx, g.op("Add", [linear(ctx, context, `${p}.attention.output.dense`), x]), `${p}.attention.output.LayerNorm`, c.layer_norm_eps);
  const inner = activation(g, linear(ctx, a, `${p}.intermediate.dense`), c.hidden_act);
  return layerNorm(ctx, g.op("Add", [linear(ctx, inner, `${p}.output.dense`), a]), `${p}.output.LayerNorm`, c.layer_norm_eps);
}

/** AlbertLayer: attention with its own dense and LayerNorm, then ffn -> ffn_output -> full_layer_layer_norm. */
function albertLayer(ctx: Ctx, c: EncoderKeys, x: string, mask: string, p: string): string {
  const { g } = ctx;
  const context = selfAttention(ctx, c, x, mask, { q: `${p}.attention.query`, k: `${p}.attention.key`, v: `${p}.attention.value` });
  const a = layerNorm(ctx, g.op("Add", [x, linear(ctx, context, `${p}.attention.dense`)]), `${p}.attention.LayerNorm`, c.layer_norm_eps);
  const inner = activation(g, linear(ctx, a, `${p}.ffn`), c.hidden_act);
  return layerNorm(ctx, g.op("Add", [linear(ctx, inner, `${p}.ffn_output`), a]), `${p}.full_layer_layer_norm`, c.layer_norm_eps);
}

/** The trunk's last hidden state (B, T, C). */
function trunk(ctx: Ctx, c: EncoderKeys, family: EncoderFamily, ids: string, types: string | null, mask: string): string {
  const prefix = PREFIX[family];
  let h = embeddings(ctx, c, family, ids, types);
  if (family === "electra" && ctx.w.has("electra.embeddings_project.weight")) h = linear(ctx, h, "electra.embeddings_project");
  if (family === "albert") {
    h = linear(ctx, h, "albert.encoder.embedding_hidden_mapping_in");
    // num_hidden_layers steps through num_hidden_groups groups of inner_group_num layers each, weights shared
    const perGroup = c.num_hidden_layers / c.num_hidden_groups!;
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const group = Math.floor(i / perGroup);
      for (let j = 0; j < c.inner_group_num!; j++) h = albertLayer(ctx, c, h, mask, `albert.encoder.albert_layer_groups.${group}.albert_layers.${j}`);
    }
    return h;
  }
  for (let i = 0; i < c.num_hidden_layers; i++) h = bertLayer(ctx, c, h, mask, `${prefix}.encoder.layer.${i}`);
  return h;
}

/** Each family's head on the first token's hidden state (B, C) -> logits (B, L). */
function head(ctx: Ctx, family: EncoderFamily, first: string): string {
  const { g } = ctx;
  switch (family) {
    case "bert": // pooler tanh(dense), then the classifier
      return linear(ctx, g.op("Tanh", [linear(ctx, first, "bert.pooler.dense")]), "classifier");
    case "albert": // pooler Linear + tanh, then the classifier
      return linear(ctx, g.op("Tanh", [linear(ctx, first, "albert.pooler")]), "classifier");
    case "roberta": // RobertaClassificationHead: dense -> tanh -> out_proj
      return linear(ctx, g.op("Tanh", [linear(ctx, first, "classifier.dense")]), "classifier.out_proj");
    case "electra": // ElectraClassificationHead: dense -> exact GELU (whatever hidden_act says) -> out_proj
      return linear(ctx, geluErf(g, linear(ctx, first, "classifier.dense")), "classifier.out_proj");
  }
}

/** Adds the inputs, the whole classifier and the logits output to the graph. */
export function encoderClassifier(ctx: Ctx, config: Record<string, unknown>, family: EncoderFamily, numLabels: number): void {
  const c = config as unknown as EncoderKeys;
  const g: OnnxGraph = ctx.g;
  const ids = g.input("input_ids", "int64", ["batch", "sequence"]);
  const attentionMask = g.input("attention_mask", "int64", ["batch", "sequence"]);
  // RoBERTa has one token type (type_vocab_size 1): no input, as in Hugging Face's exports
  const oneType = family === "roberta" && (config.type_vocab_size as number) <= 1;
  const types = oneType ? null : g.input("token_type_ids", "int64", ["batch", "sequence"]);
  const h = trunk(ctx, c, family, ids, types, paddingMask(g, attentionMask));
  const first = g.op("Gather", [h, g.ints([0], [])], { axis: { int: 1 } }, "first_token"); // (B, C)
  g.output(head(ctx, family, first), "logits", "float32", ["batch", numLabels]);
}

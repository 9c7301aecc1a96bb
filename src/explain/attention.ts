// Attention maps of a text: every layer's and head's probabilities, and attention rollout
// (Abnar & Zuidema 2020): heads averaged, the identity added for the residual connection,
// rows renormalised, and the layers multiplied, so that rollout[i][j] says how much of token j
// reaches token i's final representation through attention and residuals alone.
import * as torch from "../torch/index.js";
import type { PretrainedModel } from "../models/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { encodeText, inEvalMode, modelMaxLength } from "./inputs.js";

/** A T x T matrix, rows the attending (query) token, columns the attended (key) token. */
export type Matrix = number[][];

export interface AttentionMaps {
  tokens: string[];
  /** [layer][head][query][key] */
  attentions: Matrix[][];
  /** Attention rollout through all layers, [query][key]. */
  rollout: Matrix;
}

function matmul(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
}

/** A layer's heads averaged, the identity added (residual) and each row renormalised to sum to 1. */
export function residualAttention(heads: readonly Matrix[]): Matrix {
  if (heads.length === 0) throw new Error("attention rollout: a layer with no heads");
  const T = heads[0]!.length;
  return Array.from({ length: T }, (_, i) => {
    const row = Array.from({ length: T }, (_, j) => heads.reduce((s, h) => s + h[i]![j]!, 0) / heads.length + (i === j ? 1 : 0));
    const z = row.reduce((s, v) => s + v, 0);
    return row.map((v) => v / z);
  });
}

/**
 * Attention rollout over layers [layer][head][T][T]: Ã_L · … · Ã_1 with Ã_l the layer's
 * residual attention (first layer rightmost, as the input flows through it first).
 */
export function attentionRollout(layers: readonly (readonly Matrix[])[]): Matrix {
  if (layers.length === 0) throw new Error("attention rollout: no layers");
  let out = residualAttention(layers[0]!);
  for (let l = 1; l < layers.length; l++) out = matmul(residualAttention(layers[l]!), out);
  return out;
}

/** Every layer's and head's attention for a text (one forward pass, no gradient) and its rollout. */
export function attentionMaps(model: PretrainedModel, tokenizer: Tokenizer, text: string, options: { maxLength?: number } = {}): AttentionMaps {
  const input = encodeText(tokenizer, text, options.maxLength ?? modelMaxLength(model));
  const attentions = inEvalMode(model, () =>
    torch.noGrad(() =>
      torch.scope(() => {
        const T = input.ids.length;
        const out = model.forward({
          inputIds: torch.tensor(input.ids, { dtype: "int64", shape: [1, T] }),
          tokenTypeIds: torch.tensor(input.typeIds, { dtype: "int64", shape: [1, T] }),
          outputAttentions: true,
        });
        if (!out.attentions?.length) throw new Error(`explain: ${model.constructor.name} returned no attentions`);
        return out.attentions.map((a) => a.squeeze(0).float().toArray() as Matrix[]); // each (H, T, T)
      }),
    ),
  );
  return { tokens: input.tokens, attentions, rollout: attentionRollout(attentions) };
}

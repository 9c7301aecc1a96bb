// The configurable Transformer (model_type "lmforge"): embeddings -> N configurable blocks
// (block.ts) -> heads, for encoders and decoders alike. config.json's switches (config.ts) pick
// each part; savePretrained/fromPretrained carry them like any other key. Leaves first:
// embeddings -> body -> model -> heads -> registry entry.
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { Dropout, Embedding, Linear, Module, ModuleList, additiveMask, initTransformerWeights, minValue, tieWeight } from "../../nn/index.js";
import { numLabels } from "../config.js";
import { runGenerate } from "../generation.js";
import { causalLmLoss, selectMasked, sequenceLoss, tokenLoss } from "../outputs.js";
import type { ModelInputs, ModelOutput } from "../outputs.js";
import type { ArchitectureEntry, ModelClass } from "../registry.js";
import { localWindowMask } from "./attention.js";
import type { AttentionContext } from "./attention.js";
import { TransformerBlock } from "./block.js";
import { groupOf, layerKinds, lmforgeConfig, withCausal } from "./config.js";
import type { LmforgeConfig } from "./config.js";
import { makeNorm, normsAround } from "./norms.js";
import type { Norm } from "./norms.js";
import { RelativePositionBias, alibiBias, alibiSlopes, rotaryFor } from "./positions.js";

export { lmforgeConfig, parseArch, LMFORGE_SCHEMA } from "./config.js";
export type { LmforgeConfig } from "./config.js";

/** The config with `causal` decided (null: false, an encoder). */
function resolved(config: LmforgeConfig): LmforgeConfig {
  return config.causal === null ? { ...config, causal: false } : config;
}

/**
 * Token (+ learned position, + segment) embeddings in embedding_size, a norm where norm=post
 * (BERT's embedding LayerNorm), dropout, then the projection to hidden_size when factorised (ALBERT).
 */
export class LmforgeEmbeddings extends Module {
  word_embeddings: Embedding;
  position_embeddings: Embedding | null;
  token_type_embeddings: Embedding | null;
  norm: Norm | null;
  dropout: Dropout;
  projection: Linear | null;

  constructor(readonly config: LmforgeConfig) {
    super();
    const E = config.embedding_size ?? config.hidden_size;
    const pad = config.pad_token_id;
    this.word_embeddings = new Embedding(config.vocab_size, E, pad !== null && pad >= 0 && pad < config.vocab_size ? { paddingIdx: pad } : {});
    this.position_embeddings = config.positions === "learned" ? new Embedding(config.max_position_embeddings, E) : null;
    this.token_type_embeddings = config.type_vocab_size > 0 ? new Embedding(config.type_vocab_size, E) : null;
    this.norm = normsAround(config.norm).embeddings ? makeNorm(config, E) : null;
    this.dropout = new Dropout(config.hidden_dropout_prob);
    this.projection = E !== config.hidden_size ? new Linear(E, config.hidden_size) : null;
  }

  /** -> (B, T, C) */
  forward(input: ModelInputs, positions: Tensor): Tensor {
    let x = input.inputsEmbeds ?? this.word_embeddings.forward(input.inputIds!); // (B, T, E)
    const [B, T] = x.shape as [number, number];
    if (this.position_embeddings) {
      if (!input.positionIds && T > this.config.max_position_embeddings) throw new Error(`lmforge: sequence length ${T} needs more than max_position_embeddings (${this.config.max_position_embeddings}) learned positions`);
      x = x.add(this.position_embeddings.forward(positions));
    }
    if (this.token_type_embeddings) x = x.add(this.token_type_embeddings.forward(input.tokenTypeIds ?? torch.zeros([B, T], { dtype: "int64", device: x.device as "cpu" })));
    if (this.norm) x = this.norm.forward(x);
    x = this.dropout.forward(x);
    return this.projection ? this.projection.forward(x) : x;
  }
}

/** The layers: one block per layer, or per group of layers when shared (share_groups), and the final norm of pre-norm stacks. */
export class LmforgeEncoder extends Module {
  layer: ModuleList<TransformerBlock>;
  final_norm: Norm | null;

  constructor(readonly config: LmforgeConfig) {
    super();
    const kinds = layerKinds(config);
    const blocks = config.share_groups ?? config.num_hidden_layers;
    const perGroup = config.num_hidden_layers / blocks;
    this.layer = new ModuleList(Array.from({ length: blocks }, (_, g) => new TransformerBlock(config, kinds[g * perGroup]!, config.causal === true)));
    this.final_norm = normsAround(config.norm).final ? makeNorm(config) : null;
  }

  forward(x: Tensor, ctx: AttentionContext, hidden: boolean): { out: Tensor; hiddenStates?: Tensor[]; attentions?: Tensor[] } {
    const states: Tensor[] = [x];
    const attentions: Tensor[] = [];
    let h = x;
    for (let i = 0; i < this.config.num_hidden_layers; i++) {
      const r = this.layer.at(groupOf(this.config, i)).forward(h, ctx);
      h = r.out;
      states.push(h);
      if (r.probs) attentions.push(r.probs);
    }
    if (this.final_norm) {
      h = this.final_norm.forward(h);
      states[states.length - 1] = h; // the last hidden state is after the final norm, as Llama's and GPT-2's
    }
    return { out: h, ...(hidden ? { hiddenStates: states } : {}), ...(ctx.returnProbs ? { attentions } : {}) };
  }
}

/** The bare model: last hidden state (B, T, C). */
export class LmforgeModel extends Module {
  readonly config: LmforgeConfig;
  embeddings: LmforgeEmbeddings;
  encoder: LmforgeEncoder;
  /** positions=relative: T5's bucketed bias, one table for all layers. */
  relative_attention_bias: RelativePositionBias | null;
  private readonly slopes: number[] | null;

  constructor(config: LmforgeConfig) {
    super();
    this.config = resolved(config);
    this.embeddings = new LmforgeEmbeddings(this.config);
    this.encoder = new LmforgeEncoder(this.config);
    this.relative_attention_bias = this.config.positions === "relative" ? new RelativePositionBias(this.config, !this.config.causal) : null;
    this.slopes = this.config.positions === "alibi" ? alibiSlopes(this.config.num_attention_heads) : null;
    initTransformerWeights(this, this.config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    if (!input.inputIds && !input.inputsEmbeds) throw new Error("lmforge: give inputIds or inputsEmbeds");
    if (input.kvCache || input.pastKeyValues) throw new Error("lmforge: a key/value cache is not supported (decode by recomputing the prefix)");
    const shape = (input.inputIds ?? input.inputsEmbeds)!.shape;
    const T = shape[1]!;
    const device = ((input.inputIds ?? input.inputsEmbeds)!.device as "cpu") ?? "cpu";
    const positions = input.positionIds ?? torch.arange(0, T, 1, { device }).unsqueeze(0); // (B|1, T)
    const x = this.embeddings.forward(input, positions); // (B, T, C)
    const ctx = this.context(input, positions, x);
    const enc = this.encoder.forward(x, ctx, input.outputHiddenStates ?? false);
    return { logits: enc.out, lastHiddenState: enc.out, ...(enc.hiddenStates ? { hiddenStates: enc.hiddenStates } : {}), ...(enc.attentions ? { attentions: enc.attentions } : {}) };
  }

  /** What every layer shares: rotary tables, and one additive mask of padding, position bias and window. */
  private context(input: ModelInputs, positions: Tensor, x: Tensor): AttentionContext {
    const c = this.config;
    const T = x.shape[1]!;
    const causal = c.causal === true;
    const parts: Tensor[] = [];
    if (input.attentionMask) parts.push(additiveMask(input.attentionMask, x.dtype)); // (B, 1, 1, S)
    if (this.slopes) parts.push(alibiBias(this.slopes, T, T, x.device as "cpu").to(x.dtype)); // (1, H, T, S)
    if (this.relative_attention_bias) parts.push(this.relative_attention_bias.forward(T, T, x.device as "cpu").to(x.dtype)); // (1, H, T, S)
    if (c.attention === "local") parts.push(localWindowMask(T, T, c.window!, causal, x.dtype, x.device as "cpu")); // (1, 1, T, S)
    let mask: Tensor | null = parts[0] ?? null;
    for (const p of parts.slice(1)) mask = mask!.add(p);
    // two masked terms would overflow to -inf (a fully masked row would then be NaN): clamp, as Hugging Face does
    if (parts.length > 1) mask = mask!.clamp(minValue(x.dtype), null);
    return {
      positions: { rope: c.positions === "rotary" ? rotaryFor(c, positions) : null, bias: null },
      padding: input.attentionMask ?? null,
      mask,
      causal,
      returnProbs: input.outputAttentions ?? false,
    };
  }
}

/** BERT's MLM head in embedding_size: dense (C -> E), GELU, norm, then the decoder tied to the word embeddings, plus a bias. */
export class LmforgeMLMHead extends Module {
  dense: Linear;
  norm: Norm;
  decoder: Linear;

  constructor(config: LmforgeConfig, wordEmbeddings: Tensor) {
    super();
    const E = config.embedding_size ?? config.hidden_size;
    this.dense = new Linear(config.hidden_size, E);
    this.norm = makeNorm(config, E);
    this.decoder = new Linear(E, config.vocab_size);
    if (config.tie_word_embeddings) tieWeight(this.decoder, wordEmbeddings);
  }

  /** (..., C) -> (..., V) */
  forward(h: Tensor): Tensor {
    return this.decoder.forward(this.norm.forward(this.dense.forward(h).gelu()));
  }
}

/** Masked language modelling: logits (B, T, V), or (N, V) at the labelled positions with maskedOnly. */
export class LmforgeForMaskedLM extends Module {
  readonly config: LmforgeConfig;
  lmforge: LmforgeModel;
  mlm_head: LmforgeMLMHead;

  constructor(config: LmforgeConfig) {
    super();
    this.config = resolved(config);
    this.lmforge = new LmforgeModel(this.config);
    const words = this.lmforge.embeddings.word_embeddings.weight;
    this.mlm_head = new LmforgeMLMHead(this.config, words);
    initTransformerWeights(this.mlm_head, this.config.initializer_range, { except: [words] });
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.lmforge.forward(input);
    const sel = selectMasked(out.lastHiddenState, input.labels, input.maskedOnly);
    const logits = this.mlm_head.forward(sel.h);
    return { ...out, logits, ...(sel.labels ? { loss: tokenLoss(logits, sel.labels) } : {}) };
  }
}

/** Next-token prediction (causal=true is implied): logits (B, T, V); labels are shifted inside. */
export class LmforgeForCausalLM extends Module {
  readonly config: LmforgeConfig;
  lmforge: LmforgeModel;
  /** Factorised embeddings: hidden_size -> embedding_size before the tied output layer. */
  lm_projection: Linear | null;
  lm_head: Linear;

  constructor(config: LmforgeConfig) {
    super();
    this.config = withCausal(config, true, "LmforgeForCausalLM");
    this.lmforge = new LmforgeModel(this.config);
    const E = this.config.embedding_size ?? this.config.hidden_size;
    this.lm_projection = E !== this.config.hidden_size ? new Linear(this.config.hidden_size, E, { bias: false }) : null;
    this.lm_head = new Linear(E, this.config.vocab_size, { bias: false });
    const words = this.lmforge.embeddings.word_embeddings.weight;
    if (this.config.tie_word_embeddings) tieWeight(this.lm_head, words);
    else initTransformerWeights(this.lm_head, this.config.initializer_range);
    if (this.lm_projection) initTransformerWeights(this.lm_projection, this.config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.lmforge.forward(input);
    const h = this.lm_projection ? this.lm_projection.forward(out.lastHiddenState) : out.lastHiddenState;
    const logits = this.lm_head.forward(h); // (B, T, V)
    return { ...out, logits, ...(input.labels ? { loss: causalLmLoss(logits, input.labels) } : {}) };
  }

  /**
   * Continues each row of inputIds (B, T) and returns (B, T + new): src/generate's generate(this,
   * inputIds, options), recomputing the prefix at each step (no key/value cache: useCache is false).
   */
  generate(inputIds: Tensor, options: object = {}): Tensor {
    return runGenerate(this, inputIds, { useCache: false, ...options });
  }
}

/** A label per sequence, from the first token (encoders) or the last real token (causal=true). */
export class LmforgeForSequenceClassification extends Module {
  readonly config: LmforgeConfig;
  lmforge: LmforgeModel;
  dropout: Dropout;
  classifier: Linear;
  readonly numLabels: number;

  constructor(config: LmforgeConfig) {
    super();
    this.config = resolved(config);
    this.numLabels = numLabels(this.config);
    this.lmforge = new LmforgeModel(this.config);
    this.dropout = new Dropout(this.config.classifier_dropout ?? this.config.hidden_dropout_prob);
    this.classifier = new Linear(this.config.hidden_size, this.numLabels);
    initTransformerWeights(this.classifier, this.config.initializer_range);
  }

  forward(input: ModelInputs): ModelOutput {
    const out = this.lmforge.forward(input);
    const h = out.lastHiddenState; // (B, T, C)
    const [B, T, C] = h.shape as [number, number, number];
    let pooled: Tensor;
    if (this.config.causal) {
      // the largest index of a real token: argmax of index · real (left and right padding alike)
      const real = input.attentionMask ? input.attentionMask.ne(0).long() : torch.ones([B, T], { dtype: "int64" });
      const last = torch.arange(0, T, 1, { dtype: "int64" }).mul(real).argmax(1); // (B)
      pooled = h.gather(1, last.view([B, 1, 1]).expand([B, 1, C])).squeeze(1);
    } else pooled = h.select(1, 0);
    const logits = this.classifier.forward(this.dropout.forward(pooled)); // (B, L)
    return { ...out, pooledOutput: pooled, logits, ...(input.labels ? { loss: sequenceLoss(logits, input.labels, this.numLabels, this.config.problem_type) } : {}) };
  }
}

const c = (x: unknown): ModelClass => x as ModelClass;

/** The configurable Transformer in the architecture registry (architectures.ts registers it). */
export const architecture: ArchitectureEntry = {
  modelType: "lmforge",
  prefix: "lmforge",
  parseConfig: (raw, where) => lmforgeConfig(raw, where),
  classes: {
    LmforgeModel: ["base", c(LmforgeModel)],
    LmforgeForMaskedLM: ["masked-lm", c(LmforgeForMaskedLM)],
    LmforgeForCausalLM: ["causal-lm", c(LmforgeForCausalLM)],
    LmforgeForSequenceClassification: ["sequence-classification", c(LmforgeForSequenceClassification)],
  },
  embeddings: /^embeddings\./,
  // with share_groups, index N is the Nth shared block (freeze:N freezes the first N groups)
  layers: /^encoder\.layer\.(\d+)\./,
  loraTargets: /attention\.(query|value)$/,
  wordEmbeddings: "embeddings.word_embeddings",
  // only learned positions have a table to outgrow; for the others it is the length trained for
  positions: { key: "max_position_embeddings", needed: (n) => n },
  dropoutKeys: ["hidden_dropout_prob", "classifier_dropout"],
  // BERT's compact sizes (Turc et al. 2019); the switches are --arch's to set
  presets: {
    "lmforge-tiny": { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
    "lmforge-mini": { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
  },
};

// What every model's forward takes and returns.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import type { KVCache } from "../nn/index.js";

export interface ModelInputs {
  /** (B, T) int64 token ids (or give inputsEmbeds). */
  inputIds?: Tensor;
  /** (B, T) 1 for tokens, 0 for padding. */
  attentionMask?: Tensor;
  /** (B, T) segment ids (BERT's sentence A/B). */
  tokenTypeIds?: Tensor;
  positionIds?: Tensor;
  /** (B, T, E) word embeddings to use instead of looking up inputIds (adversarial training perturbs them). */
  inputsEmbeds?: Tensor;
  /** Targets: token labels (-100 ignored) for LM and token heads, (B) for sequence heads. */
  labels?: Tensor;
  /** BERT's next sentence / ALBERT's sentence order label, (B). */
  nextSentenceLabel?: Tensor;
  /** Question answering targets, (B). */
  startPositions?: Tensor;
  endPositions?: Tensor;
  outputHiddenStates?: boolean;
  outputAttentions?: boolean;
  /**
   * Masked LM heads: compute logits only at the positions whose label is not -100; logits are
   * then (N, V) and the loss is the same. Pretraining spends most of its time in the output
   * layer otherwise (B x T x V), for the 15% of positions that count.
   */
  maskedOnly?: boolean;
  /**
   * Encoders: the last layer computes the first token's output only (its keys and values still
   * see every token), which is all that a sequence-level head reads: the same logits for a
   * fraction of the last layer's work. lastHiddenState is then (B, 1, C). Sequence
   * classification and multiple-choice heads set it unless it is false or hidden states or
   * attentions are asked for.
   */
  firstTokenOnly?: boolean;
  /**
   * Masked LM pretraining (BERT, RoBERTa, ALBERT, ELECTRA), with maskedOnly: the last encoder layer computes
   * only the positions that carry a label, and the first token (the pooler's); keys and values
   * still see every token. The loss, logits and gradients are those of the full computation,
   * for about a fifth of the last layer's work at 15% masking. lastHiddenState is then (B, Q, C),
   * its positions in `positions`. Off when hidden states or attentions are asked for.
   */
  lastLayerAtLabels?: boolean;
  /** Encoder-decoders: (B, T') the decoder's input ids; without them, the labels shifted right. */
  decoderInputIds?: Tensor;
  /** Encoder-decoders: (B, T') 1 for decoder tokens, 0 for padding (the causal mask is implied); with a cache, (B, past + T'). */
  decoderAttentionMask?: Tensor;
  /** Encoder-decoders: the encoder's last hidden state (B, S, C), computed once and reused while decoding. */
  encoderOutputs?: Tensor;
  /** The key/value cache from the previous call (ModelOutput.pastKeyValues). */
  pastKeyValues?: [Tensor, Tensor][];
  /** Return the key/value cache for the next call. */
  useCache?: boolean;
  /**
   * Causal LMs, incremental decoding: the key/value cache, filled in place with this call's
   * positions (preallocated blocks, no copy of the history per token). Positions then count from
   * its length unless positionIds are given; attentionMask, when given, covers the cached
   * positions too, (B, cached + T).
   */
  kvCache?: KVCache;
}

export interface ModelOutput {
  loss?: Tensor;
  /** The head's main output (LM logits, class logits, ...); the last hidden state for base models. */
  logits: Tensor;
  lastHiddenState: Tensor;
  pooledOutput?: Tensor;
  /** Embedding output then each layer's output, when outputHiddenStates. */
  hiddenStates?: Tensor[];
  /** Each layer's attention probabilities (B, H, T, T), when outputAttentions. */
  attentions?: Tensor[];
  /** BERT pretraining / ALBERT: the sentence-pair logits. */
  seqRelationshipLogits?: Tensor;
  /** Question answering: span start and end logits (B, T). */
  startLogits?: Tensor;
  endLogits?: Tensor;
  /**
   * With useCache: the key/value cache to pass back for the next step, each (B, H, S, D).
   * Decoder-only models: one pair per layer. Encoder-decoders: two pairs per decoder layer,
   * [2i] its self-attention (growing by a step each call) and [2i + 1] its cross-attention
   * (the encoder output's keys and values, computed once): Hugging Face's 4-tuples, flattened,
   * so that a loop that passes the cache back, or reorders its rows (beams), treats both alike.
   */
  pastKeyValues?: [Tensor, Tensor][];
  /** Encoder-decoders: the encoder's last hidden state (B, S, C) and, with outputHiddenStates, each of its layers'. */
  encoderLastHiddenState?: Tensor;
  encoderHiddenStates?: Tensor[];
  /** With lastLayerAtLabels: the position of each lastHiddenState row, (B, Q), -1 for padding. */
  positions?: Tensor;
}

/**
 * The positions the last layer computes under lastLayerAtLabels: (B, Q) int64, column 0 the
 * first token, then each sequence's labelled positions (label not -100) in order, -1 after them.
 */
export function labelPositions(labels: Tensor): Tensor {
  return torch.scope(() => {
    const [B, T] = labels.shape as [number, number];
    const labelled = labels.ne(-100).to("int64");
    labelled.select(1, 0).zero_(); // the first token is column 0 already
    const Q = 1 + labelled.sum(1).max().item();
    // each labelled position goes to column 1 + its rank in its row; the others to a spare column Q
    const column = torch.where(labelled.bool(), labelled.cumsum(1), Q);
    const pos = torch.full([B, Q + 1], -1, { dtype: "int64" }).scatter(1, column, torch.arange(0, T, 1, { dtype: "int64" }).expand([B, T]));
    pos.select(1, 0).zero_();
    return pos.narrow(1, 0, Q).contiguous();
  });
}

/** The loss of a sequence-level head, by problem type (as Hugging Face chooses it). */
export function sequenceLoss(logits: Tensor, labels: Tensor, numLabels: number, problemType?: unknown): Tensor {
  return torch.scope(() => {
    if (problemType === "regression" || ((problemType === undefined || problemType === null) && numLabels === 1)) {
      return torch.mseLoss(logits.squeeze(-1).float(), labels.float().view([-1]));
    }
    if (problemType === "multi_label_classification") return torch.binaryCrossEntropyWithLogits(logits.float(), labels.float());
    return torch.crossEntropy(logits.view([-1, numLabels]).float(), labels.view([-1]));
  });
}

/** Cross-entropy over token logits (B, T, V) with -100 ignored, in float32. */
export function tokenLoss(logits: Tensor, labels: Tensor): Tensor {
  return torch.scope(() => torch.crossEntropy(logits.reshape([-1, logits.shape[logits.ndim - 1]!]).float(), labels.reshape([-1])));
}

/** A causal LM's loss: position t predicts label t + 1 (labels are the inputs, -100 ignored), in float32. */
export function causalLmLoss(logits: Tensor, labels: Tensor): Tensor {
  const T = logits.shape[1]!;
  return tokenLoss(logits.narrow(1, 0, T - 1), labels.narrow(1, 1, T - 1));
}

/**
 * Hidden states (B, T, C) at the positions whose label counts, with those labels: (N, C), (N).
 * With maskedOnly unset, the inputs come back as they are.
 */
export function selectMasked(h: Tensor, labels: Tensor | undefined, maskedOnly: boolean | undefined, positions?: Tensor): { h: Tensor; labels: Tensor | undefined } {
  if (!maskedOnly || !labels) return { h, labels };
  // under lastLayerAtLabels, h holds the rows at `positions`: take their labels (-100 for padding)
  const aligned = positions ? torch.where(positions.ge(0), labels.gather(1, positions.clamp(0, null)), -100) : labels;
  const flat = aligned.reshape([-1]);
  const idx = flat.ne(-100).nonzero().view([-1]);
  return { h: h.reshape([-1, h.shape[h.ndim - 1]!]).indexSelect(0, idx), labels: flat.indexSelect(0, idx) };
}

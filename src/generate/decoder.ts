// What a search strategy sees of a model: next-token logits for each row, one token per row
// fed back per step, and rows kept or reordered (beams). A causal LM is one such decoder
// (prompt, key/value cache, positions, attention mask); an encoder-decoder would be another
// (its encoder run once, the decoder stepped the same way), so the strategies never change.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { KVCache } from "../nn/index.js";
import type { ModelInputs, ModelOutput } from "../models/index.js";

/** A model that continues sequences: forward() takes a kvCache and returns logits (B, T, V). */
export interface CausalModel {
  readonly config: Record<string, unknown>;
  readonly training: boolean;
  forward(input: ModelInputs): ModelOutput;
  train(mode?: boolean): unknown;
  eval(): unknown;
}

export interface Decoder {
  /** Next-token logits (R, V), float32, after the prompt. Called once, first. */
  start(): Tensor;
  /** Feeds one token per row (R) and returns the next logits (R, V). */
  step(tokens: readonly number[]): Tensor;
  /** Keeps rows: new row i continues old row rows[i] (beams reordered, prompts expanded). */
  reorder(rows: readonly number[]): void;
  dispose(): void;
}

export interface CausalDecoderOptions {
  /** (B, T) 1 for tokens, 0 for left padding; null for none. */
  attentionMask: Tensor | null;
  useCache: boolean;
  /** Tokens the cache will hold at most (prompt + new): its buffers are allocated once. */
  capacity: number;
  onForward?: (inputs: { inputIds: Tensor; positionIds: Tensor; attentionMask: Tensor | null }) => void;
}

/**
 * A causal LM as a decoder. Positions follow each row's own tokens, as Hugging Face's
 * generate() feeds them: cumsum(mask) - 1 over the prompt (padding gets 1), then one more
 * per step, so a left-padded row computes what it computes alone.
 */
export function causalDecoder(model: CausalModel, inputIds: Tensor, options: CausalDecoderOptions): Decoder {
  const T = inputIds.shape[1]!;
  const rowsOf = (t: Tensor): number[][] => t.toArray() as number[][];
  // token ids and mask kept in JS: rows are short, and the no-cache path rebuilds its input from them
  let ids = rowsOf(inputIds);
  let mask: number[][] = options.attentionMask ? rowsOf(options.attentionMask) : ids.map((r) => r.map(() => 1));
  const padded = mask.some((r) => r.some((m) => m === 0));
  let cache = options.useCache ? new KVCache({ capacity: options.capacity }) : null;

  const table = (rows: number[][]): Tensor => torch.tensor(rows.flat(), { dtype: "int64", shape: [rows.length, rows[0]!.length] });
  /** cumsum(mask) - 1 per row, 1 at padding: (R, S) as rows. */
  const positionsOf = (m: number[][]): number[][] =>
    m.map((r) => {
      let seen = 0;
      return r.map((x) => (x ? seen++ : 1));
    });
  const forward = (feed: number[][], positions: number[][]): Tensor =>
    torch.scope(() => {
      const inputIds = table(feed);
      const positionIds = table(positions);
      const attentionMask = padded ? table(mask) : null;
      options.onForward?.({ inputIds, positionIds, attentionMask });
      const out = model.forward({ inputIds, positionIds, ...(attentionMask ? { attentionMask } : {}), ...(cache ? { kvCache: cache } : {}) });
      return out.logits.select(1, out.logits.shape[1]! - 1).float(); // (R, V)
    });

  // the next position of each row: its real tokens so far
  let next = mask.map((r) => r.reduce((n, x) => n + (x ? 1 : 0), 0));
  return {
    start() {
      const logits = forward(ids, positionsOf(mask));
      if (cache && cache.length !== T) throw new Error(`generate: ${model.constructor.name} ignored the key/value cache (it holds ${cache.length} positions after a prompt of ${T}); pass useCache: false`);
      return logits;
    },
    step(tokens) {
      if (tokens.length !== ids.length) throw new Error(`generate: ${tokens.length} tokens for ${ids.length} rows`);
      ids.forEach((r, i) => r.push(tokens[i]!));
      mask.forEach((r) => r.push(1));
      const positions = next.map((p) => [p]);
      next = next.map((p) => p + 1);
      if (!cache) return forward(ids, positionsOf(mask));
      return forward(tokens.map((t) => [t]), positions);
    },
    reorder(rows) {
      if (rows.length === ids.length && rows.every((r, i) => r === i)) return;
      // copies: two beams continuing one row grow apart from here
      ids = rows.map((r) => [...ids[r]!]);
      mask = rows.map((r) => [...mask[r]!]);
      next = rows.map((r) => next[r]!);
      if (cache) torch.scope(() => cache!.reorder(torch.tensor([...rows], { dtype: "int64" })));
    },
    dispose() {
      cache?.dispose();
      cache = null;
    },
  };
}

// What a search strategy sees of a model: next-token logits for each row, one token per row
// fed back per step, and rows kept or reordered (beams). A causal LM is one such decoder
// (prompt, key/value cache, positions, attention mask); an encoder-decoder is another (its
// encoder run once, the decoder stepped from decoder_start_token_id with its own cache), so
// the strategies never change.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { KVCache } from "../nn/index.js";
import type { ModelInputs, ModelOutput } from "../models/index.js";

/**
 * A model that continues sequences: forward() returns logits (B, T, V). A causal LM takes a
 * kvCache; an encoder-decoder takes encoderOutputs, decoderInputIds and pastKeyValues.
 */
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

export interface Seq2SeqDecoderOptions {
  /** (B, S) the encoder input's mask: 1 for tokens, 0 for padding (either side); null for none. */
  attentionMask: Tensor | null;
  useCache: boolean;
  /** The decoder's first token (config decoder_start_token_id: T5's pad, 0). */
  decoderStartTokenId: number;
}

/**
 * An encoder-decoder (T5) as a decoder, as Hugging Face's generate() runs one: the encoder once
 * over inputIds (B, S) with its mask; the decoder from decoder_start_token_id, one token per
 * step through the model's pastKeyValues (self-attention pairs growing, cross-attention pairs
 * computed at the first step and reused), or without a cache the whole decoder sequence each
 * step. reorder() moves the cache rows, the encoder states and the encoder mask together.
 */
export function seq2seqDecoder(model: CausalModel, inputIds: Tensor, options: Seq2SeqDecoderOptions): Decoder {
  const B = inputIds.shape[0]!;
  let ids: number[][] = Array.from({ length: B }, () => [options.decoderStartTokenId]);
  // held across steps, outside every scope (a caller's scope must not free them mid-search); disposed here
  let encoder: Tensor | null = null; // (R, S, C)
  let mask: Tensor | null = options.attentionMask ? torch.keep(options.attentionMask.long().clone()) : null; // (R, S)
  let past: [Tensor, Tensor][] | null = null; // [2i] self-attention (R, H, t, D), [2i + 1] cross-attention (R, H, S, D)
  let origin: number[] = Array.from({ length: B }, (_, r) => r); // the input row each current row decodes

  const table = (rows: number[][]): Tensor => torch.tensor(rows.flat(), { dtype: "int64", shape: [rows.length, rows[0]!.length] });
  const held = (): Tensor[] => [...(encoder ? [encoder] : []), ...(mask ? [mask] : []), ...(past ?? []).flat()];
  const forward = (feed: number[][]): Tensor => {
    const r = torch.scope(() => {
      const out = model.forward({
        ...(encoder ? { encoderOutputs: encoder } : { inputIds }),
        ...(mask ? { attentionMask: mask } : {}),
        decoderInputIds: table(feed),
        ...(past ? { pastKeyValues: past } : {}),
        useCache: options.useCache,
      });
      if (!out.encoderLastHiddenState) throw new Error(`generate: ${model.constructor.name} returned no encoder states; is it an encoder-decoder?`);
      if (options.useCache && !out.pastKeyValues) throw new Error(`generate: ${model.constructor.name} returned no pastKeyValues; pass useCache: false`);
      return { logits: out.logits.select(1, out.logits.shape[1]! - 1).float(), encoder: out.encoderLastHiddenState, past: out.pastKeyValues ?? null }; // logits (R, V)
    });
    if (!encoder) encoder = torch.keep(r.encoder);
    if (r.past) {
      // the cross-attention pairs come back as they went in; the old self-attention pairs are spent
      const next = new Set(r.past.flat());
      for (const t of (past ?? []).flat()) if (!next.has(t)) t.dispose();
      past = r.past.map((pair) => torch.keep(pair));
    }
    return r.logits;
  };

  return {
    start() {
      return forward(ids);
    },
    step(tokens) {
      if (tokens.length !== ids.length) throw new Error(`generate: ${tokens.length} tokens for ${ids.length} rows`);
      ids.forEach((r, i) => r.push(tokens[i]!));
      return forward(past ? tokens.map((t) => [t]) : ids);
    },
    reorder(rows) {
      if (rows.length === ids.length && rows.every((r, i) => r === i)) return;
      ids = rows.map((r) => [...ids[r]!]);
      // Beam search moves rows among the beams of one prompt only: the encoder states, its mask and
      // the cross-attention pairs of a row then stay what they are (the same prompt's), and only the
      // self-attention pairs move. Hugging Face moves all four cached tensors of every layer.
      const nextOrigin = rows.map((r) => origin[r]!);
      const sourcesStay = nextOrigin.length === origin.length && nextOrigin.every((o, i) => o === origin[i]);
      origin = nextOrigin;
      const index = torch.keep(torch.tensor([...rows], { dtype: "int64" }));
      const pick = (t: Tensor): Tensor => {
        const picked = torch.keep(torch.scope(() => t.indexSelect(0, index)));
        t.dispose();
        return picked;
      };
      if (encoder && !sourcesStay) encoder = pick(encoder);
      if (mask && !sourcesStay) mask = pick(mask);
      if (past) {
        // a cross-attention pair is shared by no one else: each tensor once
        const moved = new Map<Tensor, Tensor>();
        const move = (t: Tensor): Tensor => moved.get(t) ?? moved.set(t, pick(t)).get(t)!;
        past = past.map((pair, i) => (sourcesStay && i % 2 === 1 ? pair : (pair.map(move) as [Tensor, Tensor])));
      }
      index.dispose();
    },
    dispose() {
      for (const t of new Set(held())) t.dispose();
      encoder = mask = null;
      past = null;
    },
  };
}

// Masked-LM masking, each strategy as its source defines it:
// - token masking (BERT, Devlin et al. 2019): each non-special position is chosen with
//   probability 0.15; a chosen position becomes [MASK] 80% of the time, a random non-special
//   token 10%, and stays 10%. Labels are the original ids there, -100 elsewhere.
// - whole-word masking (BERT's later release): words are chosen until 15% of the tokens are
//   covered; every token of a chosen word is masked (80/10/10 per token).
// - span masking (SpanBERT, Joshi et al. 2020): span lengths in words from Geometric(0.2)
//   clipped to 1..10, spans chosen until 15% of the tokens; 80/10/10 decided per span.
// Static masking fixes the masks once per sequence (original BERT); dynamic masking draws
// new ones each epoch (RoBERTa). Masks are drawn from (seed, epoch, index): reproducible.
import { Rng } from "../data/random.js";
import type { Example } from "../data/pretraining.js";

export type MaskingStrategy = "token" | "whole-word" | "span";

export interface MaskingOptions {
  strategy: MaskingStrategy;
  /** dynamic: new masks every epoch; static: the same masks every epoch. */
  dynamic: boolean;
  probability: number;
  maskId: number;
  vocabSize: number;
  /** Ids never used as random replacements ([CLS], [SEP], [PAD], [MASK], ...). */
  specialIds: ReadonlySet<number>;
  seed: number;
  /** SpanBERT's geometric parameter and maximum span length, in words. */
  spanP?: number;
  maxSpan?: number;
}

export interface Masked {
  inputIds: Int32Array;
  labels: Int32Array;
}

/** A random token id that is not special. */
function randomToken(rng: Rng, o: MaskingOptions): number {
  for (;;) {
    const t = rng.int(o.vocabSize);
    if (!o.specialIds.has(t)) return t;
  }
}

/** 80% [MASK], 10% random, 10% unchanged. */
function replacement(rng: Rng, original: number, o: MaskingOptions): number {
  const r = rng.next();
  if (r < 0.8) return o.maskId;
  if (r < 0.9) return randomToken(rng, o);
  return original;
}

/** Words as [start, end) token ranges over the maskable (non-special) positions. */
function words(ex: Example): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < ex.ids.length; i++) {
    if (ex.special[i]) continue;
    const last = out[out.length - 1];
    if (ex.wordStart[i] || last === undefined || last[1] !== i) out.push([i, i + 1]);
    else last[1] = i + 1;
  }
  return out;
}

/** Masks one example. index identifies the sequence; epoch matters only for dynamic masking. */
export function maskExample(ex: Example, index: number, epoch: number, o: MaskingOptions): Masked {
  const rng = new Rng(o.seed, o.dynamic ? epoch : -1, index, 0x3a5c);
  const inputIds = Int32Array.from(ex.ids);
  const labels = new Int32Array(ex.ids.length).fill(-100);
  const maskable = ex.special.reduce((n, s) => n + (s ? 0 : 1), 0);
  if (maskable === 0) return { inputIds, labels };
  if (o.strategy === "token") {
    for (let i = 0; i < ex.ids.length; i++) {
      if (ex.special[i] || rng.next() >= o.probability) continue;
      labels[i] = ex.ids[i]!;
      inputIds[i] = replacement(rng, ex.ids[i]!, o);
    }
    return { inputIds, labels };
  }
  const ws = words(ex);
  const budget = Math.max(1, Math.round(maskable * o.probability));
  let covered = 0;
  if (o.strategy === "whole-word") {
    for (const w of rng.shuffle([...ws])) {
      const len = w[1] - w[0];
      if (covered >= budget) break;
      if (covered + len > budget && covered > 0) continue;
      for (let i = w[0]; i < w[1]; i++) {
        labels[i] = ex.ids[i]!;
        inputIds[i] = replacement(rng, ex.ids[i]!, o);
      }
      covered += len;
    }
    return { inputIds, labels };
  }
  // span masking
  const p = o.spanP ?? 0.2;
  const maxSpan = o.maxSpan ?? 10;
  const used = new Uint8Array(ws.length);
  let attempts = 0;
  while (covered < budget && attempts++ < 10 * ws.length) {
    const spanWords = Math.min(maxSpan, rng.geometric(p));
    const start = rng.int(ws.length);
    const end = Math.min(ws.length, start + spanWords);
    let clash = false;
    for (let k = start; k < end; k++) if (used[k]) clash = true;
    if (clash) continue;
    const tokens = ws[end - 1]![1] - ws[start]![0];
    if (covered + tokens > budget && covered > 0) continue;
    // one decision for the whole span
    const r = rng.next();
    for (let k = start; k < end; k++) {
      used[k] = 1;
      for (let i = ws[k]![0]; i < ws[k]![1]; i++) {
        labels[i] = ex.ids[i]!;
        inputIds[i] = r < 0.8 ? o.maskId : r < 0.9 ? randomToken(rng, o) : ex.ids[i]!;
      }
    }
    covered += tokens;
  }
  return { inputIds, labels };
}

// Context perturbation: noise applied to a training sequence before the objective sees it,
// as denoising pretraining uses it (BART's token deletion, text infilling and sentence
// permutation; random replacement and local shuffling as in noisy-input training). Each
// operation has a probability; every decision is drawn from (seed, epoch, index), so a
// resumed run perturbs exactly as an uninterrupted one. Special tokens never move or change.
import { Rng } from "../data/random.js";
import type { Example } from "../data/pretraining.js";

export interface PerturbOptions {
  /** Each token is deleted with this probability. */
  deletion?: number;
  /** Each token is replaced by a random (non-special) token with this probability. */
  replacement?: number;
  /** Each token moves by at most `shuffleWindow` positions (local shuffling), with this probability per window. */
  localShuffle?: number;
  shuffleWindow?: number;
  /** Spans (Poisson(3) tokens, BART) are replaced by one mask token with this probability per token. */
  infilling?: number;
  /** The sentences between the special tokens are permuted (BART's sentence permutation), with this probability per sequence. */
  sentencePermutation?: number;
  vocabSize: number;
  specialIds: ReadonlySet<number>;
  maskId: number;
  seed: number;
}

function poisson(rng: Rng, lambda: number): number {
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rng.next();
  } while (p > l);
  return k - 1;
}

/** A perturbed copy of an example (labels for MLM are then drawn from the perturbed tokens). */
export function perturbExample(ex: Example, index: number, epoch: number, o: PerturbOptions): Example {
  const rng = new Rng(o.seed, epoch, index, 0x9e27);
  let ids = Array.from(ex.ids);
  let special = Array.from(ex.special);
  let words = Array.from(ex.wordStart);
  let types = Array.from(ex.typeIds);
  let sents = ex.sentStart ? Array.from(ex.sentStart) : new Array<number>(ids.length).fill(0);
  const keep = (i: number): boolean => special[i] === 1;
  // sentence permutation: the sentences (and [SEP]-delimited segments) between the special
  // tokens are shuffled; the special tokens stay where they are
  if (o.sentencePermutation && rng.next() < o.sentencePermutation) {
    const segs: number[][] = [];
    let cur: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (special[i] || sents[i]) {
        if (cur.length) segs.push(cur);
        cur = [];
      }
      if (!special[i]) cur.push(i);
    }
    if (cur.length) segs.push(cur);
    if (segs.length > 1) {
      const order = rng.shuffle(segs.map((_, k) => k));
      const flat = order.flatMap((k) => segs[k]!);
      const positions = segs.flat();
      const src = { ids: [...ids], words: [...words], sents: [...sents] };
      positions.forEach((p, j) => {
        ids[p] = src.ids[flat[j]!]!;
        words[p] = src.words[flat[j]!]!;
        sents[p] = src.sents[flat[j]!]!;
      });
    }
  }
  // local shuffling: sort by position + uniform noise in [0, window]
  if (o.localShuffle && rng.next() < o.localShuffle) {
    const w = o.shuffleWindow ?? 3;
    const movable = ids.map((_, i) => i).filter((i) => !keep(i));
    const keys = movable.map((i) => i + rng.next() * w);
    const order = movable.map((_, k) => k).sort((a, b) => keys[a]! - keys[b]!);
    const src = { ids: [...ids], words: [...words] };
    movable.forEach((p, j) => {
      ids[p] = src.ids[movable[order[j]!]!]!;
      words[p] = src.words[movable[order[j]!]!]!;
    }); // sentence starts stay at their positions: local shuffling moves tokens a few places only
  }
  // token deletion, random replacement and span infilling, in one pass
  const out = { ids: [] as number[], special: [] as number[], words: [] as number[], types: [] as number[], sents: [] as number[] };
  // a sentence start that was deleted passes to the next token kept
  let pendingStart = 0;
  const push = (id: number, i: number, word: number): void => {
    out.ids.push(id);
    out.special.push(special[i]!);
    out.words.push(word);
    out.types.push(types[i]!);
    out.sents.push(special[i] ? 0 : sents[i]! | pendingStart);
    if (!special[i]) pendingStart = 0;
  };
  for (let i = 0; i < ids.length; i++) {
    if (!keep(i)) {
      if (o.infilling && rng.next() < o.infilling) {
        // one mask token stands for a span of Poisson(3) tokens (zero: a mask is inserted)
        const len = poisson(rng, 3);
        push(o.maskId, i, 1);
        if (len === 0) {
          // the inserted mask took the sentence start (if any); the token itself does not repeat it
          const start = sents[i]!;
          sents[i] = 0;
          push(ids[i]!, i, words[i]!);
          sents[i] = start;
          continue;
        }
        let j = i;
        while (j < i + len && j < ids.length && !keep(j)) j++;
        for (let k = i + 1; k < j; k++) pendingStart |= sents[k]!;
        i = j - 1;
        continue;
      }
      if (o.deletion && rng.next() < o.deletion) {
        pendingStart |= sents[i]!;
        continue;
      }
      if (o.replacement && rng.next() < o.replacement) {
        let t: number;
        do t = rng.int(o.vocabSize);
        while (o.specialIds.has(t));
        push(t, i, words[i]!);
        continue;
      }
    }
    push(ids[i]!, i, words[i]!);
  }
  // infilling can insert a mask: never grow past the original length (drop tokens before the final special)
  while (out.ids.length > ex.ids.length) {
    const cut = out.special[out.special.length - 1] ? out.ids.length - 2 : out.ids.length - 1;
    for (const arr of [out.ids, out.special, out.words, out.types, out.sents]) arr.splice(cut, 1);
  }
  ids = out.ids;
  special = out.special;
  words = out.words;
  types = out.types;
  sents = out.sents;
  return {
    ids: Int32Array.from(ids),
    special: Uint8Array.from(special),
    wordStart: Uint8Array.from(words),
    ...(ex.sentStart ? { sentStart: Uint8Array.from(sents) } : {}),
    typeIds: Int32Array.from(types),
    ...(ex.pairLabel !== undefined ? { pairLabel: ex.pairLabel } : {}),
  };
}

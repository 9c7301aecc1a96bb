// Linear probes (Alain & Bengio 2016; Tenney et al. 2019): a logistic regression per layer on
// the hidden state of each word's first token, predicting a word-level label (named-entity
// tags, parts of speech). Held-out accuracy per layer says where in the network the
// information is linearly readable. The probes are convex, so each is solved, not trained:
// scikit-learn's L2-regularised multinomial logistic regression by L-BFGS (src/eval/logistic.ts;
// deterministic, no learning rate), on features standardised with the training split's mean and
// deviation; sentences, not words, are split, so no sentence is seen twice.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { fitLogistic, predictLogistic } from "../eval/logistic.js";
import type { PretrainedModel } from "../models/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { inEvalMode, modelMaxLength } from "./inputs.js";

/** A sentence as words with one label each (a CoNLL sentence, the silver NER set). */
export interface ProbeSentence {
  tokens: readonly string[];
  tags: readonly string[];
}

export interface ProbeOptions {
  /** At most this many sentences are used (the first ones; default 400). */
  maxSentences?: number;
  /** Share of the sentences held out for the accuracy (default 0.25). */
  heldOut?: number;
  /** The probes' inverse L2 strength, scikit-learn's C (default 1). */
  C?: number;
  /** Seeds the split of sentences (default 0). */
  seed?: number;
  /** B-PER and I-PER both as PER (default true): the probe asks "is it a person", not where the span starts. */
  collapseIob?: boolean;
  /** Sentences per forward pass (default 16). */
  batchSize?: number;
  maxLength?: number;
}

export interface ProbeLayer {
  /** 0 is the embedding output, l the output of layer l. */
  layer: number;
  accuracy: number;
  macroF1: number;
  trainAccuracy: number;
}

export interface ProbeResult {
  labels: string[];
  layers: ProbeLayer[];
  /** Always predicting the most frequent training label, on the held-out words. */
  majority: { label: string; accuracy: number };
  words: { train: number; test: number };
  sentences: { train: number; test: number };
}

/** mulberry32: a small seeded generator for the split. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Each word's first token in the encoding of the words joined by spaces; -1 for a word cut off. */
function firstPieces(tokenizer: Tokenizer, words: readonly string[], maxLength: number): { ids: number[]; first: number[] } {
  const starts: number[] = [];
  let text = "";
  for (const w of words) {
    if (text) text += " ";
    starts.push(text.length);
    text += w;
  }
  const enc = tokenizer.encode(text, null, { maxLength, truncation: true });
  const first = words.map(() => -1);
  let w = 0;
  enc.offsets.forEach(([from, to], i) => {
    if (enc.specialTokensMask[i] === 1 || to <= from) return;
    while (w + 1 < words.length && from >= starts[w + 1]!) w++;
    if (first[w] === -1 && from >= starts[w]!) first[w] = i;
  });
  return { ids: enc.ids, first };
}

/** Hidden states of every layer at each labelled word's first token: one (N, C) tensor per layer. */
function features(model: PretrainedModel, tokenizer: Tokenizer, sentences: readonly ProbeSentence[], o: ProbeOptions): { perLayer: Tensor[]; sentenceOf: number[]; tags: string[] } {
  const maxLength = o.maxLength ?? modelMaxLength(model);
  const padId = tokenizer.tokenToId(tokenizer.specialTokens.pad ?? "") ?? 0;
  const bs = o.batchSize ?? 16;
  const chunks: Tensor[][] = [];
  const sentenceOf: number[] = [];
  const tags: string[] = [];
  for (let s = 0; s < sentences.length; s += bs) {
    const batch = sentences.slice(s, s + bs).map((x) => firstPieces(tokenizer, x.tokens, maxLength));
    const width = Math.max(...batch.map((b) => b.ids.length));
    const flat: number[] = [];
    batch.forEach((b, k) =>
      b.first.forEach((piece, w) => {
        if (piece < 0) return;
        flat.push(k * width + piece);
        sentenceOf.push(s + k);
        tags.push(sentences[s + k]!.tags[w]!);
      }),
    );
    const ids = torch.tensor(batch.flatMap((b) => [...b.ids, ...new Array<number>(width - b.ids.length).fill(padId)]), { dtype: "int64", shape: [batch.length, width] });
    const mask = torch.tensor(batch.flatMap((b) => [...b.ids.map(() => 1), ...new Array<number>(width - b.ids.length).fill(0)]), { dtype: "int64", shape: [batch.length, width] });
    const rows = torch.tensor(flat, { dtype: "int64" });
    chunks.push(
      torch.noGrad(() =>
        torch.scope(() => {
          const hs = model.forward({ inputIds: ids, attentionMask: mask, outputHiddenStates: true }).hiddenStates;
          if (!hs?.length) throw new Error(`probe: ${model.constructor.name} returned no hidden states`);
          return hs.map((h) => h.reshape([-1, h.shape[2]!]).indexSelect(0, rows).float()); // (n, C) per layer
        }),
      ),
    );
    torch.dispose([ids, mask, rows]);
  }
  const perLayer = chunks[0]!.map((_, l) => torch.cat(chunks.map((c) => c[l]!), 0));
  torch.dispose(chunks);
  return { perLayer, sentenceOf, tags };
}

function macroF1(gold: number[], pred: number[], K: number): number {
  let sum = 0;
  let present = 0;
  for (let k = 0; k < K; k++) {
    let tp = 0, fp = 0, fn = 0;
    gold.forEach((g, i) => {
      if (pred[i] === k && g === k) tp++;
      else if (pred[i] === k) fp++;
      else if (g === k) fn++;
    });
    if (tp + fn === 0) continue; // a label absent from the held-out words does not count
    present++;
    sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return present ? sum / present : 0;
}

/** Trains one probe on (train rows, labels) and returns its predictions for the test rows and train accuracy. */
function trainProbe(x: Tensor, y: number[], train: number[], test: number[], K: number, o: ProbeOptions): { pred: number[]; trainAccuracy: number } {
  return torch.scope(() => {
    const trainIdx = torch.tensor(train, { dtype: "int64" });
    const xTrain = x.indexSelect(0, trainIdx);
    const mean = xTrain.mean(0, true);
    const std = xTrain.std(0, false, true).add(1e-6);
    const xs = xTrain.sub(mean).div(std);
    const xTest = x.indexSelect(0, torch.tensor(test, { dtype: "int64" })).sub(mean).div(std);
    const m = fitLogistic(xs, train.map((i) => y[i]!), K, { C: o.C ?? 1 }); // its tensors end with this scope
    const trainPred = predictLogistic(m, xs);
    const trainAccuracy = trainPred.filter((p, i) => p === y[train[i]!]).length / train.length;
    return { pred: predictLogistic(m, xTest), trainAccuracy };
  });
}

/**
 * Trains a linear probe on each layer's hidden states for word labels; held-out accuracy per layer.
 * @example probeLayers(model, tokenizer, sotuNer().train).layers.map((l) => l.accuracy)
 */
export function probeLayers(model: PretrainedModel, tokenizer: Tokenizer, sentences: readonly ProbeSentence[], options: ProbeOptions = {}): ProbeResult {
  const used = sentences.slice(0, options.maxSentences ?? 400);
  used.forEach((s, i) => {
    if (s.tokens.length !== s.tags.length) throw new Error(`probe: sentence ${i} has ${s.tokens.length} words but ${s.tags.length} labels`);
  });
  const heldOut = options.heldOut ?? 0.25;
  if (!(heldOut > 0 && heldOut < 1)) throw new RangeError(`probe: heldOut must be in (0, 1), got ${heldOut}`);
  // the split, by sentence
  const order = used.map((_, i) => i);
  const random = rng(options.seed ?? 0);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nTest = Math.max(1, Math.round(order.length * heldOut));
  if (order.length - nTest < 1) throw new Error(`probe: ${used.length} sentence(s) are too few to train and test a probe`);
  const testSentences = new Set(order.slice(0, nTest));
  return inEvalMode(model, () =>
    torch.scope(() => {
      const { perLayer, sentenceOf, tags } = features(model, tokenizer, used, options);
      const label = (t: string): string => ((options.collapseIob ?? true) && /^[BIES]-/.test(t) ? t.slice(2) : t);
      const names = [...new Set(tags.map(label))].sort((a, b) => (a === "O" ? -1 : b === "O" ? 1 : a.localeCompare(b)));
      const y = tags.map((t) => names.indexOf(label(t)));
      const train = y.map((_, i) => i).filter((i) => !testSentences.has(sentenceOf[i]!));
      const test = y.map((_, i) => i).filter((i) => testSentences.has(sentenceOf[i]!));
      if (train.length === 0 || test.length === 0) throw new Error("probe: no labelled words in the training or the held-out sentences");
      const counts = names.map((_, k) => train.filter((i) => y[i] === k).length);
      const major = counts.indexOf(Math.max(...counts));
      const gold = test.map((i) => y[i]!);
      const layers = perLayer.map((x, layer) => {
        const r = trainProbe(x, y, train, test, names.length, options);
        return { layer, accuracy: r.pred.filter((p, i) => p === gold[i]).length / test.length, macroF1: macroF1(gold, r.pred, names.length), trainAccuracy: r.trainAccuracy };
      });
      return {
        labels: names,
        layers,
        majority: { label: names[major]!, accuracy: gold.filter((g) => g === major).length / gold.length },
        words: { train: train.length, test: test.length },
        sentences: { train: used.length - nTest, test: nTest },
      };
    }),
  );
}

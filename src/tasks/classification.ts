// Text classification: a head on a pretrained model, four transfer strategies (full
// fine-tuning, feature extraction, frozen lower layers, LoRA), early stopping on a validation
// metric with the best weights restored, prediction with probabilities, and error analysis.
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear, applyLoRA, LoRALinear } from "../nn/index.js";
import { AdamW, LRScheduler, clipGradNorm, decayGroups, schedules } from "../optim/index.js";
import { AutoModelForSequenceClassification, savePretrained } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { Rng } from "../data/random.js";
import type { LabelledExample } from "../data/labelled.js";
import { classificationReport } from "../eval/index.js";
import type { ClassificationReport } from "../eval/index.js";
import { saveCheckpoint, writeTextAtomic } from "../io/index.js";
import { adversarialBackward, wordEmbeddings } from "../nn/adversarial.js";
import type { AdversarialOptions } from "../nn/adversarial.js";

export type Strategy = "full" | "features" | `features:${number}` | `freeze:${number}` | "lora";

export interface FinetuneOptions {
  /** A checkpoint folder (with its tokenizer files, or give `tokenizer`). */
  model: string;
  tokenizer?: string;
  train: LabelledExample[];
  validation: LabelledExample[];
  /** Label names in class-index order (default: the sorted labels of the training set). */
  labels?: string[];
  strategy?: Strategy;
  /** Start from random weights of the same architecture (a baseline for "does pretraining help?"). */
  fromScratch?: boolean;
  learningRate?: number;
  epochs?: number;
  batchSize?: number;
  maxLength?: number;
  dropout?: number;
  weightDecay?: number;
  warmupRatio?: number;
  /** Early stopping: evaluations without improvement before stopping (0: never stop early). */
  patience?: number;
  /** Evaluate every N steps (default: once per epoch). */
  evalSteps?: number;
  metric?: "accuracy" | "macro_f1";
  precision?: "fp32" | "bf16";
  seed?: number;
  loraRank?: number;
  /** Adversarial training on the word embeddings (FGM or FreeLB). */
  adversarial?: AdversarialOptions;
  onStep?: (s: { step: number; totalSteps: number; loss: number; epoch: number }) => void;
  onEval?: (e: EvalRecord) => void;
}

export interface EvalRecord {
  step: number;
  epoch: number;
  train_loss: number;
  val_loss: number;
  accuracy: number;
  macro_f1: number;
}

export interface FinetuneResult {
  model: PretrainedModel;
  tokenizer: Tokenizer;
  labels: string[];
  history: EvalRecord[];
  best: EvalRecord;
  steps: number;
  stoppedEarly: boolean;
  /** Training loss per step (for curves). */
  losses: number[];
  trainable: number;
}

/** Which parameters a strategy trains; the rest are frozen. */
export function applyStrategy(model: PretrainedModel, strategy: Strategy, options: { loraRank?: number } = {}): void {
  const prefix = ["bert", "roberta", "albert", "electra", "transformer"].find((p) => model.stateDict().has(`${p}.embeddings.word_embeddings.weight`) || model.stateDict().has(`${p}.wte.weight`)) ?? "";
  const isBody = (name: string): boolean => prefix !== "" && name.startsWith(`${prefix}.`);
  if (strategy === "full") {
    model.unfreeze();
    return;
  }
  if (strategy === "features" || strategy.startsWith("features:")) {
    for (const [name, p] of model.namedParameters()) p.requiresGrad = !isBody(name);
    return;
  }
  const m = /^freeze:(\d+)$/.exec(strategy);
  if (m) {
    const n = Number(m[1]);
    if (model.config.model_type === "albert" && n > 0) throw new Error("freeze:N: ALBERT shares its layers across depth; only freeze:0 (the embeddings) applies");
    const frozen = new RegExp(`^${prefix}\\.(embeddings\\.|wte\\.|wpe\\.|(encoder\\.layer|h)\\.(${Array.from({ length: n }, (_, i) => i).join("|") || "none"})\\.)`);
    for (const [name, p] of model.namedParameters()) p.requiresGrad = !frozen.test(name);
    return;
  }
  if (strategy === "lora") {
    if (model.config.model_type === "gpt2") throw new Error("lora: GPT-2's attention is a Conv1D; LoRA applies to BERT, RoBERTa, ALBERT and ELECTRA here");
    applyLoRA(model, /(attention\.self\.(query|value)|attention\.(query|value))$/, { r: options.loraRank ?? 8, alpha: 2 * (options.loraRank ?? 8), dropout: 0.1 });
    for (const [name, p] of model.namedParameters()) if (!isBody(name)) p.requiresGrad = true; // the head trains too
    return;
  }
  throw new Error(`unknown strategy "${strategy}"; use full, features, features:N, freeze:N or lora`);
}

interface Encoded {
  ids: number[];
  typeIds: number[];
  label: number;
}

function encodeAll(tok: Tokenizer, examples: LabelledExample[], labelIndex: Map<string, number>, maxLength: number, where: string): Encoded[] {
  return examples.map((e) => {
    const label = labelIndex.get(e.label);
    if (label === undefined) throw new Error(`${e.source}: unknown label "${e.label}" (${where}); the labels are ${[...labelIndex.keys()].join(", ")}`);
    const enc = tok.encode(e.text, e.textPair ?? null, { maxLength, truncation: "longest_first" });
    return { ids: enc.ids, typeIds: enc.typeIds, label };
  });
}

/** Pads a batch to its longest member (dynamic padding). */
function collate(rows: Encoded[], padId: number): { inputIds: Tensor; attentionMask: Tensor; tokenTypeIds: Tensor; labels: Tensor } {
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(rows.length * T).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * T);
  const types = new BigInt64Array(rows.length * T);
  rows.forEach((r, b) => {
    r.ids.forEach((id, i) => {
      ids[b * T + i] = BigInt(id);
      mask[b * T + i] = 1n;
      types[b * T + i] = BigInt(r.typeIds[i]!);
    });
  });
  const shape = [rows.length, T];
  return {
    inputIds: torch.tensor(ids, { shape }),
    attentionMask: torch.tensor(mask, { shape }),
    tokenTypeIds: torch.tensor(types, { shape }),
    labels: torch.tensor(rows.map((r) => r.label), { dtype: "int64" }),
  };
}

/** A classifier that reads the mean [CLS] vector of the last N layers (feature extraction, features:N). */
class LayerPoolHead {
  constructor(readonly n: number, readonly linear: Linear) {}
  logits(model: PretrainedModel, b: ReturnType<typeof collate>): Tensor {
    const out = model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, outputHiddenStates: true });
    const hs = out.hiddenStates!;
    const last = hs.slice(-this.n).map((h) => h.select(1, 0));
    return this.linear.forward(torch.stack(last, 0).mean(0));
  }
}

export interface Classifier {
  model: PretrainedModel;
  tokenizer: Tokenizer;
  labels: string[];
  maxLength: number;
  pool?: LayerPoolHead;
}

/** Class probabilities for texts, in batches, in eval mode. */
export function predictProbabilities(c: Classifier, examples: { text: string; textPair?: string }[], batchSize = 32): number[][] {
  const labelIndex = new Map(c.labels.map((l, i) => [l, i]));
  const rows = encodeAll(c.tokenizer, examples.map((e) => ({ ...e, label: c.labels[0]!, source: "input" })), labelIndex, c.maxLength, "predict");
  const padId = c.tokenizer.tokenToId(c.tokenizer.specialTokens.pad ?? "[PAD]") ?? 0;
  c.model.eval();
  const out: number[][] = [];
  torch.noGrad(() => {
    for (let s = 0; s < rows.length; s += batchSize) {
      torch.scope(() => {
        const b = collate(rows.slice(s, s + batchSize), padId);
        const logits = c.pool ? c.pool.logits(c.model, b) : c.model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds }).logits;
        out.push(...(logits.float().softmax(-1).toArray() as number[][]));
      });
    }
  });
  return out;
}

/** Scores a classifier on labelled examples. */
export function evaluateClassifier(c: Classifier, examples: LabelledExample[]): { report: ClassificationReport; probabilities: number[][]; truth: number[]; predicted: number[] } {
  const labelIndex = new Map(c.labels.map((l, i) => [l, i]));
  const truth = examples.map((e) => {
    const i = labelIndex.get(e.label);
    if (i === undefined) throw new Error(`${e.source}: unknown label "${e.label}"; the model knows ${c.labels.join(", ")}`);
    return i;
  });
  const probabilities = predictProbabilities(c, examples);
  const predicted = probabilities.map((p) => p.indexOf(Math.max(...p)));
  const report = classificationReport(truth, predicted, c.labels, c.labels.length === 2 ? probabilities.map((p) => p[1]!) : undefined);
  return { report, probabilities, truth, predicted };
}

/** Writes the misclassified examples, most confident first, as JSONL. Returns how many. */
export function writeErrors(path: string, c: Classifier, examples: LabelledExample[], r: ReturnType<typeof evaluateClassifier>): number {
  const wrong = examples
    .map((e, i) => ({ e, i }))
    .filter(({ i }) => r.predicted[i] !== r.truth[i])
    .map(({ e, i }) => ({
      source: e.source,
      text: e.text.slice(0, 500),
      true_label: c.labels[r.truth[i]!],
      predicted_label: c.labels[r.predicted[i]!],
      confidence: r.probabilities[i]![r.predicted[i]!],
      probabilities: Object.fromEntries(c.labels.map((l, k) => [l, r.probabilities[i]![k]])),
    }))
    .sort((a, b) => b.confidence! - a.confidence!);
  writeTextAtomic(path, wrong.map((w) => JSON.stringify(w)).join("\n") + (wrong.length ? "\n" : ""));
  return wrong.length;
}

/** Fine-tunes a classifier with early stopping; the best validation weights are restored at the end. */
export async function finetuneClassifier(o: FinetuneOptions): Promise<FinetuneResult & { classifier: Classifier }> {
  const seed = o.seed ?? 42;
  torch.manualSeed(seed);
  const tokDir = o.tokenizer ?? o.model;
  if (!existsSync(tokDir)) throw new Error(`${tokDir}: no tokenizer here; pass --tokenizer`);
  const tok = loadTokenizer(tokDir);
  const labels = o.labels ?? [...new Set(o.train.map((e) => e.label))].sort();
  if (labels.length < 2) throw new Error(`the training data has ${labels.length} label(s); classification needs at least 2`);
  const labelIndex = new Map(labels.map((l, i) => [l, i]));
  const maxLength = o.maxLength ?? 128;
  const train = encodeAll(tok, o.train, labelIndex, maxLength, "train");
  const val = encodeAll(tok, o.validation, labelIndex, maxLength, "validation");
  const id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
  const label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  const overrides: Record<string, unknown> = { id2label, label2id };
  if (o.dropout !== undefined) {
    overrides.hidden_dropout_prob = o.dropout;
    overrides.classifier_dropout = o.dropout;
  }
  let model: PretrainedModel;
  if (o.fromScratch) {
    const { configFromPretrained } = await import("../models/index.js");
    const cfg = await configFromPretrained(o.model, overrides);
    model = AutoModelForSequenceClassification.fromConfig({ ...cfg, architectures: undefined });
  } else {
    model = await AutoModelForSequenceClassification.fromPretrained(o.model, { config: overrides, verbose: false });
  }
  const strategy = o.strategy ?? "full";
  applyStrategy(model, strategy, { loraRank: o.loraRank ?? 8 });
  let pool: LayerPoolHead | undefined;
  const fm = /^features:(\d+)$/.exec(strategy);
  if (fm && Number(fm[1]) > 1) {
    const hidden = (model.config.hidden_size ?? model.config.n_embd) as number;
    pool = new LayerPoolHead(Number(fm[1]), new Linear(hidden, labels.length));
  }
  const trainable = [...model.namedParameters(), ...(pool ? [...pool.linear.namedParameters()].map(([n, p]) => [`pool.${n}`, p] as [string, Tensor]) : [])].filter(([, p]) => p.requiresGrad);
  const optimizer = new AdamW(decayGroups(trainable, o.weightDecay ?? 0.01), { lr: o.learningRate ?? 5e-5 });
  const epochs = o.epochs ?? 3;
  const batchSize = o.batchSize ?? 32;
  const stepsPerEpoch = Math.ceil(train.length / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  const scheduler = new LRScheduler(optimizer, schedules.linearWarmupDecay(Math.round(totalSteps * (o.warmupRatio ?? 0.1)), totalSteps));
  const padId = tok.tokenToId(tok.specialTokens.pad ?? "[PAD]") ?? 0;
  const classifier: Classifier = { model, tokenizer: tok, labels, maxLength, ...(pool ? { pool } : {}) };
  const metric = o.metric ?? "macro_f1";
  const history: EvalRecord[] = [];
  const losses: number[] = [];
  let best: EvalRecord | null = null;
  let bestState: Map<string, Tensor> | null = null;
  let sinceBest = 0;
  let step = 0;
  let stoppedEarly = false;
  let running = 0;
  let runningN = 0;
  const lossOf = (b: ReturnType<typeof collate>, inputsEmbeds?: Tensor): Tensor => {
    if (pool) return torch.crossEntropy(pool.logits(model, b).float(), b.labels);
    return model.forward({ inputIds: b.inputIds, ...(inputsEmbeds ? { inputsEmbeds } : {}), attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, labels: b.labels }).loss!;
  };
  const evaluate = (epoch: number): EvalRecord => {
    let lossSum = 0;
    model.eval();
    torch.noGrad(() => {
      for (let s = 0; s < val.length; s += batchSize) {
        torch.scope(() => {
          const b = collate(val.slice(s, s + batchSize), padId);
          lossSum += lossOf(b).item() * Math.min(batchSize, val.length - s);
        });
      }
    });
    const { report } = evaluateClassifier(classifier, o.validation);
    return { step, epoch, train_loss: running / Math.max(1, runningN), val_loss: lossSum / Math.max(1, val.length), accuracy: report.accuracy, macro_f1: report.macro_f1 };
  };
  outer: for (let epoch = 0; epoch < epochs; epoch++) {
    const order = new Rng(seed, epoch, 0xf1e).shuffle(Array.from({ length: train.length }, (_, i) => i));
    for (let s = 0; s < order.length; s += batchSize) {
      model.train();
      const loss = torch.scope(() => {
        const b = collate(order.slice(s, s + batchSize).map((i) => train[i]!), padId);
        return torch.autocast(
          () => {
            if (o.adversarial && !pool) {
              const embed = wordEmbeddings(model);
              return adversarialBackward(() => embed(b.inputIds), (e) => lossOf(b, e), o.adversarial);
            }
            const l = lossOf(b);
            l.backward();
            return l.item();
          },
          { enabled: o.precision === "bf16" },
        );
      });
      if (!Number.isFinite(loss)) throw new Error(`fine-tuning: the loss became ${loss} at step ${step + 1}; try a lower --learning-rate`);
      clipGradNorm(trainable.map(([, p]) => p), 1);
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      step++;
      losses.push(loss);
      running += loss;
      runningN++;
      o.onStep?.({ step, totalSteps, loss, epoch });
      const endOfEpoch = s + batchSize >= order.length;
      if ((o.evalSteps && step % o.evalSteps === 0) || (!o.evalSteps && endOfEpoch)) {
        const rec = evaluate(epoch);
        running = 0;
        runningN = 0;
        history.push(rec);
        o.onEval?.(rec);
        if (!best || rec[metric] > best[metric]) {
          best = rec;
          sinceBest = 0;
          if (bestState) torch.dispose([...bestState.values()]);
          bestState = new Map(trainable.map(([n, p]) => [n, torch.keep(p.detach().clone())]));
        } else if (o.patience && ++sinceBest >= o.patience) {
          stoppedEarly = true;
          break outer;
        }
      }
    }
  }
  // restore the best weights
  if (bestState) {
    torch.noGrad(() => {
      for (const [n, p] of trainable) p.copy_(bestState!.get(n)!);
    });
    torch.dispose([...bestState.values()]);
  }
  optimizer.dispose();
  model.eval();
  return { model, tokenizer: tok, labels, history, best: best!, steps: step, stoppedEarly, losses, trainable: trainable.reduce((n, [, p]) => n + p.numel, 0), classifier };
}

/** Saves a fine-tuned classifier as a Hugging Face checkpoint (LoRA merged), with its tokenizer files. */
export function saveClassifier(c: Classifier, out: string, tokenizerDir: string): void {
  for (const [, m] of c.model.namedModules()) if (m instanceof LoRALinear) m.merge();
  // LoRA's A and B are folded in: save the plain model's tensors only
  const plain = new Map([...c.model.stateDict()].filter(([n]) => !/\.lora_[AB]\./.test(n)));
  const copy: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt"]) if (existsSync(join(tokenizerDir, f))) copy[f] = join(tokenizerDir, f);
  if (plain.size === c.model.stateDict().size) {
    savePretrained(c.model, out, { copy, mode: "files" });
  } else {
    const seen = new Set<Tensor>();
    const tensors = new Map<string, Tensor>();
    for (const [n, t] of plain) {
      if (seen.has(t)) continue;
      seen.add(t);
      tensors.set(n, t);
    }
    saveCheckpoint(out, { ...c.model.config, architectures: [c.model.constructor.name] }, tensors, { copy, mode: "files" });
  }
}


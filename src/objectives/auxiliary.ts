// Auxiliary tasks beside the main objective: a small head on the encoder's last hidden states
// (per token, or on [CLS] per sequence), trained with a weight next to the masked-LM loss.
// Adding one is this much: a name, a number of classes, and a function from an example to the
// example the model sees and its labels (-100 where nothing is asked).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear, Module } from "../nn/index.js";
import type { Example } from "../data/pretraining.js";
import type { Rng } from "../data/random.js";

export interface AuxiliaryTask {
  readonly name: string;
  readonly classes: number;
  /** "token": a label per token, the head reads every position; "sequence": one label, the head reads the first ([CLS]) position. */
  readonly level: "token" | "sequence";
  /**
   * The example the model sees (a task may rewrite it, as sentence reordering shuffles it) and
   * the task's labels: one per token (-100 where nothing is asked) or one per sequence. The
   * generator is keyed by (seed, epoch, index), so that a resumed run draws the same.
   */
  apply(ex: Example, rng: Rng): { example: Example; labels: Int32Array };
}

/** Word-boundary prediction: does this token start a word? (Asked of every non-special token, masked ones included.) */
export const wordBoundary: AuxiliaryTask = {
  name: "word_boundary",
  classes: 2,
  level: "token",
  apply: (ex) => ({ example: ex, labels: Int32Array.from(ex.ids, (_, i) => (ex.special[i] ? -100 : ex.wordStart[i]!)) }),
};

function factorial(n: number): number {
  return n <= 1 ? 1 : n * factorial(n - 1);
}

/** The lexicographic rank of a permutation of 0..n-1 (Lehmer code). */
export function permutationRank(perm: readonly number[]): number {
  let rank = 0;
  for (let i = 0; i < perm.length; i++) {
    let smaller = 0;
    for (let j = i + 1; j < perm.length; j++) if (perm[j]! < perm[i]!) smaller++;
    rank += smaller * factorial(perm.length - 1 - i);
  }
  return rank;
}

/**
 * The class of a segment permutation: segments that stay adjacent and in order are one segment
 * (so that a text has one class: cutting A|B|C into (C, A, B) reads as AB|C into (C, AB)), then
 * sum_{k<n} k! + rank for the n segments left; 0 for no change.
 */
export function reorderingClass(perm: readonly number[]): number {
  // merge runs p[j+1] = p[j] + 1, then renumber the runs by their first segment
  const runs: number[] = [];
  perm.forEach((p, j) => {
    if (j === 0 || p !== perm[j - 1]! + 1) runs.push(p);
  });
  const sorted = [...runs].sort((a, b) => a - b);
  const merged = runs.map((r) => sorted.indexOf(r));
  let offset = 0;
  for (let k = 1; k < merged.length; k++) offset += factorial(k);
  return merged.length === 1 ? 0 : offset + permutationRank(merged);
}

/**
 * Sentence reordering (ERNIE 2.0): the text of a sequence is cut into 1 to m segments (at
 * sentence starts where there are enough, else at word starts), the segments are shuffled, and
 * the model predicts the permutation from [CLS]: a classification over sum_{n=1..m} n! classes
 * (9 for m = 3), the class of n segments in permutation p being sum_{k<n} k! + rank(p), with
 * segments left adjacent and in order counted as one (reorderingClass), so that every shuffled
 * text has one answer. Special tokens stay where they are.
 */
export function sentenceReordering(maxSegments = 3): AuxiliaryTask {
  if (!Number.isInteger(maxSegments) || maxSegments < 2 || maxSegments > 5) throw new RangeError(`sentence reordering: segments must be 2 to 5, got ${maxSegments}`);
  let classes = 0;
  for (let n = 1; n <= maxSegments; n++) classes += factorial(n);
  return {
    name: "sentence_reordering",
    classes,
    level: "sequence",
    apply(ex, rng) {
      const body: number[] = [];
      for (let i = 0; i < ex.ids.length; i++) if (!ex.special[i]) body.push(i);
      const want = 1 + rng.int(maxSegments);
      // cut candidates: indices into body where a sentence (else a word) starts
      const starts = (flags: Uint8Array | undefined): number[] => (flags ? body.map((p, k) => (k > 0 && flags[p] ? k : -1)).filter((k) => k > 0) : []);
      let cands = starts(ex.sentStart);
      if (cands.length < want - 1) cands = starts(ex.wordStart);
      const n = Math.min(want, cands.length + 1);
      const cuts = rng.shuffle(cands).slice(0, n - 1).sort((a, b) => a - b);
      const bounds = [0, ...cuts, body.length];
      const perm = rng.shuffle(Array.from({ length: n }, (_, k) => k));
      const label = Int32Array.of(reorderingClass(perm));
      if (label[0] === 0) return { example: ex, labels: label };
      // the new order of body positions: segment perm[0] first, then perm[1], ...
      const from = perm.flatMap((k) => body.slice(bounds[k]!, bounds[k + 1]!));
      const ids = Int32Array.from(ex.ids);
      const wordStart = Uint8Array.from(ex.wordStart);
      const sentStart = ex.sentStart ? Uint8Array.from(ex.sentStart) : undefined;
      body.forEach((p, j) => {
        ids[p] = ex.ids[from[j]!]!;
        wordStart[p] = ex.wordStart[from[j]!]!;
        if (sentStart) sentStart[p] = ex.sentStart![from[j]!]!;
      });
      return { example: { ...ex, ids, wordStart, ...(sentStart ? { sentStart } : {}) }, labels: label };
    },
  };
}

export const AUXILIARY_TASKS: Readonly<Record<string, AuxiliaryTask>> = { "word-boundary": wordBoundary, "sentence-reordering": sentenceReordering(3) };

export interface WeightedAuxiliary {
  task: AuxiliaryTask;
  weight: number;
}

/** The head's attribute name on the model (a child module, so that it trains and checkpoints with it). */
export function auxiliaryHeadName(task: AuxiliaryTask): string {
  return `aux_${task.name}`;
}

/** Attaches a head per task to the model: Linear(hidden, classes). */
export function attachAuxiliaryHeads(model: Module & { config: Record<string, unknown> }, tasks: WeightedAuxiliary[]): void {
  const hidden = (model.config.hidden_size ?? model.config.n_embd) as number;
  for (const { task } of tasks) {
    const head = new Linear(hidden, task.classes);
    (model as unknown as Record<string, Module>)[auxiliaryHeadName(task)] = head;
  }
}

/** Removes the heads (before saving the model in Hugging Face's layout). */
export function detachAuxiliaryHeads(model: Module, tasks: WeightedAuxiliary[]): void {
  for (const { task } of tasks) {
    const m = model as unknown as Record<string, Module | undefined>;
    m[auxiliaryHeadName(task)]?.dispose();
    delete m[auxiliaryHeadName(task)];
  }
}

/**
 * The weighted auxiliary loss from the last hidden states (B, T, H) and the padded labels
 * (B, T, or B, 1 for sequence tasks); with metrics (each task's loss and accuracy counts), for
 * evaluation: a training step skips them, and the reads back from the tensors they need.
 */
export function auxiliaryLoss(model: Module, hidden: Tensor, labels: Record<string, Tensor>, tasks: WeightedAuxiliary[], options: { metrics?: boolean } = {}): { loss: Tensor; metrics: Record<string, number> } {
  let total: Tensor | null = null;
  const metrics: Record<string, number> = {};
  for (const { task, weight } of tasks) {
    const head = (model as unknown as Record<string, Linear>)[auxiliaryHeadName(task)];
    if (!head) throw new Error(`auxiliary task ${task.name}: no head on the model (attachAuxiliaryHeads)`);
    const y = labels[task.name]!; // (B, T) or (B, 1)
    const logits = head.forward(task.level === "sequence" ? hidden.narrow(1, 0, 1) : hidden); // (B, T or 1, classes)
    const l = torch.crossEntropy(logits.reshape([-1, task.classes]).float(), y.reshape([-1]));
    if (options.metrics) {
      metrics[`${task.name}_loss`] = l.item();
      metrics[`${task.name}_correct`] = torch.noGrad(() => torch.scope(() => logits.argmax(-1).eq(y).logicalAnd(y.ne(-100)).sum().item()));
      metrics[`${task.name}_total`] = torch.noGrad(() => torch.scope(() => y.ne(-100).sum().item()));
    }
    total = total ? total.add(l.mul(weight)) : l.mul(weight);
  }
  return { loss: total!, metrics };
}

// Auxiliary tasks beside the main objective: a small per-token head on the encoder's last
// hidden states, trained with a weight next to the masked-LM loss. Adding one is this much:
// a name, a number of classes, and the labels of an example (-100 where nothing is asked).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Linear, Module } from "../nn/index.js";
import type { Example } from "../data/pretraining.js";

export interface AuxiliaryTask {
  readonly name: string;
  readonly classes: number;
  /** One label per token of the (unmasked) example; -100 where the task asks nothing. */
  labels(ex: Example): Int32Array;
}

/** Word-boundary prediction: does this token start a word? (Asked of every non-special token, masked ones included.) */
export const wordBoundary: AuxiliaryTask = {
  name: "word_boundary",
  classes: 2,
  labels: (ex) => Int32Array.from(ex.ids, (_, i) => (ex.special[i] ? -100 : ex.wordStart[i]!)),
};

export const AUXILIARY_TASKS: Readonly<Record<string, AuxiliaryTask>> = { "word-boundary": wordBoundary };

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

/** The weighted auxiliary loss from the last hidden states (B, T, H) and the padded labels (B, T). */
export function auxiliaryLoss(model: Module, hidden: Tensor, labels: Record<string, Tensor>, tasks: WeightedAuxiliary[]): { loss: Tensor; metrics: Record<string, number> } {
  let total: Tensor | null = null;
  const metrics: Record<string, number> = {};
  for (const { task, weight } of tasks) {
    const head = (model as unknown as Record<string, Linear>)[auxiliaryHeadName(task)];
    if (!head) throw new Error(`auxiliary task ${task.name}: no head on the model (attachAuxiliaryHeads)`);
    const y = labels[task.name]!;
    const logits = head.forward(hidden); // (B, T, classes)
    const l = torch.crossEntropy(logits.reshape([-1, task.classes]).float(), y.reshape([-1]));
    metrics[`${task.name}_loss`] = l.item();
    const right = torch.noGrad(() => torch.scope(() => logits.argmax(-1).eq(y).logicalAnd(y.ne(-100)).sum().item()));
    metrics[`${task.name}_correct`] = right;
    metrics[`${task.name}_total`] = torch.noGrad(() => torch.scope(() => y.ne(-100).sum().item()));
    total = total ? total.add(l.mul(weight)) : l.mul(weight);
  }
  return { loss: total!, metrics };
}

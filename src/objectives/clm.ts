// Causal language modelling (GPT-2): the labels are the inputs (the model shifts them);
// padding is ignored.
import type { Tensor } from "../torch/index.js";
import { summariseSums } from "../models/index.js";
import type { Objective, PretrainedModel } from "../models/index.js";
import type { Example } from "../data/pretraining.js";
import { pad2d, paddingMask } from "../data/collate.js";
import type { PretrainBatch } from "./mlm.js";
import type { ObjectiveEntry } from "./registry.js";

/** Causal language modelling: the labels are the inputs (the model shifts them); padding is ignored. */
export class CausalLM implements Objective<Example, PretrainBatch> {
  readonly name = "clm";

  constructor(readonly padId: number) {}

  batch(examples: readonly Example[], indices: number[], _epoch = 0): PretrainBatch {
    const rows = indices.map((i) => examples[i]!.ids);
    const labels = rows.map((r) => r);
    return {
      inputIds: pad2d(rows, this.padId),
      attentionMask: paddingMask(rows),
      tokenTypeIds: pad2d(rows.map((r) => new Int32Array(r.length)), 0),
      labels: pad2d(labels, -100),
      targets: rows.reduce((n, r) => n + Math.max(0, r.length - 1), 0),
    };
  }

  loss(model: PretrainedModel, b: PretrainBatch): { loss: Tensor; metrics: Record<string, number> } {
    const out = model.forward({ inputIds: b.inputIds, ...(b.inputsEmbeds ? { inputsEmbeds: b.inputsEmbeds } : {}), attentionMask: b.attentionMask, labels: b.labels });
    if (!out.loss) throw new Error("clm: the model returned no loss (is it a causal LM?)");
    return { loss: out.loss, metrics: {} };
  }

  /** Loss and perplexity (exp of the mean loss per predicted token). */
  summarise(sums: Record<string, number>): Record<string, number> {
    const out = summariseSums(sums);
    return { ...out, perplexity: Math.exp(out.loss!) };
  }
}

/** clm in the objective registry. */
export const objectives: ObjectiveEntry[] = [
  {
    name: "clm",
    summary: "causal language modelling: each token predicts the next (GPT-2)",
    head: "causal-lm",
    sequences: "causal",
    needsMask: false,
    supports: { perturb: false, auxiliary: false, adversarial: true, mixing: true },
    create: (c) => new CausalLM(c.padId),
  },
];

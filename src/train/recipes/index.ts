// The fine-tuning recipes known to help small data and small models (issue 21), each behind a
// flag of `lmforge finetune`: layer-wise learning-rate decay, re-initialised top layers, Adam
// without bias correction (to reproduce BERTAdam), stochastic weight averaging, and mixout.
// (R-Drop and label smoothing change the classification loss: they are that task's options,
// src/tasks/classification.ts.) finetune() calls prepareRecipes() once the model is built and
// finishRecipes() once training ends; everything else lives in one file per recipe.
import { join } from "node:path";
import { defineOptions } from "../../io/options.js";
import { writeTextAtomic } from "../../io/index.js";
import { applyMixout } from "../../nn/index.js";
import type { PretrainedModel } from "../../models/index.js";
import type { TrainerOptions, TrainResult } from "../trainer.js";
import { layerwiseGroups } from "./layer-decay.js";
import { reinitTopLayers } from "./reinit.js";
import { WeightAverager, finishAveraging } from "./swa.js";
import type { SwaDecision } from "./swa.js";

export { layerIndexOf, isEmbedding, layerwiseGroups } from "./layer-decay.js";
export type { LayerGroup } from "./layer-decay.js";
export { reinitTopLayers } from "./reinit.js";
export { WeightAverager, averageWeights, copyWeights, finishAveraging } from "./swa.js";
export type { SwaDecision } from "./swa.js";

/** The recipes' flags of finetune (declared once here). */
export const RECIPE_OPTIONS = defineOptions([
  { flag: "layer-lr-decay", key: "layerLrDecay", type: "number", min: 0, exclusiveMin: true, max: 1, arg: "D", help: "layer-wise lr decay: the head at lr, layer l of L at lr·D^(L−l), the embeddings at lr·D^(L+1) (default 1: off)" },
  { flag: "reinit-layers", key: "reinitLayers", type: "int", min: 0, arg: "K", help: "re-initialise the top K layers and the pooler with the model's own initialisation before fine-tuning (Zhang et al. 2021)" },
  { flag: "no-bias-correction", key: "noBiasCorrection", type: "boolean", default: false, help: "AdamW without bias correction, as the original BERT's optimizer (BERTAdam)" },
  { flag: "swa", key: "swa", type: "int", min: 1, arg: "K", help: "average the weights of the last K evaluations; the average replaces the best weights if strictly better on validation" },
  { flag: "mixout", key: "mixout", type: "number", min: 0, max: 0.9, arg: "P", help: "mixout on every Linear layer: in training each weight is its pretrained value with probability P, rescaled (Lee et al. 2020)" },
]);

export interface RecipeOptions {
  layerLrDecay?: number;
  reinitLayers?: number;
  noBiasCorrection?: boolean;
  swa?: number;
  mixout?: number;
}

/** What the recipes add to a run: Trainer options, an evaluation hook, and the end of the run. */
export interface PreparedRecipes {
  trainer: Pick<TrainerOptions, "optimizerGroups" | "biasCorrection">;
  /** Call with every evaluation's metrics (the model holds the evaluated weights). */
  onEval: (metrics: Record<string, number>) => void;
  /** After training: SWA's decision (written to out/swa.json), mixout removed. */
  finish: (r: TrainResult, evaluate: () => Record<string, number>, metric: { name: string; mode: "max" | "min" }) => SwaDecision | null;
}

/**
 * Applies the recipes that change the model before training (re-initialisation, mixout) and
 * returns what the Trainer needs for the others. Logs what each one did.
 */
export function prepareRecipes(model: PretrainedModel, o: RecipeOptions & { learningRate: number; weightDecay: number; out: string; main: boolean; log?: (line: string) => void }): PreparedRecipes {
  const log = o.log ?? (() => {});
  if (o.reinitLayers) {
    const names = reinitTopLayers(model as unknown as Parameters<typeof reinitTopLayers>[0], o.reinitLayers);
    log(`--reinit-layers ${o.reinitLayers}: ${names.length} tensors drawn afresh (the top ${o.reinitLayers} layers and the pooler)`);
  }
  const trainer: PreparedRecipes["trainer"] = {};
  if (o.layerLrDecay !== undefined && o.layerLrDecay !== 1) {
    const groups = layerwiseGroups(model.namedParameters(), { lr: o.learningRate, decay: o.layerLrDecay, weightDecay: o.weightDecay });
    trainer.optimizerGroups = groups.map(({ params, lr, weightDecay }) => ({ params, lr, weightDecay }));
    const rates = [...new Set(groups.map((g) => g.lr))];
    log(`--layer-lr-decay ${o.layerLrDecay}: ${groups.length} parameter groups, peak learning rates from ${Math.max(...rates).toPrecision(3)} (head) to ${Math.min(...rates).toPrecision(3)} (embeddings)`);
  }
  if (o.noBiasCorrection) trainer.biasCorrection = false;
  const mixout = o.mixout ? applyMixout(model, o.mixout) : null;
  if (mixout) log(`--mixout ${o.mixout}: ${mixout.layers.length} Linear layers mix towards their weights at the start`);
  const averager = o.swa ? new WeightAverager(o.swa) : null;
  return {
    trainer,
    onEval: (m) => averager?.record(model, m.step ?? 0),
    finish(r, evaluate, metric) {
      mixout?.remove();
      if (!averager || r.interrupted) {
        averager?.dispose();
        return null;
      }
      try {
        if (averager.count < 2) {
          log(`--swa ${o.swa}: only ${averager.count} evaluation in the run, nothing to average (evaluate more often: --eval-every N)`);
          return null;
        }
        const d = finishAveraging(model, averager, { metric: metric.name, mode: metric.mode, best: r.best?.value ?? null, evaluate });
        log(`--swa ${o.swa}: the average of the evaluations at steps ${d.steps.join(", ")} has ${d.metric} ${d.averaged.toFixed(4)}, the best evaluation ${d.best?.toFixed(4) ?? "none"}: ${d.kept ? "the average is kept" : "the best weights stay"}`);
        if (o.main) writeTextAtomic(join(o.out, "swa.json"), JSON.stringify(d, null, 2) + "\n");
        return d;
      } finally {
        averager.dispose();
      }
    },
  };
}

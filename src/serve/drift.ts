// Drift monitoring of one served model: the statistics fine-tuning saved (input_stats.json in the
// model folder) against a sliding window of the live inputs (src/eval/drift.ts), the PSI per
// feature as a gauge, and one warning in the log when a feature crosses the threshold (and one
// note when it falls back under it), never one per request.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Gauge } from "prom-client";
import type { Registry } from "prom-client";
import { DriftWindow, parseReferenceStats } from "../eval/drift.js";
import type { DriftFeature, Observation, ReferenceStats } from "../eval/drift.js";
import { INPUT_STATS_FILE } from "../train/finetune.js";

export { INPUT_STATS_FILE };

/** The folder's reference statistics, or null when it has none (drift is then off for it). */
export function loadReferenceStats(dir: string): ReferenceStats | null {
  const path = join(dir, INPUT_STATS_FILE);
  if (!existsSync(path)) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseReferenceStats(json, path);
}

/** The drift gauges of a registry, shared by every model's monitor. */
export interface DriftGauges {
  psi: Gauge<"model" | "feature">;
  window: Gauge<"model">;
}

export function createDriftGauges(registry: Registry): DriftGauges {
  return {
    psi: new Gauge({ name: "lmforge_drift_psi", help: "population stability index of the last inputs against the training-time statistics, per feature (0.1: moderate shift, 0.25: major); reported once the window is full", labelNames: ["model", "feature"] as const, registers: [registry] }),
    window: new Gauge({ name: "lmforge_drift_window_inputs", help: "inputs in the drift window (PSI is reported once it is full)", labelNames: ["model"] as const, registers: [registry] }),
  };
}

export interface DriftEvent {
  model: string;
  feature: DriftFeature;
  psi: number;
  threshold: number;
  window: number;
}

/** Watches one model's inputs; `onCross` hears each feature's crossing of the threshold, up (drifted true) or back down. */
export class DriftMonitor {
  private readonly window: DriftWindow;
  private readonly above = new Set<DriftFeature>();

  constructor(
    readonly model: string,
    reference: ReferenceStats,
    readonly options: { window: number; threshold: number },
    private readonly gauges: DriftGauges,
    private readonly onCross: (event: DriftEvent, drifted: boolean) => void,
  ) {
    this.window = new DriftWindow(reference, options.window);
  }

  get features(): DriftFeature[] {
    return this.window.features;
  }

  /** Adds a batch's observations, then updates the gauges and says each crossing once. */
  observe(observations: readonly Observation[]): void {
    for (const o of observations) this.window.add(o);
    this.gauges.window.set({ model: this.model }, Math.max(0, ...this.features.map((f) => this.window.filled(f))));
    for (const [feature, value] of Object.entries(this.window.psi()) as [DriftFeature, number][]) {
      this.gauges.psi.set({ model: this.model, feature }, value);
      const drifted = value > this.options.threshold;
      if (drifted === this.above.has(feature)) continue;
      if (drifted) this.above.add(feature);
      else this.above.delete(feature);
      this.onCross({ model: this.model, feature, psi: Math.round(value * 1e4) / 1e4, threshold: this.options.threshold, window: this.options.window }, drifted);
    }
  }
}

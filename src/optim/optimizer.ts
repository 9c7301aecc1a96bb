// The optimizer base: parameter groups with their own hyperparameters, per-parameter state,
// and a state dict that saves and restores exactly.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

export interface ParamGroup<H> {
  params: Tensor[];
  /** Hyperparameters of this group (lr, weightDecay, ...). */
  options: H;
}

/** A group as given by the user: the parameters and any hyperparameters that differ from the defaults. */
export type ParamGroupInput<H> = { params: Tensor[] } & Partial<H>;

/** An optimizer's saved state: tensors by "index.name" and JSON for the rest. */
export interface OptimizerState {
  /** Per parameter (by index across groups, as PyTorch numbers them): step count. */
  meta: { groups: Record<string, number | boolean>[]; steps: Record<string, number> };
  tensors: Map<string, Tensor>;
}

export abstract class Optimizer<H extends { lr: number }> {
  readonly paramGroups: ParamGroup<H>[];
  protected readonly state = new Map<Tensor, { step: number; buffers: Record<string, Tensor> }>();

  constructor(params: Tensor[] | ParamGroupInput<H>[], defaults: H) {
    const groups: ParamGroupInput<H>[] =
      params.length > 0 && !(params[0] instanceof torch.Tensor) ? (params as ParamGroupInput<H>[]) : [{ params: params as Tensor[] } as ParamGroupInput<H>];
    this.paramGroups = groups.map((g) => {
      const { params: ps, ...rest } = g;
      return { params: ps, options: { ...defaults, ...(rest as unknown as Partial<H>) } };
    });
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error("optimizer: a parameter appears in more than one group");
        seen.add(p);
      }
    }
  }

  /** Applies one update from the parameters' current .grad (parameters without one are skipped). */
  abstract step(): void;

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.zeroGrad();
  }

  /** Sets the learning rate of every group (schedulers call this). */
  setLearningRate(lr: number | ((group: ParamGroup<H>, index: number) => number)): void {
    this.paramGroups.forEach((g, i) => {
      g.options.lr = typeof lr === "number" ? lr : lr(g, i);
    });
  }

  protected stateOf(p: Tensor, init: () => Record<string, Tensor>): { step: number; buffers: Record<string, Tensor> } {
    let s = this.state.get(p);
    if (!s) {
      const buffers = torch.noGrad(init);
      torch.keep(Object.values(buffers));
      s = { step: 0, buffers };
      this.state.set(p, s);
    }
    return s;
  }

  private allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /**
   * The complete state (step counts, moment buffers, group hyperparameters), to checkpoint.
   * The tensors are the live buffers, not copies: write them out before the next step.
   */
  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    this.allParams().forEach((p, i) => {
      const s = this.state.get(p);
      if (!s) return;
      steps[String(i)] = s.step;
      for (const [name, t] of Object.entries(s.buffers)) tensors.set(`${i}.${name}`, t);
    });
    return { meta: { groups: this.paramGroups.map((g) => ({ ...g.options }) as Record<string, number | boolean>), steps }, tensors };
  }

  /** Restores a state from stateDict(): the next step is exactly the one that would have followed. */
  loadStateDict(st: OptimizerState): void {
    const params = this.allParams();
    if (st.meta.groups.length !== this.paramGroups.length) {
      throw new Error(`optimizer state has ${st.meta.groups.length} parameter groups, this optimizer ${this.paramGroups.length}`);
    }
    st.meta.groups.forEach((g, i) => Object.assign(this.paramGroups[i]!.options, g));
    for (const s of this.state.values()) torch.dispose(Object.values(s.buffers));
    this.state.clear();
    for (const [idx, step] of Object.entries(st.meta.steps)) {
      const p = params[Number(idx)];
      if (!p) throw new Error(`optimizer state names parameter ${idx}, but there are only ${params.length}`);
      const buffers: Record<string, Tensor> = {};
      for (const [key, t] of st.tensors) {
        const [i, name] = [key.slice(0, key.indexOf(".")), key.slice(key.indexOf(".") + 1)];
        if (i !== idx) continue;
        if (t.shape.join() !== p.shape.join()) {
          throw new Error(`optimizer state ${key} has shape [${t.shape.join(", ")}], parameter ${idx} has [${p.shape.join(", ")}]`);
        }
        buffers[name] = torch.keep(torch.noGrad(() => t.to({ dtype: p.dtype, device: p.device as "cpu", copy: true })));
      }
      this.state.set(p, { step, buffers });
    }
  }

  /** Frees the state buffers. */
  dispose(): void {
    for (const s of this.state.values()) torch.dispose(Object.values(s.buffers));
    this.state.clear();
  }
}

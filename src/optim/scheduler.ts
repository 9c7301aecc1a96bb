// Applies a schedule to an optimizer: lr = base lr of each group × schedule(step), as
// PyTorch's LambdaLR (the step counts scheduler.step() calls, starting at 0).
import type { Optimizer } from "./optimizer.js";
import type { Schedule } from "./schedules.js";

export class LRScheduler {
  private readonly baseLrs: number[];
  private stepCount = 0;

  constructor(private readonly optimizer: Optimizer<{ lr: number }>, private readonly schedule: Schedule) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.options.lr);
    this.apply();
  }

  /** Advances one step and sets the groups' learning rates. */
  step(): void {
    this.stepCount += 1;
    this.apply();
  }

  private apply(): void {
    const f = this.schedule(this.stepCount);
    this.optimizer.setLearningRate((_, i) => this.baseLrs[i]! * f);
  }

  /** The learning rate of each group now. */
  get lastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.options.lr);
  }

  /** The peak (base) learning rate of each group. */
  get baseLearningRates(): number[] {
    return [...this.baseLrs];
  }

  /** Replaces the base learning rates and sets the groups' rates for the current step (a resumed run given a new rate). */
  rebase(baseLrs: number[]): void {
    if (baseLrs.length !== this.baseLrs.length) throw new Error(`rebase: ${baseLrs.length} learning rates for ${this.baseLrs.length} groups`);
    this.baseLrs.splice(0, this.baseLrs.length, ...baseLrs);
    this.apply();
  }

  stateDict(): { stepCount: number; baseLrs: number[] } {
    return { stepCount: this.stepCount, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(s: { stepCount: number; baseLrs: number[] }): void {
    if (s.baseLrs.length !== this.baseLrs.length) throw new Error(`scheduler state has ${s.baseLrs.length} groups, the optimizer ${this.baseLrs.length}`);
    this.stepCount = s.stepCount;
    this.baseLrs.splice(0, this.baseLrs.length, ...s.baseLrs);
    this.apply();
  }
}

// LoRA (Hu et al. 2021): W x + (α/r) · B A dropout(x), with A (r, in) kaiming-uniform and
// B (out, r) zero, so training starts from the base model exactly. Names follow PEFT:
// `lora_A.weight`, `lora_B.weight` beside the base layer's own `weight` and `bias`.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { kaimingUniform_, zeros_ } from "./init.js";
import { Dropout, Linear } from "./layers.js";
import { Module } from "./module.js";

export interface LoRAOptions {
  r?: number;
  alpha?: number;
  dropout?: number;
}

export class LoRALinear extends Linear {
  lora_A: Linear;
  lora_B: Linear;
  lora_dropout: Dropout;
  readonly r: number;
  readonly scaling: number;
  private merged = false;

  /** Wraps a trained Linear: takes over its weight and bias (shared, not copied) and freezes them. */
  constructor(base: Linear, options: LoRAOptions = {}) {
    super(1, 1, { bias: false });
    this.r = options.r ?? 8;
    if (!Number.isInteger(this.r) || this.r < 1) throw new RangeError(`LoRA: r must be a positive integer, got ${options.r}`);
    this.scaling = (options.alpha ?? this.r) / this.r;
    // Replace the placeholder parameters with the base layer's.
    this.weight.dispose();
    this.weight = this.registerParameter("weight", base.weight);
    this.bias = this.registerParameter("bias", base.bias);
    (this as { inFeatures: number }).inFeatures = base.inFeatures;
    (this as { outFeatures: number }).outFeatures = base.outFeatures;
    this.weight.requiresGrad = false;
    if (this.bias) this.bias.requiresGrad = false;
    const dtype = base.weight.dtype;
    this.lora_A = new Linear(base.inFeatures, this.r, { bias: false, dtype });
    kaimingUniform_(this.lora_A.weight, Math.sqrt(5));
    this.lora_B = new Linear(this.r, base.outFeatures, { bias: false, dtype });
    zeros_(this.lora_B.weight);
    this.lora_dropout = new Dropout(options.dropout ?? 0);
  }

  override forward(x: Tensor): Tensor {
    const base = torch.linear(x, this.weight, this.bias);
    if (this.merged) return base;
    return torch.scope(() => base.add(this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(x))), this.scaling));
  }

  /** Folds (α/r) B A into the base weight: the layer then runs at base speed with the same outputs. */
  merge(): void {
    if (this.merged) return;
    torch.noGrad(() => torch.scope(() => this.weight.add_(this.lora_B.weight.matmul(this.lora_A.weight), this.scaling)));
    this.merged = true;
  }

  /** Undoes merge(). */
  unmerge(): void {
    if (!this.merged) return;
    torch.noGrad(() => torch.scope(() => this.weight.sub_(this.lora_B.weight.matmul(this.lora_A.weight), this.scaling)));
    this.merged = false;
  }

  get isMerged(): boolean {
    return this.merged;
  }
}

/**
 * Replaces every Linear whose dotted path matches (e.g. /attention\.self\.(query|value)$/)
 * with a LoRALinear, freezes every other parameter, and returns the replaced paths.
 */
export function applyLoRA(model: Module, target: RegExp, options: LoRAOptions = {}): string[] {
  const replaced: string[] = [];
  for (const [path, m] of [...model.namedModules()]) {
    for (const [name, child] of [...m.namedChildren()]) {
      const full = path ? `${path}.${name}` : name;
      if (child instanceof Linear && !(child instanceof LoRALinear) && target.test(full)) {
        (m as unknown as Record<string, Module>)[name] = new LoRALinear(child, options);
        replaced.push(full);
      }
    }
  }
  if (replaced.length === 0) throw new Error(`applyLoRA: no Linear layer matches ${target}`);
  for (const [name, p] of model.namedParameters()) p.requiresGrad = /\.lora_[AB]\.weight$/.test(name);
  return replaced;
}

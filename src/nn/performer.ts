// STUB (replace by branch linattn): the signature of PerformerAttention only, so that
// src/models/variants compiles before the real FAVOR+ attention lands. Its forward refuses.
import type { Tensor } from "../torch/index.js";
import { Module } from "./module.js";

/** FAVOR+ attention (Choromanski et al. 2021); stub until branch linattn is merged. */
export class PerformerAttention extends Module {
  constructor(readonly opts: { headDim: number; numFeatures?: number; causal: boolean; redrawEvery?: number; seed?: number }) {
    super();
  }

  /** q, k, v (B, H, T, D), mask (B, S) 1 = keep -> (B, H, T, D). */
  forward(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    void [q, k, v, mask];
    throw new Error("PerformerAttention is a stub here: it lands with branch linattn");
  }
}

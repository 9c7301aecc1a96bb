// STUB (replace by branch linattn): the signature of ConvModule only, so that
// src/models/variants compiles before the real convolution module lands. Its forward refuses.
import type { Tensor } from "../torch/index.js";
import { Module } from "./module.js";

/** The convolution module of hybrid blocks; stub until branch linattn is merged. */
export class ConvModule extends Module {
  constructor(readonly opts: { hidden: number; kernelSize: number; causal: boolean; dropout?: number }) {
    super();
  }

  /** x (B, T, C), mask (B, T) -> (B, T, C). */
  forward(x: Tensor, mask: Tensor | null): Tensor {
    void [x, mask];
    throw new Error("ConvModule is a stub here: it lands with branch linattn");
  }
}

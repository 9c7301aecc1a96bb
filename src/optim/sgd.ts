// SGD with momentum, Nesterov and weight decay, as torch.optim.SGD.
import type { Tensor } from "../torch/index.js";
import * as torch from "../torch/index.js";
import { Optimizer } from "./optimizer.js";
import type { ParamGroupInput } from "./optimizer.js";

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Tensor[] | ParamGroupInput<SGDOptions>[], options: Partial<SGDOptions> & { lr: number }) {
    const o: SGDOptions = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...options };
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new Error("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
    super(params, o);
  }

  step(): void {
    torch.noGrad(() =>
      torch.scope(() => {
        for (const group of this.paramGroups) {
          const { lr, momentum, dampening, weightDecay, nesterov } = group.options;
          for (const p of group.params) {
            let g = p.grad;
            if (g === undefined) continue;
            if (weightDecay !== 0) g = g.add(p, weightDecay);
            if (momentum !== 0) {
              const s = this.stateOf(p, () => ({}));
              const first = s.buffers.momentum_buffer === undefined;
              if (first) s.buffers.momentum_buffer = torch.keep(g.clone().detach());
              else s.buffers.momentum_buffer!.mul_(momentum).add_(g, 1 - dampening);
              s.step += 1;
              const buf = s.buffers.momentum_buffer!;
              g = nesterov ? g.add(buf, momentum) : buf;
            }
            p.sub_(g, lr);
          }
        }
      }),
    );
  }
}

// The key/value cache of incremental decoding: each layer's keys and values so far, in buffers
// allocated a block of positions at a time (or once, at a capacity given up front) and filled
// in place, so that a step writes its one new position instead of copying the whole history
// into a concatenation (which makes T steps cost O(T²) copies). A model's attention calls
// update() once per forward; generation strategies create, reorder and dispose the cache.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

export interface KVCacheOptions {
  /** Positions to allocate on the first update (a generation knows prompt + new tokens). */
  capacity?: number;
  /** Positions added whenever the buffers are full (default 256). */
  block?: number;
}

interface LayerBuffers {
  keys: Tensor; // (B, H, capacity, D)
  values: Tensor; // (B, H, capacity, Dv)
  length: number;
}

export class KVCache {
  private readonly layers: (LayerBuffers | undefined)[] = [];
  private readonly block: number;
  private capacity: number;

  constructor(options: KVCacheOptions = {}) {
    this.block = options.block ?? 256;
    this.capacity = options.capacity ?? 0;
    if (!(Number.isInteger(this.block) && this.block > 0)) throw new RangeError(`KVCache: block must be a positive integer, got ${options.block}`);
  }

  /** Positions held: read it before a forward (the layers add this forward's positions one by one). */
  get length(): number {
    return this.layers[0]?.length ?? 0;
  }

  /** Positions the buffers hold room for without growing. */
  get allocated(): number {
    return this.layers[0]?.keys.shape[2] ?? 0;
  }

  /**
   * Appends one layer's new keys (B, H, T, D) and values (B, H, T, Dv) and returns all of that
   * layer's keys and values so far, (B, H, S, D) and (B, H, S, Dv): views of the buffers, valid
   * until the next update or reorder.
   */
  update(layer: number, keys: Tensor, values: Tensor): [Tensor, Tensor] {
    const T = keys.shape[2]!;
    let buf = this.layers[layer];
    const need = (buf?.length ?? 0) + T;
    if (buf && buf.keys.shape[0] !== keys.shape[0]) {
      throw new Error(`KVCache: layer ${layer} holds ${buf.keys.shape[0]} rows, the update has ${keys.shape[0]} (reorder the cache when rows change)`);
    }
    if (!buf || need > buf.keys.shape[2]!) buf = this.grow(layer, buf, keys, values, need);
    torch.noGrad(() =>
      torch.scope(() => {
        buf.keys.narrow(2, buf.length, T).copy_(keys);
        buf.values.narrow(2, buf.length, T).copy_(values);
      }),
    );
    buf.length = need;
    return [buf.keys.narrow(2, 0, need), buf.values.narrow(2, 0, need)];
  }

  /** New buffers of the capacity, or of `need` rounded up to whole blocks, with what the old ones held. */
  private grow(layer: number, old: LayerBuffers | undefined, keys: Tensor, values: Tensor, need: number): LayerBuffers {
    const size = need <= this.capacity ? this.capacity : Math.ceil(need / this.block) * this.block;
    this.capacity = size;
    const alloc = (like: Tensor): Tensor => {
      const [B, H, , D] = like.shape as [number, number, number, number];
      return torch.keep(torch.empty([B, H, size, D], { dtype: like.dtype, device: like.device as "cpu" }));
    };
    const buf: LayerBuffers = { keys: alloc(keys), values: alloc(values), length: old?.length ?? 0 };
    if (old) {
      torch.noGrad(() =>
        torch.scope(() => {
          buf.keys.narrow(2, 0, old.length).copy_(old.keys.narrow(2, 0, old.length));
          buf.values.narrow(2, 0, old.length).copy_(old.values.narrow(2, 0, old.length));
        }),
      );
      old.keys.dispose();
      old.values.dispose();
    }
    this.layers[layer] = buf;
    return buf;
  }

  /**
   * Keeps the rows named by `rows` (N) int64, in that order: new row i continues old row
   * rows[i]. Beam search reorders its beams this way; a repeated row expands a prompt into beams.
   */
  reorder(rows: Tensor): void {
    for (const buf of this.layers) {
      if (!buf) continue;
      const [keys, values] = torch.noGrad(() => [buf.keys.indexSelect(0, rows), buf.values.indexSelect(0, rows)]);
      buf.keys.dispose();
      buf.values.dispose();
      buf.keys = torch.keep(keys);
      buf.values = torch.keep(values);
    }
  }

  /** Frees every buffer; the cache is empty afterwards. */
  dispose(): void {
    for (const buf of this.layers) {
      buf?.keys.dispose();
      buf?.values.dispose();
    }
    this.layers.length = 0;
  }
}

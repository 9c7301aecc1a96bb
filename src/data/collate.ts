// Batching rows of token ids into padded (B, T) int64 tensors: every objective and task pads
// its micro-batches with these (dynamic padding: to the longest row of the batch).
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/** Rows of ids padded with `value` to the longest row (or to `length`): (B, T) int64. */
export function pad2d(rows: readonly ArrayLike<number>[], value: number, length?: number): Tensor {
  const T = length ?? Math.max(0, ...rows.map((r) => r.length));
  const flat = new BigInt64Array(rows.length * T).fill(BigInt(value));
  rows.forEach((r, b) => {
    if (r.length > T) throw new RangeError(`pad2d: row ${b} has ${r.length} ids, more than the length ${T}`);
    for (let i = 0; i < r.length; i++) flat[b * T + i] = BigInt(r[i]!);
  });
  return torch.tensor(flat, { shape: [rows.length, T] });
}

/** The attention mask of rows padded by pad2d: 1 over each row's ids, 0 after. */
export function paddingMask(rows: readonly ArrayLike<number>[], length?: number): Tensor {
  return pad2d(rows.map((r) => new Int32Array(r.length).fill(1)), 0, length);
}

/** How many labels are not -100 (the positions that count in a token-level loss). */
export function countTargets(labels: readonly ArrayLike<number>[]): number {
  let n = 0;
  for (const l of labels) for (let i = 0; i < l.length; i++) if (l[i] !== -100) n++;
  return n;
}

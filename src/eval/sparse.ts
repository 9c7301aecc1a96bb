// A sparse matrix in compressed sparse row form (CSR, scipy.sparse.csr_matrix's layout): row i's
// entries are data[indptr[i] .. indptr[i + 1]) at columns indices[...] (ascending). TF-IDF rows
// hold a few hundred of a vocabulary's hundreds of thousands of columns.

export interface CsrMatrix {
  rows: number;
  columns: number;
  /** (rows + 1) offsets into indices and data. */
  indptr: Int32Array;
  /** (nnz) column of each stored entry, ascending within a row. */
  indices: Int32Array;
  /** (nnz) the entries. */
  data: Float64Array;
}

/**
 * Builds a CSR matrix from rows of (column, value) pairs; each row's pairs are sorted by
 * column here. A column out of range is an error naming the row.
 */
export function csrFromRows(rows: readonly (readonly [number, number])[][], columns: number): CsrMatrix {
  const nnz = rows.reduce((n, r) => n + r.length, 0);
  const indptr = new Int32Array(rows.length + 1);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  let at = 0;
  rows.forEach((row, i) => {
    const sorted = [...row].sort((a, b) => a[0] - b[0]);
    for (const [c, v] of sorted) {
      if (!(Number.isInteger(c) && c >= 0 && c < columns)) throw new RangeError(`csrFromRows: row ${i} has column ${c}, outside 0..${columns - 1}`);
      indices[at] = c;
      data[at] = v;
      at++;
    }
    indptr[i + 1] = at;
  });
  return { rows: rows.length, columns, indptr, indices, data };
}

/** Row i as a dense array (tests, small matrices). */
export function csrRow(m: CsrMatrix, i: number): Float64Array {
  const out = new Float64Array(m.columns);
  for (let j = m.indptr[i]!; j < m.indptr[i + 1]!; j++) out[m.indices[j]!] = m.data[j]!;
  return out;
}

/** The rows picked, in the order given, as a new matrix. */
export function csrSelectRows(m: CsrMatrix, picked: readonly number[]): CsrMatrix {
  const indptr = new Int32Array(picked.length + 1);
  picked.forEach((r, i) => (indptr[i + 1] = indptr[i]! + m.indptr[r + 1]! - m.indptr[r]!));
  const indices = new Int32Array(indptr[picked.length]!);
  const data = new Float64Array(indptr[picked.length]!);
  picked.forEach((r, i) => {
    indices.set(m.indices.subarray(m.indptr[r]!, m.indptr[r + 1]!), indptr[i]!);
    data.set(m.data.subarray(m.indptr[r]!, m.indptr[r + 1]!), indptr[i]!);
  });
  return { rows: picked.length, columns: m.columns, indptr, indices, data };
}

/**
 * X W + b for X (N, D) sparse, W (D, K) dense row-major and b (K): the (N, K) result row-major.
 * Memory-bound (each entry reads a scattered row of W): the arrays are held in locals and two
 * classes, the common case, sum in registers (2.5x fewer CPU seconds on SpamAssassin's TF-IDF).
 */
export function csrMatmul(x: CsrMatrix, w: Float64Array, k: number, bias?: Float64Array): Float64Array {
  const { indptr, indices, data } = x;
  const out = new Float64Array(x.rows * k);
  if (k === 2) {
    const b0 = bias ? bias[0]! : 0;
    const b1 = bias ? bias[1]! : 0;
    for (let i = 0; i < x.rows; i++) {
      let z0 = b0;
      let z1 = b1;
      for (let j = indptr[i]!, end = indptr[i + 1]!; j < end; j++) {
        const v = data[j]!;
        const row = indices[j]! << 1;
        z0 += v * w[row]!;
        z1 += v * w[row + 1]!;
      }
      out[2 * i] = z0;
      out[2 * i + 1] = z1;
    }
    return out;
  }
  for (let i = 0; i < x.rows; i++) {
    const o = i * k;
    if (bias) for (let c = 0; c < k; c++) out[o + c] = bias[c]!;
    for (let j = indptr[i]!, end = indptr[i + 1]!; j < end; j++) {
      const v = data[j]!;
      const row = indices[j]! * k;
      for (let c = 0; c < k; c++) out[o + c]! += v * w[row + c]!;
    }
  }
  return out;
}

/** Adds X^T R to out (D, K) row-major, for X (N, D) sparse and R (N, K) row-major. */
export function csrAddTransposeMatmul(x: CsrMatrix, r: Float64Array, k: number, out: Float64Array): void {
  const { indptr, indices, data } = x;
  for (let i = 0; i < x.rows; i++) {
    const o = i * k;
    if (k === 2) {
      const r0 = r[o]!;
      const r1 = r[o + 1]!;
      for (let j = indptr[i]!, end = indptr[i + 1]!; j < end; j++) {
        const v = data[j]!;
        const row = indices[j]! << 1;
        out[row]! += v * r0;
        out[row + 1]! += v * r1;
      }
      continue;
    }
    for (let j = indptr[i]!, end = indptr[i + 1]!; j < end; j++) {
      const v = data[j]!;
      const row = indices[j]! * k;
      for (let c = 0; c < k; c++) out[row + c]! += v * r[o + c]!;
    }
  }
}

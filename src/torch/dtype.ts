/** The element types lmforge tensors can hold (PyTorch's names, without the `torch.` prefix). */
export type DType =
  | "float32"
  | "float64"
  | "bfloat16"
  | "float16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/** A device: "cpu", "cuda" or "cuda:N". */
export type DeviceLike = "cpu" | "cuda" | `cuda:${number}`;

/** Options for the creation functions, as PyTorch's keyword arguments. */
export interface TensorOptions {
  readonly dtype?: DType;
  readonly device?: DeviceLike;
  readonly requiresGrad?: boolean;
}

export type TypedArray =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array;

interface DTypeInfo {
  /** Bytes per element. */
  readonly itemSize: number;
  readonly isFloatingPoint: boolean;
  /** The TypedArray that holds this dtype's raw bytes. */
  readonly array: { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): TypedArray; BYTES_PER_ELEMENT: number };
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: { itemSize: 4, isFloatingPoint: true, array: Float32Array },
  float64: { itemSize: 8, isFloatingPoint: true, array: Float64Array },
  bfloat16: { itemSize: 2, isFloatingPoint: true, array: Uint16Array },
  float16: { itemSize: 2, isFloatingPoint: true, array: Uint16Array },
  int64: { itemSize: 8, isFloatingPoint: false, array: BigInt64Array },
  int32: { itemSize: 4, isFloatingPoint: false, array: Int32Array },
  int16: { itemSize: 2, isFloatingPoint: false, array: Int16Array },
  int8: { itemSize: 1, isFloatingPoint: false, array: Int8Array },
  uint8: { itemSize: 1, isFloatingPoint: false, array: Uint8Array },
  bool: { itemSize: 1, isFloatingPoint: false, array: Uint8Array },
};

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

export function isDevice(x: unknown): x is DeviceLike {
  return typeof x === "string" && /^(cpu|cuda(:\d+)?)$/.test(x);
}

/** The dtype a TypedArray's elements map to (Uint16Array is taken as raw float16 bits only when asked). */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof BigInt64Array) return "int64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Int16Array) return "int16";
  if (a instanceof Int8Array) return "int8";
  if (a instanceof Uint8Array) return "uint8";
  throw new TypeError("a Uint16Array holds raw bfloat16 or float16 bits: pass { dtype: 'bfloat16' | 'float16' }");
}

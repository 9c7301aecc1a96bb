// A small ONNX graph builder: named values, initializers from a model's tensors (raw
// little-endian float32), nodes with typed attributes, graph inputs and outputs with symbolic
// dims ("batch", "sequence", "past_sequence"), and the ModelProto's bytes (protobufjs encodes
// them, onnx-schema.ts declares the messages). The model builders in this folder describe
// each architecture's forward in terms of it, op by op.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { AttributeType, DataType, encodeModel } from "./onnx-schema.js";
import type { AttributeProtoObject, DataTypeCode, ModelProtoObject, NodeProtoObject, TensorProtoObject, ValueInfoProtoObject } from "./onnx-schema.js";

/** IR version 8 (ONNX 1.10+): what onnxruntime 1.10 and later read. */
export const IR_VERSION = 8;
/** Opset 17 has LayerNormalization; 14 to 16 decompose it; 18 takes ReduceMean's axes as an input. */
export const SUPPORTED_OPSETS = [14, 15, 16, 17, 18] as const;
export const DEFAULT_OPSET = 17;

/** Checks an --opset value; the error lists the supported ones. */
export function checkOpset(opset: number): number {
  if (!(SUPPORTED_OPSETS as readonly number[]).includes(opset)) {
    throw new Error(`--opset ${opset}: lmforge exports ONNX opsets ${SUPPORTED_OPSETS.join(", ")} (default ${DEFAULT_OPSET}; 17 and later have LayerNormalization, 14 to 16 get it decomposed)`);
  }
  return opset;
}

/** A dimension of a graph input or output: a fixed size or a symbolic name. */
export type Dim = number | string;
export type ElemType = "float32" | "int64" | "bool";

const ELEM: Record<ElemType, DataTypeCode> = { float32: DataType.FLOAT, int64: DataType.INT64, bool: DataType.BOOL };

/** A node attribute, typed explicitly (an integral float such as 1.0 would otherwise read as an int). */
export type Attr = { int: number } | { float: number } | { ints: number[] } | { floats: number[] } | { string: string };

/** A graph input or output as `lmforge export` reports it. */
export interface ValueSignature {
  name: string;
  type: ElemType;
  dims: Dim[];
}

function attribute(name: string, a: Attr): AttributeProtoObject {
  if ("int" in a) return { name, type: AttributeType.INT, i: a.int };
  if ("float" in a) return { name, type: AttributeType.FLOAT, f: a.float };
  if ("ints" in a) return { name, type: AttributeType.INTS, ints: a.ints };
  if ("floats" in a) return { name, type: AttributeType.FLOATS, floats: a.floats };
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.string) };
}

/** Little-endian bytes of a typed array, whatever the host's byte order. */
function littleEndian(values: Float32Array | BigInt64Array): Uint8Array {
  const out = new Uint8Array(values.length * values.BYTES_PER_ELEMENT);
  const view = new DataView(out.buffer);
  if (values instanceof Float32Array) values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else values.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  return out;
}

function valueInfo(v: ValueSignature): ValueInfoProtoObject {
  const dim = v.dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d }));
  return { name: v.name, type: { tensor_type: { elem_type: ELEM[v.type], shape: { dim } } } };
}

/**
 * An ONNX graph under construction. Values are strings (their names); op() adds a node and
 * returns its output's name. Constants are initializers, shared when equal.
 *
 * @example
 * const g = new OnnxGraph({ opset: 17 });
 * const x = g.input("x", "float32", ["batch", 4]);
 * g.output(g.op("Relu", [x]), "y", "float32", ["batch", 4]);
 * const bytes = g.encode({ name: "relu" });
 */
export class OnnxGraph {
  readonly opset: number;
  private readonly nodes: NodeProtoObject[] = [];
  private readonly initializers: TensorProtoObject[] = [];
  private readonly inputs: ValueSignature[] = [];
  private readonly outputs: ValueSignature[] = [];
  private readonly used = new Set<string>();
  private readonly weights = new Map<Tensor, string>();
  private readonly constants = new Map<string, string>();
  private weightBytes = 0;

  constructor(options: { opset?: number } = {}) {
    this.opset = checkOpset(options.opset ?? DEFAULT_OPSET);
  }

  /** A name not used yet, from a readable hint ("layer.0.attn.q"). */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.used.has(name); i++) name = `${hint}_${i}`;
    this.used.add(name);
    return name;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    if (this.used.has(name)) throw new Error(`ONNX graph: the input name "${name}" is taken`);
    this.used.add(name);
    this.inputs.push({ name, type, dims });
    return name;
  }

  /** Declares `value` a graph output named `name` (an Identity node renames it when needed). */
  output(value: string, name: string, type: ElemType, dims: Dim[]): void {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`ONNX graph: the output name "${name}" is taken`);
      this.used.add(name);
      this.nodes.push({ name: `${name}/identity`, op_type: "Identity", input: [value], output: [name], attribute: [] });
    }
    this.outputs.push({ name, type, dims });
  }

  /**
   * A model tensor as a float32 initializer named `name` (its checkpoint name). A tensor met
   * again (tied weights, ALBERT's shared layers) is stored once and its first name returned.
   */
  weight(name: string, t: Tensor): string {
    const known = this.weights.get(t);
    if (known) return known;
    const data = torch.scope(() => t.detach().float().contiguous().data() as Float32Array);
    const stored = this.fresh(name);
    this.initializers.push({ name: stored, dims: [...t.shape], data_type: DataType.FLOAT, raw_data: littleEndian(data) });
    this.weightBytes += data.byteLength;
    this.weights.set(t, stored);
    return stored;
  }

  /** A float32 constant (a scalar when dims is []). */
  floats(values: readonly number[] | Float32Array, dims: number[] = [values.length], hint = "const"): string {
    return this.constant("f", Float32Array.from(values), dims, hint);
  }

  /** An int64 constant (shapes, axes, indices; a scalar when dims is []). */
  ints(values: readonly number[], dims: number[] = [values.length], hint = "const"): string {
    return this.constant("i", BigInt64Array.from(values.map((v) => BigInt(v))), dims, hint);
  }

  private constant(kind: "f" | "i", data: Float32Array | BigInt64Array, dims: number[], hint: string): string {
    const key = `${kind}:${dims.join("x")}:${Array.from(data as ArrayLike<number | bigint>).join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh(hint);
    this.initializers.push({ name, dims, data_type: kind === "f" ? DataType.FLOAT : DataType.INT64, raw_data: littleEndian(data) });
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node with one output; returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = opType): string {
    return this.opMany(opType, inputs, 1, attrs, hint)[0]!;
  }

  /** Adds a node with n outputs. */
  opMany(opType: string, inputs: string[], n: number, attrs: Record<string, Attr> = {}, hint = opType): string[] {
    const outputs = Array.from({ length: n }, (_, i) => this.fresh(n === 1 ? hint : `${hint}_out${i}`));
    const attrList = Object.entries(attrs).map(([k, a]) => attribute(k, a));
    this.nodes.push({ name: `${outputs[0]}/${opType}`, op_type: opType, input: inputs, output: outputs, attribute: attrList });
    return outputs;
  }

  /** The graph's inputs and outputs as declared. */
  signature(): { inputs: ValueSignature[]; outputs: ValueSignature[]; weightBytes: number; nodes: number } {
    return { inputs: [...this.inputs], outputs: [...this.outputs], weightBytes: this.weightBytes, nodes: this.nodes.length };
  }

  /** The ModelProto as a plain object (field names as in onnx.proto). */
  toModel(meta: { name: string; doc?: string; metadata?: Record<string, string>; producerVersion?: string }): ModelProtoObject {
    return {
      ir_version: IR_VERSION,
      opset_import: [{ domain: "", version: this.opset }],
      producer_name: "lmforge",
      producer_version: meta.producerVersion ?? "",
      ...(meta.doc ? { doc_string: meta.doc } : {}),
      graph: { name: meta.name, node: this.nodes, initializer: this.initializers, input: this.inputs.map(valueInfo), output: this.outputs.map(valueInfo) },
      metadata_props: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
  }

  /** The .onnx file's bytes. Protobuf messages stop at 2 GiB: larger models would need external data, which lmforge does not write. */
  encode(meta: Parameters<OnnxGraph["toModel"]>[0]): Uint8Array {
    if (this.weightBytes >= 2 ** 31 - 2 ** 24) throw new Error(`ONNX export: ${(this.weightBytes / 2 ** 30).toFixed(2)} GiB of weights do not fit one protobuf file (2 GiB); external data files are not supported`);
    return encodeModel(this.toModel(meta));
  }
}

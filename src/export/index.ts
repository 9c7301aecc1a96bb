// Model export: lmforge models as ONNX files that onnxruntime runs with lmforge's numbers.
export { exportOnnx, exportOnnxFromFolder, writeOnnx, checkExportable, UnsupportedExportError, ONNX_EXPORT_OPTIONS } from "./onnx-models.js";
export type { OnnxExport, OnnxExportOptions } from "./onnx-models.js";
export { OnnxGraph, checkOpset, SUPPORTED_OPSETS, DEFAULT_OPSET, IR_VERSION } from "./onnx-graph.js";
export type { Attr, Dim, ElemType, ValueSignature } from "./onnx-graph.js";
export { ModelProto, encodeModel, decodeModel } from "./onnx-schema.js";

// `lmforge export onnx DIR --out FILE [--opset N] [--with-past]`: a model folder as an ONNX
// file (src/export), written atomically; prints the file, its size, inputs and outputs.
import { ONNX_EXPORT_OPTIONS, exportOnnxFromFolder, writeOnnx } from "../export/index.js";
import type { ValueSignature } from "../export/index.js";
import { UsageError } from "./errors.js";

/** The command's flags: the library's declarations. */
export const EXPORT_OPTIONS = ONNX_EXPORT_OPTIONS;

const FORMATS = ["onnx"];

function describe(v: ValueSignature): string {
  return `${v.name} ${v.type} [${v.dims.join(", ")}]`;
}

/** Runs `lmforge export onnx DIR --out FILE`. */
export async function exportCommand(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  const [format, dir, ...extra] = positionals;
  if (!format || !FORMATS.includes(format)) throw new UsageError(`${format ? `unknown export format "${format}"` : "which format?"}; known: ${FORMATS.join(", ")} (lmforge export onnx DIR --out model.onnx)`);
  if (!dir) throw new UsageError("which model folder? (lmforge export onnx DIR --out model.onnx)");
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const out = v.out as string;
  const result = await exportOnnxFromFolder(dir, { opset: v.opset as number, withPast: v.withPast as boolean });
  writeOnnx(out, result);
  console.log(`wrote ${out}: ${(result.bytes.byteLength / 2 ** 20).toFixed(2)} MiB, ${result.architecture} (${result.kind}), ONNX opset ${result.opset}, ${result.nodes} nodes`);
  console.log("inputs:");
  for (const i of result.inputs) console.log(`  ${describe(i)}`);
  console.log("outputs:");
  for (const o of result.outputs) console.log(`  ${describe(o)}`);
}

// `lmforge export onnx`: which models export and how. A fine-tuned classification folder of
// the BERT family (BERT, RoBERTa, ALBERT, ELECTRA) exports its logits per sequence; a GPT-2 or
// Llama causal LM its logits per token and its key/value cache, with or without a past. A
// config using something the graphs do not reproduce is refused before any weight is read,
// naming the config key.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defineOptions } from "../io/options.js";
import { writeFileAtomic, writeAll } from "../io/atomic.js";
import { LoRALinear } from "../nn/index.js";
import { albert, bert, electra, gpt2, llama, loadReport, modelFromPretrained, roberta } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { DEFAULT_OPSET, OnnxGraph, SUPPORTED_OPSETS } from "./onnx-graph.js";
import type { ValueSignature } from "./onnx-graph.js";
import { Weights } from "./onnx-layers.js";
import { encoderClassifier } from "./onnx-encoders.js";
import type { EncoderFamily } from "./onnx-encoders.js";
import { gpt2CausalLm, llamaCausalLm } from "./onnx-decoders.js";

/** `lmforge export onnx`'s options, declared once (the CLI reads them). */
export const ONNX_EXPORT_OPTIONS = defineOptions([
  { flag: "out", key: "out", type: "string", arg: "FILE", required: true, help: "the .onnx file to write (atomically)" },
  { flag: "opset", key: "opset", type: "int", arg: "N", min: SUPPORTED_OPSETS[0], max: SUPPORTED_OPSETS[SUPPORTED_OPSETS.length - 1], default: DEFAULT_OPSET, help: `ONNX opset: ${SUPPORTED_OPSETS.join(", ")} (17 and later have LayerNormalization; 14 to 16 get it decomposed)` },
  { flag: "with-past", key: "withPast", type: "boolean", default: false, help: "decoders: take past_key_values.{i}.key/value as inputs (one step of cached generation)" },
]);

export interface OnnxExportOptions {
  opset?: number;
  /** Decoders: past key/value inputs (their presents are outputs either way). */
  withPast?: boolean;
}

export interface OnnxExport {
  bytes: Uint8Array;
  opset: number;
  kind: "sequence-classification" | "causal-lm";
  /** The Hugging Face class exported ("BertForSequenceClassification"). */
  architecture: string;
  inputs: ValueSignature[];
  outputs: ValueSignature[];
  nodes: number;
}

const ENCODERS: Record<string, EncoderFamily> = { bert: "bert", roberta: "roberta", albert: "albert", electra: "electra" };
const DECODERS = ["gpt2", "llama"];
const EXPORTED = "BERT, RoBERTa, ALBERT and ELECTRA sequence classifiers; GPT-2 and Llama causal LMs";

/** Thrown for a model or config the exporter does not reproduce; the message names the config key. */
export class UnsupportedExportError extends Error {}

/**
 * Refuses, before anything is loaded, a config whose model the ONNX graphs would not compute
 * the same: the error names the key (`where` is the file it came from).
 */
export function checkExportable(config: Record<string, unknown>, where = "config.json"): void {
  const refuse = (key: string, why: string): never => {
    throw new UnsupportedExportError(`${where}: ${key} ${why}, which lmforge does not export to ONNX (it exports ${EXPORTED})`);
  };
  const type = String(config.model_type);
  if (type === "lmforge" && config.attention !== undefined && config.attention !== "softmax") refuse("attention", `is ${JSON.stringify(config.attention)}`);
  if (!(type in ENCODERS) && !DECODERS.includes(type)) refuse("model_type", `is ${JSON.stringify(type)}`);
  const head = (config.lmforge as { head?: unknown } | undefined)?.head;
  if (head !== undefined && head !== null) refuse("lmforge.head", `is ${JSON.stringify(head)} (a task head of its own)`);
  if (type in ENCODERS && config.position_embedding_type !== undefined && config.position_embedding_type !== "absolute") refuse("position_embedding_type", `is ${JSON.stringify(config.position_embedding_type)}`);
  if (type === "llama" && config.sliding_window !== undefined && config.sliding_window !== null) refuse("sliding_window", `is ${JSON.stringify(config.sliding_window)} (sliding-window attention)`);
}

/** Which graph a model instance gets, or an error naming what it is. */
function graphFor(model: PretrainedModel): { kind: OnnxExport["kind"]; architecture: string; family: string } {
  const classifiers: [EncoderFamily, unknown][] = [
    ["bert", bert.BertForSequenceClassification],
    ["roberta", roberta.RobertaForSequenceClassification],
    ["albert", albert.AlbertForSequenceClassification],
    ["electra", electra.ElectraForSequenceClassification],
  ];
  for (const [family, cls] of classifiers) if (model.constructor === cls) return { kind: "sequence-classification", architecture: model.constructor.name, family };
  if (model.constructor === gpt2.GPT2LMHeadModel) return { kind: "causal-lm", architecture: "GPT2LMHeadModel", family: "gpt2" };
  if (model.constructor === llama.LlamaForCausalLM) return { kind: "causal-lm", architecture: "LlamaForCausalLM", family: "llama" };
  throw new UnsupportedExportError(`${model.constructor.name}: lmforge exports ${EXPORTED} to ONNX, not this class (config.json's architectures)`);
}

/**
 * An lmforge model as ONNX bytes: the graph of its inference forward, its weights as float32
 * initializers. The model itself is only read.
 *
 * @example
 * const m = await AutoModelForCausalLM.fromPretrained("gpt2-dir");
 * const { bytes, inputs, outputs } = exportOnnx(m, { withPast: true });
 */
export function exportOnnx(model: PretrainedModel, options: OnnxExportOptions = {}): OnnxExport {
  checkExportable(model.config, model.constructor.name);
  const { kind, architecture, family } = graphFor(model);
  for (const [name, m] of model.namedModules()) {
    if (m instanceof LoRALinear) throw new UnsupportedExportError(`${architecture}: ${name} is a LoRA layer; merge the adapters first (a saved fine-tuned folder has them merged)`);
  }
  if (kind === "sequence-classification" && options.withPast) throw new UnsupportedExportError(`--with-past: ${architecture} is an encoder; past key/values are for the causal LMs (GPT-2, Llama)`);
  const g = new OnnxGraph({ ...(options.opset !== undefined ? { opset: options.opset } : {}) });
  const ctx = { g, w: new Weights(model) };
  const config = model.config;
  const metadata: Record<string, string> = { "lmforge.model_type": config.model_type, "lmforge.architecture": architecture };
  if (kind === "sequence-classification") {
    const numLabels = (model as unknown as { numLabels: number }).numLabels;
    encoderClassifier(ctx, config, family as EncoderFamily, numLabels);
    const id2label = config.id2label as Record<string, string> | undefined;
    if (id2label) metadata["lmforge.labels"] = JSON.stringify(Array.from({ length: numLabels }, (_, i) => id2label[String(i)] ?? String(i)));
  } else {
    (family === "gpt2" ? gpt2CausalLm : llamaCausalLm)(ctx, config, options.withPast ?? false);
    metadata["lmforge.position_ids"] = "cumsum(attention_mask) - 1 over the prompt, 1 at padding; then one more per new token";
  }
  const bytes = g.encode({ name: `${architecture} (lmforge)`, doc: `${architecture} exported by lmforge: ${kind}${options.withPast ? " with past key/values" : ""}`, metadata });
  const sig = g.signature();
  return { bytes, opset: g.opset, kind, architecture, inputs: sig.inputs, outputs: sig.outputs, nodes: sig.nodes };
}

/** Exports a model folder (config.json and weights): the config is checked first, then the model loaded as its architectures say. */
export async function exportOnnxFromFolder(dir: string, options: OnnxExportOptions = {}): Promise<OnnxExport> {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new Error(`${dir}: no config.json there (a model folder is expected)`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  checkExportable(config, path);
  const model = await modelFromPretrained(dir, "auto", { verbose: false });
  // a head the folder lacks would be exported as random numbers
  const missing = loadReport(model)?.initialized ?? [];
  if (missing.length) throw new Error(`${dir}: the weights lack ${missing.join(", ")} of ${model.constructor.name} (it would export freshly initialised numbers); is it a fine-tuned folder?`);
  return exportOnnx(model, options);
}

/** Writes an export's bytes atomically (a crash leaves the old file or the new one). */
export function writeOnnx(path: string, result: OnnxExport): void {
  writeFileAtomic(path, (fd) => writeAll(fd, result.bytes));
}

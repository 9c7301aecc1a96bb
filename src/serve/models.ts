// A model folder as the server sees it: what it is (a fine-tuned task, a causal LM, an
// encoder-decoder, a bare encoder), the endpoints that fit it, and one synchronous run per
// endpoint over a batch of items. Fine-tuned folders predict through their task's objective,
// exactly as `lmforge predict` (src/cli/finetune.ts) does; generation follows `lmforge
// generate` (src/cli/generate.ts); embeddings pool an encoder's last hidden state.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { AutoModelForCausalLM, AutoModelForSeq2SeqLM, architecture, modelFromPretrained } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { pad2d, paddingMask } from "../data/index.js";
import { TextStreamer, generate, generationConfig, promptIds, resolveGenerateOptions } from "../generate/index.js";
import type { CausalModel, GenerateOptions } from "../generate/index.js";
import { loadFinetuned } from "../train/index.js";
import type { Finetuned } from "../train/index.js";
import { textFeatures } from "../eval/drift.js";
import type { Observation } from "../eval/drift.js";
import { TimeoutError } from "./batcher.js";

/** Input the model cannot take (a prompt without tokens, generation options it refuses): 422. */
export class InputError extends Error {
  constructor(message: string, readonly field?: string) {
    super(message);
  }
}

export type Endpoint = "classify" | "tokens" | "answer" | "generate" | "embed";


export interface ClassifyItem {
  text: string;
  pair?: string;
}
export interface EmbedItem {
  text: string;
  pooling: "cls" | "mean";
}
export interface AnswerItem {
  question: string;
  context: string;
}
export interface GenerateItem {
  prompt: string;
  options: GenerateOptions;
  /** Date.now() past which generation stops (checked at every step: a step cannot be interrupted). */
  deadline: number;
  timeoutMs: number;
}

/** The run's callers gave up on it (every request of the batch timed out or hung up): its result would be dropped. */
export class CancelledError extends Error {
  constructor() {
    super("the run was cancelled: no request waits for it");
  }
}

/** What a run hears and tells besides its items (plain functions: a worker bridges them to messages). */
export interface RunHooks {
  /** Streaming generation: each piece of settled text as it is generated. */
  onText?: (text: string) => void;
  /** Asked at the start and at every generation step; true stops the run with CancelledError. */
  cancelled?: () => boolean;
}

/**
 * What checking generation options needs of a generating model, as plain data: the main thread
 * checks a request's options with it (a 422 before the request queues) while the model itself
 * lives in the inference worker.
 */
export interface GenerationLimits {
  head: "causal-lm" | "seq2seq-lm";
  /** The folder's generation_config.json, as options. */
  defaults: GenerateOptions;
  /** The model's config (its token ids: eos, pad, decoder start). */
  config: Record<string, unknown>;
  maxLength: number;
}

/** Checks generation options against a model before the request queues; throws InputError naming the option. */
export function checkGenerateOptions(limits: GenerationLimits, options: GenerateOptions): void {
  let o;
  try {
    o = resolveGenerateOptions({ ...limits.defaults, ...options }, limits.config);
  } catch (e) {
    throw new InputError((e as Error).message);
  }
  if (limits.head === "causal-lm" && o.maxNewTokens >= limits.maxLength) throw new InputError(`maxNewTokens ${o.maxNewTokens} leaves no room for the prompt in the model's ${limits.maxLength} positions`, "maxNewTokens");
}

/** A model as the server describes it (/v1/models, /metrics): plain data, the same from a worker thread. */
export interface ModelInfo {
  name: string;
  dir: string;
  /** The fine-tuning task, or causal-lm, seq2seq-lm, feature-extraction for folders without one. */
  task: string;
  labels: string[];
  maxLength: number;
  parameters: number;
  endpoints: Endpoint[];
  loadSeconds: number;
  /** Generating models: what checkGenerateOptions needs. */
  generation?: GenerationLimits;
}

/** A loaded model and how it serves. */
export interface ServedModel extends ModelInfo {
  /** Runs a batch of one endpoint's items (already validated, plain data) and returns one result per item. */
  run(endpoint: Endpoint, items: unknown[], hooks?: RunHooks): unknown[];
}

function readConfig(dir: string): Record<string, unknown> {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new Error(`${dir}: no config.json there (a model folder is expected)`);
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The head the folder's config.json names (architectures[0] in the registry), if any. */
function savedHead(dir: string, config: Record<string, unknown>): string | undefined {
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0]) : "";
  return architecture(String(config.model_type), join(dir, "config.json")).classes[arch]?.[0];
}

function positions(dir: string, config: Record<string, unknown>): number | undefined {
  const v = config[architecture(String(config.model_type), join(dir, "config.json")).positions.key];
  return typeof v === "number" ? v : undefined;
}

/** What loading may add to a model's runs. */
export interface LoadOptions {
  /** Hears the features of every classified input (src/eval/drift.ts), batch by batch: drift monitoring. */
  observe?: (observations: Observation[]) => void;
  /** Hears the tokens each batch processed: its inputs' (after truncation) and the generated ones (tokens/s on /metrics). */
  count?: (tokens: number) => void;
}

/** Loads a folder and decides how it serves. */
export async function loadServedModel(name: string, dir: string, options: LoadOptions = {}): Promise<ServedModel> {
  const start = process.hrtime.bigint();
  const config = readConfig(dir);
  const head = savedHead(dir, config);
  let served: Omit<ServedModel, "loadSeconds">;
  if (config.lmforge === undefined && (head === "causal-lm" || head === "seq2seq-lm")) {
    const auto = head === "causal-lm" ? AutoModelForCausalLM : AutoModelForSeq2SeqLM;
    const model = await auto.fromPretrained(dir, { verbose: false });
    model.eval();
    served = generator(name, dir, model, loadTokenizer(dir), head, positions(dir, config) ?? 512, options.count);
  } else if (config.lmforge !== undefined || (head !== undefined && !["base", "masked-lm", "pretraining", "electra-discriminator"].includes(head))) {
    served = finetuned(name, await loadFinetuned(dir), options);
  } else {
    const model = await modelFromPretrained(dir, "auto", { verbose: false });
    model.eval();
    const tok = loadTokenizer(dir);
    const maxLength = Math.min(512, positions(dir, config) ?? 512);
    served = {
      name, dir, task: "feature-extraction", labels: [], maxLength, parameters: model.numParameters(), endpoints: ["embed"],
      run: (_endpoint, items) => embed(model, tok, maxLength, items as EmbedItem[], options.count),
    };
  }
  return { ...served, loadSeconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** A fine-tuned folder: its task's endpoint (generate for translation and summarisation), and embed for an encoder. */
function finetuned(name: string, f: Finetuned, options: LoadOptions): Omit<ServedModel, "loadSeconds"> {
  const endpoint: Endpoint | undefined = f.task.serves;
  if (!endpoint) throw new Error(`${f.dir}: task ${f.task.name} has no serving endpoint`);
  const generative = endpoint === "generate";
  const predict = (examples: unknown[], n: number): unknown[] => torch.noGrad(() => torch.scope(() => f.objective.predict(f.model, examples, { batchSize: Math.max(1, n) })));
  const unk = f.tokenizer.specialTokens.unk;
  const unkId = unk === undefined ? undefined : f.tokenizer.tokenToId(unk) ?? undefined;
  const base = { name, dir: f.dir, task: f.task.name, labels: f.meta.labels, maxLength: f.meta.max_length, parameters: f.model.numParameters() };
  if (generative) {
    const head = f.model.config.is_encoder_decoder === true ? "seq2seq-lm" : "causal-lm";
    return { ...generator(name, f.dir, f.model, f.tokenizer, head, f.meta.max_length, options.count), ...base };
  }
  return {
    ...base,
    endpoints: [endpoint, "embed"],
    run(ep, items) {
      if (ep === "embed") return embed(f.model, f.tokenizer, f.meta.max_length, items as EmbedItem[], options.count);
      if (ep === "classify") {
        const xs = items as ClassifyItem[];
        const out = predict(xs.map((x, i) => ({ text: x.text, ...(x.pair !== undefined ? { textPair: x.pair } : {}), label: "", source: `request:${i}` })), xs.length) as { label: string; probabilities: Record<string, number> }[];
        // the objective truncates to max length; the client learns which inputs it cut
        const encodings = xs.map((x) => f.tokenizer.encode(x.text, x.pair ?? null));
        options.count?.(encodings.reduce((n, e) => n + Math.min(e.ids.length, f.meta.max_length), 0));
        options.observe?.(out.map((p, i) => ({ ...textFeatures(encodings[i]!, unkId), label: p.label, confidence: p.probabilities[p.label] ?? 0 })));
        return out.map((p, i) => ({ label: p.label, probabilities: p.probabilities, truncated: encodings[i]!.ids.length > f.meta.max_length }));
      }
      if (ep === "tokens") {
        // long sentences are cut into overlapping windows by the task: nothing is truncated
        const examples = f.task.predictInput((items as { text: string }[]).map((x) => x.text), f.meta.options) as { tokens: string[] }[];
        options.count?.((items as { text: string }[]).reduce((n, x) => n + f.tokenizer.encode(x.text).ids.length, 0));
        const nonEmpty = examples.filter((e) => e.tokens.length > 0);
        const predicted = nonEmpty.length ? (predict(nonEmpty, nonEmpty.length) as { entities: unknown[] }[]) : [];
        let k = 0;
        return examples.map((e) => ({ entities: e.tokens.length ? predicted[k++]!.entities : [], truncated: false }));
      }
      const qs = items as AnswerItem[];
      options.count?.(qs.reduce((n, q) => n + f.tokenizer.encode(q.question, q.context).ids.length, 0));
      const out = predict(qs.map((q, i) => ({ id: String(i), question: q.question, context: q.context, answers: [], impossible: false, source: `request:${i}` })), qs.length) as { text: string; score: number; offsets: [number, number] | null }[];
      return out.map((p) => ({ answer: p.text, score: p.score, offsets: p.offsets, truncated: false }));
    },
  };
}

/** (B, C) pooled last hidden states: the first token's ([CLS]), or the mean over real tokens. */
function embed(model: PretrainedModel, tok: Tokenizer, maxLength: number, items: EmbedItem[], count?: (tokens: number) => void): { vector: number[]; truncated: boolean }[] {
  return torch.noGrad(() =>
    torch.scope(() => {
      const rows = items.map((x) => tok.encode(x.text, null, { maxLength, truncation: "longest_first" }).ids);
      count?.(rows.reduce((n, r) => n + r.length, 0));
      const mask = paddingMask(rows);
      const h: Tensor = model.forward({ inputIds: pad2d(rows, tok.tokenToId(tok.specialTokens.pad ?? "[PAD]") ?? 0), attentionMask: mask }).lastHiddenState; // (B, T, C)
      const m = mask.unsqueeze(-1).to(h.dtype); // (B, T, 1)
      const mean = h.mul(m).sum(1).div(m.sum(1)).toArray() as number[][]; // (B, C)
      const cls = h.select(1, 0).toArray() as number[][]; // (B, C)
      return items.map((x, i) => ({ vector: (x.pooling === "mean" ? mean : cls)[i]!, truncated: tok.encode(x.text).ids.length > maxLength }));
    }),
  );
}

/** A generating model (causal LM or encoder-decoder): one prompt per run, streamed when asked. */
function generator(name: string, dir: string, model: PretrainedModel, tok: Tokenizer, head: "causal-lm" | "seq2seq-lm", maxLength: number, count?: (tokens: number) => void): Omit<ServedModel, "loadSeconds"> {
  const causal = model as unknown as CausalModel;
  const defaults = generationConfig(dir);
  const bos = typeof model.config.bos_token_id === "number" ? model.config.bos_token_id : null;
  const one = (item: GenerateItem, hooks: RunHooks): { text: string; tokens: number; truncated: boolean } => {
    const options = { ...defaults, ...item.options };
    const o = resolveGenerateOptions(options, model.config);
    const prompt = head === "causal-lm" ? promptIds(tok, item.prompt, bos) : tok.encode(item.prompt).ids;
    if (!prompt) throw new InputError(`prompt ${JSON.stringify(item.prompt.slice(0, 40))} has no tokens, and the model names no bos_token_id to start from`, "prompt");
    let ids = prompt;
    // a causal LM's prompt and continuation share the positions: the prompt keeps its end
    const room = head === "causal-lm" ? maxLength - o.maxNewTokens : maxLength;
    const truncated = ids.length > room;
    if (truncated) ids = head === "causal-lm" ? ids.slice(ids.length - Math.max(1, room)) : ids.slice(0, room);
    const streamer = new TextStreamer(tok, hooks.onText ?? (() => undefined));
    let ended = false; // the streamer sees the tokens before the first end-of-sequence token
    let steps = 0;
    const checkTime = (): void => {
      if (Date.now() > item.deadline) throw new TimeoutError(item.timeoutMs);
      if (hooks.cancelled?.()) throw new CancelledError();
    };
    const sequence = torch.noGrad(() =>
      torch.scope(() => {
        const out = generate(causal, torch.tensor(ids, { dtype: "int64", shape: [1, ids.length] }), {
          ...options,
          onForward: checkTime, // beam search too (causal LMs)
          onStep: (tokens) => {
            checkTime();
            steps++;
            if (ended || o.eos.includes(tokens[0]!)) ended = true;
            else streamer.put([tokens[0]!]);
          },
        });
        return (out.toArray() as number[][])[0]!;
      }),
    );
    // a causal LM's sequence is the prompt then its continuation; an encoder-decoder's starts with the decoder's start token
    const generated = sequence.slice(head === "causal-lm" ? ids.length : 1);
    count?.(ids.length + generated.length);
    const eos = generated.findIndex((t) => o.eos.includes(t));
    const kept = eos < 0 ? generated : generated.slice(0, eos);
    if (steps === 0) streamer.put(kept); // beam search has no steps to stream: its text comes whole
    streamer.end();
    return { text: tok.decode(kept, { skipSpecialTokens: true }), tokens: kept.length, truncated };
  };
  // the config crosses to the main thread: plain JSON of it
  const generation: GenerationLimits = { head, defaults, config: JSON.parse(JSON.stringify(model.config)) as Record<string, unknown>, maxLength };
  return {
    name, dir, task: head, labels: [], maxLength, parameters: model.numParameters(), endpoints: ["generate"], generation,
    run: (_endpoint, items, hooks = {}) => (items as GenerateItem[]).map((item) => one(item, hooks)),
  };
}

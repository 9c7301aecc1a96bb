// `lmforge generate`: continues prompts with a causal LM folder (one that `lmforge pretrain
// --objectives clm` wrote, or a Hugging Face one whose tokenizer lmforge reads), or answers them
// with an encoder-decoder (T5: the prompt is the encoder's input, the output the decoder's
// text), writing the text to stdout as it is produced. Its generation flags are src/generate's declarations
// (GENERATE_OPTIONS); the folder's generation_config.json gives the defaults the flags override.
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import { AutoModelForCausalLM, AutoModelForSeq2SeqLM, architecture, configFromPretrained } from "../models/index.js";
import { TextStreamer, generate, generationConfig, promptIds, resolveGenerateOptions } from "../generate/index.js";
import type { CausalModel, GenerateOptions } from "../generate/index.js";
import { defineOptions } from "../io/options.js";
import { UsageError } from "./errors.js";

/** The command's own flags; the generation flags are GENERATE_OPTIONS. */
export const GENERATE_COMMAND_OPTIONS = defineOptions([
  { flag: "model", key: "model", type: "string", arg: "DIR", required: true, help: "a causal LM (lmforge pretrain --objectives clm writes one) or encoder-decoder (T5) folder with its tokenizer" },
  { flag: "prompt", key: "prompt", type: "strings", arg: "TEXT", required: true, help: "the text to continue; several --prompt run as one left-padded batch" },
] as const);

/** Runs `lmforge generate`: one prompt streams its text; a batch, beams or samples print once complete. */
export async function generateCommand(v: Record<string, unknown>): Promise<void> {
  // --model and --prompt are required flags: the parser refuses a command without them
  const { model: dir, prompt, ...flags } = v as unknown as { model: string; prompt: string[] } & GenerateOptions;
  if (!existsSync(join(dir, "config.json"))) throw new UsageError(`--model ${dir}: no config.json there`);
  const options: GenerateOptions = { ...generationConfig(dir), ...flags };
  const config = await configFromPretrained(dir);
  const vocab = config.vocab_size;
  if (typeof vocab === "number" && (options.numBeams ?? 1) > vocab) {
    const source = flags.numBeams !== undefined ? "--num-beams" : `${join(dir, "generation_config.json")}: num_beams`;
    throw new UsageError(`${source} ${options.numBeams} is more than the model's ${vocab} tokens: beams are filled from the vocabulary's tokens`);
  }
  const heads = Object.values(architecture(config.model_type, join(dir, "config.json")).classes).map(([head]) => head);
  if (heads.includes("seq2seq-lm") && !heads.includes("causal-lm")) return seq2seqGenerate(dir, prompt, options);
  const model = (await AutoModelForCausalLM.fromPretrained(dir, { verbose: false })) as unknown as CausalModel;
  const tok = loadTokenizer(dir);
  const resolved = resolveGenerateOptions(options, model.config); // checks the combination before any work
  const bos = typeof model.config.bos_token_id === "number" ? model.config.bos_token_id : null;
  const rows = prompt.map((p) => {
    const ids = promptIds(tok, p, bos);
    if (!ids) throw new UsageError(`--prompt ${JSON.stringify(p)} has no tokens, and the model names no bos_token_id to start from`);
    return ids;
  });
  // left padding: every prompt ends where generation starts
  const width = Math.max(...rows.map((r) => r.length));
  const ids = torch.tensor(rows.flatMap((r) => [...new Array<number>(width - r.length).fill(resolved.pad), ...r]), { dtype: "int64", shape: [rows.length, width] });
  const mask = torch.tensor(rows.flatMap((r) => [...new Array<number>(width - r.length).fill(0), ...r.map(() => 1)]), { dtype: "int64", shape: [rows.length, width] });
  if (rows.length === 1 && resolved.numBeams === 1 && resolved.numReturnSequences === 1) {
    // one sequence: its text as each token arrives
    const streamer = new TextStreamer(tok, (text) => process.stdout.write(text));
    streamer.put(rows[0]!);
    generate(model, ids, { ...options, attentionMask: mask, onStep: (tokens) => streamer.put(tokens) });
    streamer.end();
    process.stdout.write("\n");
    return;
  }
  // a batch, beams or several samples: each sequence once it is complete
  const out = generate(model, ids, { ...options, attentionMask: mask }).toArray() as number[][];
  const perPrompt = out.length / rows.length;
  out.forEach((seq, i) => {
    const text = tok.decode(seq.filter((_, j) => j >= width - rows[Math.floor(i / perPrompt)]!.length), { skipSpecialTokens: true });
    console.log(out.length > 1 ? `[${i + 1}] ${text}` : text);
  });
}

/**
 * An encoder-decoder's `lmforge generate`: each prompt is encoded whole (its </s> too, as the
 * model was trained), right-padded into a batch; the output is the decoder's text alone.
 */
async function seq2seqGenerate(dir: string, prompt: string[], options: GenerateOptions): Promise<void> {
  const model = (await AutoModelForSeq2SeqLM.fromPretrained(dir, { verbose: false })) as unknown as CausalModel;
  const tok = loadTokenizer(dir);
  const resolved = resolveGenerateOptions(options, model.config);
  const rows = prompt.map((p) => {
    const ids = tok.encode(p).ids;
    if (ids.length === 0) throw new UsageError(`--prompt ${JSON.stringify(p)} has no tokens`);
    return ids;
  });
  const width = Math.max(...rows.map((r) => r.length));
  const ids = torch.tensor(rows.flatMap((r) => [...r, ...new Array<number>(width - r.length).fill(resolved.pad)]), { dtype: "int64", shape: [rows.length, width] });
  const mask = torch.tensor(rows.flatMap((r) => [...r.map(() => 1), ...new Array<number>(width - r.length).fill(0)]), { dtype: "int64", shape: [rows.length, width] });
  if (rows.length === 1 && resolved.numBeams === 1 && resolved.numReturnSequences === 1) {
    const streamer = new TextStreamer(tok, (text) => process.stdout.write(text));
    generate(model, ids, { ...options, attentionMask: mask, onStep: (tokens) => streamer.put(tokens) });
    streamer.end();
    process.stdout.write("\n");
    return;
  }
  const out = generate(model, ids, { ...options, attentionMask: mask }).toArray() as number[][];
  out.forEach((seq, i) => {
    const text = tok.decode(seq.slice(1), { skipSpecialTokens: true }); // after the decoder's start token
    console.log(out.length > 1 ? `[${i + 1}] ${text}` : text);
  });
}

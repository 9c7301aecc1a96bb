// The `lmforge` command: one binary, subcommands, each with --help; arguments are validated
// before any work, and bad input exits non-zero with a one-line reason.
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { UsageError } from "./errors.js";
import { EVALUATE_OPTIONS, FINETUNE_OPTIONS, PREDICT_OPTIONS, PRETRAIN_OPTIONS, QUICKSTART_OPTIONS } from "./options.js";
export { UsageError };

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(values: Record<string, unknown>, positionals: string[]): Promise<void>;
}

const commands: Command[] = [
  {
    name: "tokenizer",
    summary: "train a WordPiece or byte-level BPE tokenizer on text files, write tokenizer.json",
    usage:
      "lmforge tokenizer train [--input FILE]... --kind wordpiece|bpe --vocab-size N --out DIR\n" +
      "         [--min-frequency N] [--lowercase] [--special-tokens A,B,...] [--limit-alphabet N]\n" +
      "         [--remove-stop-words] [--stem]\n" +
      "  Without --input, trains on the embedded corpora (Moby Dick and the State of the Union addresses).",
    options: {
      input: { type: "string", multiple: true },
      kind: { type: "string" },
      "vocab-size": { type: "string" },
      "min-frequency": { type: "string" },
      lowercase: { type: "boolean" },
      "special-tokens": { type: "string" },
      "limit-alphabet": { type: "string" },
      "remove-stop-words": { type: "boolean" },
      stem: { type: "boolean" },
      out: { type: "string" },
    },
    async run(values, positionals) {
      const { tokenizerTrain } = await import("./tokenizer.js");
      await tokenizerTrain(values, positionals);
    },
  },
  {
    name: "pretrain",
    summary: "pretrain a model from scratch or continue from a checkpoint, with chosen objectives",
    usage:
      "lmforge pretrain --model bert-mini|roberta-base|albert-base|electra-small|gpt2|DIR --tokenizer DIR --out DIR\n" +
      "         [--objectives mlm|mlm,sop|mlm,nsp|clm|electra] [--masking dynamic|static] [--mask-strategy token|whole-word|span]\n" +
      "         [--task OBJECTIVES=INPUT[,INPUT]]... [--mixing proportional[:K]|temperature:T[:K]|equal|weights:W1,W2]\n" +
      "         [--max-steps N] [--batch-size B] [--seq-len L] [--learning-rate X] [--warmup-steps W] [--grad-accum N]\n" +
      "         [--clip-norm X] [--precision fp32|bf16] [--seed S] [--eval-every N] [--save-every N] [--keep-last K]\n" +
      "         [--input FILE|DIR|moby-dick|sotu]... [--resume] [--config FILE.json]\n" +
      "         [--perturb deletion=0.1,replacement=0.05,local-shuffle=0.5,infilling=0.03,sentence-permutation=0.5]\n" +
      "         [--adversarial fgm:EPSILON|freelb:EPSILON:STEPS] [--auxiliary word-boundary:W,sentence-reordering:W]\n" +
      "         (--objectives electra: ELECTRA's replaced token detection; mlm,sop:0.5 weights the SOP loss;\n" +
      "          --task, repeated: a mixture, one task per batch, e.g. --task mlm=moby-dick --task mlm,sop=sotu --mixing temperature:2)\n" +
      "  Without --input, pretrains on the embedded corpora. The output is a Hugging Face checkpoint plus metrics.jsonl.",
    options: PRETRAIN_OPTIONS as unknown as Command["options"],
    async run(values) {
      const { pretrainCommand } = await import("./pretrain.js");
      await pretrainCommand(values);
    },
  },
  {
    name: "finetune",
    summary: "fine-tune a checkpoint on a classification task with a chosen transfer strategy",
    usage:
      "lmforge finetune --model DIR --train FILE [--validation FILE] [--test FILE] --out DIR\n" +
      "         [--strategy full|features|features:N|freeze:N|lora] [--text-column C] [--text-pair-column C] [--label-column L]\n" +
      "         [--learning-rate X] [--epochs N] [--batch-size B] [--max-length L] [--dropout P] [--weight-decay W]\n" +
      "         [--warmup-ratio R] [--patience N] [--eval-steps N] [--metric macro_f1|accuracy] [--skip-bad-rows]\n" +
      "         [--search grid|random --search-learning-rate 1e-5,3e-5 --search-batch-size 16,32 --search-dropout 0.1,0.2\n" +
      "          --search-epochs 2,3 --trials N] [--tokenizer DIR] [--config FILE.json]\n" +
      "  FILE: .tsv (sentence<TAB>label), .csv with a header, .jsonl, a folder of label sub-folders (IMDB), or spam-assassin.\n" +
      "  Without --validation the training data is split (stratified, seeded) and the split saved.",
    options: FINETUNE_OPTIONS as unknown as Command["options"],
    async run(values) {
      const { finetuneCommand } = await import("./classify.js");
      await finetuneCommand(values);
    },
  },
  {
    name: "evaluate",
    summary: "score a fine-tuned model on a labelled file (--json: one JSON object)",
    usage: "lmforge evaluate --model DIR --data FILE [--json] [--errors FILE.jsonl] [--text-column C] [--label-column L]",
    options: EVALUATE_OPTIONS as unknown as Command["options"],
    async run(values) {
      const { evaluateCommand } = await import("./classify.js");
      await evaluateCommand(values);
    },
  },
  {
    name: "predict",
    summary: "label texts given as arguments, in a file (--file) or on standard input",
    usage: "lmforge predict --model DIR [TEXT...] [--file FILE] [--json]",
    options: PREDICT_OPTIONS as unknown as Command["options"],
    async run(values, positionals) {
      const { predictCommand } = await import("./classify.js");
      await predictCommand(values, positionals);
    },
  },
  {
    name: "quickstart",
    summary: "the whole pipeline on the embedded data: tokenizer, pretraining, fine-tuning, does pretraining help?",
    usage: "lmforge quickstart [--fast] [--out DIR] [--seed S]\n  --fast runs a tiny version in about a minute.",
    options: QUICKSTART_OPTIONS as unknown as Command["options"],
    async run(values) {
      const { quickstartCommand } = await import("./quickstart.js");
      await quickstartCommand(values);
    },
  },
  {
    name: "info",
    summary: "show the engine: libtorch version, threads, BLAS choice, devices",
    usage: "lmforge info [--json]",
    options: { json: { type: "boolean" } },
    async run(values) {
      const { runtimeInfo } = await import("../torch/index.js");
      const info = runtimeInfo();
      if (values.json) {
        console.log(JSON.stringify(info));
        return;
      }
      console.log(`libtorch ${info.torchVersion}, ${info.threads} intra-op threads, oneDNN ${info.mkldnn ? "yes" : "no"}`);
      console.log(`OpenBLAS core type: ${info.openblasCoreType ?? "auto"} (${info.openblasReason})`);
      console.log(`CUDA: ${info.cuda ? `${info.cudaDevices} device(s)` : "not available"}`);
      const limit = info.cpuCacheLimit ? `keeps up to ${Math.round(info.cpuCacheLimit / 2 ** 20)} MiB` : "off";
      console.log(`CPU cache: ${limit} (LMFORGE_CPU_CACHE_MB); own attention kernels: ${info.attentionKernels[0] ? "yes" : "no (composed from ATen ops)"}`);
    },
  },
  {
    name: "bench",
    summary: "race lmforge against PyTorch on this machine, side by side, and report the ratios",
    usage: "lmforge bench [engine|optim|tokenizers|models|all] [--repeats N] [--quick] [--filter REGEX] [--json]",
    options: { repeats: { type: "string" }, json: { type: "boolean" }, quick: { type: "boolean" }, filter: { type: "string" } },
    async run(values, positionals) {
      const which = positionals[0] ?? "all";
      const benches = ["engine", "optim", "tokenizers", "models"];
      if (which !== "all" && !benches.includes(which)) throw new UsageError(`bench: unknown benchmark "${which}"; available: ${benches.join(", ")}, all`);
      const repeats = values.repeats === undefined ? 3 : Number(values.repeats);
      if (!Number.isInteger(repeats) || repeats < 1) throw new UsageError(`bench: --repeats must be a positive integer, got "${String(values.repeats)}"`);
      const { runEngineBench } = await import("../../bench/engine.js");
      const { runOptimBench } = await import("../../bench/optim.js");
      const { runTokenizerBench } = await import("../../bench/tokenizers.js");
      const { runModelBench } = await import("../../bench/models.js");
      const notes: string[] = [];
      const { runtimeInfo } = await import("../torch/index.js");
      const result = { torch: "", rows: [] as Awaited<ReturnType<typeof runEngineBench>>["rows"] };
      for (const b of which === "all" ? benches : [which]) {
        if (b === "models") {
          const r = runModelBench({ quick: Boolean(values.quick), repeats, ...(values.filter ? { filter: new RegExp(String(values.filter)) } : {}) });
          result.torch = r.torch;
          result.rows.push(...r.rows);
          continue;
        }
        if (b === "tokenizers") {
          const r = runTokenizerBench(repeats);
          result.rows.push(...r.rows);
          notes.push(...r.notes);
          continue;
        }
        const r = b === "engine" ? runEngineBench({ repeats }) : runOptimBench(repeats);
        result.torch = r.torch;
        result.rows.push(...r.rows);
      }
      if (values.json) {
        console.log(JSON.stringify({ ...result, notes, runtime: runtimeInfo() }));
        return;
      }
      const info = runtimeInfo();
      console.log(`benchmarks: lmforge (libtorch ${info.torchVersion}) vs PyTorch ${result.torch}, ${info.threads} threads, median of ${repeats}`);
      console.log(`${"case".padEnd(74)} ${"lmforge".padStart(10)} ${"peer".padStart(10)}  speedup`);
      for (const r of result.rows) {
        console.log(`${r.name.padEnd(74)} ${r.lmforge.toFixed(3).padStart(10)} ${r.pytorch.toFixed(3).padStart(10)}  ${r.speedup.toFixed(2)}x  (${r.unit})`);
      }
      for (const n of notes) console.log(n);
    },
  },
];

function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, "../../package.json"), join(here, "../../../package.json")]) {
    try {
      return (JSON.parse(readFileSync(p, "utf8")) as { version: string }).version;
    } catch {
      // try the next layout
    }
  }
  return "unknown";
}

function help(): string {
  return [
    "lmforge: pretrain and fine-tune transformer language models in TypeScript",
    "",
    "usage: lmforge <command> [options]     (lmforge <command> --help for its options)",
    "",
    ...commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
  ].join("\n");
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(help());
    return;
  }
  if (name === "--version") {
    console.log(version());
    return;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`lmforge: unknown command "${name}"; commands: ${commands.map((c) => c.name).join(", ")}`);
    process.exitCode = 2;
    return;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`${cmd.summary}\n\nusage: ${cmd.usage}`);
    return;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true });
    await cmd.run(values as Record<string, unknown>, positionals);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`lmforge ${name}: ${msg.replace(/^bench: /, "").split("\n")[0]}`);
    const usage = e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    process.exitCode = usage ? 2 : 1;
  }
}

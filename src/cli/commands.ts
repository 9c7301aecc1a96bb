// The subcommands of `lmforge`. Each names the declarations of its options (imported when
// needed, so that one command's --help loads only what it documents) and what it runs.
import type { Command } from "./main.js";
import { CONFIG_OPTION, mergeSpecs } from "./args.js";

/** Every fine-tuning task's own options (the data-reading ones that evaluate needs too), and predict's. */
async function taskSpecs(predict = false) {
  const { allTasks } = await import("../tasks/index.js");
  return allTasks().flatMap((t) => [...t.options, ...(predict ? (t.predictOptions ?? []) : [])]);
}

export const COMMANDS: Command[] = [
  {
    name: "tokenizer",
    summary: "train a WordPiece, byte-level BPE or Unigram tokenizer on text files, write tokenizer.json",
    usage: "lmforge tokenizer train [FILE...] --kind wordpiece|bpe|unigram --vocab-size N --out DIR [options]",
    notes: "Without input files, trains on the embedded corpora (Moby Dick and the State of the Union addresses).",
    positionals: true,
    specs: async () => (await import("./tokenizer.js")).TOKENIZER_TRAIN_OPTIONS,
    run: async (v, p) => (await import("./tokenizer.js")).tokenizerTrain(v, p),
  },
  {
    name: "pretrain",
    summary: "pretrain a model from scratch or continue from a checkpoint, with chosen objectives",
    usage: "lmforge pretrain --model PRESET|DIR --tokenizer DIR --max-steps N --out DIR [options]",
    notes:
      "Without --input, pretrains on the embedded corpora. The output folder holds a Hugging Face checkpoint with the tokenizer,\n" +
      "metrics.jsonl and checkpoint-N/ folders (--resume continues exactly from the last). A mixture: --task mlm=moby-dick --task mlm,sop=sotu.",
    specs: async () => mergeSpecs((await import("../train/index.js")).PRETRAIN_OPTIONS, [CONFIG_OPTION, (await import("./progress.js")).PROGRESS_OPTION]),
    run: async (v) => (await import("./pretrain.js")).pretrainCommand(v),
  },
  {
    name: "finetune",
    summary: "fine-tune a checkpoint on a task (classification, named entities, question answering, translation, summarisation) with a transfer strategy",
    usage: "lmforge finetune --model DIR --train FILE --out DIR [--task NAME] [options]   (images: --task image-classification --images DIR)",
    notes: "Tasks and their data: see the task options below and README.md. Without --validation the training data is split (seeded) and the split saved.",
    specs: async () => mergeSpecs((await import("../train/index.js")).FINETUNE_OPTIONS, await taskSpecs(), [CONFIG_OPTION, (await import("./progress.js")).PROGRESS_OPTION]),
    run: async (v) => (await import("./finetune.js")).finetuneCommand(v),
  },
  {
    name: "distill",
    summary: "distil fine-tuned classifier(s) into a smaller student (soft targets at a temperature, optional hidden-state matching); scores and speeds side by side",
    usage: "lmforge distill --teacher DIR[,DIR...] --student PRESET|DIR --train FILE --out DIR [--temperature 2 --alpha 0.5] [--hidden-loss W] [--compare] [options]",
    notes: "The teachers' logits are computed once per training example (each on its own tokenizer) and cached; several teachers are an ensemble.\nThe output is a fine-tuned classification folder; --compare also trains the student alone into OUT/compare on the same budget.",
    specs: async () => mergeSpecs((await import("../train/index.js")).DISTILL_OPTIONS, (await import("../tasks/index.js")).classification.options, [CONFIG_OPTION, (await import("./progress.js")).PROGRESS_OPTION]),
    run: async (v) => (await import("./distill.js")).distillCommand(v),
  },
  {
    name: "launch",
    summary: "run a command on several worker processes, data parallel (torchrun's contract: RANK, WORLD_SIZE, MASTER_ADDR, ...)",
    usage: "lmforge launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] [--max-restarts K] -- pretrain|finetune ...",
    notes: "A worker that dies stops the others; with --max-restarts the group restarts from the last checkpoint (--resume is added).",
    positionals: true,
    specs: async () => (await import("./launch.js")).LAUNCH_OPTIONS,
    run: async (v, p) => (await import("./launch.js")).launchCommand(v, p),
  },
  {
    name: "ablate",
    summary: "compare Transformer variants (norm placement, positions, feed-forward, attention, convolution) on equal terms: pretrain, fine-tune, one table",
    usage: "lmforge ablate --variants post-ln,pre-ln,rmsnorm+rotary+swiglu,performer,conv-hybrid [--budget 20m | --steps N] --out DIR [options]",
    notes: "Each variant is --model with its switches set, pretrained for the same time (or steps) on the same text and tokenizer,\nthen fine-tuned on --task; each runs in its own process (its peak memory is its own; a rerun skips the variants done).",
    specs: async () => (await import("../train/ablate.js")).ABLATE_OPTIONS,
    run: async (v) => (await import("./ablate.js")).ablateCommand(v),
  },
  {
    name: "compare",
    summary: "compare model families (BERT, RoBERTa, ALBERT, ...) on one task: pretrain each with its recipe on equal terms, fine-tune over seeds, one table",
    usage: "lmforge compare --models bert-mini,roberta-mini,albert-mini[,DIR...] [--task FILE|spam-assassin] [--budget 20m | --steps N] --out DIR [options]",
    notes: "Presets are pretrained with their family's recipe (BERT static masks, RoBERTa dynamic, ALBERT with sentence order) on the same text,\ntokenizer and budget; folders are fine-tuned as they are. Each model runs in its own process; a rerun keeps the models done.",
    specs: async () => (await import("../train/compare.js")).COMPARE_OPTIONS,
    run: async (v) => (await import("./ablate.js")).compareCommand(v),
  },
  {
    name: "fewshot",
    summary: "the few-shot table: every method (standard head, prompt-based, SetFit) at K examples per class over seeds, mean ± std",
    usage: "lmforge fewshot --model DIR --train DATA [--test DATA] --shots 8,16,32,64 --seeds 5 --methods standard,prompt,setfit --out DIR [finetune options]",
    notes: "Each (method, K, seed) is `lmforge finetune --shots K --seed S` in its own process (a rerun keeps the runs done); OUT/fewshot.md and\nOUT/fewshot.json hold the test metrics as mean ± std per (method, K) with the per-seed values. The finetune options below go to every run.",
    specs: async () => mergeSpecs((await import("../train/few-shot-study.js")).FEW_SHOT_STUDY_OPTIONS, await taskSpecs(), [CONFIG_OPTION]),
    run: async (v) => (await import("./fewshot.js")).fewShotCommand(v),
  },
  {
    name: "baseline",
    summary: "the classical text classifier to beat: TF-IDF words and word pairs + logistic regression (scikit-learn's), C chosen on validation; seconds",
    usage: "lmforge baseline --train FILE|spam-assassin|sotu-party [--validation FILE] [--test FILE] [--out DIR] [--min-df N] [--c-grid C,C,...]",
    notes: "Reads and splits the data as `lmforge finetune --task classification` does (same seed, same parts) and reports as `lmforge evaluate`.\nThe model scored is the one fitted on the training part with the C of the best validation macro-F1. `finetune --baseline` runs it after fine-tuning.",
    specs: async () => (await import("./baseline.js")).baselineSpecs(),
    run: async (v) => (await import("./baseline.js")).baselineCommand(v),
  },
  {
    name: "evaluate",
    summary: "score a fine-tuned model on labelled data with its task's metrics (--json: one JSON object)",
    usage: "lmforge evaluate --model DIR --data FILE [--json] [--errors FILE.jsonl] [--out DIR] [options]",
    notes: "The model folder says its task, labels and max length; the data is read in that task's formats.\n--out DIR keeps the evaluation: eval_metrics.json, the errors (and samples) as JSONL, and report.html.",
    specs: async () => mergeSpecs((await import("../train/index.js")).EVALUATE_OPTIONS, await taskSpecs(), (await import("./finetune.js")).EVALUATE_OUT_OPTIONS),
    run: async (v) => (await import("./finetune.js")).evaluateCommand(v),
  },
  {
    name: "predict",
    summary: "run a fine-tuned model on texts given as arguments, in a file (--file) or on standard input",
    usage: "lmforge predict --model DIR [TEXT...] [--file FILE] [--json]   (question answering: --question Q --context TEXT|FILE; images: --image FILE.png|IDX [--index N])",
    positionals: true,
    specs: async () => mergeSpecs((await import("../train/index.js")).PREDICT_OPTIONS, await taskSpecs(true)),
    run: async (v, p) => (await import("./finetune.js")).predictCommand(v, p),
  },
  {
    name: "explain",
    summary: "explain a model's prediction for a text: per-token attributions (gradient × input, integrated gradients, occlusion), attention and rollout, linear probes per layer",
    usage: "lmforge explain --model DIR --text TEXT [--method gradxinput|ig|occlusion] [--steps N] [--attention] [--probe sotu-ner|FILE] [--out DIR]",
    notes: "Writes explanation.json and a self-contained explanation.html (coloured tokens, attention lines per layer and head, rollout, probe chart).",
    specs: async () => mergeSpecs((await import("./explain.js")).EXPLAIN_COMMAND_OPTIONS, (await import("../explain/index.js")).EXPLAIN_OPTIONS),
    run: async (v) => (await import("./explain.js")).explainCommand(v),
  },
  {
    name: "generate",
    summary: "continue a prompt with a causal LM or answer it with an encoder-decoder such as T5 (greedy, sampling or beam search), streaming the text as it is produced",
    usage: "lmforge generate --model DIR --prompt TEXT [--max-new-tokens N] [--num-beams N] [--do-sample --temperature X --top-k K --top-p P] [--seed S]",
    notes: "The folder's generation_config.json, if any, gives the defaults. Several --prompt run as one batch and print when done.",
    specs: async () => mergeSpecs((await import("./generate.js")).GENERATE_COMMAND_OPTIONS, (await import("../generate/index.js")).GENERATE_OPTIONS),
    run: async (v) => (await import("./generate.js")).generateCommand(v),
  },
  {
    name: "serve",
    summary: "serve model folders over HTTP: classify, tag, answer, generate (streamed), embed; dynamic batching, metrics, OpenAPI",
    usage: "lmforge serve DIR... [--name NAME=DIR] [--port 8080] [--host 127.0.0.1] [--max-batch-size 16] [--max-wait-ms 5] [--queue-size 64] [options]",
    notes: "Each folder serves under its own name: POST /v1/models/NAME/classify|tokens|answer|generate|embed; GET /healthz, /readyz, /v1/models,\n/metrics, /openapi.json. Logs are JSON lines; SIGTERM finishes the requests in flight and exits 0.",
    positionals: true,
    specs: async () => (await import("../serve/server.js")).SERVE_OPTIONS,
    run: async (v, p) => (await import("./serve.js")).serveCommand(v, p),
  },
  {
    name: "data",
    summary: "build data sets from this system: Debian's package descriptions → summarisation and en-de / en-zh translation JSONL; scrub personal data from a corpus",
    usage: "lmforge data debian-descriptions --out DIR [--languages en,de,zh_CN] [--seed S] [--split 0.9,0.05,0.05] [--min-words N]\n       lmforge data scrub --in DIR|FILE --out DIR [--types email,phone,ip,credit_card,iban,url_credentials,name] [--report FILE]",
    notes: "Reads apt's Translation indexes; when one is missing, runs `apt-get update -o Acquire::Languages=...` as root, or says to.\nSplits by package family (foo, foo-doc, libfoo1 and python3-foo together). Writes stats.json with the counts and sources.",
    positionals: true,
    specs: async () => (await import("./data.js")).DATA_OPTIONS,
    run: async (v, p) => (await import("./data.js")).dataCommand(v, p),
  },
  {
    name: "export",
    summary: "export a model folder to ONNX: BERT-family sequence classifiers, GPT-2 and Llama causal LMs (with or without past key/values)",
    usage: "lmforge export onnx DIR --out FILE [--opset N] [--with-past]",
    notes:
      "Classifiers take input_ids, attention_mask (and token_type_ids, not RoBERTa) and give logits [batch, num_labels]. Causal LMs take input_ids,\n" +
      "attention_mask (past + new tokens), position_ids (cumsum(mask) - 1, 1 at padding) and with --with-past past_key_values.{i}.key/value;\n" +
      "they give logits [batch, sequence, vocab] and present.{i}.key/value. Weights are float32; files must stay under 2 GiB.",
    positionals: true,
    specs: async () => (await import("./export.js")).EXPORT_OPTIONS,
    run: async (v, p) => (await import("./export.js")).exportCommand(v, p),
  },
  {
    name: "quickstart",
    summary: "the whole pipeline on the embedded data: tokenizer, pretraining, fine-tuning, does pretraining help?",
    usage: "lmforge quickstart [--fast] [--out DIR] [--seed S]",
    notes: "--fast runs a tiny version in about a minute.",
    specs: async () => mergeSpecs((await import("./quickstart.js")).QUICKSTART_OPTIONS, [(await import("./progress.js")).PROGRESS_OPTION]),
    run: async (v) => (await import("./quickstart.js")).quickstartCommand(v),
  },
  {
    name: "report",
    summary: "write a run's report.html again, or one page overlaying several runs' curves with their final metrics side by side",
    usage: "lmforge report RUN_DIR... [--out FILE]",
    notes:
      "pretrain, finetune and evaluate --out write report.html in their folder when they end; this makes it again (for a run still going, as it stands).\n" +
      "The page is one file that opens from disk with no network: charts (uPlot) of the loss, validation metrics, learning rate, gradient norm and\n" +
      "throughput, and the task's tables (confusion matrix, per class or entity, worst errors, sample answers or outputs).",
    positionals: true,
    specs: async () => (await import("./report.js")).REPORT_OPTIONS,
    run: async (v, p) => (await import("./report.js")).reportCommand(v, p),
  },
  {
    name: "dashboard",
    summary: "a local web page of run folders: the report's charts, following running runs live",
    usage: "lmforge dashboard [RUN_DIR...] [--port 8765] [--host 127.0.0.1]",
    notes: "Without folders, lists the runs found under the current folder. A run's page follows its metrics.jsonl as it grows (server-sent events).",
    positionals: true,
    specs: async () => (await import("../report/dashboard.js")).DASHBOARD_OPTIONS,
    run: async (v, p) => (await import("./dashboard.js")).dashboardCommand(v, p),
  },
  {
    name: "info",
    summary: "show the engine: libtorch version, threads, BLAS choice, devices",
    usage: "lmforge info [--json]",
    specs: async () => [{ flag: "json", key: "json", type: "boolean", help: "one JSON object" }],
    run: async (v) => (await import("./info.js")).infoCommand(v),
  },
  {
    name: "bench",
    summary: "race lmforge against PyTorch on this machine, side by side, and report the ratios",
    usage: "lmforge bench [gemm|engine|optim|tokenizers|models|generate ...|serve|all] [options]",
    positionals: true,
    specs: async () => (await import("./info.js")).BENCH_OPTIONS,
    run: async (v, p) => (await import("./info.js")).benchCommand(v, p),
  },
];

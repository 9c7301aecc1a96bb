// `lmforge finetune`, `lmforge evaluate` and `lmforge predict` for text classification.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readLabelled, saveSplit, stratifiedSplit } from "../data/index.js";
import type { LabelledExample, ReadOptions } from "../data/index.js";
import { evaluateClassifier, finetuneClassifier, hyperparameterSearch, predictProbabilities, saveClassifier, writeErrors } from "../tasks/index.js";
import type { Classifier, FinetuneOptions, Strategy } from "../tasks/index.js";
import { formatReport } from "../eval/index.js";
import { AutoModelForSequenceClassification } from "../models/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import { writeTextAtomic } from "../io/index.js";
import { choiceArg, intArg, numberArg, stringArg } from "./args.js";
import { UsageError } from "./errors.js";
import { Progress } from "./progress.js";
import { withConfigFile } from "./pretrain.js";


function readOptions(v: Record<string, unknown>): ReadOptions {
  return {
    ...(typeof v["text-column"] === "string" ? { textColumn: v["text-column"] } : {}),
    ...(typeof v["text-pair-column"] === "string" ? { textPairColumn: v["text-pair-column"] } : {}),
    ...(typeof v["label-column"] === "string" ? { labelColumn: v["label-column"] } : {}),
    skipBadRows: Boolean(v["skip-bad-rows"]),
  };
}

function read(path: string, o: ReadOptions): LabelledExample[] {
  const r = readLabelled(path, o);
  if (r.skipped.length) console.error(`${path}: skipped ${r.skipped.length} bad row(s), e.g. ${r.skipped[0]!.source}: ${r.skipped[0]!.reason}`);
  if (r.examples.length === 0) throw new UsageError(`${path}: no examples`);
  return r.examples;
}

function list(v: unknown, name: string): number[] | undefined {
  if (typeof v !== "string") return undefined;
  const xs = v.split(",").map(Number);
  if (xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} must be a comma-separated list of numbers, got "${v}"`);
  return xs;
}

function strategyArg(v: Record<string, unknown>): Strategy {
  const s = typeof v.strategy === "string" ? v.strategy : "full";
  if (!/^(full|features|features:\d+|freeze:\d+|lora)$/.test(s)) throw new UsageError(`--strategy must be full, features, features:N, freeze:N or lora, got "${s}"`);
  return s as Strategy;
}

export async function finetuneCommand(raw: Record<string, unknown>): Promise<void> {
  const v = withConfigFile(raw);
  const task = typeof v.task === "string" ? v.task : "classification";
  if (task !== "classification") throw new UsageError(`--task ${task}: only classification is available in this version`);
  const modelDir = stringArg(v, "model");
  if (!existsSync(join(modelDir, "config.json"))) throw new UsageError(`--model ${modelDir}: no config.json (a checkpoint folder is expected)`);
  const out = stringArg(v, "out");
  const seed = intArg(v, "seed", { default: 42 });
  const ro = readOptions(v);
  let train = read(stringArg(v, "train"), ro);
  let validation: LabelledExample[];
  let test: LabelledExample[] | undefined = typeof v.test === "string" ? read(v.test, ro) : undefined;
  mkdirSync(out, { recursive: true });
  if (typeof v.validation === "string") validation = read(v.validation, ro);
  else {
    const s = stratifiedSplit(train, { validation: 0.1, test: test ? 0 : 0.1 }, seed);
    saveSplit(join(out, "split.json"), s, { source: v.train, seed, validation: 0.1, test: test ? 0 : 0.1 });
    train = s.train;
    validation = s.validation;
    if (!test) test = s.test;
    console.error(`split ${s.train.length + s.validation.length + s.test.length} examples (stratified, seed ${seed}): ${s.train.length} train, ${s.validation.length} validation, ${s.test.length} test; saved to ${join(out, "split.json")}`);
  }
  const base: FinetuneOptions = {
    model: modelDir,
    ...(typeof v.tokenizer === "string" ? { tokenizer: v.tokenizer } : {}),
    train,
    validation,
    strategy: strategyArg(v),
    learningRate: numberArg(v, "learning-rate", { min: 0, max: 1, default: 5e-5 }),
    epochs: intArg(v, "epochs", { min: 1, default: 3 }),
    batchSize: intArg(v, "batch-size", { min: 1, default: 32 }),
    maxLength: intArg(v, "max-length", { min: 8, default: 128 }),
    ...(v.dropout !== undefined ? { dropout: numberArg(v, "dropout", { min: 0, max: 0.9 }) } : {}),
    weightDecay: numberArg(v, "weight-decay", { min: 0, default: 0.01 }),
    warmupRatio: numberArg(v, "warmup-ratio", { min: 0, max: 1, default: 0.1 }),
    patience: intArg(v, "patience", { min: 0, default: 2 }),
    ...(v["eval-steps"] !== undefined ? { evalSteps: intArg(v, "eval-steps", { min: 1 }) } : {}),
    metric: choiceArg(v, "metric", ["macro_f1", "accuracy"] as const, "macro_f1"),
    ...(v.precision !== undefined ? { precision: choiceArg(v, "precision", ["fp32", "bf16"] as const) } : {}),
    seed,
    loraRank: intArg(v, "lora-rank", { min: 1, default: 8 }),
  };
  const progress = new Progress("finetune");
  base.onStep = (s) => progress.update(s.step, s.totalSteps, `loss ${s.loss.toFixed(4)}`);
  base.onEval = (e) => {
    progress.done();
    console.log(`epoch ${e.epoch + 1} step ${e.step}: train loss ${e.train_loss.toFixed(4)}, validation loss ${e.val_loss.toFixed(4)}, accuracy ${e.accuracy.toFixed(4)}, macro F1 ${e.macro_f1.toFixed(4)}`);
  };
  let classifier: Classifier;
  if (typeof v.search === "string") {
    const mode = choiceArg(v, "search", ["grid", "random"] as const);
    const space = {
      ...(list(v["search-learning-rate"], "search-learning-rate") ? { learningRate: list(v["search-learning-rate"], "search-learning-rate")! } : {}),
      ...(list(v["search-batch-size"], "search-batch-size") ? { batchSize: list(v["search-batch-size"], "search-batch-size")! } : {}),
      ...(list(v["search-dropout"], "search-dropout") ? { dropout: list(v["search-dropout"], "search-dropout")! } : {}),
      ...(list(v["search-epochs"], "search-epochs") ? { epochs: list(v["search-epochs"], "search-epochs")! } : {}),
    };
    if (Object.keys(space).length === 0) throw new UsageError("--search needs at least one of --search-learning-rate, --search-batch-size, --search-dropout, --search-epochs");
    const r = await hyperparameterSearch({ ...base, onEval: undefined, onStep: undefined }, space, {
      mode,
      trials: intArg(v, "trials", { min: 1, default: 4 }),
      seed,
      onTrial: (t, i, n) => console.log(`trial ${i + 1}/${n} ${JSON.stringify(t.params)}: macro F1 ${t.best.macro_f1.toFixed(4)}, accuracy ${t.best.accuracy.toFixed(4)} (${t.seconds.toFixed(0)} s)`),
    });
    console.log("\nsearch results (best first):");
    console.log(`${"learning rate".padEnd(14)}${"batch".padEnd(7)}${"dropout".padEnd(9)}${"epochs".padEnd(8)}${"macro F1".padEnd(10)}accuracy`);
    for (const t of r.trials) {
      const p = t.params;
      console.log(`${String(p.learningRate ?? base.learningRate).padEnd(14)}${String(p.batchSize ?? base.batchSize).padEnd(7)}${String(p.dropout ?? "-").padEnd(9)}${String(p.epochs ?? base.epochs).padEnd(8)}${t.best.macro_f1.toFixed(4).padEnd(10)}${t.best.accuracy.toFixed(4)}`);
    }
    writeTextAtomic(join(out, "search_results.json"), JSON.stringify(r.trials, null, 2) + "\n");
    classifier = r.classifier;
  } else {
    const r = await finetuneClassifier(base);
    progress.done();
    console.log(`best validation ${base.metric} at step ${r.best.step}${r.stoppedEarly ? " (stopped early)" : ""}; ${r.trainable} trainable parameters`);
    writeTextAtomic(join(out, "finetune_history.json"), JSON.stringify({ history: r.history, losses: r.losses }, null, 2) + "\n");
    classifier = r.classifier;
  }
  saveClassifier(classifier, out, base.tokenizer ?? modelDir);
  console.log(`saved the fine-tuned model, its labels and tokenizer to ${out}`);
  if (test) {
    const r = evaluateClassifier(classifier, test);
    console.log(`\ntest set (${test.length} examples):\n${formatReport(r.report)}`);
    const n = writeErrors(join(out, "errors.jsonl"), classifier, test, r);
    writeTextAtomic(join(out, "test_metrics.json"), JSON.stringify(r.report, null, 2) + "\n");
    console.log(`\n${n} misclassified test examples, most confident first: ${join(out, "errors.jsonl")}`);
  }
}

/** Loads a fine-tuned classifier folder. */
export async function loadClassifier(dir: string, maxLength = 128): Promise<Classifier> {
  if (!existsSync(join(dir, "config.json"))) throw new UsageError(`--model ${dir}: no config.json`);
  const model = await AutoModelForSequenceClassification.fromPretrained(dir, { verbose: false });
  const id2label = (model.config.id2label ?? {}) as Record<string, string>;
  const labels = Object.keys(id2label)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => id2label[k]!);
  if (labels.length < 2) throw new UsageError(`${dir}: config.json has no id2label; is it a fine-tuned classifier?`);
  return { model, tokenizer: loadTokenizer(dir), labels, maxLength };
}


export async function evaluateCommand(v: Record<string, unknown>): Promise<void> {
  const c = await loadClassifier(stringArg(v, "model"), intArg(v, "max-length", { min: 8, default: 128 }));
  const data = read(stringArg(v, "data"), readOptions(v));
  const r = evaluateClassifier(c, data);
  if (typeof v.errors === "string") writeErrors(v.errors, c, data, r);
  if (v.json) console.log(JSON.stringify(r.report));
  else console.log(`${data.length} examples\n${formatReport(r.report)}`);
}


export async function predictCommand(v: Record<string, unknown>, texts: string[]): Promise<void> {
  let inputs = texts;
  if (typeof v.file === "string") {
    if (!existsSync(v.file)) throw new UsageError(`--file ${v.file}: no such file`);
    inputs = readFileSync(v.file, "utf8").split(/\r?\n/).filter((l) => l.trim());
  } else if (inputs.length === 0) {
    if (process.stdin.isTTY) throw new UsageError("give texts as arguments, --file FILE, or lines on standard input");
    inputs = readFileSync(0, "utf8").split(/\r?\n/).filter((l) => l.trim());
  }
  if (inputs.length === 0) throw new UsageError("no text to label");
  const c = await loadClassifier(stringArg(v, "model"), intArg(v, "max-length", { min: 8, default: 128 }));
  const probs = predictProbabilities(c, inputs.map((text) => ({ text })));
  probs.forEach((p, i) => {
    const k = p.indexOf(Math.max(...p));
    const byLabel = Object.fromEntries(c.labels.map((l, j) => [l, Number(p[j]!.toFixed(6))]));
    if (v.json) console.log(JSON.stringify({ text: inputs[i], label: c.labels[k], probabilities: byLabel }));
    else console.log(`${c.labels[k]}\t${p[k]!.toFixed(4)}\t${inputs[i]!.slice(0, 100)}`);
  });
}

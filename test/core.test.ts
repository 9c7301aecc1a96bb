// The training core's structure and the fixes found when the last wave was tried as a new
// user would: imports point down the layers, one loop trains everything, registries answer
// instead of switches, and each regression that once failed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import * as torch from "../src/torch/index.js";
import { embeddedCorpus } from "../src/data/index.js";
import { AutoTokenizer, loadTokenizer, saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { AutoModelForSequenceClassification, architecture, classFor, modelFromPretrained, presetConfig, savePretrained } from "../src/models/index.js";
import { knownObjectives, objectiveEntry } from "../src/objectives/index.js";
import { applyStrategy, pretrain } from "../src/train/index.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();
process.env.LMFORGE_CACHE = join(dir, "cache");
const src = new URL("../../src", import.meta.url).pathname;

function sources(d: string): string[] {
  return readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? sources(join(d, f)) : f.endsWith(".ts") ? [join(d, f)] : []));
}

// DESIGN.md's layers, bottom up; within the data layer io < tokenizers < data (data reads files and tokenises)
const RANK: Record<string, number> = { torch: 0, io: 1, tokenizers: 2, data: 3, nn: 4, optim: 4, eval: 4, models: 5, objectives: 6, tasks: 6, generate: 6, explain: 6, export: 6, train: 7, serve: 8, report: 8, cli: 9 };

test("imports point down the layers only (no folder imports one beside or above it)", () => {
  const bad: string[] = [];
  for (const file of sources(src)) {
    const folder = relative(src, file).split("/")[0]!;
    if (!(folder in RANK)) continue; // src/index.ts, the library's entry, re-exports everything
    for (const m of readFileSync(file, "utf8").matchAll(/from "\.\.\/([a-z]+)\//g)) {
      const target = m[1]!;
      if (target !== folder && RANK[target]! >= RANK[folder]!) bad.push(`${relative(src, file)} imports ${target}`);
    }
  }
  assert.deepEqual(bad, []);
});

test("one training loop: nothing outside the Trainer steps an optimizer or runs a backward pass", () => {
  // adversarial: the Trainer's backward, with perturbed embeddings; checkpoint: the rest of the
  // Trainer's one backward, layer by layer through the recomputed layers (gradient checkpointing)
  const allowed = new Set(["train/trainer.ts", "nn/adversarial.ts", "nn/checkpoint.ts"]);
  const offenders: string[] = [];
  for (const file of sources(src)) {
    const rel = relative(src, file);
    if (allowed.has(rel) || rel.startsWith("optim/") || rel.startsWith("torch/")) continue;
    const text = readFileSync(file, "utf8");
    if (/\.backward\(|optimizer\.step\(|new (AdamW|SGD)\(|AdamW\.forModule\(/.test(text)) offenders.push(rel);
  }
  assert.deepEqual(offenders, []);
});

test("registries, not switches: objectives and architectures by name, an unknown one is an error listing the known", () => {
  assert.deepEqual(knownObjectives(), ["mlm", "mlm+sop", "mlm+nsp", "clm", "electra", "span-corruption", "clip"]);
  assert.throws(() => objectiveEntry("bart"), /objective "bart" is not supported; use mlm, mlm,sop, mlm,nsp, clm, electra/);
  assert.throws(() => architecture("mamba"), /unknown model_type "mamba"; lmforge knows bert, gpt2, roberta, albert, electra, t5/);
  assert.throws(() => classFor(architecture("gpt2"), "token-classification"), /gpt2 has no token-classification model in lmforge \(it has: base, causal-lm, sequence-classification\)/);
  // strategies ask the registry: GPT-2 names no LoRA targets, so lora is refused with the reason
  const gpt = AutoModelForSequenceClassification.fromConfig({ ...presetConfig("gpt2"), n_embd: 32, n_layer: 2, n_head: 2, vocab_size: 50, n_positions: 32 });
  assert.throws(() => applyStrategy(gpt, "lora"), /lora: gpt2 has no linear layers LoRA wraps here/);
  const counts = applyStrategy(gpt, "freeze:1");
  const frozen = [...gpt.namedParameters()].filter(([, p]) => !p.requiresGrad).map(([n]) => n);
  assert.ok(frozen.includes("transformer.wte.weight") && frozen.includes("transformer.h.0.attn.c_attn.weight") && !frozen.some((n) => n.startsWith("transformer.h.1.")), frozen.join(", "));
  assert.ok(counts.trainable < counts.total);
});

const docs = embeddedCorpus("moby-dick").slice(0, 30);
const tokDir = join(dir, "tok");
saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 1500, lowercase: true }), tokDir);
const small = { hidden_size: 32, intermediate_size: 64, num_attention_heads: 2 };

test("regression: masked-LM pretraining under bf16 autocast runs (the MLM head's LayerNorm met a bf16 input and crashed)", async () => {
  const r = await pretrain({ model: "bert-tiny", modelConfig: small, tokenizer: tokDir, objectives: "mlm,sop", documents: docs, maxSteps: 3, batchSize: 4, seqLen: 32, precision: "bf16", out: join(dir, "bf16"), evalEvery: 3, evalBatches: 1 });
  assert.equal(r.steps, 3);
  assert.ok(Number.isFinite(r.evals[0]!.val_loss), JSON.stringify(r.evals));
});

test("regression: one file of one paragraph per line holds out sequences for validation, and says so", async () => {
  const file = join(dir, "lines.txt");
  writeFileSync(file, docs.join(" ").replace(/\s+/g, " ").split(/(?<=\.) /).slice(0, 400).join("\n"));
  const lines: string[] = [];
  const r = await pretrain({ model: "bert-tiny", modelConfig: small, tokenizer: tokDir, input: [file], maxSteps: 1, batchSize: 4, seqLen: 32, precision: "fp32", out: join(dir, "lines"), evalEvery: 1, evalBatches: 1, log: (l) => lines.push(l) });
  assert.ok(r.validationExamples > 0 && r.trainExamples > r.validationExamples);
  assert.ok(lines.some((l) => /the corpus has 1 document\(s\), too few to hold out whole ones: the last \d+ of its \d+ sequences are held out instead/.test(l)), lines.join("\n"));
});

test("regression: presets keep their architecture's positions (BERT 512) whatever --seq-len; a longer run gets enough", async () => {
  await pretrain({ model: "bert-tiny", modelConfig: small, tokenizer: tokDir, documents: docs, maxSteps: 1, batchSize: 2, seqLen: 32, precision: "fp32", out: join(dir, "pos") });
  const cfg = JSON.parse(readFileSync(join(dir, "pos", "config.json"), "utf8")) as { max_position_embeddings: number };
  assert.equal(cfg.max_position_embeddings, 512);
  await assert.rejects(pretrain({ model: "bert-tiny", modelConfig: { ...small, max_position_embeddings: 16 }, tokenizer: tokDir, documents: docs, maxSteps: 1, batchSize: 2, seqLen: 32, out: join(dir, "pos2") }), /--seq-len 32 needs 32 positions but the model has max_position_embeddings = 16/);
});

test("regression: continuing a checkpoint folder takes its own tokenizer; a preset without --tokenizer is refused by name", async () => {
  const lines: string[] = [];
  const r = await pretrain({ model: join(dir, "pos"), documents: docs, maxSteps: 1, batchSize: 2, seqLen: 32, precision: "fp32", out: join(dir, "pos3"), log: (l) => lines.push(l) });
  assert.equal(r.steps, 1);
  assert.equal(readFileSync(join(dir, "pos3", "tokenizer.json"), "utf8"), readFileSync(join(dir, "pos", "tokenizer.json"), "utf8"));
  await assert.rejects(pretrain({ model: "bert-tiny", modelConfig: small, documents: docs, maxSteps: 1, batchSize: 2, seqLen: 32, out: join(dir, "pos4") }), /--tokenizer is required with the preset bert-tiny/);
  assert.equal(existsSync(join(dir, "pos4")), false);
});

test("regression: ELECTRA continues from --model DIR; options an objective cannot take are refused, not ignored", async () => {
  const first = join(dir, "electra");
  await pretrain({ model: "electra-small", modelConfig: { ...small, embedding_size: 16, num_hidden_layers: 2 }, tokenizer: tokDir, objectives: "electra", documents: docs, maxSteps: 2, batchSize: 2, seqLen: 32, precision: "fp32", out: first });
  const before = (await modelFromPretrained(first, "electra-discriminator", { verbose: false })).stateDict().get("electra.encoder.layer.0.attention.self.query.weight")!;
  const lines: string[] = [];
  const r = await pretrain({ model: first, tokenizer: tokDir, objectives: "electra", documents: docs, maxSteps: 1, batchSize: 2, seqLen: 32, learningRate: 1e-9, precision: "fp32", out: join(dir, "electra2"), log: (l) => lines.push(l) });
  const after = r.model.stateDict().get("electra.encoder.layer.0.attention.self.query.weight")!;
  assert.ok(after.sub(before).abs().max().item() < 1e-6, "the discriminator started from the folder's weights");
  assert.ok(lines.some((l) => /continuing its ElectraForPreTraining; the other network of the pair starts fresh/.test(l)), lines.join("\n"));
  const base = { tokenizer: tokDir, documents: docs, maxSteps: 1, batchSize: 2, seqLen: 32, out: join(dir, "refused") };
  await assert.rejects(pretrain({ ...base, model: "electra-small", objectives: "electra", adversarial: { method: "fgm", epsilon: 1 } }), /--adversarial does not apply to electra/);
  await assert.rejects(pretrain({ ...base, model: "gpt2", objectives: "clm", perturb: { deletion: 0.1 } }), /--perturb does not apply to clm/);
  await assert.rejects(pretrain({ ...base, model: "electra-small", objectives: "electra", perturb: { deletion: 0.1 } }), /--perturb does not apply to electra/);
  await assert.rejects(pretrain({ ...base, model: "bert-tiny", objectives: "clm" }), /--model bert-tiny does not fit --objectives clm: bert has no causal-lm model/);
});

test("regression: --resume with a new --learning-rate applies it from the checkpoint on, and says so", async () => {
  const out = join(dir, "lr");
  const opts = { model: "bert-tiny", modelConfig: small, tokenizer: tokDir, documents: docs, batchSize: 2, seqLen: 32, precision: "fp32" as const, out, saveEvery: 2, warmupSteps: 0 };
  const starts: number[] = [];
  await pretrain({ ...opts, maxSteps: 2, learningRate: 1e-3, onStep: (s) => starts.push(s.startStep) });
  const lines: string[] = [];
  await pretrain({ ...opts, maxSteps: 4, learningRate: 2e-4, resume: true, log: (l) => lines.push(l), onStep: (s) => starts.push(s.startStep) });
  assert.deepEqual(starts, [0, 0, 2, 2], "each step says where its run began (the progress rate of a resumed run counts from there)");
  assert.ok(lines.some((l) => /the learning rate is now 0\.0002 \(the checkpoint's run had 0\.001\)/.test(l)), lines.join("\n"));
  const steps = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { event: string; step: number; lr: number }).filter((r) => r.event === "step");
  // linear decay to 0 over 4 steps, from the new peak after the checkpoint: after step 3, 2e-4 x (4 - 3) / 4
  assert.ok(Math.abs(steps.find((s) => s.step === 3)!.lr - 2e-4 * 0.25) < 1e-12, JSON.stringify(steps));
  // the longer run is said too (another --max-steps, so another schedule); the batch size was kept
  assert.ok(lines.some((l) => /with maxSteps 4 where the checkpoint's run had 2/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => /with the learning-rate schedule \(its warmup, kind or length\)/.test(l)), lines.join("\n"));
  assert.ok(!lines.some((l) => /with batchSize/.test(l)), lines.join("\n"));
  // resuming the finished run with its own settings says nothing of the kind
  const again: string[] = [];
  await pretrain({ ...opts, maxSteps: 4, learningRate: 2e-4, resume: true, log: (l) => again.push(l) });
  assert.ok(!again.some((l) => /the checkpoint's run had/.test(l)), again.join("\n"));
});

test("AutoTokenizer.fromPretrained loads a folder as loadTokenizer does", async () => {
  const a = await AutoTokenizer.fromPretrained(tokDir);
  assert.deepEqual(a.encode("Call me Ishmael.").ids, loadTokenizer(tokDir).encode("Call me Ishmael.").ids);
});

test("a model without a registry entry is a clear error, never a silent default", async () => {
  const odd = join(dir, "odd");
  torch.manualSeed(0);
  savePretrained(AutoModelForSequenceClassification.fromConfig({ model_type: "bert", vocab_size: 30, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16 }), odd);
  const cfg = JSON.parse(readFileSync(join(odd, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(odd, "config.json"), JSON.stringify({ ...cfg, model_type: "mystery" }));
  await assert.rejects(modelFromPretrained(odd, "sequence-classification"), /config\.json: unknown model_type "mystery"; lmforge knows/);
});

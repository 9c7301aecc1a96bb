// Gradient checkpointing (src/nn/checkpoint.ts): with the same seed and dropout on, the
// gradients equal those of the plain backward, for an encoder (BERT), GPT-2 and Llama.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import { pendingCheckpoints, requireCheckpointed, setGradientCheckpointing } from "../src/nn/index.js";
import { AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM } from "../src/models/index.js";
import type { PretrainedModel } from "../src/models/index.js";
import { embeddedCorpus } from "../src/data/index.js";
import { loadSafetensors } from "../src/io/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { finetune } from "../src/train/index.js";
import type { LabelledExample } from "../src/data/index.js";
import { savePretrained } from "../src/models/index.js";
import { tempDir } from "./helpers.js";

const common = { vocab_size: 40, hidden_size: 32, num_attention_heads: 4, max_position_embeddings: 64, pad_token_id: 0 };
const bert = { model_type: "bert", ...common, num_hidden_layers: 3, intermediate_size: 48, hidden_dropout_prob: 0.2, attention_probs_dropout_prob: 0.2 };
const albert = { model_type: "albert", ...common, embedding_size: 16, num_hidden_layers: 3, num_hidden_groups: 1, intermediate_size: 48, hidden_dropout_prob: 0.2, attention_probs_dropout_prob: 0.2 };
const gpt2 = { model_type: "gpt2", vocab_size: 40, n_embd: 32, n_head: 4, n_layer: 3, n_positions: 64, resid_pdrop: 0.2, embd_pdrop: 0.2, attn_pdrop: 0.2 };
const llama = { model_type: "llama", ...common, num_hidden_layers: 3, intermediate_size: 48, attention_dropout: 0.2 };

// two rows, the second padded: the masks travel with the checkpointed layers
const ids = [
  [5, 9, 3, 17, 22, 8, 11],
  [4, 30, 12, 6, 0, 0, 0],
];
const attention = [
  [1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 0, 0, 0],
];
const mlmLabels = [
  [-100, 9, -100, 17, -100, -100, 11],
  [4, -100, -100, 6, -100, -100, -100],
];
const lmLabels = [
  [5, 9, 3, 17, 22, 8, 11],
  [4, 30, 12, 6, -100, -100, -100],
];

interface Run {
  loss: number;
  grads: Map<string, number[]>;
  /** The generator's next draw after the step: the recomputation must not move it. */
  next: number;
  /** Checkpointed stacks pending between the forward and the backward. */
  pending: number;
}

/** One forward and backward in train mode from a seed; the gradients by parameter name. */
function step(model: PretrainedModel, labels: number[][], seed: number, lossOnly = false): Run {
  for (const p of model.parameters()) p.zeroGrad();
  return torch.scope(() => {
    torch.manualSeed(seed);
    const forward = () => model.forward({ inputIds: torch.tensor(ids, { dtype: "int64" }), attentionMask: torch.tensor(attention, { dtype: "int64" }), labels: torch.tensor(labels, { dtype: "int64" }) });
    // lossOnly: as the Trainer runs a step, every handle of the forward but the loss is freed
    // before the backward (the checkpointed stack's output among them)
    const out = lossOnly ? { loss: torch.scope(() => forward().loss!) } : forward();
    const pending = pendingCheckpoints();
    out.loss!.backward();
    const grads = new Map<string, number[]>();
    for (const [name, p] of model.namedParameters()) grads.set(name, p.grad ? [...(p.grad.toArray() as number[]).flat(3)] : []);
    return { loss: out.loss!.item(), grads, next: torch.rand([1]).item(), pending };
  });
}

function maxDiff(a: Map<string, number[]>, b: Map<string, number[]>): number {
  let worst = 0;
  for (const [name, ga] of a) {
    const gb = b.get(name)!;
    assert.equal(gb.length, ga.length, `${name}: gradient present in one run only`);
    for (let i = 0; i < ga.length; i++) worst = Math.max(worst, Math.abs(ga[i]! - gb[i]!));
  }
  return worst;
}

function checkSameGradients(what: string, build: () => PretrainedModel, labels: number[][]): void {
  torch.manualSeed(1);
  const model = build().train();
  const plain = step(model, labels, 42);
  const otherSeed = step(model, labels, 43);
  setGradientCheckpointing(model);
  const checkpointed = step(model, labels, 42);
  const lossOnly = step(model, labels, 42, true);
  setGradientCheckpointing(model, false);
  assert.equal(lossOnly.pending, 1, `${what}: the stack outlives its output's handle`);
  assert.ok(maxDiff(checkpointed.grads, lossOnly.grads) === 0, `${what}: freeing the forward's handles before the backward changes nothing`);

  assert.equal(plain.pending, 0, `${what}: nothing is checkpointed when off`);
  assert.equal(checkpointed.pending, 1, `${what}: the layers ran checkpointed`);
  assert.equal(pendingCheckpoints(), 0, `${what}: the backward consumed the checkpoint`);
  // dropout is on and matters: another seed moves the gradients by far more than the tolerance
  assert.ok(maxDiff(plain.grads, otherSeed.grads) > 1e-3, `${what}: dropout changes the gradients`);
  assert.ok(Math.abs(checkpointed.loss - plain.loss) <= 1e-6, `${what}: loss ${checkpointed.loss} vs ${plain.loss}`);
  const diff = maxDiff(plain.grads, checkpointed.grads);
  assert.ok(diff <= 1e-6, `${what}: gradients differ by ${diff}`);
  assert.equal(checkpointed.next, plain.next, `${what}: the generator is where the plain step leaves it`);
  const layerGrads = [...checkpointed.grads].filter(([n, g]) => /layer|\.h\.|layers/.test(n) && g.some((v) => v !== 0));
  assert.ok(layerGrads.length > 10, `${what}: the layers' parameters got gradients`);
}

test("checkpointed BERT (masked LM, dropout on) has the plain backward's gradients", () => {
  checkSameGradients("bert", () => AutoModelForMaskedLM.fromConfig(bert), mlmLabels);
});

test("checkpointed ALBERT (one layer shared by three steps, dropout on) has the plain backward's gradients", () => {
  checkSameGradients("albert", () => AutoModelForMaskedLM.fromConfig(albert), mlmLabels);
});

test("checkpointed GPT-2 (causal LM, dropout on) has the plain backward's gradients", () => {
  checkSameGradients("gpt2", () => AutoModelForCausalLM.fromConfig(gpt2), lmLabels);
});

test("checkpointed Llama (causal LM, attention dropout on) has the plain backward's gradients", () => {
  checkSameGradients("llama", () => AutoModelForCausalLM.fromConfig(llama), lmLabels);
});

test("checkpointing acts in training only, and a forward without backward leaves nothing behind", () => {
  torch.manualSeed(1);
  const model = AutoModelForMaskedLM.fromConfig(bert);
  setGradientCheckpointing(model);
  const input = () => ({ inputIds: torch.tensor(ids, { dtype: "int64" }), attentionMask: torch.tensor(attention, { dtype: "int64" }) });
  torch.scope(() => {
    model.eval().forward(input());
    assert.equal(pendingCheckpoints(), 0, "eval: plain forward");
    model.train();
    torch.noGrad(() => model.forward(input()));
    assert.equal(pendingCheckpoints(), 0, "no-grad: plain forward");
    model.forward(input());
    assert.equal(pendingCheckpoints(), 1);
  });
  requireCheckpointed(model, "test"); // its layers ran checkpointed: no error
  // the step's scope freed the output without a backward: the next forward drops the stale stack
  const live = torch.liveTensors();
  torch.scope(() => {
    const out: Tensor = model.forward({ ...input(), labels: torch.tensor(mlmLabels, { dtype: "int64" }) }).loss!;
    out.backward();
  });
  assert.equal(pendingCheckpoints(), 0);
  assert.ok(torch.liveTensors() <= live, `no tensor leaked: ${torch.liveTensors()} live, ${live} before`);
});

test("lmforge pretrain --gradient-checkpointing trains the very run it trains without (bert-tiny, dropout on)", async () => {
  const dir = await tempDir();
  const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
  const env = { ...process.env, LMFORGE_CACHE: join(dir, "cache") };
  const docs = embeddedCorpus("moby-dick").slice(0, 20);
  const tokDir = join(dir, "tok");
  saveTokenizer(trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 600, lowercase: true }), tokDir);
  const input = join(dir, "moby.txt");
  writeFileSync(input, docs.join("\n\n"));
  const train = (out: string, extra: string[]) => {
    const r = spawnSync(process.execPath, [cli, "pretrain", "--model", "bert-tiny", "--tokenizer", tokDir, "--input", input, "--max-steps", "3", "--batch-size", "4", "--seq-len", "32", "--precision", "fp32", "--eval-every", "3", "--out", join(dir, out), ...extra], { encoding: "utf8", env });
    assert.equal(r.status, 0, r.stderr);
    const losses = readFileSync(join(dir, out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { loss?: number }).filter((m) => m.loss !== undefined).map((m) => m.loss!);
    return { losses, weights: loadSafetensors(join(dir, out, "model.safetensors")) };
  };
  const plain = train("plain", []);
  const checkpointed = train("checkpointed", ["--gradient-checkpointing"]);
  assert.equal(checkpointed.losses.length, plain.losses.length);
  assert.ok(plain.losses.length >= 3, JSON.stringify(plain.losses));
  plain.losses.forEach((l, i) => assert.ok(Math.abs(l - checkpointed.losses[i]!) <= 1e-5, `step ${i + 1}: loss ${checkpointed.losses[i]} vs ${l}`));
  let worst = 0;
  for (const [name, w] of plain.weights) {
    worst = Math.max(worst, torch.scope(() => w.sub(checkpointed.weights.get(name)!).abs().max().item()));
  }
  assert.ok(worst <= 1e-5, `weights after 3 steps differ by ${worst}`);
});

test("a model family without the hook (T5) is refused by name, not trained silently without checkpointing", () => {
  const t5 = AutoModelForSeq2SeqLM.fromConfig({ model_type: "t5", vocab_size: 40, d_model: 32, d_ff: 48, d_kv: 8, num_heads: 4, num_layers: 2, feed_forward_proj: "relu" }).train();
  setGradientCheckpointing(t5);
  torch.scope(() => t5.forward({ inputIds: torch.tensor(ids, { dtype: "int64" }), attentionMask: torch.tensor(attention, { dtype: "int64" }), labels: torch.tensor(lmLabels, { dtype: "int64" }) }));
  assert.throws(() => requireCheckpointed(t5, "--gradient-checkpointing"), /--gradient-checkpointing: this model's layers ran without checkpointing; it is implemented for BERT, RoBERTa, ELECTRA, ALBERT, GPT-2 and Llama/);
});

test("finetune({ gradientCheckpointing: true }) (sequence classification: the last layer reads the first token) trains the plain run", async () => {
  const dir = await tempDir();
  const topics = ["whale ship sea harpoon captain ocean voyage", "nation congress president law people union tax"];
  const train: LabelledExample[] = Array.from({ length: 32 }, (_, i) => {
    const vocab = topics[i % 2]!.split(" ");
    return { text: Array.from({ length: 4 + (i % 5) }, (_, j) => vocab[(i * 3 + j * 5) % vocab.length]).join(" "), label: i % 2 ? "nation" : "whale", source: `synth:${i}` };
  });
  const tok = trainTokenizerFromTexts(train.map((e) => e.text), { kind: "wordpiece", vocabSize: 80, lowercase: true, minFrequency: 1 });
  torch.manualSeed(0);
  const baseDir = join(dir, "base");
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 64, hidden_dropout_prob: 0.2 }), baseDir);
  saveTokenizer(tok, baseDir);
  const run = async (out: string, gradientCheckpointing: boolean) => {
    const losses: number[] = [];
    await finetune({ model: baseDir, train, validation: train.slice(0, 8), maxSteps: 3, batchSize: 8, learningRate: 3e-3, seed: 1, maxLength: 16, patience: 0, precision: "fp32", out: join(dir, out), onStep: (st) => losses.push(st.loss), gradientCheckpointing });
    return { losses, weights: loadSafetensors(join(dir, out, "model.safetensors")) };
  };
  const plain = await run("plain", false);
  const checkpointed = await run("checkpointed", true);
  assert.equal(plain.losses.length, 3);
  plain.losses.forEach((l, i) => assert.ok(Math.abs(l - checkpointed.losses[i]!) <= 1e-5, `step ${i + 1}: loss ${checkpointed.losses[i]} vs ${l}`));
  let worst = 0;
  for (const [name, w] of plain.weights) worst = Math.max(worst, torch.scope(() => w.sub(checkpointed.weights.get(name)!).abs().max().item()));
  assert.ok(worst <= 1e-5, `weights after 3 steps differ by ${worst}`);
});

test("checkpointing holds a fraction of the activations after the forward, and leaves no copies of the weights behind", () => {
  // large enough that the tensors go through the caching allocator (1 MiB and up), whose
  // inUse counts the bytes live tensors hold
  const config = { model_type: "bert", vocab_size: 100, hidden_size: 512, num_hidden_layers: 3, num_attention_heads: 8, intermediate_size: 2048 };
  const held = (checkpointing: boolean): { afterForward: number; afterStep: number } => {
    torch.manualSeed(0);
    const model = AutoModelForMaskedLM.fromConfig(config).train();
    setGradientCheckpointing(model, checkpointing);
    const inUse = () => torch.cpuCache.stats().inUse;
    const before = inUse();
    let afterForward = 0;
    torch.scope(() => {
      const inputIds = torch.randint(5, 100, [4, 128]);
      const out = model.forward({ inputIds, labels: inputIds });
      afterForward = inUse() - before;
      out.loss!.backward();
    });
    const afterStep = inUse() - before; // the gradients
    for (const p of model.parameters()) p.zeroGrad();
    return { afterForward, afterStep };
  };
  const plain = held(false);
  const checkpointed = held(true);
  assert.ok(checkpointed.afterForward < 0.3 * plain.afterForward, `after the forward: ${checkpointed.afterForward} bytes held vs ${plain.afterForward}`);
  // no inference-path weight copies (native/linear.cc) nor saved inputs outlive the step
  assert.equal(checkpointed.afterStep, plain.afterStep);
});

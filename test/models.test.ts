// Models: Hugging Face parity on real checkpoints, every head's shapes, padding invariance,
// tied weights, save/load round trips, configs, checkpoint name variants.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { tensor as T } from "../src/torch/index.js";
import type { Tensor } from "../src/torch/index.js";
import {
  AutoConfig,
  AutoModel,
  AutoModelForCausalLM,
  AutoModelForMaskedLM,
  AutoModelForPreTraining,
  AutoModelForSequenceClassification,
  AutoModelForTokenClassification,
  AutoModelForQuestionAnswering,
  AutoModelForMultipleChoice,
  loadReport,
  savePretrained,
  knownModelTypes,
  architecture,
  labelPositions,
} from "../src/models/index.js";
import type { PretrainedModel, Task } from "../src/models/index.js";
import { bert, gpt2, roberta, albert, electra } from "../src/models/index.js";
import { loadSafetensors, saveSafetensors, readCheckpoint } from "../src/io/index.js";
import { fixture, tempDir } from "./helpers.js";
import "../src/generate/index.js"; // model.generate() runs src/generate's strategies, a layer above the models

const dir = await tempDir();
const TOL = 5e-5;

type Nested = number | Nested[];
/** Max |a - b| over the positions where mask (B, T) is 1 (all if no mask). */
function maxDiff(t: Tensor, expected: Nested, mask?: number[][]): number {
  let m = 0;
  const walk = (x: Nested, y: Nested, path: number[]): void => {
    if (Array.isArray(x)) {
      x.forEach((v, i) => {
        if (mask && path.length === 1 && mask[path[0]!]![i] === 0) return;
        walk(v, (y as Nested[])[i]!, [...path, i]);
      });
    } else m = Math.max(m, Math.abs(x - (y as number)));
  };
  walk(t.toArray() as Nested, expected, []);
  return m;
}

// --- Hugging Face parity ---------------------------------------------------------------------------

const bertRef = JSON.parse(readFileSync(fixture("hf-tiny/bert.reference.json"), "utf8")) as { inputs: Record<string, number[][]>; outputs: Record<string, Nested> };

test("BERT: a Hugging Face checkpoint loads and gives Hugging Face's numbers (MLM, NSP, pooled, hidden states, attentions, losses)", async () => {
  const m = await AutoModelForPreTraining.fromPretrained(fixture("hf-tiny/bert"), { verbose: false });
  assert.ok(m instanceof bert.BertForPreTraining);
  assert.deepEqual(loadReport(m), { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [], initialized: [] });
  const i = bertRef.inputs;
  const mask = i.attention_mask!;
  torch.noGrad(() =>
    torch.scope(() => {
      const out = m.forward({ inputIds: T(i.input_ids!), tokenTypeIds: T(i.token_type_ids!), attentionMask: T(mask), outputHiddenStates: true, outputAttentions: true });
      assert.ok(maxDiff(out.logits, bertRef.outputs.prediction_logits!, mask) < TOL);
      assert.ok(maxDiff(out.seqRelationshipLogits!, bertRef.outputs.seq_relationship_logits!) < TOL);
      assert.ok(maxDiff(out.pooledOutput!, bertRef.outputs.pooler_output!) < TOL);
      assert.ok(maxDiff(out.lastHiddenState, bertRef.outputs.last_hidden_state!, mask) < TOL);
      const hs = bertRef.outputs.hidden_states as Nested[];
      assert.equal(out.hiddenStates!.length, hs.length);
      out.hiddenStates!.forEach((h, k) => assert.ok(maxDiff(h, hs[k]!, mask) < TOL, `hidden state ${k}`));
      const at = bertRef.outputs.attentions as Nested[][];
      out.attentions!.forEach((a, k) => {
        // compare the attention rows of real query tokens
        (a.toArray() as Nested[][]).forEach((row, b) => {
          const got = row as Nested[][];
          got.forEach((head, h) => head.forEach((q, t) => {
            if (mask[b]![t] === 0) return;
            (q as number[]).forEach((p, s) => assert.ok(Math.abs(p - ((at[k]![b] as Nested[][])[h]![t] as number[])[s]!) < TOL, `attention ${k}`));
          }));
        });
      });
      const withLabels = m.forward({ inputIds: T(i.mlm_input_ids!), tokenTypeIds: T(i.token_type_ids!), attentionMask: T(mask), labels: T(i.mlm_labels!), nextSentenceLabel: T(i.next_sentence_label as unknown as number[]) });
      assert.ok(Math.abs(withLabels.loss!.item() - (bertRef.outputs.pretraining_loss_on_mlm_inputs as number)) < TOL);
      const plain = m.forward({ inputIds: T(i.input_ids!) });
      assert.ok(maxDiff(plain.logits, bertRef.outputs.prediction_logits_no_mask_no_token_types!) < TOL);
    }),
  );
  const mlm = await AutoModelForMaskedLM.fromPretrained(fixture("hf-tiny/bert"), { verbose: false });
  // the pretraining checkpoint's pooler and NSP head have no place in a masked-LM model
  assert.deepEqual([...loadReport(mlm)!.unexpectedKeys].sort(), ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "cls.seq_relationship.bias", "cls.seq_relationship.weight"]);
  assert.deepEqual(loadReport(mlm)!.missingKeys, []);
  torch.noGrad(() => torch.scope(() => {
    const out = mlm.forward({ inputIds: T(i.mlm_input_ids!), tokenTypeIds: T(i.token_type_ids!), attentionMask: T(mask), labels: T(i.mlm_labels!) });
    assert.ok(Math.abs(out.loss!.item() - (bertRef.outputs.mlm_loss_on_mlm_inputs as number)) < TOL);
  }));
});

const gptRef = JSON.parse(readFileSync(fixture("hf-tiny/gpt2.reference.json"), "utf8")) as { inputs: Record<string, number[][]>; outputs: Record<string, Nested> };

test("GPT-2: logits, hidden states, loss and greedy generation equal Hugging Face's; the KV cache changes nothing", async () => {
  const m = (await AutoModelForCausalLM.fromPretrained(fixture("hf-tiny/gpt2"), { verbose: false })) as gpt2.GPT2LMHeadModel;
  assert.deepEqual(loadReport(m)!.missingKeys, []);
  assert.equal(m.lm_head.weight, m.transformer.wte.weight, "tied LM head");
  const i = gptRef.inputs;
  const mask = i.attention_mask!;
  torch.noGrad(() => torch.scope(() => {
    const out = m.forward({ inputIds: T(i.input_ids!), attentionMask: T(mask), labels: T(i.labels!), outputHiddenStates: true });
    assert.ok(maxDiff(out.logits, gptRef.outputs.logits!, mask) < TOL);
    assert.ok(maxDiff(out.lastHiddenState, gptRef.outputs.last_hidden_state!, mask) < TOL);
    (gptRef.outputs.hidden_states as Nested[]).forEach((h, k) => assert.ok(maxDiff(out.hiddenStates![k]!, h, mask) < TOL, `hidden ${k}`));
    assert.ok(Math.abs(out.loss!.item() - (gptRef.outputs.lm_loss as number)) < TOL);
    const row0 = m.forward({ inputIds: T([i.input_ids![0]!]) });
    assert.ok(maxDiff(row0.logits, gptRef.outputs.logits_row0_no_attention_mask!) < TOL);
    // incremental decoding with the cache equals the full forward, position by position
    const ids = T([i.input_ids![0]!]);
    const full = m.forward({ inputIds: ids }).logits;
    let past: [Tensor, Tensor][] | undefined;
    for (let t = 0; t < 16; t++) {
      const step = m.forward({ inputIds: ids.narrow(1, t, 1), useCache: true, ...(past ? { pastKeyValues: past } : {}) });
      past = step.pastKeyValues;
      assert.ok(step.logits.select(1, 0).sub(full.select(1, t)).abs().max().item() < 1e-5, `cached step ${t}`);
    }
  }));
  const expected = gptRef.outputs.greedy_generate_prompt_then_12_new_tokens;
  assert.deepEqual(m.generate(T(i.prompt!), { maxNewTokens: 12 }).toArray(), expected);
  assert.deepEqual(m.generate(T(i.prompt!), { maxNewTokens: 12, useCache: false }).toArray(), expected);
});

test("GPT-2 sampling: temperature, top-k and top-p restrict the choices; the seed reproduces them", async () => {
  const m = (await AutoModelForCausalLM.fromPretrained(fixture("hf-tiny/gpt2"), { verbose: false })) as gpt2.GPT2LMHeadModel;
  const prompt = T(gptRef.inputs.prompt!);
  torch.manualSeed(1);
  const a = m.generate(prompt, { maxNewTokens: 8, doSample: true, temperature: 0.8, topK: 5 }).toArray();
  torch.manualSeed(1);
  const b = m.generate(prompt, { maxNewTokens: 8, doSample: true, temperature: 0.8, topK: 5 }).toArray();
  assert.deepEqual(a, b);
  // top-k 1 and a tiny top-p are both greedy
  const greedy = m.generate(prompt, { maxNewTokens: 8 }).toArray();
  assert.deepEqual(m.generate(prompt, { maxNewTokens: 8, doSample: true, topK: 1 }).toArray(), greedy);
  assert.deepEqual(m.generate(prompt, { maxNewTokens: 8, doSample: true, topP: 1e-6 }).toArray(), greedy);
  // every sampled token is among the 3 most likely at its step
  torch.manualSeed(2);
  const s = (m.generate(prompt, { maxNewTokens: 6, doSample: true, topK: 3 }).toArray() as number[][])[0]!;
  torch.noGrad(() => torch.scope(() => {
    const logits = m.forward({ inputIds: T([s]) }).logits;
    for (let t = prompt.shape[1]! - 1; t < s.length - 1; t++) {
      const top = (logits.select(1, t).topk(3)[1].toArray() as number[][])[0]!;
      assert.ok(top.includes(s[t + 1]!), `token ${s[t + 1]} at ${t + 1} is not in the top 3 ${top}`);
    }
  }));
  assert.throws(() => m.generate(prompt, { temperature: 0 }), /temperature must be > 0/);
});

// --- every architecture, tiny ------------------------------------------------------------------------

const tiny: Record<string, Record<string, unknown>> = {
  bert: { model_type: "bert", vocab_size: 99, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 37, max_position_embeddings: 64 },
  roberta: { model_type: "roberta", vocab_size: 99, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 37, max_position_embeddings: 66 },
  albert: { model_type: "albert", vocab_size: 99, embedding_size: 16, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 37, max_position_embeddings: 64, hidden_dropout_prob: 0.1 },
  electra: { model_type: "electra", vocab_size: 99, embedding_size: 16, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 37, max_position_embeddings: 64 },
  gpt2: { model_type: "gpt2", vocab_size: 99, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64, pad_token_id: 0 },
};

const id2label = { "0": "neg", "1": "pos", "2": "neutral" };
const B = 2;
const L = 7;

function batch(modelType: string): { ids: Tensor; mask: Tensor } {
  // row 1 is padded on the right by 2; pad is 0 (1 for RoBERTa)
  const pad = modelType === "roberta" ? 1 : 0;
  const rows = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, pad, pad]];
  return { ids: T(rows), mask: T([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]]) };
}

const tasks: [Task, (m: string) => number[]][] = [
  ["base", () => [B, L, 32]],
  ["masked-lm", () => [B, L, 99]],
  ["sequence-classification", () => [B, 3]],
  ["token-classification", () => [B, L, 3]],
  ["question-answering", () => [B, L, 2]],
];

for (const [type, cfg] of Object.entries(tiny)) {
  const entry = architecture(type);
  const available = Object.values(entry.classes).map(([t]) => t);
  test(`${type}: every head's output shapes, losses, and padding invariance`, () => {
    torch.manualSeed(7);
    for (const [task, shape] of tasks) {
      if (!available.includes(task)) continue;
      const cls = Object.values(entry.classes).find(([t]) => t === task)![1];
      const m = new cls(entry.parseConfig({ ...cfg, id2label }, "config") as never) as PretrainedModel;
      m.eval();
      torch.noGrad(() => torch.scope(() => {
        const { ids, mask } = batch(type);
        const labels =
          task === "sequence-classification" ? T([0, 2]) : task === "base" || task === "question-answering" ? undefined : T([[1, 2, -100, 0, 1, 2, 0], [0, 1, 2, 1, 0, -100, -100]]);
        const out = m.forward({ inputIds: ids, attentionMask: mask, ...(labels ? { labels } : {}), ...(task === "question-answering" ? { startPositions: T([1, 2]), endPositions: T([3, 4]) } : {}) });
        assert.deepEqual([...out.logits.shape], shape(type), `${type} ${task} logits`);
        if (task !== "base") {
          assert.ok(out.loss && Number.isFinite(out.loss.item()) && out.loss.item() > 0, `${type} ${task} loss`);
        }
        // the unpadded row alone gives the same outputs for its real tokens
        const alone = m.forward({ inputIds: ids.narrow(0, 1, 1).narrow(1, 0, 5), attentionMask: mask.narrow(0, 1, 1).narrow(1, 0, 5) });
        if (task === "sequence-classification") {
          if (type !== "gpt2") assert.ok(alone.logits.sub(out.logits.narrow(0, 1, 1)).abs().max().item() < 1e-5, `${type} ${task} padding`);
        } else {
          const padded = out.logits.narrow(0, 1, 1).narrow(1, 0, 5);
          assert.ok(alone.logits.sub(padded).abs().max().item() < 1e-5, `${type} ${task} padding changes real tokens`);
        }
      }));
      m.dispose();
    }
  });

  test(`${type}: save -> load gives identical outputs; dropout acts only in train mode`, async () => {
    torch.manualSeed(8);
    const task: Task = type === "gpt2" ? "causal-lm" : "masked-lm";
    const cls = Object.values(entry.classes).find(([t]) => t === task)![1];
    const m = new cls(entry.parseConfig(cfg, "config") as never) as PretrainedModel;
    const out = join(dir, `${type}-roundtrip`);
    savePretrained(m, out);
    const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
    assert.equal(saved.model_type, type);
    assert.deepEqual(saved.architectures, [Object.entries(entry.classes).find(([, [t]]) => t === task)![0]]);
    const back = await AutoModelForMaskedLM.fromPretrained(out, { verbose: false }).catch(() => AutoModelForCausalLM.fromPretrained(out, { verbose: false }));
    assert.deepEqual(loadReport(back)!.missingKeys, []);
    m.eval();
    torch.noGrad(() => torch.scope(() => {
      const { ids, mask } = batch(type);
      const a = m.forward({ inputIds: ids, attentionMask: mask }).logits;
      const b = back.forward({ inputIds: ids, attentionMask: mask }).logits;
      assert.ok(a.equal(b), "reloaded model differs");
      assert.ok(m.forward({ inputIds: ids }).logits.equal(m.forward({ inputIds: ids }).logits), "eval is deterministic");
      m.train();
      assert.ok(!m.forward({ inputIds: ids }).logits.equal(m.forward({ inputIds: ids }).logits), "train mode applies dropout");
    }));
  });
}

test("tied weights: every LM head's decoder is the word embedding matrix", () => {
  const pairs: [PretrainedModel, (m: never) => [Tensor, Tensor]][] = [
    [new bert.BertForMaskedLM(bert.bertConfig(tiny.bert)), (m: bert.BertForMaskedLM) => [m.cls.predictions.decoder.weight, m.bert.embeddings.word_embeddings.weight]],
    [new roberta.RobertaForMaskedLM(roberta.robertaConfig(tiny.roberta)), (m: roberta.RobertaForMaskedLM) => [m.lm_head.decoder.weight, m.roberta.embeddings.word_embeddings.weight]],
    [new albert.AlbertForMaskedLM(albert.albertConfig(tiny.albert)), (m: albert.AlbertForMaskedLM) => [m.predictions.decoder.weight, m.albert.embeddings.word_embeddings.weight]],
    [new electra.ElectraForMaskedLM(electra.electraConfig(tiny.electra)), (m: electra.ElectraForMaskedLM) => [m.generator_lm_head.weight, m.electra.embeddings.word_embeddings.weight]],
    [new gpt2.GPT2LMHeadModel(gpt2.gpt2Config(tiny.gpt2)), (m: gpt2.GPT2LMHeadModel) => [m.lm_head.weight, m.transformer.wte.weight]],
  ];
  for (const [m, get] of pairs) {
    const [a, b] = get(m as never);
    assert.equal(a, b, m.constructor.name);
    // a gradient step on the embeddings moves the decoder too: they are one tensor
    assert.equal(m.parameters().filter((p) => p === b).length, 1);
  }
});

test("RoBERTa: position ids count from padding_idx + 1 and padding keeps padding_idx", () => {
  const m = new roberta.RobertaModel(roberta.robertaConfig(tiny.roberta));
  const ids = T([[0, 5, 6, 2, 1, 1]]); // <s> a b </s> <pad> <pad>, pad = 1
  const pos = (m.embeddings as unknown as { positionIds(i: { inputIds: Tensor }, w: Tensor): Tensor }).positionIds({ inputIds: ids }, torch.zeros([1, 6, 32]));
  assert.deepEqual(pos.toArray(), [[2, 3, 4, 5, 1, 1]]);
  // an independent check: RoBERTa equals BERT with the same weights fed those positions
  const b = new bert.BertModel(bert.bertConfig({ ...tiny.roberta, model_type: "bert", layer_norm_eps: 1e-5, type_vocab_size: 1, pad_token_id: 1 }), { addPoolingLayer: true });
  b.loadStateDict(m.stateDict());
  m.eval();
  b.eval();
  torch.noGrad(() => {
    const r = m.forward({ inputIds: ids }).lastHiddenState;
    const e = b.forward({ inputIds: ids, positionIds: T([[2, 3, 4, 5, 1, 1]]) }).lastHiddenState;
    assert.ok(r.sub(e).abs().max().item() < 1e-6);
  });
});

test("ALBERT: layers are shared: N layers in one group equal one layer applied N times", () => {
  torch.manualSeed(9);
  const one = new albert.AlbertModel(albert.albertConfig({ ...tiny.albert, num_hidden_layers: 3, num_hidden_groups: 1, hidden_dropout_prob: 0 }));
  const two = new albert.AlbertModel(albert.albertConfig({ ...tiny.albert, num_hidden_layers: 3, num_hidden_groups: 3, hidden_dropout_prob: 0 }));
  assert.ok(one.numParameters() < two.numParameters());
  assert.equal(new albert.AlbertModel(albert.albertConfig({ ...tiny.albert, num_hidden_layers: 12 })).numParameters(), new albert.AlbertModel(albert.albertConfig({ ...tiny.albert, num_hidden_layers: 1 })).numParameters());
  // copy group 0 into every group of the second model: now the two compute the same thing
  const sd = one.stateDict();
  const copy = new Map<string, Tensor>();
  for (const [k, v] of sd) {
    const g = /albert_layer_groups\.0\./.exec(k);
    if (g) for (const i of [0, 1, 2]) copy.set(k.replace("albert_layer_groups.0.", `albert_layer_groups.${i}.`), v);
    else copy.set(k, v);
  }
  two.loadStateDict(copy);
  one.eval();
  two.eval();
  torch.noGrad(() => {
    const ids = T([[3, 4, 5, 6]]);
    assert.ok(one.forward({ inputIds: ids }).lastHiddenState.sub(two.forward({ inputIds: ids }).lastHiddenState).abs().max().item() < 1e-6);
    const hs = one.forward({ inputIds: ids, outputHiddenStates: true }).hiddenStates!;
    assert.equal(hs.length, 4);
  });
});

test("ELECTRA: the discriminator loss is binary cross-entropy over the positions the mask keeps", () => {
  torch.manualSeed(10);
  const m = new electra.ElectraForPreTraining(electra.electraConfig(tiny.electra));
  m.eval();
  const { ids, mask } = batch("electra");
  const labels = T([[0, 1, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0]]);
  torch.noGrad(() => {
    const out = m.forward({ inputIds: ids, attentionMask: mask, labels });
    const z = out.logits.toArray() as number[][];
    const y = labels.toArray() as number[][];
    const k = mask.toArray() as number[][];
    let sum = 0;
    let n = 0;
    z.forEach((row, b) => row.forEach((v, t) => {
      if (k[b]![t] === 0) return;
      sum += Math.max(v, 0) - v * y[b]![t]! + Math.log1p(Math.exp(-Math.abs(v)));
      n++;
    }));
    assert.ok(Math.abs(out.loss!.item() - sum / n) < 1e-5);
  });
});

test("multiple choice: (B, C, T) inputs give one score per choice", () => {
  for (const type of ["bert", "roberta"]) {
    const entry = architecture(type);
    const cls = Object.values(entry.classes).find(([t]) => t === "multiple-choice")![1];
    const m = new cls(entry.parseConfig(tiny[type]!, "config") as never) as PretrainedModel;
    const out = m.forward({ inputIds: torch.randint(2, 50, [2, 3, 5]), labels: T([0, 2]) });
    assert.deepEqual([...out.logits.shape], [2, 3]);
    assert.ok(out.loss!.item() > 0);
  }
});

// --- configs -----------------------------------------------------------------------------------------

test("configs: bad ones are refused by name before anything is allocated", () => {
  const before = torch.liveTensors();
  assert.throws(() => AutoModel.fromConfig({ model_type: "mamba" }), /unknown model_type "mamba"; lmforge knows bert, gpt2, roberta, albert, electra, t5/);
  assert.throws(() => bert.bertConfig({ hidden_size: 100, num_attention_heads: 12 }), /hidden_size \(100\) is not a multiple of num_attention_heads \(12\)/);
  assert.throws(() => gpt2.gpt2Config({ n_embd: 100, n_head: 3 }), /n_embd \(100\) is not a multiple of n_head \(3\)/);
  assert.throws(() => bert.bertConfig({ hiden_size: 128 }), /unknown key for bert: hiden_size/);
  assert.throws(() => bert.bertConfig({ hidden_size: "big" }), /hidden_size must be int, got "big"/);
  assert.throws(() => bert.bertConfig({ hidden_act: "swoosh" }), /unknown activation "swoosh"/);
  assert.throws(() => albert.albertConfig({ num_hidden_layers: 12, num_hidden_groups: 5 }), /not a multiple of num_hidden_groups/);
  assert.equal(torch.liveTensors(), before);
  assert.deepEqual(knownModelTypes(), ["bert", "gpt2", "roberta", "albert", "electra", "t5", "llama", "lmforge", "lmforge-vit"]);
});

test("configs round-trip key for key, with Hugging Face's defaults", async () => {
  const c = await AutoConfig.fromPretrained(fixture("hf-tiny/bert"));
  const raw = JSON.parse(readFileSync(fixture("hf-tiny/bert/config.json"), "utf8")) as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) assert.deepEqual(c[k], v, k);
  const d = bert.bertConfig({});
  assert.equal(d.hidden_size, 768);
  assert.equal(d.layer_norm_eps, 1e-12);
  assert.equal(roberta.robertaConfig({}).pad_token_id, 1);
});

// --- checkpoints -----------------------------------------------------------------------------------------

test("a base checkpoint in a classification model: the head is initialised and reported; labels come from id2label", async () => {
  const m = await AutoModelForSequenceClassification.fromPretrained(fixture("hf-tiny/bert"), { verbose: false, config: { id2label } });
  const r = loadReport(m)!;
  assert.deepEqual(r.initialized.sort(), ["classifier.bias", "classifier.weight"]);
  assert.ok(r.unexpectedKeys.includes("cls.seq_relationship.weight"));
  assert.deepEqual([...m.forward({ inputIds: T([[5, 6, 7]]) }).logits.shape], [1, 3]);
  const tok = await AutoModelForTokenClassification.fromPretrained(fixture("hf-tiny/bert"), { verbose: false, config: { id2label } });
  assert.deepEqual(loadReport(tok)!.initialized.sort(), ["classifier.bias", "classifier.weight"]);
  const qa = await AutoModelForQuestionAnswering.fromPretrained(fixture("hf-tiny/bert"), { verbose: false });
  assert.deepEqual(loadReport(qa)!.initialized.sort(), ["qa_outputs.bias", "qa_outputs.weight"]);
  const mc = await AutoModelForMultipleChoice.fromPretrained(fixture("hf-tiny/bert"), { verbose: false });
  assert.deepEqual(loadReport(mc)!.initialized.sort(), ["classifier.bias", "classifier.weight"]);
  // and a base model from a pretraining checkpoint: the "bert." prefix is stripped
  const base = await AutoModel.fromPretrained(fixture("hf-tiny/bert"), { verbose: false });
  assert.ok(base instanceof bert.BertModel);
  assert.deepEqual(loadReport(base)!.missingKeys, []);
});

test("older checkpoints: LayerNorm.gamma/beta, no prefix, bfloat16 and float16 weights, shards", async () => {
  const src = loadSafetensors(fixture("hf-tiny/bert/model.safetensors"));
  const ref = await AutoModelForPreTraining.fromPretrained(fixture("hf-tiny/bert"), { verbose: false });
  const ids = T(bertRef.inputs.input_ids!);
  const want = torch.noGrad(() => ref.forward({ inputIds: ids }).logits);
  const variants: [string, (n: string, t: Tensor) => [string, Tensor]][] = [
    ["gamma-beta", (n, t) => [n.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta"), t]],
    ["bf16", (n, t) => [n, t.dtype === "float32" ? t.to("bfloat16") : t]],
    ["f16", (n, t) => [n, t.dtype === "float32" ? t.to("float16") : t]],
  ];
  for (const [name, map] of variants) {
    const out = join(dir, `bert-${name}`);
    const { mkdirSync } = await import("node:fs");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "config.json"), readFileSync(fixture("hf-tiny/bert/config.json")));
    saveSafetensors(join(out, "model.safetensors"), new Map([...src].map(([n, t]) => map(n, t))), { format: "pt" });
    const m = await AutoModelForPreTraining.fromPretrained(out, { verbose: false, strict: true });
    const got = torch.noGrad(() => m.forward({ inputIds: ids }).logits);
    const tol = name === "gamma-beta" ? 1e-6 : name === "f16" ? 2e-2 : 1e-1;
    assert.ok(got.sub(want).abs().max().item() < tol, `${name}: ${got.sub(want).abs().max().item()}`);
    assert.equal(m.parameters()[0]!.dtype, "float32");
  }
  const sharded = join(dir, "bert-sharded");
  savePretrained(ref, sharded, { maxShardBytes: 100_000 });
  assert.ok(readdirSync(sharded).includes("model.safetensors.index.json"));
  const m2 = await AutoModelForPreTraining.fromPretrained(sharded, { verbose: false, strict: true });
  assert.ok(torch.noGrad(() => m2.forward({ inputIds: ids }).logits).equal(want));
  // what lmforge saves has Hugging Face's names: the fixture's, without the position_ids buffer
  const names = readCheckpoint(sharded).names().sort();
  assert.deepEqual(names, [...src.keys()].filter((n) => !n.endsWith("position_ids")).sort());
});

test("bfloat16 models: loading with dtype converts every parameter; outputs stay close", async () => {
  const m = await AutoModelForCausalLM.fromPretrained(fixture("hf-tiny/gpt2"), { verbose: false, dtype: "bfloat16" });
  assert.ok(m.parameters().every((p) => p.dtype === "bfloat16"));
  const ref = await AutoModelForCausalLM.fromPretrained(fixture("hf-tiny/gpt2"), { verbose: false });
  const ids = T(gptRef.inputs.input_ids!);
  torch.noGrad(() => {
    const a = m.forward({ inputIds: ids }).logits.float();
    const b = ref.forward({ inputIds: ids }).logits;
    assert.ok(a.sub(b).abs().max().item() < 0.1 * b.abs().max().item());
  });
});

test("maskedOnly: logits at the masked positions only give the same loss as the full logits", () => {
  for (const type of ["bert", "roberta", "albert", "electra"]) {
    const entry = architecture(type);
    const cls = Object.values(entry.classes).find(([t]) => t === "masked-lm")![1];
    torch.manualSeed(12);
    const m = new cls(entry.parseConfig(tiny[type]!, "config") as never) as PretrainedModel;
    m.eval();
    const { ids, mask } = batch(type);
    const labels = T([[-100, 7, -100, -100, 9, -100, -100], [-100, -100, 3, -100, -100, -100, -100]]);
    torch.noGrad(() => {
      const full = m.forward({ inputIds: ids, attentionMask: mask, labels });
      const sparse = m.forward({ inputIds: ids, attentionMask: mask, labels, maskedOnly: true });
      assert.deepEqual([...sparse.logits.shape], [3, 99]);
      assert.ok(Math.abs(full.loss!.item() - sparse.loss!.item()) < 1e-5, type);
      assert.ok(sparse.logits.select(0, 2).sub(full.logits.select(0, 1).select(0, 2)).abs().max().item() < 1e-5);
    });
  }
});

test("labelPositions: the first token, then each row's labelled positions in order, -1 after", () => {
  const labels = T([[5, -100, 7, -100, 9], [-100, -100, -100, -100, -100], [-100, 3, -100, -100, -100]]);
  assert.deepEqual(labelPositions(labels).toArray(), [[0, 2, 4], [0, -1, -1], [0, 1, -1]]);
});

test("lastLayerAtLabels: masked LM heads compute the last layer at labelled positions only, with the same loss, logits and gradients", () => {
  for (const [type, task] of [["bert", "masked-lm"], ["bert", "pretraining"], ["roberta", "masked-lm"], ["electra", "masked-lm"], ["albert", "pretraining"]] as const) {
    const entry = architecture(type);
    const cls = Object.values(entry.classes).find(([t]) => t === task)![1];
    torch.manualSeed(17);
    // ALBERT with two layers in one shared group, stepped twice: the shortcut is on the last step only
    const cfg = type === "albert" ? { ...tiny[type]!, inner_group_num: 2 } : tiny[type]!;
    const m = new cls(entry.parseConfig({ ...cfg }, "config") as never) as PretrainedModel;
    m.train(); // dropout on: the two runs draw the same masks from the same seed
    const { ids, mask } = batch(type);
    // a label at the first token, a row with one label, padding in the batch
    const labels = T([[4, -100, 7, -100, -100, 9, -100], [-100, -100, 3, -100, -100, -100, -100]]);
    const nsp = task === "pretraining" ? { nextSentenceLabel: T([1, 0]) } : {}; // ALBERT: its sentence-order labels
    const run = (at: boolean): { logits: Tensor; loss: number; grads: Tensor[]; hidden: number[] } => {
      m.zeroGrad();
      torch.manualSeed(99);
      const out = m.forward({ inputIds: ids, attentionMask: mask, labels, maskedOnly: true, lastLayerAtLabels: at, ...nsp });
      out.loss!.backward();
      return { logits: out.logits.detach(), loss: out.loss!.item(), grads: m.parameters().map((p) => (p.grad ? p.grad.clone() : torch.zeros(p.shape))), hidden: [...out.lastHiddenState.shape] };
    };
    const full = run(false);
    const fast = run(true);
    assert.deepEqual(fast.hidden, [B, 3, 32], `${type} ${task}: the last layer computed the first token and the labelled positions`);
    assert.deepEqual([...fast.logits.shape], [4, 99]);
    // dropout masks are drawn per tensor, and the last layer's tensors are smaller: compare in eval mode
    m.eval();
    const [f2, s2] = [run(false), run(true)];
    assert.ok(s2.logits.sub(f2.logits).abs().max().item() < 1e-5, `${type} ${task}: logits`);
    assert.ok(Math.abs(s2.loss - f2.loss) < 1e-5, `${type} ${task}: loss`);
    let worst = 0;
    f2.grads.forEach((g, i) => (worst = Math.max(worst, g.sub(s2.grads[i]!).abs().max().item())));
    assert.ok(worst < 1e-5, `${type} ${task}: gradients differ by ${worst}`);
    assert.ok(Number.isFinite(fast.loss) && Number.isFinite(full.loss));
  }
});

test("firstTokenOnly: sequence heads skip the last layer's other tokens with the same logits, loss and gradients", () => {
  for (const type of ["bert", "roberta", "albert", "electra"]) {
    const entry = architecture(type);
    const cls = Object.values(entry.classes).find(([t]) => t === "sequence-classification")![1];
    torch.manualSeed(13);
    // ALBERT with two layers in one shared group, stepped twice: the shortcut is on the last step only
    const cfg = type === "albert" ? { ...tiny[type]!, inner_group_num: 2 } : tiny[type]!;
    const m = new cls(entry.parseConfig({ ...cfg, id2label }, "config") as never) as PretrainedModel;
    m.eval();
    const { ids, mask } = batch(type);
    const labels = T([0, 2]);
    const run = (first: boolean): { logits: Tensor; loss: number; grads: Tensor[]; hidden: number[] } => {
      m.zeroGrad();
      const out = m.forward({ inputIds: ids, attentionMask: mask, labels, firstTokenOnly: first });
      out.loss!.backward();
      return { logits: out.logits.detach(), loss: out.loss!.item(), grads: m.parameters().map((p) => (p.grad ? p.grad.clone() : torch.zeros(p.shape))), hidden: [...out.lastHiddenState.shape] };
    };
    const full = run(false);
    const fast = run(true);
    assert.deepEqual(full.hidden, [B, L, 32]);
    assert.deepEqual(fast.hidden, [B, 1, 32], `${type}: the last layer computed the first token only`);
    assert.ok(fast.logits.sub(full.logits).abs().max().item() < 1e-5, type);
    assert.ok(Math.abs(fast.loss - full.loss) < 1e-6, type);
    let worst = 0;
    full.grads.forEach((g, i) => (worst = Math.max(worst, g.sub(fast.grads[i]!).abs().max().item())));
    assert.ok(worst < 1e-5, `${type}: gradients differ by ${worst}`);
    // the default for a sequence head is the shortcut; asking for hidden states turns it off
    const dflt = torch.noGrad(() => m.forward({ inputIds: ids, attentionMask: mask }));
    assert.deepEqual([...dflt.lastHiddenState.shape], [B, 1, 32]);
    const withHidden = torch.noGrad(() => m.forward({ inputIds: ids, attentionMask: mask, outputHiddenStates: true }));
    assert.deepEqual([...withHidden.lastHiddenState.shape], [B, L, 32]);
    assert.ok(withHidden.logits.sub(full.logits).abs().max().item() < 1e-5);
  }
});

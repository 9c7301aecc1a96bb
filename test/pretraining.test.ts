// Pretraining: masking statistics, sentence-pair construction, loss normalisation under
// accumulation, exact resume, the NaN stop, and a short real run that learns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../src/torch/index.js";
import { trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { embeddedCorpus, packedExamples, pairExamples, splitDocs, tokenizeCorpus } from "../src/data/index.js";
import type { Example } from "../src/data/index.js";
import { CausalLM, MaskedLM, maskExample } from "../src/objectives/index.js";
import type { MaskingOptions } from "../src/objectives/index.js";
import { AutoModelForMaskedLM, AutoModelForCausalLM, AutoModelForPreTraining, presetConfig } from "../src/models/index.js";
import { NonFiniteLossError, Trainer, pretrain } from "../src/train/index.js";
import type { TrainTask, TrainerOptions } from "../src/train/index.js";
import { saveTokenizer } from "../src/tokenizers/index.js";
import { schedules } from "../src/optim/index.js";
import { tempDir } from "./helpers.js";
import { Rng } from "../src/data/random.js";

const dir = await tempDir();
process.env.LMFORGE_CACHE = join(dir, "cache");
const docs = embeddedCorpus("moby-dick").slice(0, 40);
const tok = trainTokenizerFromTexts(docs, { kind: "wordpiece", vocabSize: 2000, lowercase: true });
const sp = { cls: tok.tokenToId("[CLS]")!, sep: tok.tokenToId("[SEP]")!, pad: tok.tokenToId("[PAD]")!, mask: tok.tokenToId("[MASK]")! };
const corpus = tokenizeCorpus(docs, tok);
const split = splitDocs(corpus, 0.1, 1);
const packed = packedExamples(corpus, split.train, 64, sp);

function options(strategy: MaskingOptions["strategy"], dynamic = true): MaskingOptions {
  return { strategy, dynamic, probability: 0.15, maskId: sp.mask, vocabSize: tok.vocabSize, specialIds: tok.specialIds, seed: 3 };
}

test("tokenised corpora are cached on disk and read back identically", () => {
  const again = tokenizeCorpus(docs, tok);
  assert.deepEqual(again.ids, corpus.ids);
  assert.deepEqual(again.sentStart, corpus.sentStart);
  assert.ok(split.validation.length >= 1 && split.train.length + split.validation.length === 40);
  assert.ok(packed.every((e) => e.ids.length <= 64 && e.ids[0] === sp.cls && e.ids[e.ids.length - 1] === sp.sep));
});

for (const strategy of ["token", "whole-word", "span"] as const) {
  test(`${strategy} masking: 15% of positions, 80/10/10, never a special token, labels aligned`, () => {
    let maskable = 0;
    let chosen = 0;
    let asMask = 0;
    let random = 0;
    let kept = 0;
    for (let i = 0; i < packed.length; i++) {
      const ex = packed[i]!;
      const m = maskExample(ex, i, 0, options(strategy));
      for (let p = 0; p < ex.ids.length; p++) {
        if (ex.special[p]) {
          assert.equal(m.labels[p], -100, "a special token was chosen");
          assert.equal(m.inputIds[p], ex.ids[p]);
          continue;
        }
        maskable++;
        if (m.labels[p] === -100) {
          assert.equal(m.inputIds[p], ex.ids[p], "an unchosen token changed");
          continue;
        }
        chosen++;
        assert.equal(m.labels[p], ex.ids[p], "the label is not the original token");
        if (m.inputIds[p] === sp.mask) asMask++;
        else if (m.inputIds[p] === ex.ids[p]) kept++;
        else {
          random++;
          assert.ok(!tok.specialIds.has(m.inputIds[p]!), "a special token was sampled as a replacement");
        }
      }
    }
    const rate = chosen / maskable;
    assert.ok(Math.abs(rate - 0.15) < 0.015, `masking rate ${rate}`);
    assert.ok(Math.abs(asMask / chosen - 0.8) < 0.03, `[MASK] share ${asMask / chosen}`);
    assert.ok(Math.abs(random / chosen - 0.1) < 0.03, `random share ${random / chosen}`);
    assert.ok(Math.abs(kept / chosen - 0.1) < 0.03, `unchanged share ${kept / chosen}`);
  });
}

test("whole-word and span masking cover whole words; spans follow SpanBERT's length distribution", () => {
  let spanWords = 0;
  let spans = 0;
  for (let i = 0; i < 200; i++) {
    const ex = packed[i]!;
    for (const strategy of ["whole-word", "span"] as const) {
      const m = maskExample(ex, i, 0, options(strategy));
      // a word is chosen entirely or not at all
      let start = -1;
      for (let p = 1; p <= ex.ids.length; p++) {
        const boundary = p === ex.ids.length || ex.wordStart[p] === 1 || ex.special[p] === 1;
        if (start < 0) start = p;
        if (boundary) {
          const chosenHere = new Set<boolean>();
          for (let q = start; q < p; q++) if (!ex.special[q]) chosenHere.add(m.labels[q] !== -100);
          assert.ok(chosenHere.size <= 1, `${strategy}: a word was partly masked`);
          start = p;
        }
      }
      if (strategy === "span") {
        // count runs of consecutive masked words
        let run = 0;
        for (let p = 0; p < ex.ids.length; p++) {
          if (ex.wordStart[p] && !ex.special[p]) {
            if (m.labels[p] !== -100) run++;
            else if (run > 0) {
              spans++;
              spanWords += run;
              run = 0;
            }
          }
        }
      }
    }
  }
  // Geometric(0.2) clipped to 10 has mean ~3.8 words (adjacent spans merge, so runs are a bit longer)
  const mean = spanWords / spans;
  assert.ok(mean > 2.5 && mean < 6.5, `mean span ${mean} words`);
});

test("static masks repeat across epochs; dynamic masks change; both reproduce from (seed, epoch, index)", () => {
  const ex = packed[5]!;
  const s0 = maskExample(ex, 5, 0, options("token", false));
  const s1 = maskExample(ex, 5, 1, options("token", false));
  assert.deepEqual(s0, s1);
  const d0 = maskExample(ex, 5, 0, options("token", true));
  const d1 = maskExample(ex, 5, 1, options("token", true));
  assert.notDeepEqual(d0.labels, d1.labels);
  assert.deepEqual(maskExample(ex, 5, 1, options("token", true)), d1);
  // static masks are not the dynamic masks of any epoch
  assert.notDeepEqual(s0.labels, d0.labels);
});

test("SOP: balanced labels, swapped pairs are the same two segments; NSP: random B from another document", () => {
  for (const kind of ["sop", "nsp"] as const) {
    const pairs = pairExamples(corpus, split.train, 64, sp, kind, 4);
    const ones = pairs.filter((p) => p.pairLabel === 1).length;
    // SOP swaps half the pairs; NSP also draws a random B whenever a chunk has one segment (as BERT does)
    const share = ones / pairs.length;
    assert.ok(kind === "sop" ? Math.abs(share - 0.5) < 0.08 : share > 0.45 && share < 0.7, `${kind} label balance ${share}`);
    for (const p of pairs) {
      const sep = p.ids.indexOf(sp.sep);
      assert.equal(p.ids[0], sp.cls);
      assert.equal(p.ids[p.ids.length - 1], sp.sep);
      assert.ok(sep > 1 && sep < p.ids.length - 2);
      assert.deepEqual([...p.typeIds.slice(0, sep + 1)].every((t) => t === 0), true);
      assert.deepEqual([...p.typeIds.slice(sep + 1)].every((t) => t === 1), true);
      assert.ok(p.ids.length <= 64);
    }
  }
  // an in-order SOP pair: A's text precedes B's in the corpus; swapped: the reverse
  const sop = pairExamples(corpus, split.train, 64, sp, "sop", 4);
  const text = Array.from(corpus.ids).join(",");
  let checked = 0;
  for (const p of sop.slice(0, 60)) {
    const sep = p.ids.indexOf(sp.sep);
    const a = Array.from(p.ids.slice(1, sep));
    const b = Array.from(p.ids.slice(sep + 1, -1));
    // both segments are corpus text (possibly truncated at their ends), in the labelled order
    const ia = text.indexOf("," + a.join(",") + ",");
    const ib = text.indexOf("," + b.join(",") + ",");
    // (short segments can recur elsewhere; a lone segment's partner comes from another document)
    if (ia < 0 || ib < 0 || a.length < 8 || b.length < 8 || Math.abs(ia - ib) > 3000) continue;
    assert.equal(p.pairLabel === 0 ? ia < ib : ib < ia, true, "SOP label does not match the segments' order");
    checked++;
  }
  assert.ok(checked > 30, `${checked} of 60 SOP pairs checked`);
});

function tinyMlm(): ReturnType<typeof AutoModelForMaskedLM.fromConfig> {
  torch.manualSeed(11);
  return AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 32, intermediate_size: 64, vocab_size: tok.vocabSize, max_position_embeddings: 128, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 });
}

test("gradient accumulation: 4 micro-batches of 4 give the gradient of one batch of 16", () => {
  const obj = new MaskedLM(options("token"), sp.pad);
  const grads = (accum: number): Map<string, torch.Tensor> => {
    const m = tinyMlm();
    const t = new Trainer({ model: m, objective: obj, train: packed.slice(0, 16), batchSize: 16 / accum, gradientAccumulation: accum, maxSteps: 1, learningRate: 0, schedule: schedules.constant(), seed: 5, out: join(dir, `accum-${accum}`) });
    // capture the gradients just before the optimizer step
    const step = t.optimizer.step.bind(t.optimizer);
    const out = new Map<string, torch.Tensor>();
    t.optimizer.step = () => {
      for (const [n, p] of m.namedParameters()) if (p.grad) out.set(n, torch.keep(p.grad.clone()));
      step();
    };
    t.train();
    return out;
  };
  const one = grads(1);
  const four = grads(4);
  // relative to the largest gradient (the key biases' gradients are zero up to rounding noise)
  const scale = Math.max(...[...one.values()].map((g) => g.abs().max().item()));
  let worst = 0;
  for (const [n, g] of one) worst = Math.max(worst, g.sub(four.get(n)!).abs().max().item() / scale);
  assert.ok(worst < 1e-5, `gradient difference ${worst} of the largest gradient`);
});

/** Trains with the options given, stopping (with a checkpoint) after step stopAt; the losses of the steps run. */
function lossesUntil(options: Omit<TrainerOptions, "onStep">, stopAt: number | null): { losses: number[]; trainer: Trainer } {
  const losses: number[] = [];
  const trainer: Trainer = new Trainer({
    ...options,
    onStep: (s) => {
      losses.push(s.loss);
      if (stopAt !== null && s.step === stopAt) trainer.requestStop();
    },
  });
  trainer.train();
  trainer.optimizer.dispose();
  return { losses, trainer };
}

test("exact resume: after a stop and --resume, every later loss equals the uninterrupted run's", () => {
  const obj = new MaskedLM(options("token"), sp.pad);
  const run = (out: string, stopAt: number | null, resume: boolean): number[] => {
    torch.manualSeed(123);
    const m = AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 32, intermediate_size: 64, vocab_size: tok.vocabSize, max_position_embeddings: 128 });
    return lossesUntil({
      model: m,
      objective: obj,
      train: packed.slice(0, 64),
      batchSize: 8,
      maxSteps: 12,
      learningRate: 1e-3,
      schedule: schedules.linearWarmupDecay(2, 12),
      clipNorm: 1,
      seed: 9,
      out,
      saveEvery: 100,
      resume,
    }, stopAt).losses;
  };
  const full = run(join(dir, "resume-full"), null, false);
  const first = run(join(dir, "resume-cut"), 7, false); // dropout active: the RNG state matters
  assert.ok(existsSync(join(dir, "resume-cut", "checkpoint-7")));
  const rest = run(join(dir, "resume-cut"), null, true);
  assert.equal(first.length, 7);
  assert.deepEqual([...first, ...rest], full);
});

test("a NaN loss stops training with a clear message and keeps the last good checkpoint", () => {
  const obj = new MaskedLM(options("token"), sp.pad);
  const m = tinyMlm();
  const out = join(dir, "nan");
  const t = new Trainer({ model: m, objective: obj, train: packed.slice(0, 32), batchSize: 4, maxSteps: 10, learningRate: 1e-3, schedule: schedules.constant(), seed: 1, out, saveEvery: 2,
    onStep: (s) => {
      // poison the weights after step 3's checkpoint
      if (s.step === 4) torch.noGrad(() => m.parameters()[0]!.fill_(NaN));
    } });
  assert.throws(() => t.train(), (e: Error) => e instanceof NonFiniteLossError && /loss became NaN at step 5; .*last good checkpoint is .*checkpoint-4/.test(e.message));
  assert.ok(existsSync(join(out, "checkpoint-4", "model.safetensors")));
});

test("causal LM: labels are the inputs, padding ignored; GPT-2 learns", () => {
  const obj = new CausalLM(sp.pad);
  const ex: Example[] = packedExamples(corpus, split.train, 32, sp, { causal: true }).slice(0, 40);
  const b = obj.batch(ex, [0, 1], 0);
  assert.deepEqual(b.labels.toArray(), b.inputIds.toArray());
  torch.manualSeed(3);
  const m = AutoModelForCausalLM.fromConfig({ model_type: "gpt2", vocab_size: tok.vocabSize, n_embd: 32, n_layer: 2, n_head: 2, n_positions: 64 });
  const t = new Trainer({ model: m, objective: obj, train: ex, batchSize: 8, maxSteps: 30, learningRate: 3e-3, schedule: schedules.constant(), seed: 2, out: join(dir, "clm") });
  const r = t.train();
  assert.ok(r.lastLoss < Math.log(tok.vocabSize) - 1, `loss ${r.lastLoss} vs uniform ${Math.log(tok.vocabSize)}`);
});

test("pretrain(): a short real run writes a Hugging Face checkpoint with the tokenizer, and validation perplexity falls", async () => {
  const tdir = join(dir, "tok");
  saveTokenizer(tok, tdir);
  const out = join(dir, "pretrain");
  const r = await pretrain({ model: "bert-tiny", tokenizer: tdir, objectives: "mlm,sop", input: ["moby-dick"], maxSteps: 120, batchSize: 16, seqLen: 64, learningRate: 2e-3, out, evalEvery: 40, evalBatches: 4, seed: 1 });
  assert.equal(r.steps, 120);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "metrics.jsonl"]) assert.ok(existsSync(join(out, f)), f);
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { architectures: string[] };
  assert.deepEqual(cfg.architectures, ["BertForPreTraining"]);
  const ppl = r.evals.map((e) => e.val_perplexity!);
  assert.ok(ppl[ppl.length - 1]! < ppl[0]!, `perplexity ${ppl}`);
  assert.ok(ppl[ppl.length - 1]! < tok.vocabSize / 2, `perplexity ${ppl} vs vocabulary ${tok.vocabSize}`);
  assert.ok(r.unigramPerplexity > 10 && r.unigramPerplexity < tok.vocabSize, `unigram perplexity ${r.unigramPerplexity}`);
  assert.ok(r.evals[r.evals.length - 1]!.val_sop_accuracy !== undefined);
  const log = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { event: string });
  assert.equal(log.filter((l) => l.event === "step").length, 120);
});

test("context perturbation: each operation at its rate, special tokens untouched, reproducible", async () => {
  const { perturbExample } = await import("../src/objectives/index.js");
  const base = { vocabSize: tok.vocabSize, specialIds: tok.specialIds, maskId: sp.mask, seed: 5 };
  let kept = 0;
  let total = 0;
  let replaced = 0;
  for (let i = 0; i < 200; i++) {
    const ex = packed[i]!;
    const del = perturbExample(ex, i, 0, { ...base, deletion: 0.1 });
    assert.equal(del.ids[0], sp.cls);
    assert.equal(del.ids[del.ids.length - 1], sp.sep);
    total += ex.special.reduce((n, s) => n + (s ? 0 : 1), 0);
    kept += del.special.reduce((n, s) => n + (s ? 0 : 1), 0);
    const rep = perturbExample(ex, i, 0, { ...base, replacement: 0.1 });
    assert.equal(rep.ids.length, ex.ids.length);
    rep.ids.forEach((t, p) => {
      if (t !== ex.ids[p]) {
        replaced++;
        assert.equal(ex.special[p], 0);
        assert.ok(!tok.specialIds.has(t));
      }
    });
    const shuf = perturbExample(ex, i, 0, { ...base, localShuffle: 1, shuffleWindow: 3 });
    assert.deepEqual([...shuf.ids].sort((a, b) => a - b), [...ex.ids].sort((a, b) => a - b)); // a permutation
    const fill = perturbExample(ex, i, 0, { ...base, infilling: 0.05 });
    assert.ok(fill.ids.length <= ex.ids.length, "infilling never lengthens a sequence");
    assert.equal(fill.ids[fill.ids.length - 1], sp.sep);
    assert.deepEqual(perturbExample(ex, i, 0, { ...base, deletion: 0.1, replacement: 0.1, infilling: 0.05 }), perturbExample(ex, i, 0, { ...base, deletion: 0.1, replacement: 0.1, infilling: 0.05 }));
  }
  assert.ok(Math.abs(1 - kept / total - 0.1) < 0.015, `deletion rate ${1 - kept / total}`);
  assert.ok(Math.abs(replaced / total - 0.1) < 0.015, `replacement rate ${replaced / total}`);
  const pair = pairExamples(corpus, split.train, 64, sp, "sop", 4)[0]!;
  const perm = perturbExample(pair, 0, 0, { ...base, sentencePermutation: 1 });
  assert.deepEqual([...perm.ids].sort((a, b) => a - b), [...pair.ids].sort((a, b) => a - b));
});

test("ELECTRA: the discriminator's labels are 1 exactly where the sample differs; loss = MLM + 50 x RTD", async () => {
  const { ElectraPair, ReplacedTokenDetection } = await import("../src/objectives/index.js");
  const { electra } = await import("../src/models/index.js");
  const inputIds = torch.tensor([[1, 103, 5, 103], [1, 6, 103, 2]]);
  const labels = torch.tensor([[-100, 7, -100, 9], [-100, -100, 8, -100]]);
  const { corrupted, replaced } = ReplacedTokenDetection.corrupt(inputIds, labels, torch.tensor([7, 4, 11]));
  assert.deepEqual(corrupted.toArray(), [[1, 7, 5, 4], [1, 6, 11, 2]]);
  assert.deepEqual(replaced.toArray(), [[0, 0, 0, 1], [0, 0, 1, 0]]); // the sample 7 equals the original: not replaced
  torch.manualSeed(4);
  const cfg = { vocab_size: tok.vocabSize, embedding_size: 16, num_hidden_layers: 1, intermediate_size: 32, max_position_embeddings: 128 };
  const gen = new electra.ElectraForMaskedLM(electra.electraConfig({ ...cfg, hidden_size: 16, num_attention_heads: 2 }));
  const disc = new electra.ElectraForPreTraining(electra.electraConfig({ ...cfg, hidden_size: 32, num_attention_heads: 4 }));
  const pair = new ElectraPair(gen, disc);
  assert.equal(pair.generator.electra.embeddings.word_embeddings.weight, pair.discriminator.electra.embeddings.word_embeddings.weight);
  const obj = new ReplacedTokenDetection(options("token"), sp.pad);
  const t = new Trainer({ model: pair as never, objective: obj, train: packed.slice(0, 48), validation: packed.slice(48, 64), batchSize: 8, maxSteps: 12, learningRate: 2e-3, schedule: schedules.constant(), seed: 1, out: join(dir, "electra"), evalEvery: 12 });
  const r = t.train();
  const m = r.evals[0]!;
  assert.ok(m.val_rtd_accuracy! > 0.5 && m.val_rtd_accuracy! <= 1, JSON.stringify(m));
  assert.ok(m.val_discriminator_loss! > 0 && Number.isFinite(m.val_discriminator_loss), JSON.stringify(m));
  assert.ok(Number.isFinite(r.lastLoss));
  const b = obj.batch(packed, [0, 1], 0);
  const out = torch.noGrad(() => obj.loss(pair as never, b));
  assert.ok(Math.abs(out.loss.item() - (out.metrics.generator_loss! + 50 * out.metrics.discriminator_loss!)) < 1e-3 * out.loss.item());
});

test("adversarial training: FGM and FreeLB run, keep gradients finite, and FGM's step has norm epsilon", async () => {
  const { adversarialBackward } = await import("../src/nn/index.js");
  const { wordEmbeddingModule } = await import("../src/models/index.js");
  const m = tinyMlm();
  const obj = new MaskedLM(options("token"), sp.pad);
  const b = obj.batch(packed, [0, 1, 2, 3], 0);
  const embedOf = (): torch.Tensor => (wordEmbeddingModule(m) as unknown as { forward(x: torch.Tensor): torch.Tensor }).forward(b.inputIds);
  const lossOf = (e: torch.Tensor): torch.Tensor => m.forward({ inputsEmbeds: e, attentionMask: b.attentionMask, labels: b.labels }).loss!;
  for (const method of ["fgm", "freelb"] as const) {
    m.zeroGrad();
    const clean = adversarialBackward(embedOf, lossOf, { method, epsilon: 0.5, steps: 3 });
    assert.ok(Number.isFinite(clean));
    const g = m.parameters().map((p) => p.grad).filter((x): x is torch.Tensor => x !== undefined);
    assert.ok(g.length > 10 && g.every((x) => x.isfinite().all().item() === 1), method);
  }
  // the adversarial loss is at least the clean one (a first-order ascent step)
  m.eval();
  const e = torch.noGrad(() => embedOf());
  const x = e.detach().requiresGrad_(true);
  const l0 = lossOf(x);
  const [gx] = torch.grad(l0, x);
  const delta = gx!.mul(0.5 / gx!.norm().item());
  assert.ok(Math.abs(delta.norm().item() - 0.5) < 1e-5);
  assert.ok(torch.noGrad(() => lossOf(e.add(delta)).item()) > l0.item());
});

test("auxiliary tasks: word-boundary labels align with the words; the head trains beside the MLM and is not saved", async () => {
  const { wordBoundary } = await import("../src/objectives/index.js");
  const ex = packed[0]!;
  const { example, labels: y } = wordBoundary.apply(ex, new Rng(1));
  assert.equal(example, ex, "word-boundary prediction does not rewrite the input");
  ex.ids.forEach((_, i) => assert.equal(y[i], ex.special[i] ? -100 : ex.wordStart[i]));
  const tdir = join(dir, "tok-aux");
  saveTokenizer(tok, tdir);
  const out = join(dir, "aux");
  const r = await pretrain({ model: "bert-tiny", tokenizer: tdir, objectives: "mlm", input: ["moby-dick"], maxSteps: 30, batchSize: 16, seqLen: 64, learningRate: 2e-3, out, evalEvery: 30, evalBatches: 4, saveEvery: 30, seed: 1, auxiliary: [{ name: "word-boundary", weight: 0.5 }] });
  const e = r.evals[r.evals.length - 1]!;
  assert.ok(e.val_word_boundary_accuracy! > 0.6, `word-boundary accuracy ${e.val_word_boundary_accuracy}`);
  // the perplexity is the masked LM's alone, whatever the auxiliary loss adds
  assert.ok(e.val_perplexity! < Math.exp(e.val_loss!), `perplexity ${e.val_perplexity} vs exp(total loss) ${Math.exp(e.val_loss!)}`);
  const { readCheckpoint } = await import("../src/io/index.js");
  assert.ok(!readCheckpoint(out).names().some((n) => n.startsWith("aux_")));
  assert.ok(readCheckpoint(join(out, "checkpoint-30")).names().some((n) => n.startsWith("model.aux_word_boundary")));
  await assert.rejects(pretrain({ model: "bert-tiny", tokenizer: tdir, objectives: "mlm", input: ["moby-dick"], maxSteps: 1, batchSize: 4, seqLen: 32, learningRate: 1e-3, out: join(dir, "aux2"), auxiliary: [{ name: "pos-tags", weight: 1 }] }), /unknown auxiliary task "pos-tags"; available: word-boundary/);
});

test("examples carry sentence starts where the corpus's sentences start; special tokens never", () => {
  // the packed sequences' text, separators dropped, against the training documents' tokens
  const flat: number[] = [];
  const flags: number[] = [];
  for (const ex of packed) {
    for (let p = 0; p < ex.ids.length; p++) {
      if (ex.special[p]) {
        assert.equal(ex.sentStart![p], 0, "a special token marked as a sentence start");
        continue;
      }
      flat.push(ex.ids[p]!);
      flags.push(ex.sentStart![p]!);
    }
  }
  const tokens: number[] = [];
  const starts: number[] = [];
  for (const d of split.train) {
    for (let s = corpus.docStart[d]!; s < corpus.docStart[d + 1]!; s++) {
      for (let i = corpus.sentStart[s]!; i < corpus.sentStart[s + 1]!; i++) {
        tokens.push(corpus.ids[i]!);
        starts.push(i === corpus.sentStart[s] ? 1 : 0);
      }
    }
  }
  assert.deepEqual(flat, tokens.slice(0, flat.length));
  assert.deepEqual(flags, starts.slice(0, flags.length));
  assert.ok(flags.filter(Boolean).length > 100);
  // pairs: A and B each start a sentence
  for (const ex of pairExamples(corpus, split.train, 64, sp, "sop", 4).slice(0, 50)) {
    const sep = ex.ids.indexOf(sp.sep);
    assert.equal(ex.sentStart![1], 1);
    assert.equal(ex.sentStart![sep + 1], 1);
  }
});

test("sentence reordering: permutation classes by hand, the text is a permutation of segments, the label reads it", async () => {
  const { permutationRank, reorderingClass, sentenceReordering } = await import("../src/objectives/index.js");
  // Lehmer ranks of the permutations of 3, lexicographic
  const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  perms.forEach((p, i) => assert.equal(permutationRank(p), i));
  assert.equal(permutationRank([3, 2, 1, 0]), 23);
  // classes: 0 for no change; 1! = 1 class offset for two segments, 1! + 2! = 3 for three
  assert.equal(reorderingClass([0]), 0);
  assert.equal(reorderingClass([0, 1, 2]), 0);
  assert.equal(reorderingClass([1, 0]), 2); // offset 1 + rank 1
  assert.equal(reorderingClass([2, 0, 1]), 2); // (C, AB): the same text as two segments swapped
  assert.equal(reorderingClass([1, 2, 0]), 2); // (BC, A)
  assert.equal(reorderingClass([0, 2, 1]), 3 + 1);
  assert.equal(reorderingClass([1, 0, 2]), 3 + 2);
  assert.equal(reorderingClass([2, 1, 0]), 3 + 5);
  const task = sentenceReordering(3);
  assert.equal(task.classes, 9);
  assert.throws(() => sentenceReordering(7), /segments must be 2 to 5/);
  const counts = new Map<number, number>();
  for (let i = 0; i < 300; i++) {
    const ex = packed[i % packed.length]!;
    const { example, labels } = task.apply(ex, new Rng(11, i));
    const y = labels[0]!;
    counts.set(y, (counts.get(y) ?? 0) + 1);
    assert.equal(labels.length, 1);
    assert.ok(y >= 0 && y < 9 && ![1, 3 + 3, 3 + 4].includes(y), `class ${y} is not reachable`);
    // special tokens in place; the other tokens a permutation of the original ones
    ex.special.forEach((s, p) => s && assert.equal(example.ids[p], ex.ids[p]));
    assert.deepEqual([...example.ids].sort((a, b) => a - b), [...ex.ids].sort((a, b) => a - b));
    // class 0 exactly when the text is unchanged
    assert.equal(y === 0, example.ids.every((t, p) => t === ex.ids[p]), `class ${y}`);
    // reproducible from the key
    assert.deepEqual(task.apply(ex, new Rng(11, i)).example.ids, example.ids);
  }
  // 1 to 3 segments equally often, permutations uniform: no change 1/3 + 1/6 x 1/2 + 1/3 x 1/6 = 17/36
  assert.ok(Math.abs(counts.get(0)! / 300 - 17 / 36) < 0.1, `unchanged ${counts.get(0)} of 300`);
  assert.ok(counts.get(2)! > 30 && counts.get(3 + 5)! > 5, JSON.stringify([...counts]));
});

test("sentence reordering trains beside the MLM: the [CLS] head learns the order of sentences", async () => {
  const { AUXILIARY_TASKS, attachAuxiliaryHeads } = await import("../src/objectives/index.js");
  // documents whose order is learnable: three sentences opened by "first", "then", "finally"
  const words = [...tok.vocab.keys()].filter((w) => /^[a-z]{3,}$/.test(w)).slice(0, 300);
  const rng = new Rng(7);
  const sentence = (lead: string): string => `${lead} ${Array.from({ length: 5 + rng.int(4) }, () => words[rng.int(words.length)]).join(" ")}.`;
  const syn = Array.from({ length: 400 }, () => [sentence("first"), sentence("then"), sentence("finally")].join(" "));
  const c = tokenizeCorpus(syn, tok, { cache: false });
  const ex = syn.flatMap((_, d) => packedExamples(c, [d], 48, sp));
  torch.manualSeed(1);
  const m = AutoModelForMaskedLM.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 64, intermediate_size: 128, num_attention_heads: 2, vocab_size: tok.vocabSize, max_position_embeddings: 64 });
  const aux = [{ task: AUXILIARY_TASKS["sentence-reordering"]!, weight: 1 }];
  attachAuxiliaryHeads(m, aux);
  const obj = new MaskedLM(options("token"), sp.pad, null, null, aux);
  const validation = ex.slice(350);
  const t = new Trainer({ model: m, objective: obj, train: ex.slice(0, 350), validation, batchSize: 16, maxSteps: 300, learningRate: 3e-3, schedule: schedules.constant(), seed: 1, out: join(dir, "reorder"), evalEvery: 300 });
  const r = t.train();
  t.optimizer.dispose();
  // the majority class of the validation labels: what a head that ignores the text scores
  const labels = obj.batch(validation, validation.map((_, i) => i), -1).auxLabels!.sentence_reordering!;
  const values = labels.toArray() as number[][];
  const tally = new Map<number, number>();
  for (const [v] of values) tally.set(v!, (tally.get(v!) ?? 0) + 1);
  const majority = Math.max(...tally.values()) / values.length;
  const acc = r.evals[r.evals.length - 1]!.val_sentence_reordering_accuracy!;
  assert.ok(acc > majority + 0.2, `reordering accuracy ${acc} vs majority class ${majority}`);
});

test("mixing rates: examples-proportional with a limit, temperature and weights, as T5 defines them", async () => {
  const { mixingRates, pickTask } = await import("../src/train/index.js");
  const close = (a: number[], b: number[]): void => a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-12, `${a} vs ${b}`));
  close(mixingRates([100, 900], { kind: "proportional" }), [0.1, 0.9]);
  close(mixingRates([100, 900], { kind: "proportional", limit: 500 }), [100 / 600, 500 / 600]);
  // T = 2: sqrt(0.1) : sqrt(0.9) = 1 : 3
  close(mixingRates([100, 900], { kind: "temperature", temperature: 2 }), [0.25, 0.75]);
  close(mixingRates([100, 900], { kind: "temperature", temperature: 1 }), [0.1, 0.9]);
  close(mixingRates([100, 900, 9000], { kind: "equal" }), [1 / 3, 1 / 3, 1 / 3]);
  close(mixingRates([100, 900], { kind: "weights", weights: [1, 3] }), [0.25, 0.75]);
  assert.throws(() => mixingRates([1, 2], { kind: "temperature", temperature: 0.5 }), /temperature must be a finite number >= 1/);
  assert.throws(() => mixingRates([1, 2], { kind: "weights", weights: [1] }), /1 given for 2 tasks/);
  // draws follow the rates, and depend on (seed, step, micro-batch) only
  const rates = [0.2, 0.5, 0.3];
  const n = [0, 0, 0];
  for (let s = 0; s < 20000; s++) n[pickTask(rates, 3, s, 0)]!++;
  n.forEach((k, i) => assert.ok(Math.abs(k / 20000 - rates[i]!) < 0.015, `task ${i}: ${k / 20000} vs ${rates[i]}`));
  assert.equal(pickTask(rates, 3, 17, 1), pickTask(rates, 3, 17, 1));
});

test("a mixture of tasks: each micro-batch from one task at its rate, per-task metrics, exact resume", () => {
  const sop = pairExamples(corpus, split.train, 64, sp, "sop", 4);
  const valSop = pairExamples(corpus, split.validation, 64, sp, "sop", 4);
  const valPacked = packedExamples(corpus, split.validation, 64, sp);
  const tasks = (): TrainTask[] => [
    { name: "mlm", objective: new MaskedLM(options("token"), sp.pad), train: packed.slice(0, 40), validation: valPacked.slice(0, 8) },
    { name: "sop", objective: new MaskedLM(options("token"), sp.pad, "sop"), train: sop.slice(0, 120), validation: valSop.slice(0, 8) },
  ];
  const run = (out: string, stopAt: number | null, resume: boolean, taskList = tasks()): { losses: number[]; trainer: Trainer } => {
    torch.manualSeed(5);
    const m = AutoModelForPreTraining.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 32, intermediate_size: 64, vocab_size: tok.vocabSize, max_position_embeddings: 128 });
    return lossesUntil({
      model: m,
      tasks: taskList,
      mixing: { kind: "proportional" },
      batchSize: 4,
      gradientAccumulation: 2,
      maxSteps: 40,
      learningRate: 1e-3,
      schedule: schedules.constant(),
      seed: 9,
      out,
      saveEvery: 100,
      evalEvery: 40,
      resume,
    }, stopAt);
  };
  const full = run(join(dir, "mix-full"), null, false);
  assert.deepEqual(full.trainer.rates, [40 / 160, 120 / 160]);
  // 80 micro-batches: the SOP task's share near 3/4 (and positions advanced by batch size 4)
  const [mlm, sopTask] = full.trainer.tasks;
  const drawn = [mlm!.epoch * 40 + mlm!.position, sopTask!.epoch * 120 + sopTask!.position].map((x) => x / 4);
  assert.equal(drawn[0]! + drawn[1]!, 80);
  assert.ok(drawn[1]! > 48 && drawn[1]! < 72, `SOP task drew ${drawn[1]} of 80 micro-batches`);
  const log = readFileSync(join(dir, "mix-full", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const evals = log.filter((l) => l.event === "eval");
  const e = evals[evals.length - 1]!;
  for (const k of ["val_loss", "val_perplexity", "val_mlm_loss", "val_mlm_perplexity", "val_sop_loss", "val_sop_sop_accuracy", "val_mlm_accuracy"]) assert.equal(typeof e[k], "number", k);
  assert.equal(e.val_mlm_sop_accuracy, undefined, "the MLM task has no SOP metric");
  assert.ok(log.some((l) => l.event === "step" && typeof (l.task_losses as Record<string, number>)?.sop === "number"));
  // stopped and resumed: the same tasks drawn, the same data, the same losses
  const first = run(join(dir, "mix-cut"), 17, false);
  const rest = run(join(dir, "mix-cut"), null, true);
  assert.deepEqual([...first.losses, ...rest.losses], full.losses);
  // resuming with other tasks is refused before anything is loaded
  assert.throws(() => run(join(dir, "mix-cut"), null, true, tasks().slice(0, 1)), /the checkpoint's tasks \(mlm, sop\) are not this run's \(mlm\); resume with the same tasks/);
});

test("weighted sentence-pair loss: mlm,sop:W adds W x the SOP loss to the masked LM's", async () => {
  const { parseObjectives } = await import("../src/train/index.js");
  assert.deepEqual(parseObjectives("mlm,sop:0.5"), { kind: "mlm+sop", pairWeight: 0.5 });
  assert.deepEqual(parseObjectives("MLM+NSP"), { kind: "mlm+nsp", pairWeight: 1 });
  assert.throws(() => parseObjectives("mlm:2,sop"), /only the sentence-pair loss/);
  assert.throws(() => parseObjectives("mlm,xyz"), /not supported/);
  const pairs = pairExamples(corpus, split.train, 64, sp, "sop", 4).slice(0, 8);
  torch.manualSeed(2);
  const m = AutoModelForPreTraining.fromConfig({ ...presetConfig("bert-tiny"), hidden_size: 32, intermediate_size: 64, vocab_size: tok.vocabSize, max_position_embeddings: 128, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 });
  m.eval();
  const idx = pairs.map((_, i) => i);
  const lossWith = (w: number): number => torch.noGrad(() => torch.scope(() => new MaskedLM(options("token"), sp.pad, "sop", null, [], w).loss(m, new MaskedLM(options("token"), sp.pad, "sop").batch(pairs, idx, 0)).loss.item()));
  const [l0, l1, l3] = [lossWith(0), lossWith(1), lossWith(3)];
  // linear in the weight: l(3) - l(1) = 2 (l(1) - l(0))
  assert.ok(l1 > l0);
  assert.ok(Math.abs(l3 - l1 - 2 * (l1 - l0)) < 1e-4, `${l0} ${l1} ${l3}`);
});

test("pretrain() with --task: a mixture over two corpora, rates in the log, each task's perplexity reported", async () => {
  const tdir = join(dir, "tok-mix");
  saveTokenizer(tok, tdir);
  const out = join(dir, "pretrain-mix");
  const small = embeddedCorpus("sotu").slice(0, 20);
  const r = await pretrain({
    model: "bert-tiny",
    tokenizer: tdir,
    tasks: [{ objectives: "mlm", documents: docs }, { name: "speeches", objectives: "mlm,sop", documents: small }],
    mixing: { kind: "temperature", temperature: 2 },
    maxSteps: 20,
    batchSize: 8,
    seqLen: 64,
    learningRate: 2e-3,
    out,
    evalEvery: 20,
    evalBatches: 2,
    seed: 1,
  });
  assert.equal(r.tasks.length, 2);
  const sizes = r.tasks.map((t) => t.train.length);
  const p = sizes.map((n) => Math.sqrt(n / (sizes[0]! + sizes[1]!)));
  r.rates.forEach((x, i) => assert.ok(Math.abs(x - p[i]! / (p[0]! + p[1]!)) < 1e-12));
  const e = r.evals[r.evals.length - 1]!;
  assert.ok(e.val_speeches_perplexity! > 1 && e.val_speeches_sop_accuracy !== undefined, JSON.stringify(e));
  assert.ok(e[`val_${r.tasks[0]!.name}_perplexity`]! > 1, JSON.stringify(e));
  const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { architectures: string[] };
  assert.deepEqual(cfg.architectures, ["BertForPreTraining"]);
  await assert.rejects(pretrain({ model: "bert-tiny", tokenizer: tdir, tasks: [{ objectives: "mlm", documents: docs }, { objectives: "clm", documents: small }], maxSteps: 1, batchSize: 4, seqLen: 32, learningRate: 1e-3, out: join(dir, "mix-bad") }), /tasks mix mlm and clm: one model cannot take them all/);
  await assert.rejects(pretrain({ model: "bert-tiny", tokenizer: tdir, objectives: "mlm,sop", documents: docs, maxSteps: 1, batchSize: 4, seqLen: 32, learningRate: 1e-3, out: join(dir, "mix-bad2"), auxiliary: [{ name: "sentence-reordering", weight: 1 }] }), /cannot go with a sentence-pair objective/);
  await assert.rejects(pretrain({ model: "bert-tiny", tokenizer: tdir, objectives: "mlm", tasks: [{ objectives: "mlm", documents: docs }], maxSteps: 1, batchSize: 4, seqLen: 32, learningRate: 1e-3, out: join(dir, "mix-bad3") }), /give tasks .* or objectives with input, not both/);
  await assert.rejects(pretrain({ model: "bert-tiny", tokenizer: tdir, documents: docs, maxSteps: 1, batchSize: 4, seqLen: 32, learningRate: 1e-3, out: join(dir, "mix-bad4"), auxiliary: [{ name: "word-boundary", weight: 1 }, { name: "word-boundary", weight: 2 }] }), /auxiliary task "word-boundary" is given twice/);
});

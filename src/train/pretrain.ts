// Pretraining end to end, as `lmforge pretrain` runs it: documents -> tokens (cached) ->
// sequences -> objective -> Trainer -> a Hugging Face checkpoint folder with the tokenizer.
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import * as torch from "../torch/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForPreTraining, PRESETS, presetConfig, savePretrained } from "../models/index.js";
import type { PretrainedModel } from "../models/index.js";
import { packedExamples, pairExamples, readDocuments, splitDocs, tokenizeCorpus } from "../data/index.js";
import type { Example, SpecialIds } from "../data/index.js";
import { AUXILIARY_TASKS, CausalLM, ElectraPair, MaskedLM, ReplacedTokenDetection, attachAuxiliaryHeads, detachAuxiliaryHeads } from "../objectives/index.js";
import type { PerturbOptions } from "../objectives/index.js";
import type { AdversarialOptions } from "../nn/index.js";
import { electra } from "../models/index.js";
import type { MaskingStrategy, Objective } from "../objectives/index.js";
import { schedules } from "../optim/index.js";
import { Trainer } from "./trainer.js";
import type { StepInfo, TrainTask } from "./trainer.js";
import type { Mixing } from "./mixing.js";

export interface PretrainOptions {
  /** A preset name (bert-mini, roberta-base, albert-base, electra-small, gpt2, ...) or a checkpoint folder. */
  model: string;
  /** A tokenizer folder or file. */
  tokenizer: string;
  /** mlm, mlm+sop, mlm+nsp, clm, electra (also given as "mlm,sop"; a pair loss weight as "mlm,sop:0.5"). */
  objectives?: string;
  /**
   * Several tasks trained together, one per micro-batch, drawn with `mixing` (T5's
   * examples-proportional or temperature mixing): each an objective and its own text.
   */
  tasks?: PretrainTask[];
  /** How tasks are mixed (default: examples-proportional). */
  mixing?: Mixing;
  masking?: "static" | "dynamic";
  maskStrategy?: MaskingStrategy;
  maskProbability?: number;
  input?: string[];
  /** Documents given directly (instead of --input files). */
  documents?: string[];
  maxSteps: number;
  batchSize: number;
  seqLen: number;
  learningRate: number;
  warmupSteps?: number;
  weightDecay?: number;
  gradientAccumulation?: number;
  clipNorm?: number;
  precision?: "fp32" | "bf16";
  seed?: number;
  valFraction?: number;
  evalEvery?: number;
  evalBatches?: number;
  saveEvery?: number;
  keepLast?: number;
  out: string;
  resume?: boolean;
  /** Extra config keys for a preset (dropout, sizes). */
  modelConfig?: Record<string, unknown>;
  /** Context perturbation before masking (masked LM objectives). */
  perturb?: Omit<PerturbOptions, "vocabSize" | "specialIds" | "maskId" | "seed">;
  /** Adversarial training on the embeddings. */
  adversarial?: AdversarialOptions;
  /** Auxiliary tasks beside the masked LM, by name ("word-boundary") with their loss weight. */
  auxiliary?: { name: string; weight: number }[];
  onStep?: (info: StepInfo) => void;
  onEval?: (m: Record<string, number>) => void;
  log?: (line: string) => void;
}

export interface PretrainTask {
  /** The task's name in the log and metrics (default: its input's name, else task1, task2, ...). */
  name?: string;
  objectives: string;
  input?: string[];
  documents?: string[];
  /** The task's rate with mixing "weights". */
  weight?: number;
}

type ObjectiveKind = "mlm" | "mlm+sop" | "mlm+nsp" | "clm" | "electra";

/** "mlm,sop:0.5" -> the objective and the pair loss's weight. */
export function parseObjectives(text: string): { kind: ObjectiveKind; pairWeight: number } {
  const parts = text.toLowerCase().split(/[,+]/).map((p) => p.trim());
  let pairWeight = 1;
  const names = parts.map((p) => {
    const [name, w] = p.split(":");
    if (w !== undefined) {
      if (name !== "sop" && name !== "nsp") throw new Error(`--objectives "${text}": only the sentence-pair loss (sop, nsp) takes a weight, as sop:0.5`);
      pairWeight = Number(w);
      if (!(pairWeight >= 0) || !Number.isFinite(pairWeight)) throw new Error(`--objectives "${text}": the weight of ${name} must be a number >= 0`);
    }
    return name;
  });
  const kind = names.join("+");
  if (!["mlm", "mlm+sop", "mlm+nsp", "clm", "electra"].includes(kind)) throw new Error(`--objectives "${text}" is not supported; use mlm, mlm,sop, mlm,nsp, clm or electra (sop and nsp take a weight: mlm,sop:0.5)`);
  return { kind: kind as ObjectiveKind, pairWeight };
}

export interface PretrainResult {
  model: PretrainedModel;
  tokenizer: Tokenizer;
  evals: Record<string, number>[];
  steps: number;
  interrupted: boolean;
  trainExamples: number;
  validationExamples: number;
  /**
   * The perplexity of a unigram model of the training tokens (add-one smoothed) on the
   * validation tokens: the baseline a masked LM must beat to have learned context.
   */
  unigramPerplexity: number;
  /** Validation examples, to score other models on the same data (e.g. an untrained one). */
  validation: Example[];
  objective: Objective;
  /** Every task with its data (one unless tasks were given), and their sampling rates. */
  tasks: TrainTask[];
  rates: number[];
}

function specials(tok: Tokenizer): SpecialIds & { mask: number } {
  const sp = tok.specialTokens;
  const id = (t: string | undefined, what: string): number => {
    const v = t === undefined ? undefined : tok.tokenToId(t);
    if (v === undefined) throw new Error(`the tokenizer has no ${what} token`);
    return v;
  };
  return { cls: id(sp.cls ?? sp.bos, "[CLS]/<s>"), sep: id(sp.sep ?? sp.eos, "[SEP]/</s>"), pad: id(sp.pad, "[PAD]/<pad>"), mask: sp.mask ? tok.tokenToId(sp.mask)! : -1 };
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  if (o.tasks && o.tasks.length === 0) throw new Error("tasks: the list is empty");
  if (o.tasks && (o.objectives !== undefined || o.input !== undefined || o.documents !== undefined)) {
    throw new Error("give tasks (each with its objectives and input) or objectives with input, not both");
  }
  const specs: PretrainTask[] = o.tasks ?? [{ objectives: o.objectives ?? "mlm", ...(o.input ? { input: o.input } : {}), ...(o.documents ? { documents: o.documents } : {}) }];
  const parsed = specs.map((t) => parseObjectives(t.objectives));
  const kinds = new Set(parsed.map((p) => p.kind));
  if (kinds.size > 1 && (kinds.has("clm") || kinds.has("electra"))) throw new Error(`tasks mix ${[...kinds].join(" and ")}: one model cannot take them all; mix clm tasks together, or mlm, mlm,sop and mlm,nsp tasks`);
  if (specs.length > 1 && kinds.has("electra")) throw new Error("electra trains a generator-discriminator pair: it is not mixed with other tasks");
  const objectives: ObjectiveKind = kinds.has("clm") ? "clm" : kinds.has("electra") ? "electra" : parsed.some((p) => p.kind !== "mlm") ? "mlm+sop" : "mlm";
  const seed = o.seed ?? 42;
  torch.manualSeed(seed);
  const tok = loadTokenizer(o.tokenizer);
  const sp = specials(tok);
  const causal = objectives === "clm";
  if (!causal && sp.mask < 0) throw new Error("masked LM needs a tokenizer with a mask token ([MASK] or <mask>)");
  // The model: a preset (sized to the tokenizer) or an existing checkpoint (continued pretraining).
  let model: PretrainedModel;
  // one model for every task: with a sentence-pair task among them, the pretraining model (both heads)
  const auto = causal ? AutoModelForCausalLM : objectives === "mlm" ? AutoModelForMaskedLM : AutoModelForPreTraining;
  if (objectives === "electra") {
    // the discriminator from the preset, and a generator a quarter of its width (the paper's 1/4 to 1/2)
    const base = presetConfig(PRESETS[o.model] ? o.model : "electra-small");
    if (base.model_type !== "electra") throw new Error(`--objectives electra needs an ELECTRA preset (electra-small), not ${o.model}`);
    const shared = { ...base, vocab_size: tok.vocabSize, max_position_embeddings: Math.max(o.seqLen, 128), pad_token_id: sp.pad, ...o.modelConfig };
    const h = base.hidden_size as number;
    const gen = new electra.ElectraForMaskedLM(electra.electraConfig({ ...shared, hidden_size: Math.max(16, h / 4), num_attention_heads: Math.max(1, (base.num_attention_heads as number) / 4), intermediate_size: Math.max(64, (base.intermediate_size as number) / 4) }));
    const disc = new electra.ElectraForPreTraining(electra.electraConfig(shared));
    model = new ElectraPair(gen, disc) as unknown as PretrainedModel;
  } else if (PRESETS[o.model]) {
    const base = presetConfig(o.model);
    const isGpt = base.model_type === "gpt2";
    if (causal !== isGpt) throw new Error(`--model ${o.model} does not fit --objectives ${objectives}: ${isGpt ? "GPT-2 takes clm" : "clm needs a GPT-2 model"}`);
    const sizes = isGpt
      ? { vocab_size: tok.vocabSize, n_positions: Math.max(o.seqLen, 128), bos_token_id: sp.cls, eos_token_id: sp.sep, pad_token_id: sp.pad }
      : { vocab_size: tok.vocabSize, max_position_embeddings: Math.max(o.seqLen + (base.model_type === "roberta" ? 2 : 0), 128), pad_token_id: sp.pad };
    model = auto.fromConfig({ ...base, ...sizes, ...o.modelConfig });
  } else if (existsSync(join(o.model, "config.json"))) {
    model = await auto.fromPretrained(o.model);
    const vocab = (model.config.vocab_size as number) ?? 0;
    if (vocab < tok.vocabSize) throw new Error(`${o.model}: its vocabulary (${vocab}) is smaller than the tokenizer's (${tok.vocabSize})`);
  } else {
    throw new Error(`--model "${o.model}" is neither a preset (${Object.keys(PRESETS).join(", ")}) nor a checkpoint folder`);
  }
  o.log?.(`model: ${model.constructor.name}, ${(model.numParameters() / 1e6).toFixed(2)}M parameters`);
  const masking = {
    strategy: o.maskStrategy ?? "token",
    dynamic: (o.masking ?? "dynamic") === "dynamic",
    probability: o.maskProbability ?? 0.15,
    maskId: sp.mask,
    vocabSize: tok.vocabSize,
    specialIds: tok.specialIds,
    seed,
  };
  const auxiliary = (o.auxiliary ?? []).map(({ name, weight }, i, all) => {
    const task = AUXILIARY_TASKS[name];
    if (all.findIndex((a) => a.name === name) !== i) throw new Error(`auxiliary task "${name}" is given twice`);
    if (!task) throw new Error(`unknown auxiliary task "${name}"; available: ${Object.keys(AUXILIARY_TASKS).join(", ")}`);
    if (causal || objectives === "electra") throw new Error("auxiliary tasks go beside a masked-LM objective (mlm, mlm,sop, mlm,nsp)");
    if (task.level === "sequence" && parsed.some((p) => p.kind !== "mlm")) throw new Error(`auxiliary task ${name} reorders a sequence's text: it cannot go with a sentence-pair objective (sop, nsp), whose label depends on the order`);
    return { task, weight };
  });
  if (auxiliary.length) attachAuxiliaryHeads(model, auxiliary);
  const perturb = o.perturb ? { ...o.perturb, vocabSize: tok.vocabSize, specialIds: tok.specialIds, maskId: sp.mask, seed } : null;
  // Data per task: documents -> tokens (cached) -> sequences, validation on held-out documents.
  const tasks: TrainTask[] = specs.map((spec, i) => {
    const { kind, pairWeight } = parsed[i]!;
    const docs = spec.documents ?? readDocuments(spec.input ?? []);
    const corpus = tokenizeCorpus(docs, tok);
    const split = splitDocs(corpus, o.valFraction ?? 0.05, seed);
    const build = (docIdx: number[]): Example[] =>
      kind === "mlm+sop" || kind === "mlm+nsp" ? pairExamples(corpus, docIdx, o.seqLen, sp, kind === "mlm+sop" ? "sop" : "nsp", seed) : packedExamples(corpus, docIdx, o.seqLen, sp, { causal });
    const train = build(split.train);
    const validation = build(split.validation);
    const objective: Objective =
      kind === "clm"
        ? new CausalLM(sp.pad)
        : kind === "electra"
          ? new ReplacedTokenDetection(masking, sp.pad)
          : new MaskedLM(masking, sp.pad, kind === "mlm+sop" ? "sop" : kind === "mlm+nsp" ? "nsp" : null, perturb, auxiliary, pairWeight);
    // a mixture's task is named after its input (moby-dick, mails), or task1, task2, ...
    const fromInput = (spec.input ?? []).map((f) => basename(f).replace(/\.[^.]*$/, "")).join("+");
    const name = spec.name ?? (specs.length === 1 ? objective.name : fromInput && specs.filter((x) => x.input?.join() === spec.input?.join()).length === 1 ? fromInput : `task${i + 1}`);
    o.log?.(`data${specs.length > 1 ? ` (${name})` : ""}: ${docs.length} documents, ${corpus.ids.length} tokens; ${train.length} training and ${validation.length} validation sequences of up to ${o.seqLen} tokens`);
    return { name, objective, train, validation };
  });
  // mixing "weights" without a list takes each task's weight (default 1)
  const mixing: Mixing = o.mixing?.kind === "weights" && o.mixing.weights.length === 0 ? { kind: "weights", weights: specs.map((t) => t.weight ?? 1) } : (o.mixing ?? { kind: "proportional" });
  const tokFiles = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt"];
  const copy: Record<string, string> = {};
  for (const f of tokFiles) if (existsSync(join(o.tokenizer, f))) copy[f] = join(o.tokenizer, f);
  const trainer = new Trainer({
    model,
    tasks,
    mixing,
    batchSize: o.batchSize,
    gradientAccumulation: o.gradientAccumulation ?? 1,
    maxSteps: o.maxSteps,
    learningRate: o.learningRate,
    weightDecay: o.weightDecay ?? 0.01,
    schedule: schedules.linearWarmupDecay(o.warmupSteps ?? Math.round(o.maxSteps * 0.06), o.maxSteps),
    clipNorm: o.clipNorm ?? 1,
    precision: o.precision ?? torch.defaultPrecision(),
    seed,
    out: o.out,
    saveEvery: o.saveEvery ?? Math.max(100, Math.round(o.maxSteps / 4)),
    keepLast: o.keepLast ?? 2,
    evalEvery: o.evalEvery ?? Math.max(10, Math.round(o.maxSteps / 10)),
    evalBatches: o.evalBatches ?? 25,
    resume: o.resume ?? false,
    copy,
    ...(o.adversarial ? { adversarial: o.adversarial } : {}),
    ...(o.onStep ? { onStep: o.onStep } : {}),
    ...(o.onEval ? { onEval: o.onEval } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  if (tasks.length > 1) o.log?.(`mixing (${mixing.kind}): ${tasks.map((t, i) => `${t.name} ${(trainer.rates[i]! * 100).toFixed(1)}%`).join(", ")}`);
  const train = tasks.flatMap((t) => t.train);
  const validation = tasks.flatMap((t) => t.validation ?? []);
  const unigramPerplexity = unigram(train, validation, tok.vocabSize);
  o.log?.(`unigram baseline: validation perplexity ${unigramPerplexity.toFixed(1)}`);
  const r = trainer.train();
  trainer.optimizer.dispose();
  // the discriminator is ELECTRA's model to keep; the generator is discarded, as in the paper
  const keep = model instanceof ElectraPair ? (model.discriminator as unknown as PretrainedModel) : model;
  detachAuxiliaryHeads(keep, auxiliary); // the checkpoint holds Hugging Face's tensors only
  savePretrained(keep, o.out, { copy, mode: "files" }); // beside metrics.jsonl and the checkpoints
  return { model: keep, tokenizer: tok, evals: r.evals, steps: r.steps, interrupted: r.interrupted, trainExamples: train.length, validationExamples: validation.length, validation, objective: tasks[0]!.objective, tasks, rates: trainer.rates, unigramPerplexity };
}

function unigram(train: Example[], validation: Example[], vocab: number): number {
  const counts = new Float64Array(vocab);
  let total = 0;
  for (const ex of train) ex.ids.forEach((t, i) => {
    if (!ex.special[i]) {
      counts[t]! += 1;
      total++;
    }
  });
  let nll = 0;
  let n = 0;
  for (const ex of validation) ex.ids.forEach((t, i) => {
    if (!ex.special[i]) {
      nll -= Math.log((counts[t]! + 1) / (total + vocab));
      n++;
    }
  });
  return Math.exp(nll / Math.max(1, n));
}

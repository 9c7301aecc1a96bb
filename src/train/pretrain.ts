// Pretraining end to end, as `lmforge pretrain` runs it: documents -> tokens (cached) ->
// sequences -> objective (from the objective registry) -> Trainer -> a Hugging Face
// checkpoint folder with the tokenizer. Every option is checked, and the model and data
// built, before anything is written.
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import * as torch from "../torch/index.js";
import { loadTokenizer } from "../tokenizers/index.js";
import type { Tokenizer } from "../tokenizers/index.js";
import { PRESETS, architecture, checkPositions, classFor, modelFromPretrained, presetConfig, savePretrained } from "../models/index.js";
import type { PretrainedModel, Task } from "../models/index.js";
import { packedExamples, pairExamples, readDocuments, splitDocs, tokenizeCorpus } from "../data/index.js";
import type { Example, SpecialIds, TokenizedCorpus } from "../data/index.js";
import { AUXILIARY_TASKS, attachAuxiliaryHeads, detachAuxiliaryHeads, parseObjectiveSpec } from "../objectives/index.js";
import type { ObjectiveEntry, PerturbOptions, MaskingStrategy, Objective } from "../objectives/index.js";
import type { AdversarialOptions } from "../nn/index.js";
import { resolveOptions } from "../io/options.js";
import { writeTextAtomic } from "../io/index.js";
import { schedules } from "../optim/index.js";
import { Trainer } from "./trainer.js";
import type { StepInfo, TrainTask } from "./trainer.js";
import { DEFAULT_BUCKET_MB, joinFromEnv } from "./data-parallel.js";
import type { DistributedOptions } from "./data-parallel.js";
import type { Mixing } from "./mixing.js";
import { PRETRAIN_OPTIONS } from "./pretrain-options.js";
import { STREAM_THRESHOLD_MB_DEFAULT, streamRefusal, streamTaskData, tokenFileFor } from "./stream-data.js";
import type { TokenFile } from "../data/index.js";

export { PRETRAIN_OPTIONS } from "./pretrain-options.js";

export interface PretrainOptions {
  /** A preset name (bert-mini, roberta-base, albert-base, electra-small, gpt2, ...) or a checkpoint folder. */
  model: string;
  /** A tokenizer folder or file (default: the checkpoint folder's own, when `model` is one). */
  tokenizer?: string;
  /** mlm, mlm+sop, mlm+nsp, clm, electra, span-corruption (also given as "mlm,sop"; a pair loss weight as "mlm,sop:0.5"). */
  objectives?: string;
  /** Several tasks trained together, one per micro-batch, drawn with `mixing`: each an objective and its own text. */
  tasks?: PretrainTask[];
  /** How tasks are mixed (default: examples-proportional). */
  mixing?: Mixing;
  masking?: "static" | "dynamic";
  maskStrategy?: MaskingStrategy;
  maskProbability?: number;
  /** span-corruption: share of tokens dropped (default 0.15) and mean dropped span length (default 3), as T5. */
  noiseDensity?: number;
  meanSpanLength?: number;
  input?: string[];
  /** Images for an image objective (clip): an IDX folder (train/t10k by their standard names) or PNGs in train|test/<class>/. */
  images?: string;
  /** Documents given directly (instead of --input files). */
  documents?: string[];
  maxSteps: number;
  batchSize?: number;
  seqLen?: number;
  learningRate?: number;
  warmupSteps?: number;
  weightDecay?: number;
  gradientAccumulation?: number;
  clipNorm?: number;
  precision?: "fp32" | "bf16";
  seed?: number;
  valFraction?: number;
  evalEvery?: number | "epoch";
  evalBatches?: number;
  saveEvery?: number | "epoch";
  keepLast?: number;
  /** Early stopping on a validation metric (default loss) after this many evaluations without improvement. */
  patience?: number;
  metric?: string;
  out: string;
  resume?: boolean;
  /** An lmforge preset's block switches (--arch norm=pre,positions=rotary,ffn=swiglu), as config keys. */
  arch?: Record<string, unknown>;
  /** Extra config keys for a preset (dropout, sizes, max_position_embeddings). */
  modelConfig?: Record<string, unknown>;
  /** Context perturbation before masking (masked LM objectives). */
  perturb?: Omit<PerturbOptions, "vocabSize" | "specialIds" | "maskId" | "seed">;
  /** Adversarial training on the embeddings. */
  adversarial?: AdversarialOptions;
  /** Gradient checkpointing per transformer layer: less memory, a recomputed forward. */
  gradientCheckpointing?: boolean;
  /** Batches of examples of like length (TrainerOptions.groupByLength). */
  groupByLength?: boolean;
  /** Auxiliary tasks beside the masked LM, by name ("word-boundary") with their loss weight. */
  auxiliary?: { name: string; weight: number }[];
  /** Data parallelism over a process group; by default the one a launcher's RANK/WORLD_SIZE name, if any. */
  distributed?: DistributedOptions;
  /** Data parallelism: the epoch's tail over the ranks (src/train/sampler.ts; default uneven). */
  ddpTail?: "uneven" | "pad" | "drop";
  /** Data parallel: gradient bucket size in MB (default 25, as DDP). */
  bucketMb?: number;
  /** Tokenise the input by streaming into a token file and read windows of it (default: when the input is over streamThresholdMb). */
  stream?: boolean;
  /** Inputs larger than this many MB are streamed (default 256). */
  streamThresholdMb?: number;
  /** Worker threads of streaming tokenisation (default: the cores; 0: this thread). */
  tokenizeThreads?: number;
  /** Streaming tokenisation's progress: bytes of input read of the total. */
  onTokenize?: (done: number, total: number) => void;
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

export interface PretrainResult {
  model: PretrainedModel;
  tokenizer: Tokenizer;
  evals: Record<string, number>[];
  steps: number;
  interrupted: boolean;
  /** The signal that interrupted the run (after a checkpoint), if one did. */
  signal?: "SIGINT" | "SIGTERM";
  trainExamples: number;
  validationExamples: number;
  /**
   * The perplexity of a unigram model of the training tokens (add-one smoothed) on the
   * validation tokens: the baseline a masked LM must beat to have learned context.
   */
  unigramPerplexity: number;
  /** Validation examples, to score other models on the same data (e.g. an untrained one). */
  validation: Example[];
  objective: Objective<Example>;
  /** Every task with its data (one unless tasks were given), and their sampling rates. */
  tasks: TrainTask<Example>[];
  rates: number[];
  /** Image objectives: the objective's metrics on the image folder's test part (zero-shot accuracy), when it has one. */
  test?: Record<string, number>;
}

/** "mlm,sop:0.5" -> the objective and the pair loss's weight (the registry's canonical name). */
export function parseObjectives(text: string): { kind: string; pairWeight: number } {
  const { entry, weight } = parseObjectiveSpec(text);
  return { kind: entry.name, pairWeight: weight };
}

/** The tokenizer's special ids; cls is -1 where no layout needs it (T5's tokenizer has none: span corruption adds only EOS). */
function specials(tok: Tokenizer, needsCls: boolean): SpecialIds & { mask: number } {
  const sp = tok.specialTokens;
  const id = (t: string | undefined, what: string): number => {
    const v = t === undefined ? undefined : tok.tokenToId(t);
    if (v === undefined) throw new Error(`the tokenizer has no ${what} token`);
    return v;
  };
  const cls = needsCls || sp.cls !== undefined || sp.bos !== undefined ? id(sp.cls ?? sp.bos, "[CLS]/<s>") : -1;
  return { cls, sep: id(sp.sep ?? sp.eos, "[SEP]/</s>"), pad: id(sp.pad, "[PAD]/<pad>"), mask: sp.mask ? tok.tokenToId(sp.mask)! : -1 };
}

/** The one model head that serves every task of a run: a pretraining model serves masked-LM tasks too. */
function sharedHead(entries: ObjectiveEntry[]): Task {
  const heads = new Set(entries.map((e) => e.head));
  if (heads.size === 1) return entries[0]!.head;
  if ([...heads].every((h) => h === "masked-lm" || h === "pretraining")) return "pretraining";
  throw new Error(`tasks mix ${[...new Set(entries.map((e) => e.name))].join(" and ")}: one model cannot take them all; mix clm tasks together, span-corruption tasks together, or mlm, mlm,sop and mlm,nsp tasks`);
}

/** The tokenizer of a checkpoint folder given as the model: a preset has none, so --tokenizer is then required. */
function checkpointTokenizer(model: string): string {
  if (PRESETS[model] || !existsSync(join(model, "tokenizer.json")) && !existsSync(join(model, "vocab.txt"))) {
    throw new Error(PRESETS[model] ? `--tokenizer is required with the preset ${model} (a folder from lmforge tokenizer train)` : `--tokenizer is required: ${model} holds no tokenizer.json or vocab.txt`);
  }
  return model;
}

/** The model a run starts from: a preset sized to the tokenizer, or a checkpoint to continue. */
async function startingModel(o: { model: string; seqLen: number; arch?: Record<string, unknown>; modelConfig?: Record<string, unknown> }, head: Task, tok: Tokenizer, sp: SpecialIds, objectives: string): Promise<PretrainedModel> {
  // the configurable block's models: lmforge, and lmforge-vit (its towers are that block)
  const configurable = (name: string): boolean => PRESETS[name]?.model_type === "lmforge" || PRESETS[name]?.model_type === "lmforge-vit";
  if (o.arch && !configurable(o.model)) {
    const lmforge = Object.keys(PRESETS).filter(configurable);
    throw new Error(`--arch sets the switches of a fresh lmforge model: --model must be one of its presets (${lmforge.join(", ")}), not ${o.model}`);
  }
  if (PRESETS[o.model]) {
    const base = presetConfig(o.model);
    const entry = architecture(base.model_type as string);
    try {
      classFor(entry, head);
    } catch (e) {
      throw new Error(`--model ${o.model} does not fit --objectives ${objectives}: ${(e as Error).message}`);
    }
    // The tokenizer's special tokens; the architecture keeps its position count (BERT's 512)
    // unless the run needs more or the user sets it, so the model can be fine-tuned on longer text later.
    // a causal LM generates until its eos: the tokenizer's document separator, as the causal packing uses it
    // an encoder-decoder (T5) ends sequences with its eos and starts the decoder from pad, as T5
    const eos = tok.specialTokens.eos === undefined ? sp.sep : tok.tokenToId(tok.specialTokens.eos)!;
    const specials = head === "causal-lm" ? { bos_token_id: sp.cls, eos_token_id: sp.sep } : head === "seq2seq-lm" ? { eos_token_id: eos, decoder_start_token_id: sp.pad } : {};
    const draft = { ...base, vocab_size: tok.vocabSize, pad_token_id: sp.pad, ...specials, ...o.arch, ...o.modelConfig };
    const config = entry.parseConfig(draft, `preset ${o.model}`);
    const needed = entry.positions.needed(o.seqLen);
    // a null position count (T5's relative positions) is no limit and stays null
    const have = config[entry.positions.key];
    const positioned = o.modelConfig?.[entry.positions.key] === undefined && typeof have === "number" && have < needed ? { ...config, [entry.positions.key]: needed } : config;
    checkPositions(positioned, o.seqLen, "--seq-len");
    return new (classFor(entry, head)[1])(positioned as never);
  }
  if (!existsSync(join(o.model, "config.json"))) throw new Error(`--model "${o.model}" is neither a preset (${Object.keys(PRESETS).join(", ")}) nor a checkpoint folder (no config.json there)`);
  const model = await modelFromPretrained(o.model, head, { verbose: false });
  const vocab = (model.config.vocab_size as number) ?? 0;
  if (vocab < tok.vocabSize) throw new Error(`${o.model}: its vocabulary (${vocab}) is smaller than the tokenizer's (${tok.vocabSize})`);
  checkPositions(model.config, o.seqLen, "--seq-len");
  return model;
}

/** Training and validation sequences of one task: whole documents held out, or sequences when the corpus has too few documents. */
function taskData(corpus: TokenizedCorpus, entry: ObjectiveEntry, o: { seqLen: number; valFraction: number; seed: number }, sp: SpecialIds): { train: Example[]; validation: Example[]; note: string } {
  const build = (docIdx: number[]): Example[] =>
    entry.sequences === "sop" || entry.sequences === "nsp" ? pairExamples(corpus, docIdx, o.seqLen, sp, entry.sequences, o.seed) : packedExamples(corpus, docIdx, o.seqLen, sp, { causal: entry.sequences === "causal" || entry.sequences === "spans" });
  const docs = corpus.docStart.length - 1;
  const enoughDocs = o.valFraction === 0 || docs * o.valFraction >= 1;
  if (enoughDocs) {
    const split = splitDocs(corpus, o.valFraction, o.seed);
    return { train: build(split.train), validation: build(split.validation), note: `${split.validation.length} whole documents held out` };
  }
  // A single long file (one paragraph per line, say) reads as few documents: hold out the
  // last share of its sequences instead, a contiguous block, so that train and validation share no text.
  const all = build(Array.from({ length: docs }, (_, i) => i));
  const nVal = Math.max(1, Math.round(all.length * o.valFraction));
  if (all.length - nVal < 1) throw new Error(`the corpus makes ${all.length} sequence(s) of ${o.seqLen} tokens: too few to hold out ${nVal} for validation (lower --val-fraction or --seq-len, or give more text)`);
  return { train: all.slice(0, all.length - nVal), validation: all.slice(all.length - nVal), note: `the corpus has ${docs} document(s), too few to hold out whole ones: the last ${nVal} of its ${all.length} sequences are held out instead` };
}

export async function pretrain(given: PretrainOptions): Promise<PretrainResult> {
  const o = resolveOptions(PRETRAIN_OPTIONS, given as unknown as Record<string, unknown>) as unknown as Required<Omit<PretrainOptions, "tasks" | "mixing" | "input" | "documents" | "arch" | "modelConfig" | "perturb" | "adversarial" | "auxiliary" | "onStep" | "onEval" | "log" | "metric" | "evalBatches" | "objectives" | "images" | "stream" | "streamThresholdMb" | "tokenizeThreads" | "onTokenize">> & PretrainOptions;
  if (o.tasks && o.tasks.length === 0) throw new Error("tasks: the list is empty");
  if (o.tasks && (o.objectives !== undefined || o.input !== undefined || o.documents !== undefined)) {
    throw new Error("give tasks (each with its objectives and input) or objectives with input, not both");
  }
  if (o.mixing && !o.tasks) throw new Error("mixing mixes tasks: give two or more tasks (--task OBJECTIVES=INPUT)");
  const specs: PretrainTask[] = o.tasks ?? [{ objectives: o.objectives ?? "mlm", ...(o.input ? { input: o.input } : {}), ...(o.documents ? { documents: o.documents } : {}) }];
  const parsed = specs.map((t) => parseObjectiveSpec(t.objectives));
  const entries = parsed.map((p) => p.entry);
  const head = sharedHead(entries);
  if (specs.length > 1) for (const e of entries) if (!e.supports.mixing) throw new Error(`${e.name} is not mixed with other tasks (${e.summary})`);
  // every option the objectives do not take is refused by name, before any work
  for (const e of entries) {
    if (o.perturb && !e.supports.perturb) throw new Error(`--perturb does not apply to ${e.name}: it perturbs what a masked LM restores; use it with mlm, mlm,sop or mlm,nsp`);
    if (o.adversarial && !e.supports.adversarial) throw new Error(`--adversarial does not apply to ${e.name}`);
    if (o.auxiliary?.length && !e.supports.auxiliary) throw new Error(`auxiliary tasks go beside a masked-LM objective (mlm, mlm,sop, mlm,nsp), not ${e.name}`);
  }
  // a launcher's worker joins its group first: a rendezvous error comes before any work
  const joined = o.distributed ? undefined : await joinFromEnv(o.log, { tail: o.ddpTail, bucketMb: o.bucketMb ?? DEFAULT_BUCKET_MB });
  const distributed = o.distributed ?? joined;
  const main = (distributed?.group.rank ?? 0) === 0;
  // image objectives read --images, not text; nothing else takes it
  const imageEntry = entries.find((e) => e.images);
  if (imageEntry && specs.length > 1) throw new Error(`${imageEntry.name} learns from images and is not mixed with other tasks`);
  if (imageEntry && o.images === undefined) throw new Error(`${imageEntry.name} learns from images: give --images DIR (IDX files, e.g. /usr/share/datasets/fashion-mnist, or PNGs in train|test/<class>/)`);
  if (!imageEntry && o.images !== undefined) throw new Error(`--images goes with an image objective (clip), not ${entries.map((e) => e.name).join(", ")}`);
  if (imageEntry && (o.input !== undefined || o.documents !== undefined)) throw new Error(`${imageEntry.name} learns from --images; --input does not apply`);
  const seed = o.seed;
  torch.manualSeed(seed);
  const imageData = imageEntry ? imageEntry.images!(o.images!, { valFraction: o.valFraction, seed }) : null;
  // a model that pairs images with class texts knows the classes (zero-shot prediction reads them)
  const classConfig = imageData ? { id2label: Object.fromEntries(imageData.classes.map((c, i) => [String(i), c])), label2id: Object.fromEntries(imageData.classes.map((c, i) => [c, i])) } : {};
  const tokenizerPath = o.tokenizer ?? checkpointTokenizer(o.model);
  const tok = loadTokenizer(tokenizerPath);
  const sp = specials(tok, entries.some((e) => e.sequences !== "spans"));
  for (const e of entries) e.checkTokenizer?.(tok, tokenizerPath);
  if (entries.some((e) => e.needsMask) && sp.mask < 0) throw new Error(`${tokenizerPath}: masked LM needs a tokenizer with a mask token ([MASK] or <mask>)`);
  const auxiliary = (o.auxiliary ?? []).map(({ name, weight }, i, all) => {
    const task = AUXILIARY_TASKS[name];
    if (all.findIndex((a) => a.name === name) !== i) throw new Error(`auxiliary task "${name}" is given twice`);
    if (!task) throw new Error(`unknown auxiliary task "${name}"; available: ${Object.keys(AUXILIARY_TASKS).join(", ")}`);
    if (task.level === "sequence" && entries.some((e) => e.weightedPart)) throw new Error(`auxiliary task ${name} reorders a sequence's text: it cannot go with a sentence-pair objective (sop, nsp), whose label depends on the order`);
    return { task, weight };
  });
  const modelConfig = imageData ? { ...o.modelConfig, ...classConfig } : o.modelConfig;
  const base = await startingModel({ model: o.model, seqLen: o.seqLen, ...(o.arch ? { arch: o.arch } : {}), ...(modelConfig ? { modelConfig } : {}) }, head, tok, sp, specs.map((s) => s.objectives).join(" and "));
  if (imageData && !PRESETS[o.model]) Object.assign(base.config, classConfig);
  const pairing = entries.find((e) => e.pair)?.pair;
  const model = pairing ? pairing.build(base) : base;
  if (pairing && !PRESETS[o.model]) o.log?.(`${o.model}: continuing its ${base.constructor.name}; the other network of the pair starts fresh (${specs.map((s) => s.objectives).join()})`);
  o.log?.(`model: ${model.constructor.name}, ${(model.numParameters() / 1e6).toFixed(2)}M parameters`);
  if (auxiliary.length) attachAuxiliaryHeads(model, auxiliary);
  const masking = { strategy: o.maskStrategy, dynamic: o.masking === "dynamic", probability: o.maskProbability, maskId: sp.mask, vocabSize: tok.vocabSize, specialIds: tok.specialIds, seed };
  const perturb = o.perturb ? { ...o.perturb, vocabSize: tok.vocabSize, specialIds: tok.specialIds, maskId: sp.mask, seed } : null;
  // Large inputs: tokenised by streaming into a token file, read as windows (stream-data.ts)
  const streamed: (TokenFile | null)[] = [];
  for (const [i, spec] of specs.entries()) {
    const refusal = imageData ? "images" : streamRefusal(spec, parsed[i]!.entry, { stream: o.stream ?? false, streamThresholdMb: o.streamThresholdMb ?? STREAM_THRESHOLD_MB_DEFAULT });
    if (refusal !== null && o.stream && !imageData) throw new Error(`--stream: cannot stream this task's text (${refusal})`);
    streamed.push(refusal === null ? (await tokenFileFor(spec.input ?? [], tok, tokenizerPath, { ...(o.tokenizeThreads !== undefined ? { threads: o.tokenizeThreads } : {}), ...(o.onTokenize ? { onProgress: o.onTokenize } : {}), ...(o.log ? { log: o.log } : {}) })).file : null);
  }
  // Data per task: documents -> tokens (cached) -> sequences, and the validation held out.
  const tasks: TrainTask<Example>[] = specs.map((spec, i) => {
    const { entry, weight } = parsed[i]!;
    if (imageData) {
      const objective = entry.create({ padId: sp.pad, masking, perturb, auxiliary, weight, tokenizer: tok, noiseDensity: o.noiseDensity, meanSpanLength: o.meanSpanLength, images: { classes: imageData.classes, config: model.config, maxLength: o.seqLen, seed } });
      o.log?.(`data: ${imageData.note}`);
      return { name: objective.name, objective, train: imageData.train as Example[], validation: imageData.validation as Example[] };
    }
    const file = streamed[i];
    const docs = file ? null : spec.documents ?? readDocuments(spec.input ?? []);
    const corpus = docs ? tokenizeCorpus(docs, tok) : null;
    const ctx = { padId: sp.pad, masking, perturb, auxiliary, weight, tokenizer: tok, noiseDensity: o.noiseDensity, meanSpanLength: o.meanSpanLength };
    // span corruption reads more corpus tokens than --seq-len: its inputs shrink to fit it
    const lengths = entry.sequenceTokens?.(o.seqLen, ctx);
    if (lengths) o.log?.(lengths.note);
    const split = { seqLen: lengths?.tokens ?? o.seqLen, valFraction: o.valFraction, seed };
    const { train, validation, note } = file ? streamTaskData(file, entry, split, sp) : taskData(corpus!, entry, split, sp);
    const objective = entry.create(ctx);
    // a mixture's task is named after its input (moby-dick, mails), or task1, task2, ...
    const fromInput = (spec.input ?? []).map((f) => basename(f).replace(/\.[^.]*$/, "")).join("+");
    const name = spec.name ?? (specs.length === 1 ? objective.name : fromInput && specs.filter((x) => x.input?.join() === spec.input?.join()).length === 1 ? fromInput : `task${i + 1}`);
    o.log?.(`data${specs.length > 1 ? ` (${name})` : ""}: ${file ? file.documents : docs!.length} documents, ${file ? file.tokens : corpus!.ids.length} tokens; ${train.length} training and ${validation.length} validation sequences of up to ${o.seqLen} tokens (${note})`);
    return { name, objective, train, validation };
  });
  // mixing "weights" without a list takes each task's weight (default 1)
  const mixing: Mixing = o.mixing?.kind === "weights" && o.mixing.weights.length === 0 ? { kind: "weights", weights: specs.map((t) => t.weight ?? 1) } : (o.mixing ?? { kind: "proportional" });
  const copy: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt"]) if (existsSync(join(tokenizerPath, f))) copy[f] = join(tokenizerPath, f);
  const trainer = new Trainer({
    model,
    tasks: tasks as TrainTask[],
    mixing,
    batchSize: o.batchSize,
    gradientAccumulation: o.gradientAccumulation,
    maxSteps: o.maxSteps,
    learningRate: o.learningRate,
    weightDecay: o.weightDecay,
    schedule: schedules.linearWarmupDecay(o.warmupSteps, o.maxSteps),
    clipNorm: o.clipNorm,
    precision: o.precision,
    seed,
    out: o.out,
    saveEvery: o.saveEvery,
    keepLast: o.keepLast,
    evalEvery: o.evalEvery,
    evalBatches: o.evalBatches ?? 25,
    ...(o.patience > 0 ? { best: { metric: o.metric ?? "loss", patience: o.patience } } : {}),
    resume: o.resume,
    copy,
    ...(distributed ? { distributed } : {}),
    ...(o.adversarial ? { adversarial: o.adversarial } : {}),
    ...(o.gradientCheckpointing ? { gradientCheckpointing: true } : {}),
    ...(o.groupByLength ? { groupByLength: true } : {}),
    ...(o.onStep ? { onStep: o.onStep } : {}),
    ...(o.onEval ? { onEval: o.onEval } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  if (tasks.length > 1) o.log?.(`mixing (${mixing.kind}): ${tasks.map((t, i) => `${t.name} ${(trainer.rates[i]! * 100).toFixed(1)}%`).join(", ")}`);
  // windows of a token file are read on access: never gathered into one array
  const anyStreamed = streamed.some((f) => f !== null);
  const train = anyStreamed ? [] : tasks.flatMap((t) => t.train);
  const validation = anyStreamed ? (tasks.length === 1 ? (tasks[0]!.validation as Example[]) : []) : tasks.flatMap((t) => t.validation ?? []);
  const unigramPerplexity = imageData || anyStreamed ? NaN : unigram(train, validation, tok.vocabSize);
  if (!imageData && !anyStreamed) o.log?.(`unigram baseline: validation perplexity ${unigramPerplexity.toFixed(1)}`);
  const r = await trainer.trainAsync(); // SIGINT/SIGTERM: a checkpoint, then r.interrupted
  trainer.optimizer.dispose();
  // ELECTRA keeps its discriminator, as the paper does; the generator is discarded
  const keep = pairing ? pairing.keep(model) : model;
  detachAuxiliaryHeads(keep, auxiliary); // the checkpoint holds Hugging Face's tensors only
  if (main) savePretrained(keep, o.out, { copy, mode: "files" }); // beside metrics.jsonl and the checkpoints
  // image objectives: the folder's test images, scored once at the end (zero-shot accuracy for clip)
  let test: Record<string, number> | undefined;
  const objective0 = tasks[0]!.objective;
  if (imageData && imageData.test.length && objective0.evaluate && !r.interrupted) {
    test = objective0.evaluate(keep, imageData.test as Example[], { batchSize: o.batchSize, precision: o.precision }).metrics;
    if (main) writeTextAtomic(join(o.out, "test_metrics.json"), JSON.stringify({ examples: imageData.test.length, ...test }, null, 2) + "\n");
    o.log?.(`test (${imageData.test.length} images): ${Object.entries(test).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", ")}`);
  }
  joined?.group.destroy();
  return { model: keep, tokenizer: tok, evals: r.evals, steps: r.steps, interrupted: r.interrupted, ...(r.signal ? { signal: r.signal } : {}), trainExamples: tasks.reduce((n, t) => n + t.train.length, 0), validationExamples: tasks.reduce((n, t) => n + (t.validation?.length ?? 0), 0), validation, objective: tasks[0]!.objective as Objective<Example>, tasks, rates: trainer.rates, unigramPerplexity, ...(test ? { test } : {}) };
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

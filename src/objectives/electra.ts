// Replaced token detection (ELECTRA, Clark et al. 2020): a small generator fills the masked
// positions by sampling from its masked-LM distribution (no gradient flows through the
// sample); the discriminator labels each token 1 where the sample differs from the original,
// 0 elsewhere (a sample equal to the original counts as original). The loss is the
// generator's MLM loss plus 50 times the discriminator's. The two share the embeddings.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { Module } from "../nn/index.js";
import type { Objective, PretrainedModel, ModelInputs, ModelOutput } from "../models/index.js";
import { electra, summariseSums } from "../models/index.js";
import type { Example } from "../data/pretraining.js";
import { MaskedLM, mlmAccuracy } from "./mlm.js";
import type { PretrainBatch } from "./mlm.js";
import type { MaskingOptions } from "./masking.js";
import type { ObjectiveEntry } from "./registry.js";

/** The generator and the discriminator, trained together; the discriminator is the model kept. */
export class ElectraPair extends Module {
  generator: electra.ElectraForMaskedLM;
  discriminator: electra.ElectraForPreTraining;

  constructor(generator: electra.ElectraForMaskedLM, discriminator: electra.ElectraForPreTraining) {
    super();
    const g = generator.config;
    const d = discriminator.config;
    if (g.embedding_size !== d.embedding_size || g.vocab_size !== d.vocab_size) {
      throw new Error(`ELECTRA: generator and discriminator must share embedding_size and vocab_size (${g.embedding_size}/${g.vocab_size} vs ${d.embedding_size}/${d.vocab_size})`);
    }
    // share the embeddings (token, position and type), as the paper does
    generator.electra.embeddings.dispose();
    generator.electra.embeddings = discriminator.electra.embeddings;
    (generator.generator_lm_head as unknown as { registerParameter(n: string, t: Tensor): Tensor }).registerParameter("weight", discriminator.electra.embeddings.word_embeddings.weight);
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight;
    this.generator = generator;
    this.discriminator = discriminator;
  }

  get config(): PretrainedModel["config"] {
    return this.discriminator.config as PretrainedModel["config"];
  }

  forward(input: ModelInputs): ModelOutput {
    return this.discriminator.forward(input);
  }
}

export class ReplacedTokenDetection implements Objective<Example, PretrainBatch> {
  readonly name = "electra";
  private readonly mlm: MaskedLM;

  constructor(masking: MaskingOptions, padId: number, readonly discriminatorWeight = 50) {
    this.mlm = new MaskedLM(masking, padId);
  }

  batch(examples: readonly Example[], indices: number[], epoch: number): PretrainBatch {
    return this.mlm.batch(examples, indices, epoch);
  }

  /** Replaces the masked positions with generator samples; returns the corrupted ids and the discriminator labels. */
  static corrupt(inputIds: Tensor, labels: Tensor, samples: Tensor): { corrupted: Tensor; replaced: Tensor } {
    const flatLabels = labels.reshape([-1]);
    const positions = flatLabels.ne(-100).nonzero().view([-1]);
    const corrupted = inputIds.reshape([-1]).indexCopy(0, positions, samples).view(inputIds.shape as number[]);
    // the original token at every position: the label where masked, the input elsewhere
    const original = torch.where(labels.ne(-100), labels, inputIds);
    return { corrupted, replaced: corrupted.ne(original).long() };
  }

  loss(model: PretrainedModel, b: PretrainBatch): { loss: Tensor; metrics: Record<string, number> } {
    const pair = model as unknown as ElectraPair;
    if (!(pair.generator instanceof electra.ElectraForMaskedLM)) throw new Error("electra objective: the model must be an ElectraPair (generator + discriminator)");
    const gen = pair.generator.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, labels: b.labels, maskedOnly: true, lastLayerAtLabels: true });
    // sample without gradient through the sample
    const samples = torch.noGrad(() => gen.logits.detach().float().softmax(-1).multinomial(1).view([-1]));
    const { corrupted, replaced } = ReplacedTokenDetection.corrupt(b.inputIds, b.labels, samples);
    const disc = pair.discriminator.forward({ inputIds: corrupted, attentionMask: b.attentionMask, tokenTypeIds: b.tokenTypeIds, labels: replaced });
    const loss = gen.loss!.add(disc.loss!.mul(this.discriminatorWeight));
    const acc = torch.noGrad(() => torch.scope(() => mlmAccuracy(gen.logits, b.labels.reshape([-1]).indexSelect(0, b.labels.reshape([-1]).ne(-100).nonzero().view([-1])))));
    const discRight = torch.noGrad(() => torch.scope(() => disc.logits.gt(0).long().eq(replaced).logicalAnd(b.attentionMask.eq(1)).sum().item()));
    return { loss, metrics: { mlm_correct: acc.correct, mlm_total: acc.total, lm_loss_sum: gen.loss!.item() * acc.total, rtd_correct: discRight, rtd_total: b.attentionMask.sum().item(), generator_loss: gen.loss!.item(), discriminator_loss: disc.loss!.item() } };
  }

  /** Loss, the generator's MLM perplexity and accuracy, the discriminator's accuracy and mean loss. */
  summarise(sums: Record<string, number>): Record<string, number> {
    const out = summariseSums(sums);
    out.perplexity = Math.exp(sums.mlm_total ? sums.lm_loss_sum! / sums.mlm_total : out.loss!);
    if (sums.discriminator_loss !== undefined && sums.batches) out.discriminator_loss = sums.discriminator_loss / sums.batches;
    return out;
  }
}

/** A generator for a discriminator: the same embeddings, a quarter of its width (the paper's 1/4 to 1/2). */
export function generatorFor(discriminator: electra.ElectraForPreTraining): electra.ElectraForMaskedLM {
  const d = discriminator.config;
  const hidden = Math.max(16, d.hidden_size / 4);
  const heads = Math.max(1, Math.floor(d.num_attention_heads / 4));
  return new electra.ElectraForMaskedLM(electra.electraConfig({ ...d, architectures: undefined, hidden_size: hidden, num_attention_heads: hidden % heads === 0 ? heads : 1, intermediate_size: Math.max(64, d.intermediate_size / 4) }));
}

/** electra in the objective registry: it trains a generator beside the discriminator and keeps the discriminator. */
export const objectives: ObjectiveEntry[] = [
  {
    name: "electra",
    summary: "replaced token detection with a generator a quarter of the discriminator's width (ELECTRA)",
    head: "electra-discriminator",
    sequences: "packed",
    needsMask: true,
    // the discriminator's inputs are sampled inside the step, after the embeddings an
    // adversarial perturbation would act on; perturbation would corrupt what the generator restores
    supports: { perturb: false, auxiliary: false, adversarial: false, mixing: false },
    create: (c) => new ReplacedTokenDetection(c.masking, c.padId),
    pair: {
      build(base) {
        if (!(base instanceof electra.ElectraForPreTraining)) throw new Error(`--objectives electra trains an ELECTRA discriminator, not a ${base.constructor.name}`);
        return new ElectraPair(generatorFor(base), base) as unknown as PretrainedModel;
      },
      keep: (model) => (model as unknown as ElectraPair).discriminator as unknown as PretrainedModel,
    },
  },
];

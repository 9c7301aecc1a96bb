// What every explanation starts from: a text encoded as the model reads it (one sequence, its
// special tokens marked, its words), the head the model carries (a class per sequence or per
// token), and forward passes from token ids or from word embeddings (inputsEmbeds), which is
// where gradients are taken.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { architectureOf, wordEmbeddingModule } from "../models/index.js";
import type { PretrainedModel, Task } from "../models/index.js";
import type { Tokenizer } from "../tokenizers/index.js";

/** A text as the model reads it. */
export interface ExplainInput {
  text: string;
  tokens: string[];
  ids: number[];
  typeIds: number[];
  /** true for the tokens the tokenizer added ([CLS], [SEP], <s>, ...). */
  special: boolean[];
  /** The word each token belongs to (the tokenizer's word ids), null for special tokens. */
  wordIds: (number | null)[];
  /** [start, end) of each token in the text (UTF-16 units); [0, 0] for special tokens. */
  offsets: [number, number][];
}

/** The kind of head an attribution explains. */
export type HeadKind = "sequence" | "token";

/** The longest sequence a model takes, from its config (positions), capped at 512. */
export function modelMaxLength(model: PretrainedModel): number {
  const { positions } = architectureOf(model);
  const have = model.config[positions.key];
  if (typeof have !== "number") return 512;
  // the largest n whose needed positions fit (RoBERTa needs n + 2)
  let n = Math.min(512, have);
  while (n > 1 && positions.needed(n) > have) n--;
  return n;
}

/** Encodes one text with the tokenizer's special tokens, truncated to maxLength tokens. */
export function encodeText(tokenizer: Tokenizer, text: string, maxLength: number): ExplainInput {
  if (typeof text !== "string" || text.trim() === "") throw new Error("explain: the text is empty");
  const enc = tokenizer.encode(text, null, { maxLength, truncation: true });
  if (enc.ids.length === 0) throw new Error(`explain: ${JSON.stringify(text)} has no tokens`);
  return {
    text,
    tokens: enc.tokens,
    ids: enc.ids,
    typeIds: enc.typeIds,
    special: enc.specialTokensMask.map((m) => m === 1),
    wordIds: enc.wordIds,
    offsets: enc.offsets,
  };
}

/** The task of a model's class in the architecture registry (null if the class is not registered). */
export function modelTask(model: PretrainedModel): Task | null {
  const hit = Object.values(architectureOf(model).classes).find(([, cls]) => model.constructor === cls);
  return hit ? hit[0] : null;
}

/** The head an attribution can explain; other heads are an error that names the model's. */
export function headKind(model: PretrainedModel): HeadKind {
  const task = modelTask(model);
  if (task === "sequence-classification") return "sequence";
  if (task === "token-classification") return "token";
  throw new Error(`explain: attributions need a sequence or token classification model; ${model.constructor.name} is ${task ?? "not a registered class"}`);
}

/** Label names in class order from config.id2label, else "0", "1", ... */
export function labelNames(model: PretrainedModel, count: number): string[] {
  const id2label = model.config.id2label as Record<string, string> | undefined;
  return Array.from({ length: count }, (_, i) => (id2label && typeof id2label[String(i)] === "string" ? id2label[String(i)]! : String(i)));
}

/** The word embeddings of a text's tokens, (T, E), detached. */
export function wordEmbeddings(model: PretrainedModel, ids: readonly number[]): Tensor {
  const embed = wordEmbeddingModule(model) as unknown as { forward(ids: Tensor): Tensor };
  return torch.noGrad(() => torch.scope(() => embed.forward(torch.tensor([...ids], { dtype: "int64", shape: [1, ids.length] })).squeeze(0).detach()));
}

/**
 * Class logits for n copies of the input with the given word embeddings (n, T, E): (n, K)
 * for a sequence head, (n, T, K) for a token head. The ids go along (positions, token types
 * and GPT-2's last-token pooling read them); the embeddings replace their lookup.
 */
export function logitsFromEmbeddings(model: PretrainedModel, input: ExplainInput, embeds: Tensor): Tensor {
  const [n, T] = embeds.shape as [number, number];
  const ids = torch.tensor(input.ids, { dtype: "int64", shape: [1, T] }).expand([n, T]);
  const types = torch.tensor(input.typeIds, { dtype: "int64", shape: [1, T] }).expand([n, T]);
  return model.forward({ inputIds: ids, inputsEmbeds: embeds, tokenTypeIds: types }).logits;
}

/** Class logits for rows of token ids of equal or unequal length (padded right, masked): (n, K) or (n, T, K). */
export function logitsFromIds(model: PretrainedModel, rows: readonly (readonly number[])[], typeRows: readonly (readonly number[])[], padId: number): Tensor {
  const width = Math.max(...rows.map((r) => r.length));
  const pad = (r: readonly number[], v: number): number[] => [...r, ...new Array<number>(width - r.length).fill(v)];
  const ids = torch.tensor(rows.flatMap((r) => pad(r, padId)), { dtype: "int64", shape: [rows.length, width] });
  const types = torch.tensor(typeRows.flatMap((r) => pad(r, 0)), { dtype: "int64", shape: [rows.length, width] });
  const ragged = rows.some((r) => r.length !== width);
  const mask = ragged ? torch.tensor(rows.flatMap((r) => pad(r.map(() => 1), 0)), { dtype: "int64", shape: [rows.length, width] }) : undefined;
  return model.forward({ inputIds: ids, tokenTypeIds: types, ...(mask ? { attentionMask: mask } : {}) }).logits;
}

/** Runs fn with the model in eval mode (no dropout), restoring its mode afterwards. */
export function inEvalMode<T>(model: PretrainedModel, fn: () => T): T {
  const training = model.training;
  model.eval();
  try {
    return fn();
  } finally {
    if (training) model.train();
  }
}

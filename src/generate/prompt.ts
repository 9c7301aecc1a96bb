// A prompt's token ids for a causal LM, shared by `lmforge generate` and `lmforge serve`.
import type { Tokenizer } from "../tokenizers/index.js";

/**
 * The tokenizer's encoding of text with its special tokens, less the ones it appends at the end
 * ([SEP], </s>), which would tell the model that the text is over; an empty encoding starts from
 * bos. Null when there is neither a token nor a bos id (the caller names its own field).
 */
export function promptIds(tok: Tokenizer, text: string, bos: number | null): number[] | null {
  const e = tok.encode(text);
  let end = e.ids.length;
  while (end > 0 && e.specialTokensMask[end - 1] === 1) end--;
  const ids = e.ids.slice(0, end);
  if (ids.length === 0 && bos !== null) ids.push(bos);
  return ids.length ? ids : null;
}

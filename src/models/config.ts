// Model configs: plain readonly objects that mirror Hugging Face's config.json key for key
// (snake_case kept, so that JSON round-trips). Each model declares its keys with their types
// and defaults; unknown keys and wrong types are rejected before anything is allocated.

export type FieldType = "int" | "number" | "string" | "bool" | "int?" | "number?" | "string?" | "bool?" | "object?" | "array?" | "any";
export type Schema = Record<string, { type: FieldType; default?: unknown }>;

/** Keys every Hugging Face config may carry (PretrainedConfig's own attributes). */
const COMMON_KEYS = new Set([
  "architectures", "model_type", "id2label", "label2id", "num_labels", "problem_type", "torch_dtype", "transformers_version",
  "_name_or_path", "_commit_hash", "return_dict", "output_hidden_states", "output_attentions", "torchscript", "use_bfloat16",
  "tf_legacy_loss", "pruned_heads", "tie_word_embeddings", "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder",
  "cross_attention_hidden_size", "add_cross_attention", "tie_encoder_decoder", "max_length", "min_length", "do_sample",
  "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
  "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
  "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id",
  "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task",
  "tokenizer_class", "prefix", "bos_token_id", "pad_token_id", "eos_token_id", "sep_token_id", "decoder_start_token_id",
  "task_specific_params", "gradient_checkpointing", "use_cache", "output_past", "classifier_dropout", "lmforge",
]);

export class ConfigError extends Error {}

function typeOk(v: unknown, t: FieldType): boolean {
  if (t === "any") return true;
  const optional = t.endsWith("?");
  if (optional && (v === null || v === undefined)) return true;
  const base = optional ? t.slice(0, -1) : t;
  switch (base) {
    case "int":
      return Number.isInteger(v);
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "string":
      return typeof v === "string";
    case "bool":
      return typeof v === "boolean";
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array":
      return Array.isArray(v);
  }
  return false;
}

/** Validates a config object against a schema and fills defaults. `where` names the source in errors. */
export function parseConfig<T>(raw: Record<string, unknown>, schema: Schema, modelType: string, where = "config"): T {
  if (typeof raw !== "object" || raw === null) throw new ConfigError(`${where}: must be a JSON object`);
  if (raw.model_type !== undefined && raw.model_type !== modelType) {
    throw new ConfigError(`${where}: model_type is "${String(raw.model_type)}", expected "${modelType}"`);
  }
  const unknown = Object.keys(raw).filter((k) => !(k in schema) && !COMMON_KEYS.has(k));
  if (unknown.length) throw new ConfigError(`${where}: unknown key${unknown.length > 1 ? "s" : ""} for ${modelType}: ${unknown.join(", ")}`);
  const out: Record<string, unknown> = { model_type: modelType };
  for (const [k, v] of Object.entries(raw)) if (COMMON_KEYS.has(k)) out[k] = v;
  for (const [k, spec] of Object.entries(schema)) {
    const v = k in raw ? raw[k] : spec.default;
    if (v === undefined) throw new ConfigError(`${where}: ${k} is required for ${modelType}`);
    if (!typeOk(v, spec.type)) throw new ConfigError(`${where}: ${k} must be ${spec.type.replace("?", " or null")}, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  for (const k of ["id2label", "label2id"]) {
    if (out[k] !== undefined && !typeOk(out[k], "object?")) throw new ConfigError(`${where}: ${k} must be an object`);
  }
  return out as T;
}

export function requirePositive(where: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) if (!(v > 0)) throw new ConfigError(`${where}: ${k} must be positive, got ${v}`);
}

export function requireDivides(where: string, heads: number, hidden: number, headsKey = "num_attention_heads", hiddenKey = "hidden_size"): void {
  if (hidden % heads !== 0) throw new ConfigError(`${where}: ${hiddenKey} (${hidden}) is not a multiple of ${headsKey} (${heads})`);
}

/** The number of labels a config declares (id2label), or a fallback. */
export function numLabels(config: { id2label?: unknown; num_labels?: unknown }, fallback = 2): number {
  if (config.id2label && typeof config.id2label === "object") return Object.keys(config.id2label).length;
  if (Number.isInteger(config.num_labels)) return config.num_labels as number;
  return fallback;
}

// Common model sizes by name (the published configs' sizes; vocab_size follows the tokenizer).
export const PRESETS: Readonly<Record<string, Record<string, unknown>>> = {
  // Turc et al. 2019, "Well-Read Students Learn Better": the compact BERTs
  "bert-tiny": { model_type: "bert", hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
  "bert-mini": { model_type: "bert", hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
  "bert-small": { model_type: "bert", hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, intermediate_size: 2048 },
  "bert-medium": { model_type: "bert", hidden_size: 512, num_hidden_layers: 8, num_attention_heads: 8, intermediate_size: 2048 },
  "bert-base": { model_type: "bert", hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
  "roberta-base": { model_type: "roberta", hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
  "albert-base": { model_type: "albert", embedding_size: 128, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
  "electra-small": { model_type: "electra", embedding_size: 128, hidden_size: 256, num_hidden_layers: 12, num_attention_heads: 4, intermediate_size: 1024 },
  "electra-small-generator": { model_type: "electra", embedding_size: 128, hidden_size: 64, num_hidden_layers: 12, num_attention_heads: 1, intermediate_size: 256 },
  gpt2: { model_type: "gpt2", n_embd: 768, n_layer: 12, n_head: 12 },
  "gpt2-medium": { model_type: "gpt2", n_embd: 1024, n_layer: 24, n_head: 16 },
};

/** A preset's config keys, with overrides (vocab_size from the tokenizer, typically). */
export function presetConfig(name: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset "${name}"; presets: ${Object.keys(PRESETS).join(", ")}`);
  return { ...p, ...overrides };
}

// model.generate(): the decoding strategies (greedy, sampling, beam search) live in
// src/generate, a layer above the models, which imports them. So that a model's own method can
// reach them without an upward import, src/generate plugs its entry point in here when it is
// loaded (the library's entry, `import "lmforge"`, loads it).
import type { Tensor } from "../torch/index.js";

/** What model.generate() calls: src/generate's generate(model, inputIds, options). */
export type GenerateEngine = (model: never, inputIds: Tensor, options: object) => Tensor;

let engine: GenerateEngine | null = null;

/** Installs the generation strategies (src/generate does, once, when imported). */
export function setGenerateEngine(e: GenerateEngine): void {
  engine = e;
}

/** Runs src/generate's generate() for a model's generate() method. */
export function runGenerate(model: object, inputIds: Tensor, options: object): Tensor {
  if (!engine) {
    throw new Error(`${model.constructor.name}.generate: the generation strategies are not loaded; import "lmforge" (or its generate module, src/generate/index.js) before generating`);
  }
  return engine(model as never, inputIds, options);
}

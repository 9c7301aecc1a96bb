// Text generation for causal LMs: greedy, sampling and beam search over one decoder interface.
// Importing this module also serves model.generate() (src/models/generation.ts).
export { generate, generateOutput } from "./generate.js";
export type { GenerateOutput } from "./generate.js";
export { GENERATE_OPTIONS, resolveGenerateOptions, generationConfig } from "./options.js";
export type { GenerateOptions, ResolvedGenerateOptions } from "./options.js";
export { causalDecoder } from "./decoder.js";
export type { CausalModel, Decoder, CausalDecoderOptions } from "./decoder.js";
export { greedyOrSample } from "./search.js";
export type { SearchResult } from "./search.js";
export { beamSearch, BeamHypotheses } from "./beam.js";
export type { BeamResult } from "./beam.js";
export { processScores, warpScores, repetitionPenalty, bannedNgramTokens, banTokens } from "./processors.js";
export { TextStreamer } from "./stream.js";
export { promptIds } from "./prompt.js";

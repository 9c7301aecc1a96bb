// Interpretability: attention maps and rollout, per-token attributions (gradient × input,
// integrated gradients, occlusion), linear probes per layer, and a self-contained HTML view.
export { explain, gradientTimesInput, integratedGradients, baselineEmbeddings, wordGroups } from "./attributions.js";
export type { Explanation, ExplainOptions, EmbeddingScore, Completeness, Prediction, TokenScores } from "./attributions.js";
export { attentionMaps, attentionRollout, residualAttention } from "./attention.js";
export type { AttentionMaps, Matrix } from "./attention.js";
export { probeLayers } from "./probe.js";
export type { ProbeSentence, ProbeOptions, ProbeResult, ProbeLayer } from "./probe.js";
export { explanationHtml, coloredTokens, escapeHtml, scriptJson, scoreColor } from "./html.js";
export type { ExplainReport } from "./html.js";
export { encodeText, headKind, modelTask, labelNames } from "./inputs.js";
export type { ExplainInput, HeadKind } from "./inputs.js";
export { gaussLegendre, trapezoid, quadrature, INTEGRATION_RULES } from "./quadrature.js";
export type { IntegrationRule, Quadrature } from "./quadrature.js";
export { EXPLAIN_OPTIONS, EXPLAIN_DEFAULTS } from "./options.js";
export type { AttributionMethod, Baseline, Occluder } from "./options.js";

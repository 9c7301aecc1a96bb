export { classificationReport, rocAuc, formatReport } from "./metrics.js";
export type { ClassificationReport, ClassReport } from "./metrics.js";
export { entities, seqevalReport, formatSeqevalReport } from "./seqeval.js";
export type { SeqevalMode, SeqevalOptions, EntitySpan, SeqevalScores, SeqevalReport } from "./seqeval.js";
export { normalizeAnswer, exactMatch, f1Score, squadMetrics, postprocessQa, predictionsById } from "./squad.js";
export type { SquadGold, SquadMetrics, SquadMetricsOptions, QaFeatureOffsets, QaCandidate, QaPrediction, PostprocessOptions } from "./squad.js";

export { embeddedCorpus, EMBEDDED_CORPORA } from "./corpora.js";
export type { CorpusName } from "./corpora.js";
export { readDocuments, splitDocuments } from "./text.js";
export { Rng, epochOrder, splitIndices } from "./random.js";
export { pad2d, paddingMask, countTargets } from "./collate.js";
export { tokenizeCorpus, splitSentences, splitDocs, packedExamples, pairExamples } from "./pretraining.js";
export type { TokenizedCorpus, Example, SpecialIds } from "./pretraining.js";
export { readLabelled, spamAssassin, stratifiedSplit, saveSplit } from "./labelled.js";
export type { LabelledExample, ReadOptions, ReadResult, Splits } from "./labelled.js";

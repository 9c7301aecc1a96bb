// Tokenizers: pure TypeScript, importing nothing else from lmforge.
export { Tokenizer } from "./tokenizer.js";
export type { Encoding, EncodeOptions, TruncationStrategy, AddedToken, TokenizerSpec, PostProcessor, TemplateItem } from "./tokenizer.js";
export { WordPiece, BPE } from "./models.js";
export { trainTokenizer, trainTokenizerFromTexts, learnVocabulary, countWords, TrainError, TOKENIZER_TRAIN_DEFAULTS } from "./trainer.js";
export type { TrainOptions } from "./trainer.js";
export { AutoTokenizer, loadTokenizer, saveTokenizer, tokenizerFromJSON, tokenizerToJSON, tokenizerFromVocabTxt, tokenizerFromVocabMerges, TokenizerFileError } from "./files.js";
export type { ClassicTextOptions } from "./classic.js";
export { Unigram } from "./unigram.js";
export type { UnigramConfig } from "./unigram.js";
export { learnUnigram } from "./unigram-trainer.js";
export type { UnigramTrainOptions } from "./unigram-trainer.js";
export { tokenizationStats, splitWords, extendVocabulary } from "./extend.js";
export type { TokenizationStats, SplitWord, AddedWord } from "./extend.js";

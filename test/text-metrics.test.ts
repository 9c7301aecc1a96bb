// Text-generation metrics against the tools the field uses: sacreBLEU 2.x (BLEU, chrF), Google's
// rouge-score (ROUGE) and NLTK's Porter stemmer. Three kinds of evidence: the tools' own
// documented examples and test cases, small cases worked out by hand, and
// test/fixtures/text-metrics.json, computed by the real tools (scripts/fixtures/text_metrics.py:
// sacreBLEU 2.6.0, rouge-score's source, NLTK 3.8).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { corpusBleu, sentenceBleu, tokenize13a } from "../src/eval/bleu.js";
import type { BleuScore } from "../src/eval/bleu.js";
import { corpusChrf, sentenceChrf } from "../src/eval/chrf.js";
import { porterStem } from "../src/eval/porter.js";
import { corpusRouge, rougeScore, rougeTokenize } from "../src/eval/rouge.js";
import type { RougeScore, RougeType } from "../src/eval/rouge.js";

/** |actual - expected| <= tol, relative to the expected value when it is above 1. */
const close = (actual: number, expected: number, what: string, tol = 1e-9): void =>
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual}, expected ${expected}`);
/** Rounded as the tool prints it: `decimals` places. */
const printed = (actual: number, expected: number, decimals: number, what: string): void =>
  assert.equal(actual.toFixed(decimals), expected.toFixed(decimals), `${what}: ${actual}`);
const prf = (s: RougeScore, p: number, r: number, f: number, what: string): void => {
  close(s.precision, p, `${what} precision`);
  close(s.recall, r, `${what} recall`);
  close(s.fmeasure, f, `${what} fmeasure`);
};

// sacreBLEU's README ("Using SacreBLEU from Python") and test/test_bleu.py
const readmeSys = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
const readmeRefs = [
  ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
  ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
];

// --- BLEU: the tool's own examples ------------------------------------------------------------------

test("sacreBLEU README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)", () => {
  const b = corpusBleu(readmeSys, readmeRefs);
  printed(b.score, 48.53, 2, "score");
  close(b.score, 48.530827, "score (test_bleu.py, to 1e-8)", 1e-8 / 48.530827);
  assert.deepEqual(b.precisions.map((p) => p.toFixed(1)), ["82.4", "50.0", "45.5", "37.5"]);
  assert.deepEqual([b.counts, b.totals], [[14, 7, 5, 3], [17, 14, 11, 8]]);
  printed(b.bp, 0.943, 3, "bp");
  printed(b.sysLen / b.refLen, 0.944, 3, "ratio");
  assert.deepEqual([b.sysLen, b.refLen], [17, 18]);
});

test("sacreBLEU README, variable references: '' or null for a missing one gives BLEU = 29.44 82.4/42.9/27.3/12.5 (BP = 0.889, ref_len = 19)", () => {
  for (const missing of ["", null]) {
    const b = corpusBleu(readmeSys, [[missing, ...readmeRefs[0]!.slice(1)], readmeRefs[1]!]);
    printed(b.score, 29.44, 2, `score with ${JSON.stringify(missing)}`);
    assert.deepEqual(b.precisions.map((p) => p.toFixed(1)), ["82.4", "42.9", "27.3", "12.5"]);
    printed(b.bp, 0.889, 3, "bp");
    assert.deepEqual([b.sysLen, b.refLen], [17, 19]);
  }
});

test("sacreBLEU test_bleu.py: tokenize none 49.1919566, empty hypotheses 0, the n-gram statistics case", () => {
  close(corpusBleu(readmeSys, readmeRefs, { tokenize: "none" }).score, 49.1919566, "tokenize none", 1e-8 / 49.19);
  const empty = corpusBleu(["", "", ""], readmeRefs);
  assert.equal(empty.score, 0);
  assert.deepEqual([empty.sysLen, empty.totals], [0, [0, 0, 0, 0]]);
  const s = corpusBleu(["am I am a character sequence"], [["I am a symbol string sequence a a"]], { tokenize: "none" });
  assert.deepEqual([s.counts, s.totals], [[4, 2, 1, 0], [6, 5, 4, 3]]);
});

test("sacreBLEU test_sentence_bleu.py: sentence BLEU 8.493 (13a) and 7.347 (none) on issue #98's pair; 0 for issue #141's", () => {
  const ref = "producţia de zahăr brut se exprimă în zahăr alb;";
  const sys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  close(sentenceBleu(sys, [ref]).score, 8.493, "13a", 1e-3 / 8.493);
  close(sentenceBleu(sys, [ref], { tokenize: "none" }).score, 7.347, "none", 1e-3 / 7.347);
  assert.equal(sentenceBleu("this is a cat", ["okay thanks"]).score, 0);
});

// --- BLEU: by hand ------------------------------------------------------------------------------------

test("BLEU by hand: clipped counts per order, a zero 4-gram count smoothed to 100 / (2 × total), BP 1", () => {
  // unigrams the×2 cat on mat match (5/6); bigrams "the cat" "on the" "the mat" (3/5); "on the mat" (1/4); no 4-gram (0/3)
  const b = corpusBleu(["the cat sat on the mat"], [["the cat is on the mat"]]);
  assert.deepEqual([b.counts, b.totals, b.sysLen, b.refLen, b.bp], [[5, 3, 1, 0], [6, 5, 4, 3], 6, 6, 1]);
  const p = [500 / 6, 60, 25, 100 / (2 * 3)];
  p.forEach((x, n) => close(b.precisions[n]!, x, `p${n + 1}`));
  close(b.score, Math.pow(p[0]! * p[1]! * p[2]! * p[3]!, 1 / 4), "score");
});

test("BLEU by hand: each further zero order halves again (NIST 'exp' smoothing: 2, 4, 8)", () => {
  // "a x b y c" vs "a b c": unigrams 3/5, no bigram, trigram or 4-gram matches
  const b = corpusBleu(["a x b y c"], [["a b c"]]);
  assert.deepEqual([b.counts, b.totals], [[3, 0, 0, 0], [5, 4, 3, 2]]);
  const p = [60, 100 / (2 * 4), 100 / (4 * 3), 100 / (8 * 2)];
  p.forEach((x, n) => close(b.precisions[n]!, x, `p${n + 1}`));
  close(b.score, Math.pow(p[0]! * p[1]! * p[2]! * p[3]!, 1 / 4), "score");
});

test("BLEU by hand: no match at any order is 0 with precisions 0; a hypothesis too short for 4-grams is 0 at corpus level", () => {
  const none = corpusBleu(["x y z w"], [["a b c d"]]);
  assert.deepEqual([none.score, none.precisions, none.totals], [0, [0, 0, 0, 0], [4, 3, 2, 1]]);
  // no trigram in the hypothesis: the loop stops, precision 0 stays, log(0) floors the score to 0
  const short = corpusBleu(["the cat"], [["the cat sat on the mat"]]);
  assert.deepEqual([short.score, short.counts, short.totals], [0, [2, 1, 0, 0], [2, 1, 0, 0]]);
});

test("BLEU by hand: brevity penalty exp(1 - r/c); sentence BLEU's effective order averages only the orders present", () => {
  const b = corpusBleu(["the cat sat on"], [["the cat sat on the mat"]]);
  close(b.bp, Math.exp(1 - 6 / 4), "bp");
  close(b.score, 100 * Math.exp(-0.5), "score (all precisions 100)");
  // two orders present, both 100: 100 · exp(1 - 6/2)
  const s = sentenceBleu("the cat", ["the cat sat on the mat"]);
  close(s.score, 100 * Math.exp(-2), "sentence");
  assert.equal(sentenceBleu("the cat", ["the cat sat on the mat"], { effectiveOrder: false }).score, 0);
});

test("BLEU by hand: the closest reference length per sentence, ties to the shorter; clipping by the best single reference", () => {
  // hypothesis 4 tokens, references 5 and 3 tokens: both 1 away, the shorter (3) counts, so BP 1
  const tie = corpusBleu(["a b c d"], [["a b c d e"], ["a b c"]]);
  assert.deepEqual([tie.sysLen, tie.refLen, tie.bp], [4, 3, 1]);
  // Papineni et al.'s example: "the" ×7 is clipped to 2 (reference 1 has it twice, lower-cased)
  const hyp = ["the the the the the the the"];
  const refs = [["The cat is on the mat."], ["There is a cat on the mat."]];
  assert.equal(corpusBleu(hyp, refs, { lowercase: true }).counts[0], 2);
  assert.equal(corpusBleu(hyp, refs).counts[0], 1); // case-sensitive by default: "The" is another word
});

test("tokenize13a: symbols split off, periods and commas kept inside numbers, dash after a digit, entities and <skipped>", () => {
  assert.equal(tokenize13a("It wasn't 1,000.5 $-worth."), "It wasn't 1,000.5 $ -worth .");
  assert.equal(tokenize13a("well-known 3-4 (x)"), "well-known 3 - 4 ( x )");
  assert.equal(tokenize13a("a &quot;b&quot; &amp; <skipped>c"), 'a " b " & c');
  assert.equal(tokenize13a("hyphen-\nated\nline"), "hyphenated line");
});

test("corpusBleu refuses misaligned streams and a sentence with no reference", () => {
  assert.throws(() => corpusBleu(["a", "b"], [["a"]]), /references\[0\] has 1 sentences but there are 2 hypotheses/);
  assert.throws(() => corpusBleu(["a"], [[null]]), /sentence 0 has no reference/);
  assert.throws(() => corpusBleu(["a"], [["a"]], { tokenize: "intl" as "none" }), /unknown tokenize "intl"/);
});

// --- chrF ------------------------------------------------------------------------------------------------

test("sacreBLEU README: chrF2 = 59.73; chrF++ of the same", () => {
  printed(corpusChrf(readmeSys, readmeRefs).score, 59.73, 2, "chrF2");
  close(corpusChrf(readmeSys, readmeRefs).score, 59.72751782684763, "chrF2 (sacreBLEU 2.6.0)");
  close(corpusChrf(readmeSys, readmeRefs, { wordOrder: 2 }).score, 59.15310444399262, "chrF2++ (sacreBLEU 2.6.0)");
});

test("sacreBLEU test_chrf.py (beta 3): the default effective-order mode, epsilon smoothing, whitespace kept", () => {
  const b3 = { beta: 3 };
  // effective order: orders where both sides have n-grams are averaged
  close(corpusChrf(["a b c"], [["abc"]], b3).score, 100, "whitespace removed");
  close(corpusChrf(["aa"], [["ab"]], b3).score, 25, "aa/ab");
  close(corpusChrf(["a", "b"], [["a", "c"]], b3).score, 50, "a b / a c");
  assert.equal(corpusChrf([""], [["reference"]], b3).score, 0);
  const eps = { beta: 3, epsSmoothing: true };
  close(corpusChrf(["aa"], [["ab"]], eps).score, 8.3333, "eps aa/ab", 1e-4 / 8.3333);
  const de = ["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."];
  close(corpusChrf([" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "], [de], eps).score, 64.1302698, "eps German", 1e-4 / 64.13);
  close(corpusChrf(["Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich."], [de], { beta: 3, whitespace: true }).score, 67.3481606, "whitespace German", 1e-4 / 67.35);
  // sentence_chrf with eps smoothing and the default beta 2
  close(
    sentenceChrf("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.", ["Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."], { epsSmoothing: true }).score,
    39.14078509,
    "sentence Czech",
    1e-4 / 39.14,
  );
});

test("chrF by hand: 'aa' vs 'ab' at beta 2 averages order 1 (P = R = 1/2) and order 2 (P = R = 0): F = 25", () => {
  close(corpusChrf(["aa"], [["ab"]]).score, 25, "aa/ab");
  // identical strings score 100 whatever the orders that are missing
  close(corpusChrf(["ab"], [["ab"]]).score, 100, "ab/ab");
  // with epsilon smoothing the four empty orders count ~0: (1 + 1 + 4·1e-16) / 6
  close(corpusChrf(["ab"], [["ab"]], { epsSmoothing: true }).score, 100 / 3, "ab/ab eps");
  assert.throws(() => corpusChrf(["a"], [["a"]], { charOrder: 0, wordOrder: 0 }), /at least 1/);
});

// --- ROUGE -----------------------------------------------------------------------------------------------

test("rouge-score README example (use_stemmer=True): rouge1 P 3/4 R 2/3, rouge2 P 2/7 R 1/4, rougeL P 5/8 R 5/9", () => {
  // target tokens: the quick brown fox jump over the lazi dog (9); prediction: the quick brown dog jump on the log (8)
  const s = rougeScore("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.", { stemmer: true });
  prf(s.rouge1, 6 / 8, 6 / 9, (2 * 6) / 17, "rouge1");
  prf(s.rouge2, 2 / 7, 2 / 8, (2 * 2) / 15, "rouge2");
  prf(s.rougeL, 5 / 8, 5 / 9, (2 * 5) / 17, "rougeL");
  prf(s.rougeLsum, 5 / 8, 5 / 9, (2 * 5) / 17, "rougeLsum (one sentence)");
});

test("rouge-score rouge_scorer_test.py: the small cases, the paper's union-LCS example, empty sides", () => {
  const one = (t: string, p: string, type: RougeType): RougeScore => rougeScore(t, p, { types: [type] })[type];
  prf(one("testing one two", "testing", "rouge1"), 1, 1 / 3, 1 / 2, "rouge1");
  prf(one("testing one two", "testing one", "rouge2"), 1, 1 / 2, 2 / 3, "rouge2");
  prf(one("testing one two", "testing one", "rougeL"), 1, 2 / 3, 4 / 5, "rougeL consecutive");
  prf(one("testing one two", "testing two", "rougeL"), 1, 2 / 3, 4 / 5, "rougeL non-consecutive");
  // Lin (2004) §3.2: r = w1..w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5; union LCS w1 w2 w3 w5
  prf(one("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", "rougeLsum"), 0.4, 0.8, (2 * 0.4 * 0.8) / 1.2, "rougeLsum");
  for (const type of ["rouge1", "rouge2", "rougeL", "rougeLsum"] as const) {
    prf(one("testing one two", "", type), 0, 0, 0, `${type} empty prediction`);
    prf(one("", "w1", type), 0, 0, 0, `${type} empty target`);
    prf(one("w1 w2 w3 w4 w5", "/", type), 0, 0, 0, `${type} prediction of symbols only`);
  }
  assert.deepEqual(Object.keys(rougeScore("a", "a", { types: ["rouge9", "rougeL"] })), ["rouge9", "rougeL"]);
  assert.throws(() => rougeScore("a", "a", { types: ["rouge10" as RougeType] }), /unknown ROUGE type "rouge10"/);
});

test("rouge-score rouge_scorer_test.py against ROUGE-1.5.5 (5 places), with and without stemming", () => {
  // rouge/testdata target.txt and prediction.txt (first two lines) and pyrouge_files/*_multi.0.txt
  const targets = [
    "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n",
    "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n",
  ];
  const predictions = [
    "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n",
    "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n",
  ];
  const at5 = (s: RougeScore, r: number, p: number, f: number, what: string): void => {
    printed(s.recall, r, 5, `${what} recall`);
    printed(s.precision, p, 5, `${what} precision`);
    printed(s.fmeasure, f, 5, `${what} fmeasure`);
  };
  const [plain0, plain1] = [0, 1].map((i) => rougeScore(targets[i]!, predictions[i]!));
  const [stem0, stem1] = [0, 1].map((i) => rougeScore(targets[i]!, predictions[i]!, { stemmer: true }));
  at5(plain0!.rouge1, 0.40741, 0.6875, 0.51163, "rouge1 #0");
  at5(plain1!.rouge1, 0.40476, 0.65385, 0.5, "rouge1 #1");
  at5(stem0!.rouge1, 0.40741, 0.6875, 0.51163, "stemmed rouge1 #0");
  at5(stem1!.rouge1, 0.42857, 0.69231, 0.52941, "stemmed rouge1 #1");
  at5(plain0!.rouge2, 0.30769, 0.53333, 0.39024, "rouge2 #0");
  at5(plain1!.rouge2, 0.29268, 0.48, 0.36364, "rouge2 #1");
  at5(stem1!.rouge2, 0.29268, 0.48, 0.36364, "stemmed rouge2 #1");
  at5(plain0!.rougeL, 0.40741, 0.6875, 0.51163, "rougeL #0");
  at5(plain1!.rougeL, 0.40476, 0.65385, 0.5, "rougeL #1");
  const targetMulti =
    targets[0]! + targets[1]! +
    "NhETebUbBk'er WOvoHMTjSRizKgH'vHiing Xu,hWxfs VkNE QhgKiLHE -HidivzoM.dO anhtion jbLQiSGDTCsuhREebUaKM dv J dVN tmbOT\n" +
    "vMR HDm,xOAetion D,tion HJtodT.mHl UIv-p VjWH'BdyWjnfGU-OjT aEMdFICyLWfQMtion wEMfdOKing AwkeKbO 'DxqNOHBH qKtVvm OYJl mM\n";
  const predictionMulti =
    predictions[0]! + predictions[1]! +
    "xfs VkJE QhgKiLHE -HidivzoM.dO anhing jbLQiSGDTCsuhREebUaKM dv J\n" +
    "VjWH'BdyWjnfGU-OjTNaEMdFICyLWfQMing wEMfdOKijg AwkeKbO 'DxqNO\n";
  at5(rougeScore(targetMulti, predictionMulti, { types: ["rougeLsum"], stemmer: true }).rougeLsum, 0.36538, 0.66667, 0.47205, "stemmed rougeLsum");
});

test("ROUGE by hand: clipped unigram counts, LCS, and rougeLsum's guard against counting a token twice", () => {
  assert.deepEqual(rougeTokenize("I don't know, it's 3:45pm!"), ["i", "don", "t", "know", "it", "s", "3", "45pm"]);
  assert.deepEqual(rougeTokenize("Café runs ran", true), ["caf", "run", "ran"]); // "ran" (3 letters) is not stemmed
  // target a×3 b×2, prediction a×3 b×3: overlap 3 + 2; one LCS is a a a b
  const s = rougeScore("A A A B B", "A B A B A B");
  prf(s.rouge1, 5 / 6, 1, (2 * (5 / 6)) / (5 / 6 + 1), "rouge1");
  prf(s.rougeL, 4 / 6, 4 / 5, (2 * (4 / 6) * (4 / 5)) / (4 / 6 + 4 / 5), "rougeL");
  // each target sentence's union LCS is "the cat sat", but the prediction has one copy of each token
  prf(rougeScore("the cat sat.\nthe cat sat.", "the cat sat.", { types: ["rougeLsum"] }).rougeLsum, 1, 0.5, 2 / 3, "rougeLsum");
  // blank lines are not sentences
  prf(rougeScore("a b\n\n\nc d", "c d\na b", { types: ["rougeLsum"] }).rougeLsum, 1, 1, 1, "rougeLsum order");
  prf(rougeScore("a b\n\n\nc d", "c d\na b", { types: ["rougeL"] }).rougeL, 0.5, 0.5, 0.5, "rougeL sees one sequence");
});

test("corpusRouge: the mean F-measure × 100 per type; misaligned or empty input is refused", () => {
  const c = corpusRouge(["a b", "a b"], ["a b", "c d"], { types: ["rouge1", "rouge2"] });
  assert.deepEqual(c, { rouge1: 50, rouge2: 50 });
  assert.throws(() => corpusRouge(["a"], []), /1 targets but 0 predictions/);
  assert.throws(() => corpusRouge([], []), /no examples/);
});

test("Porter (NLTK_EXTENSIONS) by hand: the paper's rules and NLTK's extensions", () => {
  const cases: [string, string][] = [
    ["caresses", "caress"], ["ponies", "poni"], ["ties", "tie"], ["running", "run"], ["hopping", "hop"],
    ["filing", "file"], ["sized", "size"], ["agreed", "agre"], ["feed", "feed"], ["happy", "happi"],
    ["enjoy", "enjoy"], ["relational", "relat"], ["rational", "ration"], ["generously", "gener"],
    ["controll", "control"], ["dying", "die"], ["skies", "sky"], ["biology", "biolog"],
    // the irregular-forms table is looked up before lower-casing, as NLTK does
    ["Skies", "ski"], ["Dying", "dy"], ["RUNNING", "run"], ["at", "at"],
  ];
  for (const [word, stem] of cases) assert.equal(porterStem(word), stem, word);
});

// --- the real tools' values ---------------------------------------------------------------------------

interface FixtureBleu { score: number; counts: number[]; totals: number[]; precisions: number[]; bp: number; sysLen: number; refLen: number }
interface Fixture {
  versions: Record<string, string>;
  sentences: {
    hyp: string; refs: (string | null)[]; bleu: FixtureBleu; bleuNone: number; bleuLowercase: number; sentenceBleu: FixtureBleu;
    chrf: number; chrfPlusPlus: number; chrfEps: number; chrfBeta3Whitespace: number;
  }[];
  corpus: { bleu: FixtureBleu; bleuNone: FixtureBleu; bleuLowercase: FixtureBleu; chrf: number; chrfPlusPlus: number; chrfEps: number; chrfBeta3Whitespace: number };
  tokenize13a: [string, string][];
  rouge: { target: string; prediction: string; plain: Record<string, [number, number, number]>; stemmed: Record<string, [number, number, number]> }[];
  rougeCorpus: { plain: Record<string, number>; stemmed: Record<string, number> };
  porter: [string, string][];
}
const fx = JSON.parse(readFileSync(new URL("../../test/fixtures/text-metrics.json", import.meta.url), "utf8")) as Fixture;

function sameBleu(actual: BleuScore, expected: FixtureBleu, what: string): void {
  assert.deepEqual([actual.counts, actual.totals, actual.sysLen, actual.refLen], [expected.counts, expected.totals, expected.sysLen, expected.refLen], what);
  close(actual.score, expected.score, `${what} score`);
  close(actual.bp, expected.bp, `${what} bp`);
  expected.precisions.forEach((p, n) => close(actual.precisions[n]!, p, `${what} p${n + 1}`));
}

test(`sacreBLEU ${fx.versions.sacrebleu}: tokenize13a on every fixture line`, () => {
  assert.ok(fx.tokenize13a.length >= 40);
  for (const [line, tokens] of fx.tokenize13a) assert.equal(tokenize13a(line), tokens, JSON.stringify(line));
});

test(`sacreBLEU ${fx.versions.sacrebleu}: BLEU and chrF of each of ${fx.sentences.length} fixture pairs (1e-9)`, () => {
  for (const s of fx.sentences) {
    const what = JSON.stringify(s.hyp);
    const col = s.refs.map((r) => [r]);
    sameBleu(corpusBleu([s.hyp], col), s.bleu, `${what} BLEU`);
    close(corpusBleu([s.hyp], col, { tokenize: "none" }).score, s.bleuNone, `${what} BLEU tokenize none`);
    close(corpusBleu([s.hyp], col, { lowercase: true }).score, s.bleuLowercase, `${what} BLEU lowercase`);
    sameBleu(sentenceBleu(s.hyp, s.refs.filter((r): r is string => r !== null)), s.sentenceBleu, `${what} sentence BLEU`);
    close(corpusChrf([s.hyp], col).score, s.chrf, `${what} chrF`);
    close(corpusChrf([s.hyp], col, { wordOrder: 2 }).score, s.chrfPlusPlus, `${what} chrF++`);
    close(corpusChrf([s.hyp], col, { epsSmoothing: true }).score, s.chrfEps, `${what} chrF eps`);
    close(corpusChrf([s.hyp], col, { beta: 3, whitespace: true }).score, s.chrfBeta3Whitespace, `${what} chrF3 whitespace`);
  }
});

test(`sacreBLEU ${fx.versions.sacrebleu}: corpus BLEU and chrF of all fixture pairs, null-padded reference streams`, () => {
  const hyps = fx.sentences.map((s) => s.hyp);
  const k = Math.max(...fx.sentences.map((s) => s.refs.length));
  const refs = Array.from({ length: k }, (_, j) => fx.sentences.map((s) => s.refs[j] ?? null));
  sameBleu(corpusBleu(hyps, refs), fx.corpus.bleu, "corpus BLEU");
  sameBleu(corpusBleu(hyps, refs, { tokenize: "none" }), fx.corpus.bleuNone, "corpus BLEU tokenize none");
  sameBleu(corpusBleu(hyps, refs, { lowercase: true }), fx.corpus.bleuLowercase, "corpus BLEU lowercase");
  close(corpusChrf(hyps, refs).score, fx.corpus.chrf, "corpus chrF");
  close(corpusChrf(hyps, refs, { wordOrder: 2 }).score, fx.corpus.chrfPlusPlus, "corpus chrF++");
  close(corpusChrf(hyps, refs, { epsSmoothing: true }).score, fx.corpus.chrfEps, "corpus chrF eps");
  close(corpusChrf(hyps, refs, { beta: 3, whitespace: true }).score, fx.corpus.chrfBeta3Whitespace, "corpus chrF3 whitespace");
});

test(`rouge-score: rouge1/2/L/Lsum of ${fx.rouge.length} fixture pairs with and without the stemmer, and their corpus means (1e-9)`, () => {
  for (const r of fx.rouge) {
    for (const mode of ["plain", "stemmed"] as const) {
      const s = rougeScore(r.target, r.prediction, { stemmer: mode === "stemmed" });
      for (const [type, [p, rc, f]] of Object.entries(r[mode])) prf(s[type as RougeType], p, rc, f, `${JSON.stringify(r.target)} ${mode} ${type}`);
    }
  }
  for (const mode of ["plain", "stemmed"] as const) {
    const c = corpusRouge(fx.rouge.map((r) => r.target), fx.rouge.map((r) => r.prediction), { stemmer: mode === "stemmed" });
    for (const [type, v] of Object.entries(fx.rougeCorpus[mode])) close(c[type as RougeType], v, `corpus ${mode} ${type}`);
  }
});

test(`NLTK ${fx.versions.nltk} PorterStemmer: ${fx.porter.length} words`, () => {
  const wrong = fx.porter.filter(([w, s]) => porterStem(w) !== s).map(([w, s]) => `${w}: ${porterStem(w)} != ${s}`);
  assert.deepEqual(wrong, []);
});

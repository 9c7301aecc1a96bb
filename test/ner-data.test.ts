// Tagged sentences for NER: the CoNLL-2003 and JSONL readers (every path and every bad-input
// message with file:line), scheme detection, and IOB1 / IOB2 / IOBES conversion both ways.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertTags, detectScheme, readTagged, writeConll } from "../src/data/conll.js";
import type { TagScheme } from "../src/data/conll.js";

const dir = mkdtempSync(join(tmpdir(), "lmforge-ner-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** Writes text to a fresh file (name ending in ext) and returns its path. */
const file = (text: string, ext = ".txt"): string => {
  const path = join(dir, `f${files++}${ext}`);
  writeFileSync(path, text);
  return path;
};
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// The start of CoNLL-2003's eng.train: token, POS, chunk, NER, in IOB1 (B- only between two entities of one type)
const CONLL = [
  "-DOCSTART- -X- -X- O",
  "",
  "EU NNP I-NP I-ORG",
  "rejects VBZ I-VP O",
  "German JJ I-NP I-MISC",
  "call NN I-NP O",
  ". . O O",
  "",
  "Peter NNP I-NP I-PER",
  "Blackburn NNP I-NP I-PER",
  "",
  "-DOCSTART- -X- -X- O",
  "",
  "BRUSSELS NNP I-NP I-LOC",
  "1996-08-22 CD I-NP O",
  "",
];

test("CoNLL-2003: -DOCSTART- skipped, sentences with file:line sources, IOB1 detected and read as IOB2", () => {
  const path = file(CONLL.join("\n"));
  const r = readTagged(path);
  assert.equal(r.scheme, "IOB1");
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.sentences, [
    { tokens: ["EU", "rejects", "German", "call", "."], tags: ["B-ORG", "O", "B-MISC", "O", "O"], source: `${path}:3` },
    { tokens: ["Peter", "Blackburn"], tags: ["B-PER", "I-PER"], source: `${path}:9` },
    { tokens: ["BRUSSELS", "1996-08-22"], tags: ["B-LOC", "O"], source: `${path}:14` },
  ]);
  // the chunk column instead: I-NP I-VP I-NP I-NP O is IOB1 too
  for (const tagColumn of [2, -2]) {
    const chunks = readTagged(path, { tagColumn });
    assert.deepEqual(chunks.sentences[0]!.tags, ["B-NP", "B-VP", "B-NP", "I-NP", "O"]);
    assert.equal(chunks.scheme, "IOB1");
  }
  assert.deepEqual(readTagged(path, { tagColumn: 3 }).sentences, r.sentences);
  // CRLF line ends, tabs between columns, and extra blank lines read the same
  const crlf = file(CONLL.map((l) => l.replace(/ /g, "\t")).join("\r\n") + "\r\n\r\n");
  assert.deepEqual(readTagged(crlf).sentences.map((s) => [s.tokens, s.tags, s.source.slice(crlf.length)]), r.sentences.map((s) => [s.tokens, s.tags, s.source.slice(path.length)]));
  // a file without a trailing newline keeps its last sentence
  assert.equal(readTagged(file("a O\n\nb B-PER")).sentences[1]!.tags[0], "B-PER");
});

test("IOB2 files stay as they are; IOBES files are detected and converted; a declared scheme is used", () => {
  const iob2 = file("John B-PER\nSmith I-PER\nand O\nAnn B-PER\n");
  const r2 = readTagged(iob2);
  assert.equal(r2.scheme, "IOB2");
  assert.deepEqual(r2.sentences[0]!.tags, ["B-PER", "I-PER", "O", "B-PER"]);
  const iobes = file("John B-PER\nSmith E-PER\nand O\nAnn S-PER\nBob S-PER\n");
  const re = readTagged(iobes);
  assert.equal(re.scheme, "IOBES");
  assert.deepEqual(re.sentences[0]!.tags, ["B-PER", "I-PER", "O", "B-PER", "B-PER"]);
  // declared IOB2, an I- after O still begins an entity (read leniently, written canonically)
  const sloppy = file("in O\nParis I-LOC\n");
  assert.deepEqual(readTagged(sloppy, { scheme: "IOB2" }), { sentences: [{ tokens: ["in", "Paris"], tags: ["O", "B-LOC"], source: `${sloppy}:1` }], scheme: "IOB2", skipped: [] });
  assert.throws(() => readTagged(iobes, { scheme: "IOB1" }), new RegExp(`${escape(iobes)}:2: tag "E-PER" is not valid in IOB1 \\(E- and S- belong to IOBES\\)`));
});

test("JSONL: tokens with tags or ner_tags (tag names), blank lines skipped, format by extension or option", () => {
  const path = file('{"tokens":["EU","rejects","German"],"tags":["I-ORG","O","I-MISC"]}\n\n{"tokens":["Peter","Blackburn"],"ner_tags":["I-PER","I-PER"],"id":"7"}\r\n', ".jsonl");
  const r = readTagged(path);
  assert.equal(r.scheme, "IOB1");
  assert.deepEqual(r.sentences, [
    { tokens: ["EU", "rejects", "German"], tags: ["B-ORG", "O", "B-MISC"], source: `${path}:1` },
    { tokens: ["Peter", "Blackburn"], tags: ["B-PER", "I-PER"], source: `${path}:3` },
  ]);
  const asJson = file('{"tokens":["Ann"],"tags":["S-PER"]}\n', ".json");
  assert.deepEqual(readTagged(asJson).sentences[0]!.tags, ["B-PER"]);
  const noExt = file('{"tokens":["Ann"],"tags":["B-PER"]}\n', ".data");
  assert.equal(readTagged(noExt, { format: "jsonl" }).sentences[0]!.tokens[0], "Ann");
  assert.throws(() => readTagged(noExt), /:1: expected at least 2 columns for tag column -1, found 1/); // read as CoNLL
});

test("bad CoNLL lines are errors naming file:line and the reason", () => {
  const few = file("EU NNP B-ORG\nrejects\n");
  assert.throws(() => readTagged(few), new RegExp(`^Error: ${escape(few)}:2: expected at least 2 columns for tag column -1, found 1$`));
  const wide = file("EU NNP I-NP B-ORG\n");
  assert.throws(() => readTagged(wide, { tagColumn: 4 }), new RegExp(`${escape(wide)}:1: expected at least 5 columns for tag column 4, found 4`));
  assert.throws(() => readTagged(wide, { tagColumn: -5 }), new RegExp(`${escape(wide)}:1: expected at least 6 columns for tag column -5, found 4`));
  assert.throws(() => readTagged(wide, { tagColumn: 0 }), /tagColumn must be a non-zero integer \(column 0 is the token\), got 0/);
  for (const [tag, line] of [["B_PER", 3], ["X-LOC", 3], ["B-", 3], ["PER", 3], ["U-PER", 3]] as const) {
    const bad = file(`a O\n\nJohn ${tag}\n`);
    assert.throws(() => readTagged(bad), new RegExp(`${escape(bad)}:${line}: malformed tag "${tag}" \\(expected O, or B-, I-, E- or S- and a type, as in B-PER\\)`));
  }
  assert.throws(() => readTagged(file("")), /: no sentences in the file/);
  assert.throws(() => readTagged(file("-DOCSTART- -X- O\n\n\n")), /: no sentences in the file/);
  assert.throws(() => readTagged(join(dir, "missing.conll")), /missing\.conll: no such file/);
  assert.throws(() => readTagged(wide, { scheme: "BILOU" as TagScheme }), /unknown tag scheme "BILOU"; use IOB1, IOB2, IOBES or auto/);
  assert.throws(() => readTagged(wide, { format: "csv" as "conll" }), /unknown format "csv"; use conll or jsonl/);
});

test("bad JSONL lines are errors naming file:line and the field", () => {
  const cases: [string, RegExp][] = [
    ["{oops", /:1: not valid JSON/],
    ['["a"]', /:1: expected a JSON object with tokens and tags/],
    ['{"words":["a"],"tags":["O"]}', /:1: field "tokens": expected an array of strings/],
    ['{"tokens":["a"],"labels":["O"]}', /:1: field "tags" \(or "ner_tags"\): expected an array of tag strings/],
    ['{"tokens":[],"tags":[]}', /:1: field "tokens": a sentence with no tokens/],
    ['{"tokens":["a",7],"tags":["O","O"]}', /:1: field "tokens"\[1\]: expected a non-empty string, found 7/],
    ['{"tokens":["a","b","c"],"tags":["O","O"]}', /:1: field "tags": 2 tags for 3 tokens/],
    ['{"tokens":["a","b"],"ner_tags":[3,0]}', /:1: field "ner_tags"\[0\]: expected a tag name, found 3 \(map class ids to names first\)/],
    ['{"tokens":["a","b"],"tags":["O","B_PER"]}', /:1: field "tags"\[1\]: malformed tag "B_PER"/],
  ];
  for (const [line, message] of cases) {
    const path = file(`${line}\n`, ".jsonl");
    assert.throws(() => readTagged(path), (e: Error) => e.message.startsWith(`${path}:1: `) && message.test(e.message), line);
  }
  assert.throws(() => readTagged(file('{"tokens":["a"],"tags":["O"]}\n', ".jsonl"), { tagColumn: 2 }), /tagColumn applies to CoNLL files only/);
});

test("skipBadRows skips each sentence holding a bad line and lists where and why", () => {
  const conll = file("a O\nb B-PER\n\nc B_PER\nd O\ne\n\nf I-LOC\n");
  const r = readTagged(conll, { skipBadRows: true });
  assert.deepEqual(r.sentences.map((s) => [s.tokens, s.tags, s.source]), [[["a", "b"], ["O", "B-PER"], `${conll}:1`], [["f"], ["B-LOC"], `${conll}:8`]]);
  assert.equal(r.scheme, "IOB1"); // detected over the sentences kept
  assert.deepEqual(r.skipped, [{ source: `${conll}:4`, reason: 'malformed tag "B_PER" (expected O, or B-, I-, E- or S- and a type, as in B-PER)' }]);
  const jsonl = file('{"tokens":["a"],"tags":["O"]}\n{"tokens":["b"],"tags":[]}\n{bad\n{"tokens":["c"],"tags":["B-ORG"]}\n', ".jsonl");
  const j = readTagged(jsonl, { skipBadRows: true });
  assert.deepEqual(j.sentences.map((s) => s.tokens[0]), ["a", "c"]);
  // (JSON.parse's own words after "not valid JSON" vary with the Node version)
  assert.deepEqual(j.skipped.map((s) => [s.source, s.reason.replace(/ \(.*$/, "")]), [[`${jsonl}:2`, 'field "tags": 0 tags for 1 tokens'], [`${jsonl}:3`, "not valid JSON"]]);
});

test("scheme detection: E-/S- means IOBES; an entity begun by I- means IOB1; else IOB2", () => {
  const cases: [string[][], TagScheme][] = [
    [[["O", "B-PER", "I-PER"], ["B-LOC"]], "IOB2"],
    [[["O", "O"]], "IOB2"],
    [[["B-PER", "I-PER", "B-PER"]], "IOB2"],
    [[["B-PER"], ["O", "I-LOC"]], "IOB1"], // I- after O
    [[["I-LOC", "O"]], "IOB1"], // I- at the start
    [[["B-PER", "I-LOC"]], "IOB1"], // I- after another type
    [[["I-PER"], ["S-LOC"]], "IOBES"],
    [[["B-PER", "E-PER"]], "IOBES"],
  ];
  for (const [sequences, scheme] of cases) assert.equal(detectScheme(sequences), scheme, JSON.stringify(sequences));
});

test("conversion between IOB1, IOB2 and IOBES in all six directions, adjacent same-type entities kept apart", () => {
  // PER PER (adjacent), LOC then ORG (adjacent, different types), ORG ORG (adjacent), a three-token LOC, MISC
  const forms: Record<TagScheme, string[]> = {
    IOB1: ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG", "O", "I-LOC", "I-LOC", "I-LOC", "O", "I-MISC"],
    IOB2: ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-MISC"],
    IOBES: ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG", "B-ORG", "E-ORG", "O", "B-LOC", "I-LOC", "E-LOC", "O", "S-MISC"],
  };
  const schemes = Object.keys(forms) as TagScheme[];
  for (const from of schemes) {
    assert.equal(detectScheme([forms[from]]), from);
    for (const to of schemes) assert.deepEqual(convertTags(forms[from], from, to), forms[to], `${from} -> ${to}`);
  }
  // the docstring's example: two one-token PER entities
  assert.deepEqual(convertTags(["I-PER", "B-PER", "O"], "IOB1", "IOBES"), ["S-PER", "S-PER", "O"]);
});

test("conversion reads loosely formed input as conlleval does, and rejects tags the scheme lacks", () => {
  assert.deepEqual(convertTags(["O", "I-PER", "E-PER"], "IOBES", "IOB2"), ["O", "B-PER", "I-PER"]); // I- after O begins
  assert.deepEqual(convertTags(["E-PER", "E-PER", "I-PER"], "IOBES", "IOB2"), ["B-PER", "B-PER", "B-PER"]); // after E- a new entity
  assert.deepEqual(convertTags(["B-PER", "I-PER"], "IOBES", "IOBES"), ["B-PER", "E-PER"]); // an unclosed entity is closed
  assert.deepEqual(convertTags(["B-PER", "I-LOC"], "IOB2", "IOB2"), ["B-PER", "B-LOC"]);
  assert.deepEqual(convertTags([], "IOB1", "IOBES"), []);
  assert.throws(() => convertTags(["O", "S-PER"], "IOB2", "IOBES"), /convertTags: tag 1: tag "S-PER" is not valid in IOB2/);
  assert.throws(() => convertTags(["B-PER", "b-per"], "IOBES", "IOB2"), /convertTags: tag 1: malformed tag "b-per"/);
});

test("writeConll writes token-tag lines and blank lines atomically; reading them back gives the sentences", () => {
  const path = join(dir, "out.conll");
  const sentences = [
    { tokens: ["EU", "rejects"], tags: ["B-ORG", "O"] },
    { tokens: ["Peter", "Blackburn"], tags: ["B-PER", "I-PER"], source: "x:1" },
  ];
  writeConll(path, sentences);
  assert.equal(readFileSync(path, "utf8"), "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n");
  const back = readTagged(path);
  assert.equal(back.scheme, "IOB2");
  assert.deepEqual(back.sentences, [
    { tokens: ["EU", "rejects"], tags: ["B-ORG", "O"], source: `${path}:1` },
    { tokens: ["Peter", "Blackburn"], tags: ["B-PER", "I-PER"], source: `${path}:4` },
  ]);
  assert.throws(() => writeConll(path, [{ tokens: ["New York"], tags: ["B-LOC"], source: "in.jsonl:3" }]), /writeConll: sentence 0 \(in\.jsonl:3\): token 0 "New York" is empty or holds whitespace/);
  assert.throws(() => writeConll(path, [sentences[0]!, { tokens: ["a", "b"], tags: ["O"] }]), /writeConll: sentence 1: 1 tags for 2 tokens/);
  assert.throws(() => writeConll(path, [{ tokens: ["a"], tags: ["B_PER"] }]), /sentence 0: token 0: malformed tag "B_PER"/);
  assert.throws(() => writeConll(path, [{ tokens: [], tags: [] }]), /sentence 0: a sentence with no tokens/);
  assert.throws(() => writeConll(path, [{ tokens: ["-DOCSTART-"], tags: ["O"] }]), /token 0 is "-DOCSTART-", which CoNLL readers take for a document marker/);
  assert.equal(readFileSync(path, "utf8"), "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n"); // failed writes leave it alone
});

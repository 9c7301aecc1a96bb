// The silver corpora: NER tags on real State of the Union sentences (hand-checked ones quoted from
// the corpus), the split by address, the memorisation baseline; the Debian QA sample's SQuAD
// invariants, and the description patterns on hand-written Translation-en records.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { lookupBaseline, sentencesOf, silverTags, sotuNer, wordTokens } from "../src/data/silver-ner.js";
import type { TaggedSentence } from "../src/data/silver-ner.js";
import { debianQa, extractQuestions, findTranslationFile, joinLongDescription, parseDescriptions, squadFromDescriptions } from "../src/data/silver-qa.js";
import type { DebianDescription, SquadDataset } from "../src/data/silver-qa.js";
import { tempDir } from "./helpers.js";

const dir = await tempDir();

/** The entities of one IOB2 sequence as "tokens/TYPE" strings, in order. */
function entities(tokens: string[], tags: string[]): string[] {
  const out: string[] = [];
  tags.forEach((tag, i) => {
    if (!tag.startsWith("B-")) return;
    let end = i + 1;
    while (tags[end] === `I-${tag.slice(2)}`) end++;
    out.push(`${tokens.slice(i, end).join(" ")}/${tag.slice(2)}`);
  });
  return out;
}

// ---- NER -----------------------------------------------------------------------------------------

const ner = sotuNer({ entityFraction: 1 });
const allSentences = [...ner.train, ...ner.validation, ...ner.test];

function corpusSentence(text: string): TaggedSentence {
  const tokens = wordTokens(text);
  const found = allSentences.find((s) => s.tokens.length === tokens.length && s.tokens.every((w, i) => w === tokens[i]));
  assert.ok(found, `not a sentence of the corpus: ${text}`);
  return found;
}

test("tokens: possessive clitic apart, abbreviations and initials whole, sentences not cut at Mr.", () => {
  assert.deepEqual(wordTokens("Abraham Lincoln's-\"Let us"), ["Abraham", "Lincoln", "'s", "-", '"', "Let", "us"]);
  assert.deepEqual(wordTokens("Mr. Van Buren paid $1,228,326.50 on the 4th, to Ulysses S. Grant."), ["Mr.", "Van", "Buren", "paid", "$", "1,228,326.50", "on", "the", "4th", ",", "to", "Ulysses", "S.", "Grant", "."]);
  const sentences = sentencesOf(wordTokens("Mr. Smith went to Washington. He met the U.S. envoy there! Then \"it ended.\" 1861 came."));
  assert.deepEqual(sentences.map((s) => s.join(" ")), ["Mr. Smith went to Washington .", "He met the U.S. envoy there !", 'Then " it ended . "', "1861 came ."]);
});

test("known entities in hand-picked State of the Union sentences", () => {
  const cases: [string, string[]][] = [
    ["It is well known, also, that the people of Texas at the polls have accepted the terms of annexation and ratified the constitution.", ["Texas/LOC"]],
    ["Corpus Christi was the position selected by General Taylor.", ["Corpus Christi/LOC", "Taylor/PER"]],
    ["The act of May 12, 1820 provides that the system of tactics and regulations of the various corps of the Regular Army shall be extended to the militia.", ["May 12 , 1820/DATE"]],
    // Washington: a president after a title, the capital alone
    ["President Washington and the first President Adams in the performance of their duties to the American people fell under the animadversions of the French Directory.", ["Washington/PER", "Adams/PER"]],
    ["This unity ties together, and it towers over all our efforts here in Washington, and it serves as an inspiring beacon for all of us who are elected to serve.", ["Washington/LOC"]],
    // May: a modal verb without a day or a year
    ["May God bless America.", ["America/LOC"]],
    ["Additional information will also be furnished by the report of the Secretary of the Treasury, in reply to a call made upon that officer by the House of Representatives at the last session requiring detailed information on the subject of defaults by public officers or agents under each Administration from 1789 to 1837.", ["1789/DATE", "1837/DATE"]],
    ["In the budget I will present to you, we will try to do more to speed the deportation of illegal aliens who are arrested for crimes, to better identify illegal aliens in the workplace as recommended by the commission headed by former Congresswoman Barbara Jordan.", ["Barbara Jordan/PER"]],
    ["But it is a contest just as important for this country and for all men, as the desperate struggle that George Washington fought through to victory.", ["George Washington/PER"]],
  ];
  for (const [text, expected] of cases) {
    const s = corpusSentence(text);
    assert.deepEqual(entities(s.tokens, s.tags), expected, s.source);
  }
  const lincoln = allSentences.find((s) => s.source === "sotu:1920 Woodrow Wilson:0")!;
  const at = lincoln.tokens.indexOf("Abraham");
  assert.deepEqual(lincoln.tags.slice(at, at + 3), ["B-PER", "I-PER", "O"]); // Abraham Lincoln 's
  assert.deepEqual(lincoln.tokens.slice(at, at + 3), ["Abraham", "Lincoln", "'s"]);
  assert.deepEqual(silverTags(wordTokens("Troops may march in March 1862 and in May, but not on May 4.")), ["O", "O", "O", "O", "B-DATE", "I-DATE", "O", "O", "O", "O", "O", "O", "O", "B-DATE", "I-DATE", "O"]);
});

test("tags are valid IOB2 and no entity starts or runs past a sentence edge", () => {
  const types = new Set(["PER", "LOC", "DATE"]);
  for (const s of allSentences) {
    assert.equal(s.tags.length, s.tokens.length, s.source);
    s.tags.forEach((tag, i) => {
      if (tag === "O") return;
      const [bio, type] = [tag.slice(0, 2), tag.slice(2)];
      assert.ok((bio === "B-" || bio === "I-") && types.has(type), `${s.source}: bad tag ${tag}`);
      if (bio === "I-") assert.ok(i > 0 && s.tags[i - 1]!.slice(2) === type && s.tags[i - 1] !== "O", `${s.source}:${i}: ${tag} after ${s.tags[i - 1]}`);
    });
    assert.ok([".", "!", "?"].includes(s.tokens[s.tokens.length - 1]!) ? s.tags[s.tags.length - 1] === "O" : true, `${s.source}: an entity ends on the full stop`);
  }
});

test("the split holds out whole addresses, is seeded, and honours maxSentences and entityFraction", () => {
  const { documents } = ner;
  assert.deepEqual([documents.train.length, documents.validation.length, documents.test.length], [187, 23, 23]);
  const all = [...documents.train, ...documents.validation, ...documents.test];
  assert.equal(new Set(all).size, 233);
  for (const name of ["train", "validation", "test"] as const) {
    const ids = new Set(documents[name]);
    for (const s of ner[name]) assert.ok(ids.has(s.source.split(":")[1]!), `${s.source} is not in ${name}'s addresses`);
  }
  assert.ok(allSentences.every((s) => s.tags.some((t) => t !== "O")));

  const a = sotuNer({ seed: 5, maxSentences: 3000, entityFraction: 0.5 });
  const b = sotuNer({ seed: 5, maxSentences: 3000, entityFraction: 0.5 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(sotuNer({ seed: 6 }).documents.test, a.documents.test);
  const kept = [...a.train, ...a.validation, ...a.test];
  assert.ok(kept.length <= 3000 && kept.length >= 2990, `${kept.length} sentences`);
  const share = kept.filter((s) => s.tags.some((t) => t !== "O")).length / kept.length;
  assert.ok(Math.abs(share - 0.5) < 0.03, `entity share ${share}`);
});

test("lookupBaseline tags what training saw, longest match first, most frequent type", () => {
  const s = (text: string, tags: string): TaggedSentence => ({ tokens: text.split(" "), tags: tags.split(" "), source: "hand" });
  const train = [
    s("President Lincoln went to New York .", "O B-PER O O B-LOC I-LOC O"),
    s("in Lincoln , Nebraska", "O B-LOC O B-LOC"),
    s("Lincoln , Nebraska", "B-LOC O B-PER"),
    s("New Deal", "B-MISC O"),
  ];
  const test = [s("Lincoln left New York for York and Nebraska .", "O O O O O O O O O")];
  // Lincoln: LOC twice, PER once; "New York" beats "New"; Nebraska: LOC once, PER once → LOC (first by name)
  assert.deepEqual(lookupBaseline(train, test), [["B-LOC", "O", "B-LOC", "I-LOC", "O", "O", "O", "B-LOC", "O"]]);
  assert.deepEqual(lookupBaseline([], test), [test[0]!.tags]);
});

// ---- QA --------------------------------------------------------------------------------------------

interface Sample extends SquadDataset {
  splits: Record<"train" | "validation" | "test", string[]>;
}
const sample = JSON.parse(readFileSync("test/fixtures/silver/debian-qa-sample.json", "utf8")) as Sample;

function questions(d: SquadDataset): { context: string; title: string; q: SquadDataset["data"][number]["paragraphs"][number]["qas"][number] }[] {
  return d.data.flatMap((a) => a.paragraphs.flatMap((p) => p.qas.map((q) => ({ context: p.context, title: a.title, q }))));
}

test("the Debian QA sample: answers are the context at answer_start, unanswerable ones are empty", () => {
  assert.equal(sample.version, "v2.0");
  const qs = questions(sample);
  assert.ok(qs.length >= 250 && qs.length <= 320, `${qs.length} questions`);
  const impossible = qs.filter((x) => x.q.is_impossible);
  assert.ok(impossible.length >= 40 && impossible.length <= qs.length / 2, `${impossible.length} unanswerable`);
  assert.equal(new Set(qs.map((x) => x.q.id)).size, qs.length);
  for (const { context, q } of qs) {
    if (q.is_impossible) {
      assert.deepEqual(q.answers, [], q.id);
      continue;
    }
    assert.equal(q.answers.length, 1, q.id);
    const { text, answer_start } = q.answers[0]!;
    assert.ok(text.length > 0 && context.slice(answer_start, answer_start + text.length) === text, `${q.id}: "${text}" is not at ${answer_start}`);
  }
  // never asked unanswerable where the context names a language, or the Name asked about
  for (const { context, q } of impossible) {
    if (q.id.endsWith("/language/unanswerable")) assert.ok(!/written|implemented|Python|Perl|Java|C\+\+|\bC\b/.test(context), q.id);
    if (q.id.endsWith("/definition/unanswerable")) assert.ok(!context.toLowerCase().includes(q.question.slice(8, -1).toLowerCase()), q.id);
  }
});

test("the Debian QA sample's splits are disjoint by package", () => {
  const { train, validation, test: held } = sample.splits;
  const all = [...train, ...validation, ...held];
  assert.equal(new Set(all).size, all.length);
  assert.deepEqual(new Set(all), new Set(sample.data.map((a) => a.title)));
  assert.ok(validation.length > 0 && held.length > 0 && train.length > 5 * held.length);
});

const RECORDS = `Package: foo-tools
Description-md5: 0123456789abcdef0123456789abcdef
Description-en: tools for foo files
 Foo is a small utility that converts bar files. It is written in
 Rust.
 .
 It supports JSON, YAML and TOML and runs anywhere.
 .
 This package contains the command-line tools.

Package: libbaz1
Description-md5: fedcba9876543210fedcba9876543210
Description-en: baz image library
 Baz is an image decoding library, which is fast.
 .
 This package provides the shared library for baz. It is based on
 libpng and uses zlib.
  * decodes PNG
  * decodes JPEG

Package: libbaz1
Description-md5: 00000000000000000000000000000000
Description-en: an older version's description
 Ignored: the first record of a package wins.
`;

test("the description patterns on hand-written Translation-en records", () => {
  const [foo, baz, ...rest] = parseDescriptions(RECORDS, "hand");
  assert.equal(rest.length, 0);
  assert.deepEqual(foo, {
    package: "foo-tools",
    short: "tools for foo files",
    context: "Foo is a small utility that converts bar files. It is written in Rust.\nIt supports JSON, YAML and TOML and runs anywhere.\nThis package contains the command-line tools.",
    source: "hand:1",
  });
  assert.equal(baz!.context, "Baz is an image decoding library, which is fast.\nThis package provides the shared library for baz. It is based on libpng and uses zlib.\n* decodes PNG\n* decodes JPEG");
  assert.equal(joinLongDescription(["a", "b", ".", "c"]), "a b\nc");

  const qa = (d: DebianDescription): string[] => {
    const r = extractQuestions(d);
    return [...r.answerable.map((q) => `${q.question} ${q.answers[0]!.text} @${q.answers[0]!.answer_start}`), ...r.unanswerable.map((n) => `unanswerable ${n}`)];
  };
  assert.deepEqual(qa(foo!), [
    "What does the foo-tools package contain? the command-line tools @144",
    "What does foo-tools support? JSON, YAML and TOML @83",
    "What programming language is foo-tools written in? Rust @65",
    "What is Foo? a small utility @7",
    "unanswerable based-on",
  ]);
  assert.deepEqual(qa(baz!), [
    "What does the libbaz1 package provide? the shared library for baz @71",
    "What is libbaz1 based on? libpng @114",
    "What is Baz? an image decoding library @7",
    "unanswerable supports",
    "unanswerable language",
  ]);
  assert.throws(() => parseDescriptions("Description-en: orphan\n", "bad"), /bad:1: Description-en before any Package: field/);
});

test("debianQa reads plain, gzip and lz4 files alike, and says how to fetch a missing one", (t) => {
  const plain = join(dir, "x_main_i18n_Translation-en");
  writeFileSync(plain, RECORDS);
  writeFileSync(`${plain}.gz`, gzipSync(RECORDS));
  const expected = debianQa({ file: plain });
  assert.deepEqual(debianQa({ file: `${plain}.gz` }), expected);
  assert.equal(questions(expected.train).length + questions(expected.validation).length + questions(expected.test).length, 9);
  assert.equal(findTranslationFile(dir), plain); // the largest index
  assert.equal(findTranslationFile(join(dir, "nowhere")), null);
  assert.throws(() => debianQa({ file: join(dir, "missing") }), /apt-get update -o Acquire::Languages=en/);
  if (spawnSync("lz4", ["--version"]).error) {
    t.diagnostic("lz4 command not found: the .lz4 path is not checked");
    return;
  }
  assert.equal(spawnSync("lz4", ["-q", "-f", plain, `${plain}.lz4`]).status, 0);
  assert.deepEqual(debianQa({ file: `${plain}.lz4` }), expected);
});

test("squadFromDescriptions splits by package family, seeded, unanswerable no more than answerable per kind", () => {
  // 40 projects of three packages each (foo-N, foo-N-doc, foo-N-dev) sharing their first paragraph;
  // the even ones say their language
  const descriptions: DebianDescription[] = [];
  for (let n = 0; n < 40; n++) {
    for (const suffix of ["", "-doc", "-dev"]) {
      const language = n % 2 === 0 ? " It is written in Go." : "";
      const context = `Proj${n} is a tool number ${n}, which does things.${language}\nThis package contains part ${suffix || "main"} of proj${n}.`;
      descriptions.push({ package: `foo-${n}${suffix}`, short: "", context, source: `hand:${n}` });
    }
  }
  const a = squadFromDescriptions(descriptions, { seed: 1 });
  assert.deepEqual(squadFromDescriptions(descriptions, { seed: 1 }), a);
  const titles = (d: SquadDataset): string[] => d.data.map((x) => x.title);
  const family = (t: string): string => t.replace(/-(doc|dev)$/, "");
  const [train, validation, held] = [titles(a.train), titles(a.validation), titles(a.test)];
  assert.deepEqual([train.length, validation.length, held.length], [96, 12, 12]); // 32, 4 and 4 families of three
  for (const [x, y] of [[train, validation], [train, held], [validation, held]] as const) assert.ok(!x.some((t) => y.map(family).includes(family(t))));
  // answerable: contains and definition for all 120 packages, language for the 60 even ones;
  // unanswerable: only language can be (every package defines its Name; no other kind is
  // answerable anywhere), asked of odd packages, in each split no more often than answered
  for (const split of [a.train, a.validation, a.test]) {
    const qs = questions(split);
    const answered = qs.filter((x) => x.q.id.endsWith("/language")).length;
    const impossible = qs.filter((x) => x.q.is_impossible);
    assert.ok(impossible.every((x) => x.q.id.endsWith("/language/unanswerable") && Number(x.title.split("-")[1]) % 2 === 1));
    assert.ok(impossible.length <= answered, `${impossible.length} unanswerable, ${answered} answered`);
  }
  const all = [a.train, a.validation, a.test].flatMap(questions);
  assert.equal(all.filter((x) => !x.q.is_impossible).length, 300);
  assert.ok(all.some((x) => x.q.is_impossible));
  const capped = squadFromDescriptions(descriptions, { seed: 1, maxExamples: 50 });
  assert.ok([capped.train, capped.validation, capped.test].flatMap(questions).length <= 50);
});

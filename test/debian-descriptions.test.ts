// The Debian description corpora: Translation records parsed (continuation lines, " ." paragraphs,
// list lines, Chinese wraps), the md5 Debian gives checked on real records (0ad-data, cowsay, as
// the bookworm indexes hold them), English-German pairs by md5, the package-family keys, splits
// that no family straddles, the files written, and the error that says how to fetch a missing index.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { descriptionMd5, joinLongDescription, parseTranslation, translationFiles } from "../src/data/debian.js";
import { buildDebianCorpus, familyKey, parseSplit, writeDebianDescriptions } from "../src/data/debian-descriptions.js";
import type { DebianCorpus, SplitName, SummarizationExample, TranslationExample } from "../src/data/debian-descriptions.js";
import type { TranslationRecord } from "../src/data/debian.js";
import { dataCommand } from "../src/cli/data.js";
import { UsageError } from "../src/cli/errors.js";

const dir = mkdtempSync(join(tmpdir(), "lmforge-debian-")); // not helpers.js' tempDir: it loads the native engine
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// bookworm's Translation-en: two real records (their md5s are Debian's), and hand-written ones
// with made-up md5s
const EN_MAIN = `Package: 0ad-data
Description-md5: 26581e685027d5ae84824362a4ba59ee
Description-en: Real-time strategy game of ancient warfare (data files)
 0 A.D. (pronounced "zero ey-dee") is a free, open-source, cross-platform
 real-time strategy (RTS) game of ancient warfare. In short, it is a
 historically-based war/economy game that allows players to relive or rewrite
 the history of Western civilizations, focusing on the years between 500 B.C.
 and 500 A.D. The project is highly ambitious, involving state-of-the-art 3D
 graphics, detailed artwork, sound, and a flexible and powerful custom-built
 game engine.
 .
 This package contains the main data files required by 0 A.D.

Package: cowsay
Description-md5: c312f9ae79aed8150f991fcfa3df1a03
Description-en: configurable talking cow
 Cowsay (or cowthink) will turn text into happy ASCII cows, with
 speech (or thought) balloons. If you don't like cows, ASCII art is
 available to replace it with some other creatures (Tux, the BSD
 daemon, dragons, and a plethora of animals, from a turkey to
 an elephant in a snake).

Package: libfoo1
Description-md5: 11111111111111111111111111111111
Description-en: foo shared library
 Foo turns bar files into baz files, quickly and
 with little memory.
 .
 This package contains the shared library:
  * libfoo.so.1
  * its plugins

Package: foo-doc
Description-md5: 22222222222222222222222222222222
Description-en: foo documentation
 Foo turns bar files into baz files, quickly and
 with little memory.
 .
 This package contains the manual.

Package: tiny
Description-md5: 33333333333333333333333333333333
Description-en: a tiny package
 Too short to summarise.
`;

// bookworm-updates: cowsay again (same md5: one description) and a new package
const EN_UPDATES = `Package: cowsay
Description-md5: c312f9ae79aed8150f991fcfa3df1a03
Description-en: configurable talking cow
 Cowsay (or cowthink) will turn text into happy ASCII cows, with
 speech (or thought) balloons. If you don't like cows, ASCII art is
 available to replace it with some other creatures (Tux, the BSD
 daemon, dragons, and a plethora of animals, from a turkey to
 an elephant in a snake).

Package: bar-utils
Description-md5: 44444444444444444444444444444444
Description-en: utilities for bar
 Bar utilities convert, check and print bar files on the command line.
`;

// bookworm's Translation-de: the real German records, and one for a description no longer in English
const DE_MAIN = `Package: 0ad-data
Description-md5: 26581e685027d5ae84824362a4ba59ee
Description-de: Echtzeit-Strategiespiel über antike Kriegsführung (Datendateien)
 0 A.D. ist ein freies, quelloffenes, plattformübergreifendes
 Echtzeit-Strategiespiel (RTS) über antike Kriegsführung. In Kürze: es ist
 ein Kriegs-/Wirtschaftsspiel, in dem Spieler die Geschichte westlicher
 Zivilisationen zwischen 500 vor Christus und 500 nach Christus nacherleben
 oder neu schreiben können. Das Projekt ist sehr ambitioniert, verfügt über
 aktuelle 3D-Grafiken, detailliertes Artwork, Sound sowie eine flexible und
 leistungsfähige selbst erstellte Spielengine.
 .
 Dieses Paket enthält die wichtigsten von 0 A.D. benötigten Datendateien.

Package: cowsay
Description-md5: c312f9ae79aed8150f991fcfa3df1a03
Description-de: Konfigurierbare sprechende Kuh
 Cowsay (und Cowthink) verwandelt Text in glückliche ASCII-Kühe mit Sprech-
 (oder Denk-)blasen. Wenn Sie keine Kühe mögen, gibt es weitere
 ASCII-Art-Bilder, die statt der Kühe angezeigt werden können (Tux, der
 BSD-Daemon, Drachen und eine Unmenge an Tieren, vom Truthahn bis zum
 Elefanten in einer Schlange).

Package: gone
Description-md5: ffffffffffffffffffffffffffffffff
Description-de: ein altes Paket
`;

const COWSAY_EN = "Cowsay (or cowthink) will turn text into happy ASCII cows, with speech (or thought) balloons. If you don't like cows, ASCII art is available to replace it with some other creatures (Tux, the BSD daemon, dragons, and a plethora of animals, from a turkey to an elephant in a snake).";
const COWSAY_DE = "Cowsay (und Cowthink) verwandelt Text in glückliche ASCII-Kühe mit Sprech- (oder Denk-)blasen. Wenn Sie keine Kühe mögen, gibt es weitere ASCII-Art-Bilder, die statt der Kühe angezeigt werden können (Tux, der BSD-Daemon, Drachen und eine Unmenge an Tieren, vom Truthahn bis zum Elefanten in einer Schlange).";

const haveLz4 = !spawnSync("lz4", ["--version"]).error;

/** A lists folder like apt's: en plain (two archives), de lz4-compressed (or plain without the lz4 command). */
function listsDir(name: string, withGerman: boolean): string {
  const lists = join(dir, name);
  mkdirSync(lists, { recursive: true });
  writeFileSync(join(lists, "deb.example_debian_dists_bookworm_main_i18n_Translation-en"), EN_MAIN);
  writeFileSync(join(lists, "deb.example_debian_dists_bookworm-updates_main_i18n_Translation-en"), EN_UPDATES);
  writeFileSync(join(lists, "deb.example_debian_dists_bookworm_InRelease"), "Origin: Debian\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n");
  if (withGerman) {
    const de = join(lists, "deb.example_debian_dists_bookworm_main_i18n_Translation-de");
    writeFileSync(de, DE_MAIN);
    if (haveLz4) {
      assert.equal(spawnSync("lz4", ["-q", "-f", "--rm", de, `${de}.lz4`]).status, 0);
      assert.ok(!existsSync(de));
    }
  }
  return lists;
}

test("records: continuation lines joined, ' .' breaks paragraphs, indented lines kept as list lines; Debian's md5 checks out", () => {
  const records = parseTranslation(EN_MAIN, "en");
  assert.deepEqual(records.map((r) => [r.package, r.md5Matches, r.source]), [
    ["0ad-data", true, "en:1"],
    ["cowsay", true, "en:14"],
    ["libfoo1", false, "en:23"],
    ["foo-doc", false, "en:33"],
    ["tiny", false, "en:41"],
  ]);
  const foo = records[2]!;
  assert.deepEqual(foo.lines, ["Foo turns bar files into baz files, quickly and", "with little memory.", ".", "This package contains the shared library:", " * libfoo.so.1", " * its plugins"]);
  assert.equal(joinLongDescription(foo.lines), "Foo turns bar files into baz files, quickly and with little memory.\nThis package contains the shared library:\n* libfoo.so.1\n* its plugins");
  assert.equal(joinLongDescription(records[1]!.lines), COWSAY_EN);
  // Debian's md5: "<synopsis>\n" and each line with its space and "\n" (md5sum of the same bytes)
  assert.equal(descriptionMd5("a tiny package", ["Too short to summarise."]), "89678e78345889261190ec18ed290d18");
  const de = parseTranslation(DE_MAIN, "de");
  assert.deepEqual(de.map((r) => [r.package, r.language, r.md5, r.md5Matches, r.short]), [
    ["0ad-data", "de", "26581e685027d5ae84824362a4ba59ee", null, "Echtzeit-Strategiespiel über antike Kriegsführung (Datendateien)"],
    ["cowsay", "de", "c312f9ae79aed8150f991fcfa3df1a03", null, "Konfigurierbare sprechende Kuh"],
    ["gone", "de", "ffffffffffffffffffffffffffffffff", null, "ein altes Paket"],
  ]);
  assert.equal(joinLongDescription(de[1]!.lines, "de"), COWSAY_DE);
  assert.throws(() => parseTranslation("Description-de: orphan\n", "bad"), /bad:1: Description-de before any Package: field/);
});

test("Chinese wraps: no space between CJK characters or by full-width punctuation, one between CJK and Latin", () => {
  const lines = ["是一个自由、开源、跨平台的", "古代战争游戏，使用", "Samba 共享", "文件夹，支持", "GTK，", "Qt and", "more"];
  assert.equal(joinLongDescription(lines, "zh_CN"), "是一个自由、开源、跨平台的古代战争游戏，使用 Samba 共享文件夹，支持 GTK，Qt and more");
  assert.equal(joinLongDescription(["共享", "文件夹"], "en"), "共享 文件夹"); // English text keeps its spaces
});

test("family keys: a project's packages share one", () => {
  const table: [string, string][] = [
    ["foo", "foo"], ["foo-doc", "foo"], ["libfoo1", "foo"], ["libfoo-dev", "foo"], ["python3-foo", "foo"], ["foo-data", "foo"],
    ["libfoo-1.0-0", "foo"], ["libfoo1t64", "foo"], ["foo-common", "foo"], ["foo-utils", "foo"], ["foo-dbg", "foo"], ["foo-bin", "foo"],
    ["libgtk-3-0", "gtk"], ["gir1.2-gtk-3.0", "gtk"], ["libglib2.0-0", "glib"], ["libssl3", "ssl"], ["libssl-dev", "ssl"],
    ["ruby-nokogiri", "nokogiri"], ["node-jquery", "jquery"], ["libjs-jquery", "jquery"], ["r-cran-ggplot2", "ggplot"],
    ["golang-github-spf13-cobra-dev", "cobra"], ["libtext-csv-perl", "text-csv"], ["librust-serde+std-dev", "serde"],
    ["gcc-12", "gcc"], ["python3.11", "python"], ["0ad-data-common", "0ad"], ["libreoffice-l10n-de", "reoffice"],
    ["python3", "python"], ["lib", "lib"], ["e2fsprogs", "e2fsprogs"],
  ];
  assert.deepEqual(table.map(([p]) => [p, familyKey(p)]), table);
});

/** n made-up projects of six packages each (a family), each with its own description. */
function projects(n: number): TranslationRecord[] {
  const out: TranslationRecord[] = [];
  for (let i = 0; i < n; i++) {
    const name = `proj${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`; // no digits: they would read as a soname
    for (const pkg of [name, `${name}-doc`, `lib${name}1`, `lib${name}-dev`, `python3-${name}`, `${name}-data`]) {
      const lines = [`${pkg} number ${i} is a tool that does one thing well for everyone.`];
      const md5 = descriptionMd5(`the ${pkg} package`, lines);
      out.push({ package: pkg, md5, language: "en", short: `the ${pkg} package`, md5Matches: true, lines, source: `made:${i}` });
    }
  }
  return out;
}

test("splits: no family straddles them, the same in every data set, nor a shared synopsis; seeded and deterministic", () => {
  const en = projects(300);
  const de = en.filter((_, k) => k % 3 === 0).map((r) => ({ ...r, language: "de", short: `das Paket ${r.package}`, lines: [], md5Matches: null }));
  const corpus = buildDebianCorpus({ en, de }, { seed: 7 });
  assert.deepEqual(buildDebianCorpus({ de, en: [...en].reverse() }, { seed: 7 }), corpus, "the order of the records does not matter");
  const where = new Map<string, SplitName>();
  const place = (pkg: string, s: SplitName): void => {
    const family = familyKey(pkg);
    assert.equal(where.get(family) ?? s, s, `family ${family} is in ${where.get(family)} and ${s}`);
    where.set(family, s);
  };
  for (const s of ["train", "validation", "test"] as const) {
    for (const x of corpus.summarization[s]) place(x.package, s);
    for (const x of corpus.translation.de![s]) place(x.package, s);
  }
  assert.equal(where.size, 300);
  const perSplit = (s: SplitName): number => [...where.values()].filter((x) => x === s).length;
  const [train, validation, held] = [perSplit("train"), perSplit("validation"), perSplit("test")];
  assert.equal(train + validation + held, 300);
  assert.ok(train > 255 && train < 285 && validation > 5 && held > 5, `${train}/${validation}/${held} families for 90/5/5`);
  assert.equal(corpus.summarization.train.length + corpus.summarization.validation.length + corpus.summarization.test.length, 1800);
  assert.equal(corpus.translation.de!.train.length + corpus.translation.de!.validation.length + corpus.translation.de!.test.length, 600); // synopses only: these German records have no long description
  const other = buildDebianCorpus({ en }, { seed: 8 });
  assert.notDeepEqual(other.summarization.test.map((x) => x.package), corpus.summarization.test.map((x) => x.package));
  const all = buildDebianCorpus({ en }, { split: "1,0,0" });
  assert.deepEqual([all.summarization.train.length, all.summarization.validation.length, all.summarization.test.length], [1800, 0, 0]);
  // two projects with one synopsis of four words or more are one group; with three words, two
  const pair = (short: string): TranslationRecord[] =>
    ["alpha", "omega"].map((pkg) => ({ package: pkg, md5: pkg, language: "en", short, md5Matches: null, lines: [`${pkg} is one of two tools with the same synopsis but its own text.`], source: "made" }));
  const together = (short: string): boolean[] =>
    Array.from({ length: 40 }, (_, seed) => {
      const c = buildDebianCorpus({ en: pair(short) }, { seed, split: "0.5,0.25,0.25" });
      return ["train", "validation", "test"].some((s) => c.summarization[s as SplitName].length === 2);
    });
  assert.ok(together("client library for the daemon").every(Boolean));
  assert.ok(!together("daemon client library").every(Boolean));
  assert.throws(() => parseSplit("0.5,0.5,0.5"), /three fractions .* summing to 1 .* got "0\.5,0\.5,0\.5"/);
});

test("the files: summarisation and en-de JSONL by split, stats.json with the sources and their dates", () => {
  const lists = listsDir("lists", true);
  const out = join(dir, "out");
  const { skipped } = writeDebianDescriptions({ out, lists, languages: "en,de", fetch: false });
  assert.deepEqual(skipped, {});
  const read = <T>(path: string): T[] => ["train", "validation", "test"].flatMap((s) => readFileSync(join(out, path, `${s}.jsonl`), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as T));
  const summaries = read<SummarizationExample>("summarization");
  // 6 descriptions (cowsay once): "tiny" has 4 words, under --min-words 10
  assert.deepEqual(summaries.map((x) => x.package).sort(), ["0ad-data", "bar-utils", "cowsay", "foo-doc", "libfoo1"]);
  for (const x of summaries) assert.deepEqual(Object.keys(x), ["document", "summary", "package"]);
  assert.deepEqual(summaries.find((x) => x.package === "cowsay"), { document: COWSAY_EN, summary: "configurable talking cow", package: "cowsay" });
  assert.equal(summaries.find((x) => x.package === "0ad-data")!.document.split("\n")[1], "This package contains the main data files required by 0 A.D.");
  const pairs = read<TranslationExample>("translation-en-de");
  assert.deepEqual(pairs.map((x) => `${x.package}/${x.part}`).sort(), ["0ad-data/description", "0ad-data/synopsis", "cowsay/description", "cowsay/synopsis"]);
  assert.deepEqual(pairs.find((x) => x.package === "cowsay" && x.part === "synopsis"), { translation: { en: "configurable talking cow", de: "Konfigurierbare sprechende Kuh" }, package: "cowsay", part: "synopsis" });
  assert.deepEqual(pairs.find((x) => x.package === "cowsay" && x.part === "description")!.translation, { en: COWSAY_EN, de: COWSAY_DE });
  // foo-doc and libfoo1 are one family, and so in one split
  const splitOf = (pkg: string): string => ["train", "validation", "test"].find((s) => readFileSync(join(out, "summarization", `${s}.jsonl`), "utf8").includes(`"package":"${pkg}"`))!;
  assert.equal(splitOf("foo-doc"), splitOf("libfoo1"));
  // corpus.txt: the training split's texts only, in both languages, one per blank-line-separated block
  const blocks = readFileSync(join(out, "corpus.txt"), "utf8").trim().split("\n\n");
  const trainSummaries = readFileSync(join(out, "summarization", "train.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as SummarizationExample);
  const trainPairs = readFileSync(join(out, "translation-en-de", "train.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as TranslationExample);
  assert.deepEqual(blocks, [...trainSummaries.map((x) => `${x.summary}\n${x.document}`), ...trainPairs.map((x) => x.translation.de)]);
  const held = summaries.filter((x) => splitOf(x.package) !== "train");
  assert.ok(held.length > 0 && held.length < summaries.length, "the fixture puts packages on both sides");
  for (const h of held) assert.ok(!blocks.some((b) => b.includes(h.summary)), `${h.package} is held out`);
  const stats = JSON.parse(readFileSync(join(out, "stats.json"), "utf8")) as DebianCorpus["stats"] & { sources: { path: string; language: string; records: number; archiveDate: string | null }[] };
  assert.deepEqual(stats.sources.map((s) => [s.path.split("_dists_")[1], s.language, s.records, s.archiveDate]), [
    ["bookworm-updates_main_i18n_Translation-en", "en", 2, null],
    ["bookworm_main_i18n_Translation-en", "en", 5, "2026-07-11T10:16:37.000Z"],
    [`bookworm_main_i18n_Translation-de${haveLz4 ? ".lz4" : ""}`, "de", 3, "2026-07-11T10:16:37.000Z"],
  ]);
  assert.deepEqual([stats.englishDescriptions, stats.md5Mismatches, stats.summarization.tooShort, stats.translation.de!.unpaired, stats.translation.de!.descriptions], [6, 4, 1, 1, 2]);
});

test("a missing index: the error gives the apt-get command; when apt-get fails, summarisation is still written", () => {
  const lists = listsDir("english-only", false);
  writeFileSync(join(lists, "deb.example_debian_dists_bookworm_main_i18n_Translation-zh%5fCN"), "");
  assert.deepEqual(translationFiles("zh_CN", lists).map((f) => f.split("_i18n_")[1]), ["Translation-zh%5fCN"], "apt writes zh_CN as zh%5fCN");
  const out = join(dir, "out-missing");
  assert.throws(() => writeDebianDescriptions({ out, lists, fetch: false }), (e: Error) => e.message === `no Debian Translation-de index in ${lists}; fetch the descriptions as root with \`apt-get update -o Acquire::Languages=en,de,zh_CN\``);
  assert.ok(!existsSync(out), "nothing written");
  const lines: string[] = [];
  const r = writeDebianDescriptions({ out, lists, languages: "en,de", fetch: true, aptGet: "false", log: (l) => lines.push(l) });
  assert.deepEqual(r.skipped, { de: "`apt-get update -o Acquire::Languages=en,de` failed (exit 1)" });
  assert.ok(lines.includes("Translation-de missing in " + lists + ": running `apt-get update -o Acquire::Languages=en,de` (downloads the descriptions from the configured Debian mirror)"));
  assert.ok(lines.includes("translation-en-de skipped: `apt-get update -o Acquire::Languages=en,de` failed (exit 1)"));
  assert.equal(readFileSync(join(out, "summarization", "train.jsonl"), "utf8").split("\n").filter(Boolean).length + readFileSync(join(out, "summarization", "test.jsonl"), "utf8").split("\n").filter(Boolean).length + readFileSync(join(out, "summarization", "validation.jsonl"), "utf8").split("\n").filter(Boolean).length, 5);
  assert.ok(!existsSync(join(out, "translation-en-de")));
  assert.deepEqual((JSON.parse(readFileSync(join(out, "stats.json"), "utf8")) as { skipped: unknown }).skipped, r.skipped);
});

test("lmforge data: a bad --split or data set is a usage error naming it, before anything is written", async () => {
  const out = join(dir, "never");
  await assert.rejects(dataCommand({ out, split: "0.9,0.2,0.1" }, ["debian-descriptions"]), (e: Error) => e instanceof UsageError && /^--split: split must be three fractions TRAIN,VALIDATION,TEST, .* got "0\.9,0\.2,0\.1"$/.test(e.message));
  await assert.rejects(dataCommand({ out, languages: "en,German" }, ["debian-descriptions"]), /--languages: languages: "German" is not a Debian language code/);
  await assert.rejects(dataCommand({ out }, ["wikipedia"]), /unknown data set "wikipedia"; known: debian-descriptions/);
  assert.ok(!existsSync(out));
});

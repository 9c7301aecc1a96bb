// The sotu-party data set (src/data/sotu-party.ts): passages cut at sentence ends, the split by
// address (no address in two parts, the same on every call and every seed), and its counts.
import test from "node:test";
import assert from "node:assert/strict";
import { limitParts, passages, sotuParty, MIN_PASSAGE_WORDS } from "../src/data/index.js";
import { taskEntry } from "../src/tasks/index.js";

const words = (n: number, w = "word"): string => Array.from({ length: n }, () => w).join(" ");

test("passages gather whole sentences until 100 words, never cut after a title or an initial, and drop a short tail", () => {
  // sentences of 60 words, each opening with a capital: the first passage closes after the second (120 words)
  const s = (w: string): string => `${w.toUpperCase()} ${words(58, w)} end.`;
  const text = `${s("a")} ${s("b")} ${s("c")} ${s("d")} Short tail here.`;
  const out = passages(text);
  // ... the second after the fourth; the three words left are too few for a passage
  assert.deepEqual(out, [`${s("a")} ${s("b")}`, `${s("c")} ${s("d")}`]);
  // a tail of fewer than 30 words after a full passage is dropped; a lower-case word after a dot is no sentence start
  assert.deepEqual(passages(`${words(99)} end. Next ${words(MIN_PASSAGE_WORDS - 3)} tail.`), [`${words(99)} end.`]);
  assert.deepEqual(passages(`${words(99)} etc. and ${words(30)}.`), [`${words(99)} etc. and ${words(30)}.`]);
  // "Mr. Speaker" and "Ulysses S. Grant" are not sentence ends: one passage, not cut there
  const titled = `${words(98)} Mr. Speaker, ${words(10)} Ulysses S. Grant said so. Then ${words(40)}.`;
  assert.deepEqual(passages(titled), [`${words(98)} Mr. Speaker, ${words(10)} Ulysses S. Grant said so.`, `Then ${words(40)}.`]);
});

test("sotu-party: 182 Democratic and Republican addresses split 146 / 18 / 18 by address, the passages counted", () => {
  const d = sotuParty();
  assert.deepEqual([d.addresses.train.length, d.addresses.validation.length, d.addresses.test.length], [146, 18, 18]);
  const all = [...d.addresses.train, ...d.addresses.validation, ...d.addresses.test];
  assert.equal(new Set(all).size, 182, "no address in two parts");
  // every passage's source names its address, and that address is in its own part only
  for (const part of ["train", "validation", "test"] as const) {
    const own = new Set(d.addresses[part]);
    for (const e of d[part]) assert.ok(own.has(/^sotu-party:(.+):\d+$/.exec(e.source)![1]!), `${e.source} is in ${part}`);
  }
  const count = (xs: { label: string }[]): Record<string, number> => xs.reduce<Record<string, number>>((c, e) => ((c[e.label] = (c[e.label] ?? 0) + 1), c), {});
  assert.deepEqual(count(d.train), { Democratic: 5460, Republican: 5514 });
  assert.deepEqual(count(d.validation), { Democratic: 439, Republican: 527 });
  assert.deepEqual(count(d.test), { Democratic: 552, Republican: 502 });
  // 9 addresses of each party held out in each of validation and test (10% of 90 and of 92)
  const addressesOf = (part: "validation" | "test", party: string): number => new Set(d[part].filter((e) => e.label === party).map((e) => e.source.split(":")[1])).size;
  for (const part of ["validation", "test"] as const) assert.deepEqual([addressesOf(part, "Democratic"), addressesOf(part, "Republican")], [9, 9]);
  assert.ok(d.train.every((e) => e.text.split(/\s+/).length >= MIN_PASSAGE_WORDS));
});

test("sotu-party is the classification task's built-in split, the same whatever the seed; --limit scales its parts", () => {
  const task = taskEntry("classification");
  const a = task.builtin!("sotu-party", { seed: 1 })!;
  const b = task.builtin!("sotu-party", { seed: 2 })!;
  assert.deepEqual(a.test.map((e) => (e as { source: string }).source), b.test.map((e) => (e as { source: string }).source));
  assert.equal(task.builtin!("spam-assassin", {}), null);
  const small = limitParts(sotuParty(), 1000, 42);
  // 1000 of 10,974 training passages: validation and test keep the same share, rounded
  assert.deepEqual([small.train.length, small.validation.length, small.test.length], [1000, Math.round((966 * 1000) / 10974), Math.round((1054 * 1000) / 10974)]);
});

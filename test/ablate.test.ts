// lmforge ablate: variant parsing, durations, and a real two-variant ablation of a tiny model.
import test from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ablate, ablationTable, parseDuration, parseVariant } from "../src/train/ablate.js";

test("a variant joins named switches and KEY=VALUE config keys; conflicting parts are refused, naming both", () => {
  assert.deepEqual(parseVariant("rmsnorm+rotary+swiglu"), { name: "rmsnorm+rotary+swiglu", arch: { norm_type: "rmsnorm", positions: "rotary", ffn: "swiglu" } });
  assert.deepEqual(parseVariant("pre-ln+conv_kernel=5+share_groups=null").arch, { norm: "pre", conv_kernel: 5, share_groups: null });
  assert.deepEqual(parseVariant("local").arch, { attention: "local", window: 32 });
  assert.throws(() => parseVariant("pre-ln+post-ln"), /"pre-ln" and "post-ln" in "pre-ln\+post-ln" both set norm \("pre" vs "post"\)/);
  assert.throws(() => parseVariant("rotary+positions=alibi"), /"rotary" and "positions=alibi" .* both set positions/);
  assert.throws(() => parseVariant("flash"), /unknown switch "flash" in "flash"; known: post-ln, pre-ln/);
  assert.throws(() => parseVariant("norm="), /"norm=" in "norm=" is not KEY=VALUE/);
});

test("durations read as people write them", () => {
  assert.equal(parseDuration("20m"), 1200);
  assert.equal(parseDuration("90s"), 90);
  assert.equal(parseDuration("1h30m"), 5400);
  assert.equal(parseDuration("1.5h"), 5400);
  assert.equal(parseDuration("45"), 45);
  for (const bad of ["", "20 minutes", "m", "0s", "5x"]) assert.throws(() => parseDuration(bad), /a duration is like 20m/);
});

test("the table right-aligns figures and lists failed variants with their cause", () => {
  const row = { variant: "pre-ln", arch: { norm: "pre" }, parameters: 1_512_000, steps: 20, tokens: 10_240, tokensPerSec: 4865.2, pretrainSeconds: 3, valLoss: 8.3, valPerplexity: 4088.776, accuracy: 0.71428, macroF1: 0.41666, finetuneSeconds: 2, peakRssMB: 692.4 };
  const failed = { ...row, variant: "performer", parameters: NaN, steps: 0, tokens: 0, tokensPerSec: NaN, valPerplexity: NaN, accuracy: NaN, macroF1: NaN, peakRssMB: NaN, error: "exit 1: out of memory" };
  const lines = ablationTable([row, failed]).split("\n");
  assert.equal(lines[0], "| variant   | parameters | steps | tokens | tokens/s | val perplexity | accuracy | macro F1 | peak RSS MB |");
  assert.equal(lines[2], "| pre-ln    |      1.51M |    20 |  0.01M |     4865 |        4088.78 |   71.43% |   0.4167 |         692 |");
  assert.equal(lines[3], "| performer |          - |     0 |      - |        - |              - |        - |        - |           - |");
  assert.equal(lines[5], "performer failed: exit 1: out of memory");
});

test("ablate pretrains and fine-tunes each variant in its own process, and a rerun keeps the variants done", async () => {
  const out = mkdtempSync(join(tmpdir(), "lmforge-ablate-"));
  const lines: string[] = [];
  try {
    const options = { model: "lmforge-tiny", variants: "post-ln,pre-ln+rmsnorm", steps: 3, batchSize: 4, seqLen: 32, finetuneEpochs: 1, finetuneLimit: 60, out, log: (l: string) => lines.push(l) };
    const rows = await ablate(options);
    assert.deepEqual(rows.map((r) => r.variant), ["post-ln", "pre-ln+rmsnorm"]);
    for (const r of rows) {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.steps, 3);
      assert.equal(r.tokens, 3 * 4 * 32);
      assert.ok(r.parameters > 1e5 && r.tokensPerSec > 0 && r.peakRssMB > 50, JSON.stringify(r));
      assert.ok(r.valPerplexity > 1 && r.accuracy >= 0 && r.accuracy <= 1, JSON.stringify(r));
    }
    // the variants' configs say what was switched
    const config = (v: string): Record<string, unknown> => JSON.parse(readFileSync(join(out, v, "pretrained", "config.json"), "utf8")) as Record<string, unknown>;
    assert.equal(config("post-ln").norm, "post");
    assert.equal(config("pre-ln+rmsnorm").norm, "pre");
    assert.equal(config("pre-ln+rmsnorm").norm_type, "rmsnorm");
    assert.match(readFileSync(join(out, "ablation.md"), "utf8"), /\| pre-ln\+rmsnorm \|/);
    const again = await ablate(options);
    assert.deepEqual(again, rows);
    assert.equal(lines.filter((l) => / done before /.test(l)).length, 2);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// lmforge ablate and lmforge compare: variant parsing, durations, the table, and real runs of
// tiny models (an ablation of two variants, a comparison of a preset and a folder over two seeds).
import test from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ABLATION_COLUMNS, ablate, parseVariant } from "../src/train/ablate.js";
import { COMPARE_COLUMNS, compare, compareEntry } from "../src/train/compare.js";
import { meanStd, parseDuration, studyTable } from "../src/train/study.js";
import type { StudyRow } from "../src/train/study.js";

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

test("the table right-aligns figures, shows mean ± std over several seeds, and lists failed rows with their cause", () => {
  const row: StudyRow = { name: "pre-ln", dir: "ablation/pre-ln", model: "lmforge-mini", arch: { norm: "pre" }, parameters: 1_512_000, steps: 20, tokens: 10_240, tokensPerSec: 4865.2, pretrainSeconds: 3, valLoss: 8.3, valPerplexity: 4088.776, accuracy: 0.71428, accuracyStd: 0, macroF1: 0.41666, macroF1Std: 0, seeds: 1, finetuneSeconds: 2, latencyMs: 3.21, peakRssMB: 692.4 };
  const failed: StudyRow = { ...row, name: "performer", parameters: NaN, steps: 0, tokens: 0, tokensPerSec: NaN, valPerplexity: NaN, accuracy: NaN, macroF1: NaN, peakRssMB: NaN, error: "exit 1: out of memory" };
  const lines = studyTable([row, failed], ABLATION_COLUMNS).split("\n");
  assert.equal(lines[0], "| variant   | parameters | steps | tokens | tokens/s | val perplexity | accuracy | macro F1 | peak RSS MB |");
  assert.equal(lines[2], "| pre-ln    |      1.51M |    20 |  0.01M |     4865 |        4088.78 |   71.43% |   0.4167 |         692 |");
  assert.equal(lines[3], "| performer |          - |     0 |      - |        - |              - |        - |        - |           - |");
  assert.equal(lines[5], "performer failed: exit 1: out of memory");
  const three = { ...row, name: "bert-mini", accuracy: 0.9, accuracyStd: 0.0123, macroF1: 0.88, macroF1Std: 0.00456, seeds: 3 };
  assert.equal(studyTable([three], COMPARE_COLUMNS).split("\n")[2], "| bert-mini |      1.51M |     4865 |        4088.78 | 90.00% ± 1.23 | 0.8800 ± 0.0046 |           2 |        3.2 |");
});

test("mean and sample standard deviation", () => {
  assert.deepEqual(meanStd([0.8]), { mean: 0.8, std: 0 });
  const m = meanStd([2, 4, 4, 4, 5, 5, 7, 9]); // mean 5, squared deviations 32, n - 1 = 7
  assert.equal(m.mean, 5);
  assert.ok(Math.abs(m.std - Math.sqrt(32 / 7)) < 1e-12);
});

test("compare takes each preset with its family's recipe and a folder as it is, and refuses anything else by name", () => {
  assert.deepEqual(compareEntry("bert-mini"), { pretrain: true, objectives: "mlm", masking: "static" });
  assert.deepEqual(compareEntry("roberta-mini"), { pretrain: true, objectives: "mlm", masking: "dynamic" });
  assert.deepEqual(compareEntry("albert-small"), { pretrain: true, objectives: "mlm,sop", masking: "static" });
  assert.deepEqual(compareEntry("test/fixtures/hf-tiny/bert"), { pretrain: false });
  assert.throws(() => compareEntry("bert-huge"), /--models: "bert-huge" is neither a preset \(.*bert-mini.*\) nor a folder with a config.json/);
});

test("ablate pretrains and fine-tunes each variant in its own process, and a rerun keeps the variants done", async () => {
  const out = mkdtempSync(join(tmpdir(), "lmforge-ablate-"));
  const lines: string[] = [];
  try {
    const options = { model: "lmforge-tiny", variants: "post-ln,pre-ln+rmsnorm", steps: 3, batchSize: 4, seqLen: 32, finetuneEpochs: 1, finetuneLimit: 60, out, log: (l: string) => lines.push(l) };
    const rows = await ablate(options);
    assert.deepEqual(rows.map((r) => r.name), ["post-ln", "pre-ln+rmsnorm"]);
    for (const r of rows) {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.steps, 3);
      assert.equal(r.tokens, 3 * 4 * 32);
      assert.ok(r.parameters > 1e5 && r.tokensPerSec > 0 && r.peakRssMB > 50 && r.latencyMs > 0, JSON.stringify(r));
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

test("compare pretrains a preset with its recipe, takes a folder as it is, and fine-tunes each over the seeds", async () => {
  const out = mkdtempSync(join(tmpdir(), "lmforge-compare-"));
  try {
    const settings = { steps: 3, batchSize: 4, seqLen: 32, finetuneEpochs: 1, finetuneLimit: 60, seeds: 2, log: () => {} };
    const [albert] = (await compare({ ...settings, models: "albert-tiny", out })) as [StudyRow];
    assert.deepEqual([albert.name, albert.error, albert.seeds, albert.steps], ["albert-tiny", undefined, 2, 3]);
    assert.ok(albert.valPerplexity > 1 && Number.isFinite(albert.macroF1Std) && albert.latencyMs > 0, JSON.stringify(albert));
    // ALBERT's recipe: sentence-order prediction beside the masked LM
    assert.match(readFileSync(join(out, "albert-tiny", "pretrained", "metrics.jsonl"), "utf8"), /sop/);
    for (const seed of [42, 43]) assert.ok(readFileSync(join(out, "albert-tiny", `finetuned-seed${seed}`, "config.json"), "utf8").includes("id2label"));
    assert.match(readFileSync(join(out, "comparison.md"), "utf8"), /\| albert-tiny \|/);
    // a folder is fine-tuned as it is, with its own tokenizer: no pretraining figures
    const dir = join(out, "albert-tiny", "pretrained");
    const [folder] = (await compare({ ...settings, seeds: 1, models: dir, out: join(out, "again") })) as [StudyRow];
    assert.deepEqual([folder.name, folder.error, folder.steps], [dir, undefined, 0]);
    // a folder's row is named by its whole path: run-a/pretrained and run-b/pretrained keep apart
    assert.equal(folder.dir, join(out, "again", dir.replace(/[^A-Za-z0-9._+=-]/g, "_")));
    assert.ok(Number.isNaN(folder.valPerplexity) && folder.accuracy >= 0 && folder.accuracy <= 1 && folder.parameters > 0, JSON.stringify(folder));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

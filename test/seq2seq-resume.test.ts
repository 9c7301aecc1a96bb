// A translation fine-tuning run of a tiny T5 killed with SIGKILL resumes exactly: the losses
// after --resume, the validation scores by generation and the test scores equal those of the
// uninterrupted run (cli.test.ts's pattern, on the seq2seq task, with dropout drawing).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForSeq2SeqLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { killAtCheckpoint, runLog, tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache") } });

const WORDS = ["red", "blue", "green", "cat", "dog", "fish", "big", "small", "runs", "sleeps"];
const sentence = (i: number): string => Array.from({ length: 3 + (i % 3) }, (_, k) => WORDS[(i * 7 + k * 3 + Math.floor(i / 10)) % WORDS.length]!).join(" ");
const texts = Array.from({ length: 60 }, (_, i) => sentence(i));
const data = join(dir, "copy.jsonl");
writeFileSync(data, texts.map((t) => JSON.stringify({ translation: { en: t, de: t.split(" ").reverse().join(" ") } })).join("\n") + "\n");
const modelDir = join(dir, "t5");
{
  const tok = trainTokenizerFromTexts([...new Array<string>(10).fill("translate English to German: "), ...texts], { kind: "wordpiece", vocabSize: 80, minFrequency: 1 });
  torch.manualSeed(3);
  savePretrained(AutoModelForSeq2SeqLM.fromConfig({ model_type: "t5", vocab_size: tok.vocabSize, d_model: 32, d_kv: 8, d_ff: 64, num_layers: 2, num_heads: 4, relative_attention_num_buckets: 8, relative_attention_max_distance: 16, eos_token_id: tok.tokenToId("[SEP]"), pad_token_id: 0, decoder_start_token_id: 0 }), modelDir);
  saveTokenizer(tok, modelDir);
}

test("translation fine-tuning of a T5 killed with SIGKILL resumes exactly: losses, BLEU by generation and test scores equal the uninterrupted run's", async () => {
  const args = (out: string) => ["finetune", "--model", modelDir, "--task", "translation", "--train", data, "--out", out, "--epochs", "3", "--batch-size", "8", "--max-length", "24", "--max-target-length", "8", "--save-every", "2", "--learning-rate", "1e-2", "--precision", "fp32", "--dropout", "0.1"];
  const full = join(dir, "full");
  const whole = run(args(full));
  assert.equal(whole.status, 0, whole.stderr);
  const cut = join(dir, "cut");
  const child = spawn(process.execPath, [cli, ...args(cut)], { stdio: "ignore", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache") } });
  await killAtCheckpoint(child, cut, 8); // mid-run, past the first epoch's evaluation (6 steps)
  const resumed = run([...args(cut), "--resume"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .*checkpoint-\d+ at step \d+/);
  const a = runLog(cut);
  const b = runLog(full);
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(a.evals, b.evals);
  assert.ok(b.evals.length >= 2 && b.evals.every((e) => typeof e.val_bleu === "number" && typeof e.val_chrf === "number"), JSON.stringify(b.evals));
  const score = (out: string) => JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as { bleu: number; chrf: number };
  assert.deepEqual(score(cut), score(full));
});

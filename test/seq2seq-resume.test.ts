// A translation fine-tuning run of a tiny T5 killed with SIGKILL resumes exactly: the losses
// after --resume, the validation scores by generation and the test scores equal those of the
// uninterrupted run (cli.test.ts's pattern, on the seq2seq task, with dropout drawing).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { AutoModelForSeq2SeqLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { tempDir } from "./helpers.js";

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

/** Each step's loss and each evaluation's scores in a run's log (the last record of each step: a resumed log has none twice). */
function records(out: string): { losses: number[]; evals: Record<string, number>[] } {
  const all = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { event: string; step: number; loss: number } & Record<string, number>);
  const steps = all.filter((r) => r.event === "step");
  assert.deepEqual(steps.map((s) => s.step), steps.map((_, i) => i + 1), "each step once, in order");
  const evals = new Map<number, Record<string, number>>();
  for (const r of all) if (r.event === "eval") evals.set(r.step, Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith("val_"))) as Record<string, number>);
  return { losses: steps.map((s) => s.loss), evals: [...evals.values()] };
}

test("translation fine-tuning of a T5 killed with SIGKILL resumes exactly: losses, BLEU by generation and test scores equal the uninterrupted run's", async () => {
  const args = (out: string) => ["finetune", "--model", modelDir, "--task", "translation", "--train", data, "--out", out, "--epochs", "3", "--batch-size", "8", "--max-length", "24", "--max-target-length", "8", "--save-every", "2", "--learning-rate", "1e-2", "--precision", "fp32", "--dropout", "0.1"];
  const full = join(dir, "full");
  const whole = run(args(full));
  assert.equal(whole.status, 0, whole.stderr);
  const cut = join(dir, "cut");
  const child = spawn(process.execPath, [cli, ...args(cut)], { stdio: "ignore", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache") } });
  // kill it once a checkpoint beyond the first epoch's evaluation (6 steps) exists, mid-run
  await new Promise<void>((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(() => {
      const steps = existsSync(cut) ? readdirSync(cut).filter((d) => /^checkpoint-\d+$/.test(d)).map((d) => Number(d.slice(11))) : [];
      if (steps.some((s) => s >= 8)) {
        clearInterval(poll);
        child.kill("SIGKILL");
        resolve();
      } else if (Date.now() - t0 > 120000) {
        clearInterval(poll);
        reject(new Error("no checkpoint after 2 minutes"));
      }
    }, 20);
    child.on("exit", (code) => code === 0 && (clearInterval(poll), reject(new Error("the run finished before it was killed"))));
  });
  await new Promise((r) => child.on("exit", r));
  const resumed = run([...args(cut), "--resume"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .*checkpoint-\d+ at step \d+/);
  const a = records(cut);
  const b = records(full);
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(a.evals, b.evals);
  assert.ok(b.evals.length >= 2 && b.evals.every((e) => typeof e.val_bleu === "number" && typeof e.val_chrf === "number"), JSON.stringify(b.evals));
  const score = (out: string) => JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as { bleu: number; chrf: number };
  assert.deepEqual(score(cut), score(full));
});

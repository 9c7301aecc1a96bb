// The command line: flags come from one declaration per option (so --help lists every flag a
// command accepts), values are checked before any work (negative numbers parse, then are
// refused by range with the flag's name), a JSON --config file holds any flag, nothing is
// written before the arguments are known good, and a fine-tuning run killed with SIGKILL
// resumes to exactly the losses of an uninterrupted one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import * as torch from "../src/torch/index.js";
import { COMMANDS } from "../src/cli/commands.js";
import { helpOf } from "../src/cli/main.js";
import { parseCommand } from "../src/cli/args.js";
import { AutoModelForMaskedLM, savePretrained } from "../src/models/index.js";
import { saveTokenizer, trainTokenizerFromTexts } from "../src/tokenizers/index.js";
import { killAtCheckpoint, runLog, tempDir } from "./helpers.js";

const dir = await tempDir();
const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache"), ...env } });

test("every command's --help lists every flag it accepts, and it accepts nothing else", async () => {
  for (const c of COMMANDS) {
    const specs = await c.specs();
    const help = await helpOf(c.name);
    for (const s of specs) assert.match(help, new RegExp(`--${s.flag}\\b`), `${c.name} --help lacks --${s.flag}`);
    // each declared flag parses (booleans alone, the rest with a value the declaration takes)
    const value = (s: (typeof specs)[number]): string[] =>
      s.type === "boolean" ? [] : [s.choices?.[0] ?? (s.type === "int" || s.type === "number" ? String(s.max ?? Math.max(1, s.min ?? 1)) : s.flag === "strategy" ? "full" : s.flag === "mixing" ? "equal" : s.flag === "task" && c.name === "pretrain" ? "mlm=moby-dick" : s.flag === "adversarial" ? "fgm:1" : s.flag === "perturb" ? "deletion=0.1" : s.flag === "arch" ? "norm=pre" : s.flag === "auxiliary" ? "word-boundary:0.1" : s.flag.startsWith("search-") || s.flag === "c-grid" ? "1,2" : s.flag === "shots" ? "8,16" : s.flag === "verbalizer" ? "a=b" : "x")];
    // with the command's required flags given (the parser refuses a command without them)
    const required = specs.filter((s) => s.required).flatMap((s) => [`--${s.flag}`, ...value(s)]);
    for (const s of specs) {
      if (s.flag === "config") continue;
      assert.doesNotThrow(() => parseCommand([...required, `--${s.flag}`, ...value(s)], specs, { positionals: true }), `${c.name} --${s.flag}`);
    }
    assert.throws(() => parseCommand(["--no-such-flag", "1"], specs), /unknown option --no-such-flag; see --help/);
  }
  const r = run(["finetune", "--help"]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--learning-rate X\s+peak learning rate of AdamW \(default 0\.00005; > 0 and <= 1\)/);
});

test("negative numbers parse, then are refused by range naming the flag; other bad values too", () => {
  const cases: [string[], RegExp][] = [
    [["pretrain", "--model", "bert-tiny", "--tokenizer", "t", "--out", "o", "--max-steps", "3", "--learning-rate", "-1"], /--learning-rate must be > 0 and <= 1, got "-1"/],
    [["pretrain", "--model", "bert-tiny", "--tokenizer", "t", "--out", "o", "--max-steps", "-5"], /--max-steps must be >= 1, got "-5"/],
    [["finetune", "--model", "m", "--train", "t", "--out", "o", "--batch-size", "2.5"], /--batch-size must be an integer, got "2.5"/],
    [["finetune", "--model", "m", "--train", "t", "--out", "o", "--precision", "fp16"], /--precision must be fp32 or bf16, got "fp16"/],
    [["finetune", "--model", "m", "--train", "t", "--out", "o", "--task", "parsing"], /--task must be classification, token-classification, question-answering, translation, summarization, image-classification, prompt-classification or setfit, got "parsing"/],
    [["pretrain", "--model", "bert-tiny", "--tokenizer", "t", "--out", "o", "--max-steps", "3", "--mixing", "temperature:0.5"], /--mixing: temperature:0\.5: the temperature must be >= 1/],
    [["tokenizer", "train", "--kind", "bpe", "--vocab-size", "0", "--out", "o"], /--vocab-size must be >= 1, got "0"/],
    [["finetune", "--model", "m", "--train", "t", "--out", "o", "--eval-every", "often"], /--eval-every must be an integer or epoch, got "often"/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  }
  assert.ok(!existsSync("o"), "nothing was written");
  // a number or the word: --eval-every and --save-every take "epoch" as the Trainer does
  const specs = [{ flag: "eval-every", key: "evalEvery", type: "int" as const, min: 1, words: ["epoch"], help: "" }];
  assert.deepEqual(parseCommand(["--eval-every", "epoch"], specs).values, { evalEvery: "epoch" });
  assert.deepEqual(parseCommand(["--eval-every", "50"], specs).values, { evalEvery: 50 });
});

const modelDir = join(dir, "base");
const texts = Array.from({ length: 120 }, (_, i) => (i % 2 ? "whale ship sea harpoon captain ocean" : "nation congress president law people tax").split(" ").sort(() => 0.5 - ((i * 7919) % 13) / 13).join(" "));
const data = join(dir, "data.tsv");
{
  const tok = trainTokenizerFromTexts(texts, { kind: "wordpiece", vocabSize: 120, minFrequency: 1 });
  torch.manualSeed(0);
  savePretrained(AutoModelForMaskedLM.fromConfig({ model_type: "bert", vocab_size: tok.vocabSize, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 }), modelDir);
  saveTokenizer(tok, modelDir);
  writeFileSync(data, "sentence\tlabel\n" + texts.map((t, i) => `${t}\t${i % 2 ? "whale" : "nation"}`).join("\n") + "\n");
}

test("a required flag missing is refused by the parser for every command, before any work", () => {
  // explain has no library call that checks its options: it used to explain the text "undefined"
  for (const [args, flag] of [
    [["explain", "--model", "m"], "--text"],
    [["export", "onnx", "m"], "--out"],
    [["generate", "--model", "m"], "--prompt"],
    [["tokenizer", "train", "--kind", "bpe", "--out", "o"], "--vocab-size"],
  ] as const) {
    const r = run([...args]);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`: ${flag} is required`), args.join(" "));
  }
});

test("a JSON --config holds any flag (as flag, camelCase or snake_case); flags win; an unknown key names the file", () => {
  const cfg = join(dir, "config.json");
  const out = join(dir, "from-config");
  writeFileSync(cfg, JSON.stringify({ model: modelDir, train: data, out, epochs: 1, "batch-size": 16, learningRate: 0.003, max_length: 16, precision: "fp32" }));
  const r = run(["finetune", "--config", cfg, "--max-length", "12"]);
  assert.equal(r.status, 0, r.stderr);
  const saved = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { lmforge: { max_length: number } };
  assert.equal(saved.lmforge.max_length, 12, "the flag wins over the file");
  const start = JSON.parse(readFileSync(join(out, "metrics.jsonl"), "utf8").split("\n")[0]!) as { batchSize: number; learningRate: number };
  assert.deepEqual([start.batchSize, start.learningRate], [16, 0.003]);
  writeFileSync(cfg, JSON.stringify({ model: modelDir, epoks: 2 }));
  const bad = run(["finetune", "--config", cfg]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, new RegExp(`--config ${cfg.replace(/[/.]/g, "\\$&")}: unknown option "epoks"`));
});

test("arguments are checked before anything is written: a tokenizer larger than the model's vocabulary, a length beyond its positions", () => {
  const bigTok = join(dir, "big-tok");
  saveTokenizer(trainTokenizerFromTexts([...texts, "a b c d e f g h i j k l m n o p q r s t u v w x y z"], { kind: "wordpiece", vocabSize: 400, minFrequency: 1 }), bigTok);
  const out = join(dir, "never");
  const r = run(["finetune", "--model", modelDir, "--tokenizer", bigTok, "--train", data, "--out", out]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the tokenizer in .*big-tok has \d+ tokens, more than the model's vocabulary \(vocab_size \d+ in .*base\/config\.json\)/);
  assert.ok(!existsSync(out), "no split.json, no folder");
  const long = run(["finetune", "--model", modelDir, "--train", data, "--out", out, "--max-length", "100"]);
  assert.equal(long.status, 1);
  assert.match(long.stderr, /--max-length 100 needs 100 positions but the model has max_position_embeddings = 64; use a --max-length of at most 64/);
  assert.ok(!existsSync(out));
});

test("a non-terminal gets a progress line every few seconds (LMFORGE_PROGRESS_SECONDS)", () => {
  const r = run(["finetune", "--model", modelDir, "--train", data, "--out", join(dir, "progress"), "--epochs", "1", "--batch-size", "8", "--max-length", "16", "--precision", "fp32"], { LMFORGE_PROGRESS_SECONDS: "0.001" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^finetune: \d+\/\d+ \(\d+%\), [\d.]+\/s.*loss \d\.\d{4}$/m);
});

test("fine-tuning killed with SIGKILL resumes exactly: the losses after --resume equal the uninterrupted run's", async () => {
  const args = (out: string) => ["finetune", "--model", modelDir, "--train", data, "--out", out, "--epochs", "3", "--batch-size", "8", "--max-length", "16", "--save-every", "3", "--learning-rate", "3e-3", "--precision", "fp32", "--dropout", "0.2"];
  const full = join(dir, "full");
  assert.equal(run(args(full)).status, 0);
  const cut = join(dir, "cut");
  const child = spawn(process.execPath, [cli, ...args(cut)], { stdio: "ignore", env: { ...process.env, LMFORGE_CACHE: join(dir, "cache") } });
  await killAtCheckpoint(child, cut, 15); // mid-run, past the first epoch's evaluation
  const resumed = run([...args(cut), "--resume"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .*checkpoint-\d+ at step \d+/);
  assert.deepEqual(runLog(cut).losses, runLog(full).losses);
  // and the same final weights: the saved models score alike
  const score = (out: string) => JSON.parse(readFileSync(join(out, "test_metrics.json"), "utf8")) as { accuracy: number; macro_f1: number };
  assert.deepEqual(score(cut), score(full));
});

// `lmforge launch`: starts the workers of one node of a data-parallel run, with torchrun's
// contract: each worker gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK,
// MASTER_ADDR, MASTER_PORT (and OMP_NUM_THREADS = cores / local workers unless set), and the
// worker's rank 0 hosts the rendezvous store. Signals are forwarded to the workers. When a
// worker dies the others are stopped (SIGTERM, then SIGKILL after --stop-timeout) and, with
// --max-restarts K, the group is started again: an lmforge pretrain/finetune whose --out holds
// a checkpoint is given --resume, another program resumes itself (torchrun's contract:
// TORCHELASTIC_RESTART_COUNT and LMFORGE_RESTART_COUNT say which attempt it is).
//
// Several nodes: one launcher per machine with the same --nnodes, --master-addr and
// --master-port and its own --node-rank; each restarts its own workers when theirs fail
// (the others' then lose their peers and fail too, so all restart; there is no elastic agent
// that agrees on restarts through the store, as torchrun's has).
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { defineOptions, resolveOptions } from "../io/options.js";
import { lastCheckpoint } from "../train/index.js";
import { UsageError } from "./errors.js";
import { COMMANDS } from "./commands.js";

export const LAUNCH_OPTIONS = defineOptions([
  { flag: "nproc-per-node", key: "nprocPerNode", type: "int", min: 1, default: 1, help: "workers on this machine" },
  { flag: "nnodes", key: "nnodes", type: "int", min: 1, default: 1, help: "machines in the run (one launcher each)" },
  { flag: "node-rank", key: "nodeRank", type: "int", min: 0, default: 0, help: "this machine's place among them (0 hosts the store)" },
  { flag: "master-addr", key: "masterAddr", type: "string", arg: "ADDR", default: "127.0.0.1", help: "address of node 0, where rank 0 hosts the rendezvous store" },
  { flag: "master-port", key: "masterPort", type: "int", min: 1, max: 65535, default: 29500, help: "the store's port on node 0" },
  { flag: "max-restarts", key: "maxRestarts", type: "int", min: 0, default: 0, help: "restart the workers this many times when one fails (from the last checkpoint)" },
  { flag: "stop-timeout", key: "stopTimeout", type: "number", min: 0, default: 10, help: "seconds the other workers get to stop (SIGTERM) before SIGKILL" },
]);

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  maxRestarts: number;
  stopTimeout: number;
}

/** The environment of local worker `localRank` (torchrun's variables). */
export function workerEnv(o: LaunchOptions, localRank: number, attempt: number, base: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): NodeJS.ProcessEnv {
  return {
    ...base,
    RANK: String(o.nodeRank * o.nprocPerNode + localRank),
    LOCAL_RANK: String(localRank),
    WORLD_SIZE: String(o.nnodes * o.nprocPerNode),
    LOCAL_WORLD_SIZE: String(o.nprocPerNode),
    GROUP_RANK: String(o.nodeRank),
    MASTER_ADDR: o.masterAddr,
    MASTER_PORT: String(o.masterPort),
    OMP_NUM_THREADS: base.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(cores / o.nprocPerNode))),
    TORCHELASTIC_RESTART_COUNT: String(attempt),
    LMFORGE_RESTART_COUNT: String(attempt),
  };
}

/** The value of --out (or --out=DIR) in an lmforge command's arguments. */
function outOf(args: readonly string[]): string | undefined {
  for (const [i, a] of args.entries()) {
    if (a === "--out") return args[i + 1];
    if (a.startsWith("--out=")) return a.slice(6);
  }
  return undefined;
}

/**
 * The worker command of an attempt: `lmforge pretrain|finetune ...` gets --resume after a
 * failure when its --out holds a checkpoint; any other program is run as given.
 */
export function workerCommand(command: readonly string[], attempt: number, cli = fileURLToPath(new URL("../../../bin/lmforge.js", import.meta.url))): { file: string; args: string[] } {
  const [first, ...rest] = command;
  if (first === undefined) throw new UsageError("nothing to launch: give the command after --, e.g. lmforge launch --nproc-per-node 2 -- pretrain --model bert-tiny ...");
  if (!COMMANDS.some((c) => c.name === first)) return { file: first, args: rest };
  const args = [first, ...rest];
  const out = outOf(rest);
  if (attempt > 0 && (first === "pretrain" || first === "finetune") && !rest.includes("--resume") && out !== undefined && lastCheckpoint(out)) args.push("--resume");
  return { file: process.execPath, args: [cli, ...args] };
}

interface Exit {
  localRank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Starts the local workers and resolves with the first failure, or null when all succeeded. */
function runGroup(o: LaunchOptions, command: readonly string[], attempt: number, say: (line: string) => void): Promise<Exit | null> {
  const { file, args } = workerCommand(command, attempt);
  const workers: ChildProcess[] = [];
  let failed: Exit | null = null;
  let left = o.nprocPerNode;
  let killTimer: NodeJS.Timeout | undefined;
  const forward = (signal: NodeJS.Signals) => () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill(signal);
  };
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return new Promise((done) => {
    const stopOthers = (): void => {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGTERM");
      killTimer = setTimeout(() => {
        for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
      }, o.stopTimeout * 1000);
    };
    for (let localRank = 0; localRank < o.nprocPerNode; localRank++) {
      const child = spawn(file, args, { env: workerEnv(o, localRank, attempt), stdio: "inherit" });
      workers.push(child);
      child.on("error", (e) => say(`could not start ${file}: ${e.message}`));
      child.on("exit", (code, signal) => {
        left -= 1;
        if ((code !== 0 || signal !== null) && failed === null) {
          failed = { localRank, pid: child.pid ?? -1, code, signal };
          say(`rank ${o.nodeRank * o.nprocPerNode + localRank} (pid ${child.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; stopping the other workers`);
          stopOthers();
        }
        if (left === 0) {
          clearTimeout(killTimer);
          process.off("SIGINT", onInt);
          process.off("SIGTERM", onTerm);
          done(failed);
        }
      });
    }
  });
}

/** Runs the workers, restarting them up to maxRestarts times; the exit code. */
export async function launch(o: LaunchOptions, command: readonly string[], say: (line: string) => void = (l) => console.error(`lmforge launch: ${l}`)): Promise<number> {
  if (o.nodeRank >= o.nnodes) throw new UsageError(`--node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
  for (let attempt = 0; ; attempt++) {
    const failure = await runGroup(o, command, attempt, say);
    if (!failure) return 0;
    if (attempt >= o.maxRestarts) {
      say(`no restarts left (--max-restarts ${o.maxRestarts}): giving up`);
      return failure.code ?? 1;
    }
    say(`restart ${attempt + 1} of ${o.maxRestarts}`);
  }
}

export async function launchCommand(v: Record<string, unknown>, positionals: string[]): Promise<void> {
  process.exitCode = await launch(resolveOptions(LAUNCH_OPTIONS, v) as unknown as LaunchOptions, positionals);
}

// Finds and runs the PyTorch peer (Python) with its best configuration on this machine.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { variablesSet } from "../src/torch/native.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The peers' Python sources live beside the TypeScript sources (bench/peers). */
export const PEERS_DIR = existsSync(join(here, "peers")) ? join(here, "peers") : join(here, "../../bench/peers");

function hasTorch(python: string): boolean {
  return spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
}

/** A Python with torch: Debian's python3-torch is installed where missing (as root). */
export function findPython(): string {
  const candidates = [process.env.LMFORGE_BENCH_PYTHON, "/usr/bin/python3", "python3"].filter((x): x is string => !!x);
  for (const py of candidates) if (hasTorch(py)) return py;
  if (process.getuid?.() === 0) {
    console.error("bench: installing python3-torch (Debian) for the PyTorch side of the race");
    execFileSync("apt-get", ["install", "-y", "-qq", "python3-torch"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    if (hasTorch("/usr/bin/python3")) return "/usr/bin/python3";
  }
  throw new Error("bench: no Python with torch found; install python3-torch (apt) or set LMFORGE_BENCH_PYTHON");
}

/**
 * PyTorch's best configuration here: OpenBLAS told the right core type (Debian's build
 * takes AVX-512 CPUs for an old core otherwise) and as many threads as lmforge uses.
 */
export function runPeer<T>(script: string, config: object, coreType: string | undefined): T {
  const python = findPython();
  const env = { ...process.env };
  for (const v of variablesSet) delete env[v]; // lmforge's own choices; the peer keeps its defaults
  if (coreType) env.OPENBLAS_CORETYPE = coreType;
  const out = execFileSync(python, [join(PEERS_DIR, script), JSON.stringify(config)], { encoding: "utf8", env, maxBuffer: 1 << 24 });
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!) as T;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

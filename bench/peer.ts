// Finds and runs the PyTorch peer (Python) with its best configuration on this machine.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MALLOC_LIBRARIES } from "../src/torch/malloc.js";
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

export type PeerAllocator = "tcmalloc" | "jemalloc" | "default";

/**
 * The allocator the peer's Python runs with. PyTorch's own CPU launcher
 * (`torch.backends.xeon.run_cpu`) preloads tcmalloc by default, then jemalloc, because glibc
 * returns a large tensor's pages to the system when it is freed and faults them in again at
 * the next step; where page faults are dear (a virtual machine) that alone made the peer's
 * bert-mini masked-LM step 5x slower. So the peer runs under tcmalloc where the library is
 * installed (`scripts/bootstrap.sh` installs libtcmalloc-minimal4; the bench does as root),
 * else with glibc's; $LMFORGE_BENCH_PEER_ALLOCATOR=tcmalloc|jemalloc|default chooses.
 */
export function peerAllocator(): { name: PeerAllocator; library?: string } {
  const asked = process.env.LMFORGE_BENCH_PEER_ALLOCATOR;
  if (asked !== undefined && asked !== "tcmalloc" && asked !== "jemalloc" && asked !== "default") {
    throw new Error(`LMFORGE_BENCH_PEER_ALLOCATOR=${asked}: expected tcmalloc, jemalloc or default`);
  }
  if (asked === "default") return { name: "default" };
  const name = asked ?? "tcmalloc";
  const find = (): string | undefined => MALLOC_LIBRARIES[name].find((f) => existsSync(f));
  let library = find();
  if (!library && name === "tcmalloc" && process.getuid?.() === 0 && spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0) {
    console.error("bench: installing libtcmalloc-minimal4 (Debian) for the PyTorch side of the race, as PyTorch's CPU launcher uses it");
    spawnSync("apt-get", ["install", "-y", "-qq", "libtcmalloc-minimal4"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    library = find();
  }
  if (library) return { name, library };
  if (asked) throw new Error(`LMFORGE_BENCH_PEER_ALLOCATOR=${asked}: ${MALLOC_LIBRARIES[name].join(" or ")} not found (install ${name === "tcmalloc" ? "libtcmalloc-minimal4" : "libjemalloc2"})`);
  return { name: "default" };
}

let chosen: ReturnType<typeof peerAllocator> | undefined;

/**
 * The peer's environment at PyTorch's best here: lmforge's own variables removed (the peer
 * keeps its defaults), OpenBLAS told the right core type (Debian's build takes AVX-512 CPUs
 * for an old core otherwise), and the allocator of peerAllocator() preloaded.
 */
export function peerEnv(coreType: string | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const v of variablesSet) delete env[v];
  if (coreType) env.OPENBLAS_CORETYPE = coreType;
  chosen ??= peerAllocator();
  if (chosen.library) env.LD_PRELOAD = [chosen.library, env.LD_PRELOAD].filter(Boolean).join(" ");
  return env;
}

/** The allocator the peer ran with (for the run's header). */
export function peerAllocatorUsed(): PeerAllocator {
  chosen ??= peerAllocator();
  return chosen.name;
}

/** Runs a peer script with the config as its argument; its answer is the last line of its output, JSON. */
export function runPeer<T>(script: string, config: object, coreType: string | undefined): T {
  const out = execFileSync(findPython(), [join(PEERS_DIR, script), JSON.stringify(config)], { encoding: "utf8", env: peerEnv(coreType), maxBuffer: 1 << 24 });
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!) as T;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Which malloc the process runs with, and the `lmforge` command's restart under a faster one.
//
// Every op makes a TensorImpl, a StorageImpl and (below 1 MiB, where lmforge's own cache does not
// serve) its data block through malloc, and a scope frees a thousand tensors together: more than
// glibc's per-thread cache holds, so glibc's malloc spends its time coalescing and splitting
// chunks (`perf`: a fifth of a loop of small adds in _int_malloc, _int_free, unlink_chunk and
// malloc_consolidate). tcmalloc (Debian's libtcmalloc-minimal4, which PyTorch's CPU launcher
// preloads too) takes that loop from 1.07 to 0.76 us per op here. A running process cannot change
// its malloc, so the command restarts itself in place (execve: same process id, same terminal,
// signals and exit status unchanged) with the library preloaded, before anything else loads.
// This module must not import the addon: it runs before libtorch is loaded.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type MallocName = "tcmalloc" | "jemalloc";

/** Where Debian, Ubuntu and most distributions put tcmalloc and jemalloc, per machine. */
export const MALLOC_LIBRARIES: Record<MallocName, readonly string[]> = {
  tcmalloc: [
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
  ],
  jemalloc: ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2", "/usr/lib64/libjemalloc.so.2"],
};

/** The first installed library of that malloc, if any. */
export function findMalloc(name: MallocName): string | undefined {
  return MALLOC_LIBRARIES[name].find((f) => existsSync(f));
}

/** The malloc this process runs with: the preloaded library's name, else "glibc" (Linux) or "system". */
export function currentMalloc(): MallocName | "glibc" | "system" {
  let maps: string;
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
  } catch {
    return "system";
  }
  if (maps.includes("libtcmalloc")) return "tcmalloc";
  if (maps.includes("libjemalloc")) return "jemalloc";
  return "glibc";
}

/** LMFORGE_MALLOC, checked: tcmalloc, jemalloc, system, or unset (the first of tcmalloc and jemalloc installed). */
export function mallocChoice(value = process.env.LMFORGE_MALLOC): MallocName | "system" | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "tcmalloc" || value === "jemalloc" || value === "system") return value;
  throw new Error(`LMFORGE_MALLOC=${value}: expected tcmalloc, jemalloc or system`);
}

/** Set for the restarted process only: it takes the variable and LD_PRELOAD out of its environment at once. */
const RESTARTED = "LMFORGE_MALLOC_RESTARTED";

/**
 * The restart's plan for this process: the library to preload, or why there is none. Pure
 * (environment and installed files in, decision out) so that tests can ask it directly.
 */
export function restartPlan(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
  find: (name: MallocName) => string | undefined = findMalloc,
): { library: string; name: MallocName } | { skip: string } {
  if (platform !== "linux") return { skip: "not Linux" };
  if (env[RESTARTED] !== undefined) return { skip: "already restarted" };
  const asked = mallocChoice(env.LMFORGE_MALLOC);
  if (asked === "system") return { skip: "LMFORGE_MALLOC=system" };
  if (env.LD_PRELOAD) return { skip: "LD_PRELOAD is set: the user's choice stands" };
  for (const name of asked ? [asked] : (["tcmalloc", "jemalloc"] as const)) {
    const library = find(name);
    if (library) return { library, name };
  }
  if (asked) throw new Error(`LMFORGE_MALLOC=${asked}: ${MALLOC_LIBRARIES[asked].join(" or ")} not found (Debian: apt-get install ${asked === "tcmalloc" ? "libtcmalloc-minimal4" : "libjemalloc2"})`);
  return { skip: "neither tcmalloc nor jemalloc is installed" };
}

interface ExecAddon {
  execve(file: string, argv: string[], env: string[]): never;
}

function loadExec(): ExecAddon | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  for (const root of [join(here, "../.."), join(here, "../../..")]) {
    const path = join(root, "build/Release/lmforge_exec.node");
    if (existsSync(path)) return require(path) as ExecAddon;
  }
  return undefined;
}

/**
 * Called first by the `lmforge` command: restarts the process in place under tcmalloc (or
 * jemalloc) where installed and not yet preloaded, and does nothing otherwise. The restarted
 * process removes LD_PRELOAD from its environment again (the restart happens only where the user
 * set none), so that child processes start as they would have: the benchmark's Python with its
 * own choice, a browser with its own allocator, another `lmforge` with its own restart. A restart
 * that fails leaves the command running under the malloc it has, with a one-line warning.
 */
export function restartUnderFastMalloc(): void {
  if (process.env[RESTARTED] !== undefined) {
    delete process.env[RESTARTED];
    delete process.env.LD_PRELOAD;
    return;
  }
  const plan = restartPlan(process.env);
  if ("skip" in plan) return;
  const exec = loadExec();
  if (!exec) return; // an addon built before this existed: run as before
  const env: Record<string, string> = { ...(process.env as Record<string, string>), [RESTARTED]: "1", LD_PRELOAD: plan.library };
  // tcmalloc reports every allocation over 1 GiB on stderr (a large file read into a Buffer is one)
  env.TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD ??= String(2 ** 50);
  try {
    exec.execve(process.execPath, [process.argv0, ...process.execArgv, ...process.argv.slice(1)], Object.entries(env).map(([k, v]) => `${k}=${v}`));
  } catch (e) {
    console.error(`lmforge: could not restart under ${plan.name} (${(e as Error).message}); running with the system's malloc`);
  }
}

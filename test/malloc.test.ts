// The `lmforge` command's restart under tcmalloc (src/torch/malloc.ts, native/exec.c): the plan
// for each environment, and the real restart from the command line: in place (the same process
// id, so that a parent's signals reach it), with its output intact (Node marks the standard
// streams close-on-exec; the restarted image wrote to /dev/null until exec.c cleared the flag),
// and LD_PRELOAD taken out again for the processes it starts.
import test from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { currentMalloc, findMalloc, mallocChoice, restartPlan, restartUnderFastMalloc } from "../src/torch/malloc.js";

const cli = new URL("../../bin/lmforge.js", import.meta.url).pathname;
const installed = (names: string[]) => (name: string) => (names.includes(name) ? `/lib/lib${name}.so` : undefined);

test("the restart plan: tcmalloc first, then jemalloc; never twice, never over the user's LD_PRELOAD, never off Linux", () => {
  assert.deepEqual(restartPlan({}, "linux", installed(["tcmalloc", "jemalloc"])), { library: "/lib/libtcmalloc.so", name: "tcmalloc" });
  assert.deepEqual(restartPlan({}, "linux", installed(["jemalloc"])), { library: "/lib/libjemalloc.so", name: "jemalloc" });
  assert.deepEqual(restartPlan({ LMFORGE_MALLOC: "jemalloc" }, "linux", installed(["tcmalloc", "jemalloc"])), { library: "/lib/libjemalloc.so", name: "jemalloc" });
  assert.match((restartPlan({}, "linux", installed([])) as { skip: string }).skip, /neither tcmalloc nor jemalloc/);
  assert.match((restartPlan({ LMFORGE_MALLOC: "system" }, "linux", installed(["tcmalloc"])) as { skip: string }).skip, /LMFORGE_MALLOC=system/);
  assert.match((restartPlan({ LD_PRELOAD: "/x.so" }, "linux", installed(["tcmalloc"])) as { skip: string }).skip, /LD_PRELOAD/);
  assert.match((restartPlan({ LMFORGE_MALLOC_RESTARTED: "1" }, "linux", installed(["tcmalloc"])) as { skip: string }).skip, /already/);
  assert.match((restartPlan({}, "darwin", installed(["tcmalloc"])) as { skip: string }).skip, /not Linux/);
  // asked for by name and missing: an error that says what to install, not a silent fallback
  assert.throws(() => restartPlan({ LMFORGE_MALLOC: "tcmalloc" }, "linux", installed(["jemalloc"])), /LMFORGE_MALLOC=tcmalloc: .*libtcmalloc_minimal\.so\.4.* not found .*libtcmalloc-minimal4/);
  assert.throws(() => mallocChoice("tcmaloc"), /LMFORGE_MALLOC=tcmaloc: expected tcmalloc, jemalloc or system/);
  assert.equal(mallocChoice(""), undefined);
});

test("the restarted process takes LMFORGE_MALLOC_RESTARTED and LD_PRELOAD out of its environment, for the processes it starts", () => {
  const saved = { r: process.env.LMFORGE_MALLOC_RESTARTED, p: process.env.LD_PRELOAD };
  try {
    process.env.LMFORGE_MALLOC_RESTARTED = "1";
    process.env.LD_PRELOAD = "/lib/libtcmalloc.so";
    restartUnderFastMalloc(); // the restarted branch: no exec
    assert.equal(process.env.LMFORGE_MALLOC_RESTARTED, undefined);
    assert.equal(process.env.LD_PRELOAD, undefined);
  } finally {
    if (saved.r !== undefined) process.env.LMFORGE_MALLOC_RESTARTED = saved.r;
    if (saved.p !== undefined) process.env.LD_PRELOAD = saved.p;
  }
});

test("`lmforge` restarts itself in place under tcmalloc: same process id, output intact; LMFORGE_MALLOC=system keeps glibc's", { skip: findMalloc("tcmalloc") ? false : "libtcmalloc-minimal4 is not installed (scripts/bootstrap.sh installs it)" }, () => {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.LMFORGE_MALLOC;
  delete env.LMFORGE_MALLOC_RESTARTED;
  const info = (extra: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, [cli, "info", "--json"], { encoding: "utf8", env: { ...env, ...extra } });
    assert.equal(r.status, 0, r.stderr);
    return { ...(JSON.parse(r.stdout) as { malloc: string; pid: number }), childPid: r.pid };
  };
  const fast = info({});
  assert.equal(fast.malloc, "tcmalloc");
  assert.equal(fast.pid, fast.childPid, "the restart must keep the process id the parent knows");
  assert.equal(info({ LMFORGE_MALLOC: "system" }).malloc, "glibc");
  if (!process.env.LD_PRELOAD) assert.equal(currentMalloc(), "glibc", "the test runner itself runs under glibc's malloc");
  const bad = spawnSync(process.execPath, [cli, "info"], { encoding: "utf8", env: { ...env, LMFORGE_MALLOC: "fast" } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /LMFORGE_MALLOC=fast: expected tcmalloc, jemalloc or system/);
});

test("cpuCache.empty() hands tcmalloc's free memory back too (libtorch's small blocks), not only the cache's", { skip: findMalloc("tcmalloc") ? false : "libtcmalloc-minimal4 is not installed (scripts/bootstrap.sh installs it)" }, () => {
  // 2,000 tensors of 800 KB (under the cache's 1 MiB: libtorch's allocator, tcmalloc's memory) made and freed
  const script = `
    const torch = await import(${JSON.stringify(new URL("../src/torch/index.js", import.meta.url).href)});
    const { readFileSync } = await import("node:fs");
    const rss = () => Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]) * 4096 / 2 ** 20;
    const start = rss();
    torch.scope(() => { for (let i = 0; i < 2000; i++) torch.randn([200, 1000]); });
    const freed = rss();
    torch.cpuCache.empty();
    console.log(JSON.stringify({ start, freed, emptied: rss() }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, LD_PRELOAD: findMalloc("tcmalloc")! } });
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(r.stdout.trim().split("\n").pop()!) as { start: number; freed: number; emptied: number };
  assert.ok(m.freed - m.start > 1000, `tcmalloc keeps the freed 1.6 GB until asked: ${JSON.stringify(m)}`);
  assert.ok(m.emptied - m.start < 200, `after empty() RSS is back near where it started: ${JSON.stringify(m)}`);
});

#!/usr/bin/env node
// Finds libtorch for the build, in this order:
//   1. $LIBTORCH: an unpacked libtorch, or any folder with include/ and lib/
//   2. a system install: Debian and Ubuntu's libtorch-dev
//   3. the libtorch inside an installed `torch` Python package (how a user gets CUDA)
// Prints what binding.gyp asks for (--include, --libs, --cflags, --defines) or, with --json,
// everything. --defines says LMFORGE_NCCL=1 where the libtorch is a CUDA one that can make
// NCCL process groups (ncclFor below); nothing for a CPU libtorch, whose build stays as it was.
// Refuses a libtorch major version that lmforge is not tested with, unless
// LMFORGE_ALLOW_UNTESTED_LIBTORCH=1.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const TESTED_MAJORS = [1, 2];
const tried = [];

function versionOf(includeDir) {
  const header = join(includeDir, "torch/csrc/api/include/torch/version.h");
  if (!existsSync(header)) return null;
  const m = /#define TORCH_VERSION_MAJOR (\d+)[\s\S]*#define TORCH_VERSION_MINOR (\d+)[\s\S]*#define TORCH_VERSION_PATCH (\d+)/.exec(
    readFileSync(header, "utf8"),
  );
  return m ? `${m[1]}.${m[2]}.${m[3]}` : null;
}

function candidate(source, includeDir, libDir, extraCflags = []) {
  const version = versionOf(includeDir);
  const hasLib = existsSync(libDir) && readdirSync(libDir).some((f) => /^libtorch(_cpu)?\.(so|dylib)/.test(f));
  tried.push(`${source}: include ${includeDir}, lib ${libDir} -> ${version && hasLib ? "found" : "not found"}`);
  if (!version || !hasLib) return null;
  const libs = readdirSync(libDir);
  const cuda = libs.some((f) => f.startsWith("libtorch_cuda."));
  return { source, version, includeDir, libDir, cuda, extraCflags, nccl: cuda ? ncclFor(includeDir, libDir, libs) : null };
}

/**
 * What an NCCL process group needs at build time, or null: libtorch_cuda and c10_cuda,
 * c10d's ProcessGroupNCCL.hpp, and the headers it includes, nccl.h and CUDA's runtime API
 * (from $CUDA_HOME, /usr/local/cuda, the system, or the pip wheels' nvidia/ packages beside
 * torch). Gives the extra include folders.
 */
function ncclFor(includeDir, libDir, libs) {
  const site = join(libDir, "../..");  // .../site-packages for a pip torch
  const roots = [process.env.CUDA_HOME, "/usr/local/cuda", "/usr", includeDir && join(includeDir, "..")].filter(Boolean);
  const find = (header, wheel) => {
    for (const dir of [...roots.map((r) => join(r, "include")), join(site, "nvidia", wheel, "include")]) if (existsSync(join(dir, header))) return dir;
    return null;
  };
  const needs = {
    "libc10_cuda": libs.some((f) => f.startsWith("libc10_cuda.")),
    "ProcessGroupNCCL.hpp": existsSync(join(includeDir, "torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp")),
  };
  const nccl = find("nccl.h", "nccl");
  const cudart = find("cuda_runtime_api.h", "cuda_runtime");
  const missing = [...Object.entries(needs).filter(([, ok]) => !ok).map(([k]) => k), ...(nccl ? [] : ["nccl.h"]), ...(cudart ? [] : ["cuda_runtime_api.h"])];
  tried.push(`NCCL: ${missing.length ? `not built (missing ${missing.join(", ")})` : "found"}`);
  return missing.length ? null : { includes: [...new Set([nccl, cudart])] };
}

function fromEnv() {
  const dir = process.env.LIBTORCH;
  if (!dir) {
    tried.push("$LIBTORCH: not set");
    return null;
  }
  return candidate("$LIBTORCH", join(dir, "include"), join(dir, "lib"));
}

function fromSystem() {
  for (const libDir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]) {
    if (existsSync(join(libDir, "libtorch.so")) || existsSync(join(libDir, "libtorch_cpu.so"))) {
      const inc = existsSync("/usr/include/torch") ? "/usr/include" : "/usr/local/include";
      return candidate("system libtorch", inc, libDir);
    }
  }
  tried.push("system libtorch (libtorch-dev): not found");
  return null;
}

function fromPython() {
  for (const py of ["python3", "python"]) {
    try {
      const out = execFileSync(
        py,
        ["-c", "import torch, os; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"],
        { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
      ).trim().split("\n");
      const dir = out[0];
      return candidate(`python torch (${py})`, join(dir, "include"), join(dir, "lib"), [`-D_GLIBCXX_USE_CXX11_ABI=${out[1]}`]);
    } catch {
      tried.push(`python torch (${py}): not importable`);
    }
  }
  return null;
}

function find() {
  const found = fromEnv() ?? fromSystem() ?? fromPython();
  if (!found) {
    console.error(
      "lmforge: libtorch was not found. Tried:\n  " + tried.join("\n  ") +
        "\nGet one in any of three ways:\n" +
        "  1. Debian/Ubuntu: sudo apt-get install libtorch-dev\n" +
        "  2. unpack a libtorch archive and set LIBTORCH=/path/to/libtorch\n" +
        "  3. pip install torch (its bundled libtorch is used; this is how to get CUDA)",
    );
    process.exit(1);
  }
  const major = Number(found.version.split(".")[0]);
  if (!TESTED_MAJORS.includes(major) && process.env.LMFORGE_ALLOW_UNTESTED_LIBTORCH !== "1") {
    console.error(
      `lmforge: libtorch ${found.version} (${found.source}) is a major version lmforge is not tested with ` +
        `(tested: ${TESTED_MAJORS.join(", ")}). Set LMFORGE_ALLOW_UNTESTED_LIBTORCH=1 to build anyway.`,
    );
    process.exit(1);
  }
  return found;
}

const lt = find();
const arg = process.argv[2] ?? "--json";
const includes = [lt.includeDir, join(lt.includeDir, "torch/csrc/api/include"), ...(lt.nccl?.includes ?? [])];
const libNames = ["torch", "torch_cpu", "c10", ...(lt.cuda ? ["torch_cuda", "c10_cuda"] : [])];
if (arg === "--include") console.log(includes.join(" "));
else if (arg === "--libs") {
  console.log([`-L${lt.libDir}`, `-Wl,-rpath,${lt.libDir}`, "-Wl,--no-as-needed", ...libNames.map((l) => `-l${l}`), "-Wl,--as-needed"].join(" "));
} else if (arg === "--cflags") console.log(lt.extraCflags.join(" "));
else if (arg === "--defines") console.log(lt.nccl ? "LMFORGE_NCCL=1" : "");
else console.log(JSON.stringify({ ...lt, includes, libNames, tried }, null, 2));

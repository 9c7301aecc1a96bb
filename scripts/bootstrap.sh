#!/usr/bin/env bash
# Installs what lmforge needs and is missing on a Debian or Ubuntu machine, then builds it:
#   - libtorch (Debian's libtorch-dev) unless one is already found ($LIBTORCH, system, python torch)
#   - a fast BLAS for libtorch (OpenBLAS; without it Debian links the slow reference BLAS)
#   - gloo's headers (libgloo-dev), for data-parallel training's process groups
#   - the C++ toolchain for the addon
#   - chromium, for the browser tests of the reports and dashboard
#   - PyTorch for Python (python3-torch), the peer that `lmforge bench` races
#   - the npm dependencies (npm ci), the generated bindings, the addon and the TypeScript
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if ! node scripts/find-libtorch.mjs --json >/dev/null 2>&1; then missing+=(libtorch-dev); fi
if command -v dpkg-query >/dev/null; then
  have_pkg libopenblas0-openmp || have_pkg libopenblas0-pthread || have_pkg libopenblas0 || missing+=(libopenblas0-openmp)
  # gloo's headers, for the process groups of data-parallel training (libtorch_cpu has gloo
  # built in, but Debian's libtorch-dev does not bring the headers its c10d headers include)
  [ -e /usr/include/gloo/algorithm.h ] || have_pkg libgloo-dev || missing+=(libgloo-dev)
fi
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v python3 >/dev/null || missing+=(python3)
# the PyTorch side of `lmforge bench` (its CI run: lmforge bench --quick) is Debian's python3-torch
{ command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; } || have_pkg python3-torch || missing+=(python3-torch)
# and runs under tcmalloc, as PyTorch's own CPU launcher does (bench/peer.ts: peerAllocator)
have_pkg libtcmalloc-minimal4 || missing+=(libtcmalloc-minimal4)
# the browser tests (test/report-browser.test.ts) drive Debian's chromium with playwright-core
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "bootstrap: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "building the addon and the TypeScript"
npm run --silent build
log "ready ($(node -e 'import("./dist/src/index.js").then(m=>{const i=m.runtimeInfo();console.log("libtorch "+i.torchVersion+", "+i.threads+" threads, BLAS core "+(i.openblasCoreType??"auto"))})'))"

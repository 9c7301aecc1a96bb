#!/usr/bin/env node
// The `lmforge` command: the compiled CLI lives in dist/ (npm run build). It first restarts itself
// in place under tcmalloc where installed (dist/src/torch/malloc.js: LMFORGE_MALLOC chooses).
import("../dist/src/torch/malloc.js")
  .then((m) => m.restartUnderFastMalloc())
  .then(() => import("../dist/src/cli/main.js"))
  .then((m) => m.main(process.argv.slice(2)))
  .catch((e) => {
    console.error(`lmforge: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });

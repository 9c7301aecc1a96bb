#!/usr/bin/env node
// The `lmforge` command: the compiled CLI lives in dist/ (npm run build).
import("../dist/src/cli/main.js").then((m) => m.main(process.argv.slice(2))).catch((e) => {
  console.error(`lmforge: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

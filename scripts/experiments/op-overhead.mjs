// The per-op overhead of the engine, alone: 1-element adds in scopes of 1,000 (as `lmforge bench
// engine`'s row), ten timed repeats, one line each. Compare mallocs by preloading them, e.g.
//   OMP_NUM_THREADS=1 node scripts/experiments/op-overhead.mjs 200000
//   OMP_NUM_THREADS=1 LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 node scripts/experiments/op-overhead.mjs 200000
import * as torch from "../../dist/src/torch/index.js";

const n = Number(process.argv[2] ?? 200_000);
const x = torch.keep(torch.ones([1]));
const y = torch.keep(torch.ones([1]));
const run = (count) => {
  for (let i = 0; i < count; i += 1000) torch.scope(() => { for (let j = 0; j < 1000; j++) x.add(y); });
};
run(5000);
const times = [];
for (let r = 0; r < 10; r++) {
  const t = process.hrtime.bigint();
  run(n);
  times.push(Number(process.hrtime.bigint() - t) / 1e3 / n);
}
times.sort((a, b) => a - b);
console.log(`malloc ${torch.runtimeInfo().malloc}: min ${times[0].toFixed(3)} us/op, median ${times[5].toFixed(3)} us/op (${n} ops x 10)`);

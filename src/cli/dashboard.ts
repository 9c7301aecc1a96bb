// `lmforge dashboard [RUN_DIR...]`: the runs' dashboard (src/report/dashboard.ts) on
// 127.0.0.1:8765 by default, until Ctrl-C or SIGTERM.
import { createDashboard, dashboardRuns } from "../report/dashboard.js";
import { UsageError } from "./errors.js";

export async function dashboardCommand(v: Record<string, unknown>, dirs: string[]): Promise<void> {
  const depth = (v.depth as number | undefined) ?? 3;
  let found: string[];
  try {
    found = dashboardRuns(dirs, depth);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const app = createDashboard({ dirs, depth, ...(typeof v.pollMs === "number" ? { pollMs: v.pollMs } : {}) });
  const host = typeof v.host === "string" ? v.host : "127.0.0.1";
  const address = await app.listen({ port: (v.port as number | undefined) ?? 8765, host });
  console.log(`lmforge dashboard: ${address}/ (${found.length} run${found.length === 1 ? "" : "s"} now; new ones appear on reload). Ctrl-C stops it.`);
  if (!/^(127\.|::1$|localhost$)/.test(host)) console.error(`warning: listening on ${host}: anyone who can reach this machine can read these runs`);
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void app.close().then(done);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

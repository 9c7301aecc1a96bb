// `lmforge fewshot`: see src/train/few-shot-study.ts.
import { join } from "node:path";
import { fewShotStudy, fewShotTable } from "../train/few-shot-study.js";
import type { FewShotStudyOptions } from "../train/few-shot-study.js";

/** Runs the study and prints its table; exit status 1 when a run failed. */
export async function fewShotCommand(v: Record<string, unknown>): Promise<void> {
  const { config: _config, ...options } = v;
  const cells = await fewShotStudy(options as unknown as FewShotStudyOptions);
  const out = String(v.out);
  console.log(`\n${fewShotTable(cells)}\n\ntable: ${join(out, "fewshot.md")}, figures: ${join(out, "fewshot.json")}`);
  if (cells.some((c) => c.failed.length)) process.exitCode = 1;
}

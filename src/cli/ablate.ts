// `lmforge ablate`: see src/train/ablate.ts.
import { join } from "node:path";
import { ablate, ablationTable } from "../train/ablate.js";
import type { AblateOptions } from "../train/ablate.js";

export async function ablateCommand(v: Record<string, unknown>): Promise<void> {
  const rows = await ablate(v as unknown as AblateOptions);
  console.log(`\n${ablationTable(rows)}\n\ntable: ${join(v.out as string, "ablation.md")}, figures: ${join(v.out as string, "ablation.json")}`);
  if (rows.some((r) => r.error)) process.exitCode = 1;
}

// `lmforge serve DIR...`: the HTTP server of src/serve for model folders, each under its folder's
// name or --name NAME=DIR. The models run in an inference worker thread (--inference main: on the
// server's thread). Logs are JSON lines on stdout (pino), one per request, texts only with
// --log-request-text; SIGTERM drains, ends the worker and exits 0.
import { existsSync, readFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { parseSize, serve } from "../serve/server.js";
import { UsageError } from "./errors.js";

/** The models to serve, by name: --name NAME=DIR, then each positional DIR under its folder's name. */
export function modelNames(dirs: readonly string[], named: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (name: string, dir: string, how: string): void => {
    if (!existsSync(dir)) throw new UsageError(`${how}: no folder ${dir}`);
    if (name in out) throw new UsageError(`${how}: the name "${name}" is taken already (by ${out[name]}); use --name NAME=DIR`);
    out[name] = dir;
  };
  for (const n of named) {
    const eq = n.indexOf("=");
    if (eq < 1 || eq === n.length - 1) throw new UsageError(`--name must be NAME=DIR, got ${JSON.stringify(n)}`);
    add(n.slice(0, eq), n.slice(eq + 1), `--name ${n}`);
  }
  for (const d of dirs) add(basename(resolve(d)), d, d);
  if (Object.keys(out).length === 0) throw new UsageError("give at least one model folder: lmforge serve DIR... or --name NAME=DIR");
  return out;
}

export async function serveCommand(v: Record<string, unknown>, dirs: string[]): Promise<void> {
  const models = modelNames(dirs, (v.name as string[] | undefined) ?? []);
  let apiKey: string | undefined;
  if (typeof v.apiKeyFile === "string") {
    if (!existsSync(v.apiKeyFile)) throw new UsageError(`--api-key-file ${v.apiKeyFile}: no such file`);
    apiKey = readFileSync(v.apiKeyFile, "utf8").trim();
    if (!apiKey) throw new UsageError(`--api-key-file ${v.apiKeyFile}: the file is empty`);
  }
  let bodyLimit: number | undefined;
  try {
    bodyLimit = typeof v.bodyLimit === "string" ? parseSize(v.bodyLimit) : undefined;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const pick = <K extends string>(...keys: K[]) => Object.fromEntries(keys.filter((k) => v[k] !== undefined).map((k) => [k, v[k]])) as Partial<Record<K, number & string>>;
  await serve({
    models,
    ...pick("port", "host", "maxBatchSize", "maxWaitMs", "queueSize", "timeoutMs", "drainTimeoutMs", "threads", "driftWindow", "driftThreshold", "inference"),
    ...(v.logRequestText === true ? { logRequestText: true } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(bodyLimit !== undefined ? { bodyLimit } : {}),
  });
}

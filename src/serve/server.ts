// `lmforge serve`: an HTTP server (fastify) for model folders. Each model has a bounded queue
// that batches requests dynamically (src/serve/batcher.ts); requests and answers are validated
// by the JSON Schemas of src/serve/schemas.ts, which also make /openapi.json; /metrics is
// Prometheus's (src/serve/metrics.ts); each request logs one JSON line (id, model, route,
// status, latency, batch size; its text only when asked). Classifiers whose folder holds
// input_stats.json are watched for input drift (src/serve/drift.ts). The models live in an
// inference worker thread (src/serve/worker.ts, through src/serve/remote-model.ts), so that a
// running batch leaves the event loop to other requests' I/O; --inference main keeps them on
// this thread (src/serve/host.ts says why one thread hosts them all). SIGTERM stops accepting,
// lets the requests in flight finish within a drain timeout, ends the worker and exits 0.
import { timingSafeEqual, createHash } from "node:crypto";
import Fastify, { LogController } from "fastify";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, RouteOptions } from "fastify";
import { defineOptions, resolveOptions } from "../io/options.js";
import type { GenerateOptions } from "../generate/index.js";
import { Batcher, QueueFullError, TimeoutError } from "./batcher.js";
import type { RunContext } from "./batcher.js";
import { trackConnections } from "./connections.js";
import { createMetrics } from "./metrics.js";
import type { ServerMetrics } from "./metrics.js";
import { createDriftGauges, DriftMonitor, INPUT_STATS_FILE, loadReferenceStats } from "./drift.js";
import type { ReferenceStats } from "../eval/drift.js";
import { CancelledError, InputError, checkGenerateOptions } from "./models.js";
import type { Endpoint, GenerateItem } from "./models.js";
import { HostStoppedError, LocalHost } from "./host.js";
import type { ModelHost, ModelInfo, RunOptions } from "./host.js";
import { WorkerHost } from "./remote-model.js";
import * as S from "./schemas.js";

/** The server's options, declared once: `lmforge serve` makes its flags from these, createServer its defaults. */
export const SERVE_OPTIONS = defineOptions([
  { flag: "name", key: "name", type: "strings", arg: "NAME=DIR", help: "serve DIR under NAME (default: each DIR under its folder's name)" },
  { flag: "port", key: "port", type: "int", min: 0, max: 65535, default: 8080, help: "TCP port (0: any free one)" },
  { flag: "host", key: "host", type: "string", default: "127.0.0.1", help: "address to listen on (0.0.0.0: every interface)" },
  { flag: "max-batch-size", key: "maxBatchSize", type: "int", min: 1, default: 16, arg: "N", help: "most texts per model call; 1 turns dynamic batching off" },
  { flag: "max-wait-ms", key: "maxWaitMs", type: "number", min: 0, default: 5, arg: "MS", help: "longest a request waits for others to batch with" },
  { flag: "queue-size", key: "queueSize", type: "int", min: 1, default: 64, arg: "N", help: "requests waiting or running per model; more are refused with 429 and Retry-After" },
  { flag: "timeout-ms", key: "timeoutMs", type: "int", min: 1, default: 30000, arg: "MS", help: "a request not answered by then gets 504 and leaves the queue; a body not received by then gets 408 (slow clients)" },
  { flag: "api-key-file", key: "apiKeyFile", type: "string", arg: "FILE", help: "require the key in this file: Authorization: Bearer KEY or x-api-key: KEY (health checks excepted)" },
  { flag: "body-limit", key: "bodyLimit", type: "string", arg: "SIZE", default: "1mb", help: "largest request body (bytes, or with kb / mb); larger gets 413" },
  { flag: "threads", key: "threads", type: "int", min: 1, arg: "N", help: "libtorch's intra-op threads of the thread that runs the models (default: OMP_NUM_THREADS, else every core); every model runs there, one batch at a time, so each batch has them all; 1 often serves better on a shared or busy machine" },
  { flag: "inference", key: "inference", type: "string", choices: ["worker", "main"], default: "worker", help: "where the models run: worker (a thread of their own: a running batch does not hold up other requests' I/O, /healthz or /metrics) or main (the server's thread: for a process that makes tensors itself besides serving)" },
  { flag: "drain-timeout-ms", key: "drainTimeoutMs", type: "int", min: 0, default: 10000, arg: "MS", help: "on SIGTERM: how long requests in flight may take to finish" },
  { flag: "log-request-text", key: "logRequestText", type: "boolean", default: false, help: "put each request's body (its texts) in its log line; off by default: texts may be private" },
  { flag: "drift-window", key: "driftWindow", type: "int", min: 10, default: 1000, arg: "N", help: "drift: compare the last N inputs per model with the training-time statistics (input_stats.json)" },
  { flag: "drift-threshold", key: "driftThreshold", type: "number", min: 0, exclusiveMin: true, default: 0.25, arg: "PSI", help: "drift: log a warning when a feature's population stability index passes this (0.1: moderate shift, 0.25: major)" },
] as const);

/** "1mb" -> 1048576; a plain number is bytes. */
export function parseSize(text: string | number, what = "--body-limit"): number {
  if (typeof text === "number") return text;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`${what} must be a size such as 65536, 64kb or 1mb, got ${JSON.stringify(text)}`);
  const scale = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? "b").toLowerCase() as "b"];
  return Math.floor(Number(m[1]) * scale);
}

export interface ServerOptions {
  /** Model name -> folder. */
  models: Record<string, string>;
  maxBatchSize?: number;
  maxWaitMs?: number;
  queueSize?: number;
  timeoutMs?: number;
  /** Requests must carry this key (Authorization: Bearer KEY or x-api-key). */
  apiKey?: string;
  /** Bytes, or text such as "1mb". */
  bodyLimit?: number | string;
  /** fastify's logger: false (default for the library), true, or pino options (a `stream` among them). */
  logger?: boolean | Record<string, unknown>;
  /** Put each request's body in its log line (default false). */
  logRequestText?: boolean;
  /** Drift: inputs per model in the sliding window (default 1000). */
  driftWindow?: number;
  /** Drift: the PSI past which a warning is logged (default 0.25). */
  driftThreshold?: number;
  /** Where the models run (default "worker"); see SERVE_OPTIONS. */
  inference?: "worker" | "main";
  /** libtorch's intra-op threads where the models run (default: OMP_NUM_THREADS, else every core). */
  threads?: number;
}

/** What the server knows beyond fastify's instance: the models as they load, and the draining flag. */
export interface ServerState {
  /** Resolves when every model is loaded and warmed; rejects with the first load error. */
  ready: Promise<void>;
  /** The loaded models' descriptions; the models themselves live in the host. */
  models: Map<string, ModelInfo>;
  /** Where the models run: the inference worker, or this thread. */
  host: ModelHost;
  batchers: Map<string, Batcher>;
  metrics: ServerMetrics;
  /** Drift monitors of the models that have reference statistics. */
  drift: Map<string, DriftMonitor>;
  draining: boolean;
}

declare module "fastify" {
  interface FastifyInstance {
    lmforge: ServerState;
  }
}

/** An HTTP answer other than 200, with the field at fault and headers where they help. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field?: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const ENDPOINTS: { endpoint: Endpoint; schema: object }[] = [
  { endpoint: "classify", schema: S.CLASSIFY_SCHEMA },
  { endpoint: "tokens", schema: S.TOKENS_SCHEMA },
  { endpoint: "answer", schema: S.ANSWER_SCHEMA },
  { endpoint: "generate", schema: S.GENERATE_SCHEMA },
  { endpoint: "embed", schema: S.EMBED_SCHEMA },
];

/** Compares keys in constant time (their SHA-256 digests, so that lengths leak nothing either). */
function sameKey(given: string, expected: string): boolean {
  const h = (s: string): Buffer => createHash("sha256").update(s).digest();
  return timingSafeEqual(h(given), h(expected));
}

/**
 * ajv's error -> the field it names ("texts/0", "context") and a message naming it. Of a
 * oneOf's errors (one per branch), the deepest is the one that names the field at fault.
 */
function validationMessage(e: FastifyError): { message: string; field: string } {
  const errors = (e.validation ?? []).filter((x) => x.keyword !== "oneOf");
  const v = errors.reduce<(typeof errors)[number] | undefined>((best, x) => (!best || x.instancePath.length > best.instancePath.length ? x : best), undefined);
  if (!v) return { message: e.message, field: "" };
  const params = v.params as { missingProperty?: string; additionalProperty?: string };
  const path = v.instancePath.replace(/^\//, "");
  const field = params.missingProperty ? [path, params.missingProperty].filter(Boolean).join("/") : params.additionalProperty ? [path, params.additionalProperty].filter(Boolean).join("/") : path;
  const where = `${e.validationContext ?? "body"}${path ? `/${path}` : ""}`;
  const message = params.additionalProperty ? `${where} has an unknown field "${params.additionalProperty}"` : `${where} ${v.message ?? "is invalid"}`;
  return { message, field };
}

/**
 * Builds the server: routes, validation, metrics, logging. Models load in the background
 * (server.lmforge.ready); /healthz answers at once, /readyz and the model routes once they are
 * loaded and warmed. Call listen() on the result; close() stops it.
 *
 * @example
 * const app = createServer({ models: { sentiment: "out/sst2" }, maxBatchSize: 16 });
 * await app.listen({ port: 8080 });
 * await app.lmforge.ready;
 */
export function createServer(given: ServerOptions): FastifyInstance {
  const o = resolveOptions(SERVE_OPTIONS, { ...given, models: undefined, logger: undefined, apiKey: undefined, bodyLimit: String(given.bodyLimit ?? "1mb") }) as { maxBatchSize: number; maxWaitMs: number; queueSize: number; timeoutMs: number; bodyLimit: string; logRequestText: boolean; driftWindow: number; driftThreshold: number; inference: "worker" | "main"; threads?: number };
  const names = Object.keys(given.models);
  if (names.length === 0) throw new RangeError("createServer: no models to serve");
  for (const n of names) if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n)) throw new RangeError(`model name ${JSON.stringify(n)}: use letters, digits, ".", "_" and "-" (it is a URL path segment)`);
  const app = Fastify({
    logger: given.logger ?? false,
    bodyLimit: parseSize(given.bodyLimit ?? o.bodyLimit),
    logController: new LogController({ disableRequestLogging: true }), // one line per request, written below
    return503OnClosing: true,
    // a client that sends its body too slowly (or stops) gets 408 and loses its connection: node
    // checks every connectionsCheckingInterval, 30 s by default, too coarse for short timeouts
    requestTimeout: o.timeoutMs,
    http: { requestTimeout: o.timeoutMs, headersTimeout: Math.min(60000, o.timeoutMs), connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(o.timeoutMs / 4))) },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });
  // the drift references are read first (a bad one fails ready before any model loads); the
  // host collects the observations of models that have one
  const references = new Map<string, ReferenceStats | null>();
  let badReference: unknown = null;
  try {
    for (const [name, dir] of Object.entries(given.models)) references.set(name, loadReferenceStats(dir));
  } catch (e) {
    badReference = e;
  }
  const hosted = Object.entries(given.models).map(([name, dir]) => ({ name, dir, observe: references.get(name) !== null }));
  const host: ModelHost = o.inference === "main" ? new LocalHost(hosted, o.threads) : new WorkerHost(hosted, o.threads);
  const metrics = createMetrics(() => host.lastStats());
  const state: ServerState = { ready: Promise.resolve(), models: new Map(), host, batchers: new Map(), metrics, drift: new Map(), draining: false };
  app.decorate("lmforge", state);
  const gauges = createDriftGauges(metrics.registry);
  host.onFailure = (e) => app.log.error({ err: e, models: names }, `${e.message}: ${names.join(", ")} answer 503 from now on; restart the server`);

  /** A model's batches: through the host, then the drift monitor hears the inputs before the answers go. */
  const runner = (name: string) => async (endpoint: string, items: unknown[], context: RunContext): Promise<unknown[]> => {
    const out = await host.run(name, endpoint as Endpoint, items, { signal: context.signal, ...(context.hooks as RunOptions | undefined) });
    if (out.observations.length > 0) state.drift.get(name)?.observe(out.observations);
    metrics.tokens.inc({ model: name, endpoint }, out.tokens);
    return out.results;
  };
  const loaded = (m: ModelInfo): void => {
    const { name, dir } = m;
    const reference = references.get(name) ?? null;
    if (reference && m.endpoints.includes("classify")) {
      const monitor = new DriftMonitor(name, reference, { window: o.driftWindow, threshold: o.driftThreshold }, gauges, (event, drifted) => {
        if (drifted) app.log.warn(event, `input drift: ${event.feature}'s PSI ${event.psi} over the last ${event.window} inputs passed ${event.threshold}`);
        else app.log.info(event, `input drift: ${event.feature}'s PSI ${event.psi} is back under ${event.threshold}`);
      });
      state.drift.set(name, monitor);
      app.log.info({ model: name, features: monitor.features, window: o.driftWindow, threshold: o.driftThreshold }, "drift monitoring on");
    } else app.log.info({ model: name }, `drift monitoring off: ${reference ? `it watches classifiers only, and ${name} is a ${m.task} model` : `no ${INPUT_STATS_FILE} in ${dir} (lmforge finetune writes one for classifiers)`}`);
    metrics.loadSeconds.set({ model: name }, m.loadSeconds);
    state.batchers.set(
      name,
      new Batcher(name, runner(name), o, {
        batch: (endpoint, items, _requests, seconds) => {
          metrics.batchSize.observe({ model: name, endpoint }, items);
          metrics.batchSeconds.observe({ model: name, endpoint }, seconds);
        },
        depth: (n) => metrics.queueDepth.set({ model: name }, n),
      }),
    );
    state.models.set(name, m);
    app.log.info({ model: name, dir, task: m.task, parameters: m.parameters, loadSeconds: m.loadSeconds, inference: o.inference }, "model ready");
  };
  state.ready = badReference ? Promise.reject(badReference) : host.load(loaded);
  state.ready.catch(() => undefined); // the caller learns of it through ready and /readyz

  // --- the request's lifecycle: key, metrics, one log line ---------------------------------
  const routes: S.RouteRecord[] = [];
  app.addHook("onRoute", (r: RouteOptions) => {
    if (r.method !== "HEAD" && !(Array.isArray(r.method) && r.method.length === 1 && r.method[0] === "HEAD")) routes.push({ method: r.method, url: r.url, schema: r.schema });
  });
  const open = new Set(["/healthz", "/readyz", "/openapi.json"]);
  app.addHook("onRequest", async (req) => {
    if (given.apiKey === undefined || open.has(req.routeOptions.url ?? "")) return;
    const auth = req.headers.authorization;
    const key = typeof auth === "string" && /^Bearer /i.test(auth) ? auth.slice(7).trim() : req.headers["x-api-key"];
    if (typeof key !== "string" || !sameKey(key, given.apiKey)) throw new HttpError(401, "a valid API key is required (Authorization: Bearer KEY or x-api-key: KEY)");
  });
  // what the log line of a request says beyond its route: the model call's size, a server error
  const batchSizes = new WeakMap<FastifyRequest, number>();
  const failures = new WeakMap<FastifyRequest, unknown>();
  const recorded = new WeakSet<FastifyRequest>();
  const record = (req: FastifyRequest, status: number, seconds: number): void => {
    if (recorded.has(req)) return;
    recorded.add(req);
    const route = req.routeOptions.url ?? "unknown";
    metrics.requests.inc({ route, method: req.method, status: String(status) });
    metrics.latency.observe({ route }, seconds);
    const model = (req.params as { name?: string } | undefined)?.name;
    const batchSize = batchSizes.get(req);
    const line = {
      ...(model ? { model } : {}),
      method: req.method,
      route,
      status,
      latencyMs: Math.round(seconds * 1e4) / 10,
      ...(batchSize !== undefined ? { batchSize } : {}),
      ...(o.logRequestText && req.body !== undefined ? { body: req.body } : {}),
      ...(failures.has(req) ? { err: failures.get(req) } : {}),
    };
    if (failures.has(req)) req.log.error(line, "request");
    else req.log.info(line, "request");
  };
  app.addHook("onResponse", async (req, reply) => record(req, reply.statusCode, reply.elapsedTime / 1000));

  // while draining, each answer closes its connection: keep-alive sockets would hold close() open
  app.addHook("onSend", async (_req, reply) => {
    if (state.draining) void reply.header("connection", "close");
  });
  app.setErrorHandler((e: FastifyError | HttpError | InputError, req, reply) => {
    let status = (e as { statusCode?: number }).statusCode ?? 500;
    let message = e.message;
    let field: string | undefined = e instanceof HttpError ? e.field : undefined;
    if ((e as FastifyError).validation) {
      status = 422;
      ({ message, field } = validationMessage(e as FastifyError));
    } else if (e instanceof QueueFullError) {
      status = 429;
      void reply.header("retry-after", "1");
    } else if (e instanceof TimeoutError) status = 504;
    else if (e instanceof HostStoppedError) status = 503;
    else if (e instanceof CancelledError) status = 499; // nobody waits for it: for the log line
    else if (e instanceof InputError) {
      status = 422;
      field = e.field;
    }
    if (e instanceof HttpError) for (const [k, v] of Object.entries(e.headers)) void reply.header(k, v);
    if (status >= 500 && status !== 503 && status !== 504) failures.set(req, e); // logged with the request's line
    if (status === 400 && (e as FastifyError).code === "FST_ERR_CTP_INVALID_JSON") field = "body";
    const names: Record<number, string> = { 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests", 503: "Service Unavailable", 504: "Gateway Timeout" };
    void reply.status(status).send({ statusCode: status, error: names[status] ?? (status >= 500 ? "Internal Server Error" : "Bad Request"), message, ...(field ? { field } : {}) });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ statusCode: 404, error: "Not Found", message: `no route ${req.method} ${req.url.split("?")[0]}; see /openapi.json` });
  });

  // --- the model a request names, and its trip through the queue -----------------------------
  const modelFor = (req: FastifyRequest, endpoint: Endpoint): ModelInfo => {
    const name = (req.params as { name: string }).name;
    if (!(name in given.models)) throw new HttpError(404, `unknown model "${name}"; serving ${names.join(", ")}`, "name");
    if (host.failure) throw new HttpError(503, `model "${name}" is unavailable: ${host.failure.message}; the server needs a restart`);
    const m = state.models.get(name);
    if (!m) throw new HttpError(503, `model "${name}" is still loading`, undefined, { "retry-after": "1" });
    if (!m.endpoints.includes(endpoint)) throw new HttpError(404, `model "${name}" is a ${m.task} model: it serves ${m.endpoints.map((e) => `/${e}`).join(", ")}, not /${endpoint}`, "name");
    return m;
  };
  const submit = async (req: FastifyRequest, reply: FastifyReply, m: ModelInfo, endpoint: Endpoint, items: unknown[], hooks?: RunOptions): Promise<unknown[]> => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new TimeoutError(o.timeoutMs)), o.timeoutMs);
    // a client that hangs up leaves the queue: its slot goes to the next. Its socket ends (the
    // server keeps half-open sockets to answer on) or closes; as nginx, an end before the
    // answer counts as hanging up (499).
    const socket = req.raw.socket;
    const gone = (): void => {
      if (!reply.raw.writableFinished) abort.abort(new HttpError(499, "the client closed the connection"));
    };
    socket.once("end", gone);
    socket.once("close", gone);
    try {
      return await state.batchers.get(m.name)!.submit(endpoint, items, { signal: abort.signal, batchable: endpoint !== "generate", onRun: (n) => batchSizes.set(req, n), ...(hooks ? { hooks } : {}) });
    } catch (e) {
      // the model's worker stopped: a 503 naming the model
      if (e instanceof HostStoppedError) throw new HttpError(503, `model "${m.name}" is unavailable: ${e.message}; the server needs a restart`);
      throw e;
    } finally {
      clearTimeout(timer);
      socket.off("end", gone);
      socket.off("close", gone);
    }
  };

  // --- routes -------------------------------------------------------------------------------
  // a stopped worker is not restarted: liveness fails too, so that the orchestrator restarts the server
  app.get("/healthz", { schema: S.HEALTH_SCHEMA }, async () => {
    if (host.failure) throw new HttpError(503, `${host.failure.message}: restart the server`);
    return { status: "ok" };
  });
  app.get("/readyz", { schema: S.READY_SCHEMA }, async (_req, reply) => {
    if (state.draining) throw new HttpError(503, "draining: the server is shutting down");
    if (host.failure) throw new HttpError(503, `${host.failure.message}: ${names.join(", ")} cannot answer`);
    const missing = names.filter((n) => !state.models.has(n));
    const failed = await Promise.race([state.ready.then(() => null, (e: Error) => e), Promise.resolve(undefined)]);
    if (failed) throw new HttpError(503, `a model failed to load: ${failed.message}`);
    if (missing.length) {
      void reply.header("retry-after", "1");
      throw new HttpError(503, `loading: ${missing.join(", ")}`);
    }
    return { status: "ready", models: names };
  });
  app.get("/v1/models", { schema: S.MODELS_SCHEMA }, async () => ({
    models: names.map((name) => {
      const m = state.models.get(name);
      return m ? { name, task: m.task, labels: m.labels, maxLength: m.maxLength, parameters: m.parameters, endpoints: m.endpoints, loaded: true } : { name, loaded: false };
    }),
  }));
  app.get("/metrics", { schema: S.METRICS_SCHEMA as FastifySchema }, async (_req, reply) => {
    void reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get("/openapi.json", { schema: S.OPENAPI_SCHEMA as FastifySchema }, async () => S.openapiDocument(routes, { title: "lmforge serve", version: "1" }));

  type Texts = { texts: string[]; pairs?: string[] };
  for (const { endpoint, schema } of ENDPOINTS) {
    app.post(`/v1/models/:name/${endpoint}`, { schema }, async (req, reply) => {
      const m = modelFor(req, endpoint);
      const name = m.name;
      if (endpoint === "generate") return generateRoute(req, reply, m);
      if (endpoint === "answer") {
        const body = req.body as { question: string; context: string } | { question: string; context: string }[];
        return { model: name, results: await submit(req, reply, m, endpoint, Array.isArray(body) ? body : [body]) };
      }
      const body = req.body as Texts & { pooling?: "cls" | "mean" };
      if (body.pairs && body.pairs.length !== body.texts.length) throw new HttpError(422, `body/pairs has ${body.pairs.length} texts for ${body.texts.length} texts; give one pair text per text`, "pairs");
      if (endpoint === "embed") {
        const out = (await submit(req, reply, m, endpoint, body.texts.map((text) => ({ text, pooling: body.pooling ?? "cls" })))) as { vector: number[]; truncated: boolean }[];
        return { model: name, vectors: out.map((r) => r.vector), truncated: out.map((r) => r.truncated) };
      }
      return { model: name, results: await submit(req, reply, m, endpoint, body.texts.map((text, i) => ({ text, ...(body.pairs ? { pair: body.pairs[i] } : {}) }))) };
    });
  }

  /** One prompt: JSON when complete, or server-sent events as the text settles (the worker posts each piece as it comes). */
  async function generateRoute(req: FastifyRequest, reply: FastifyReply, m: ModelInfo): Promise<unknown> {
    const { prompt, stream, ...options } = req.body as { prompt: string; stream?: boolean } & GenerateOptions;
    if (m.generation) checkGenerateOptions(m.generation, options); // a refused combination is a 422 before it queues
    const item: GenerateItem = { prompt, options, deadline: Date.now() + o.timeoutMs, timeoutMs: o.timeoutMs };
    if (!stream) {
      const [r] = (await submit(req, reply, m, "generate", [item])) as { text: string; tokens: number; truncated: boolean }[];
      return { model: m.name, ...r! };
    }
    const raw = reply.raw;
    // node's http corks the socket at each write until the next tick, which a model running on
    // this thread (--inference main) holds back: uncorking sends each event now
    const event = (name: string, data: unknown): void => {
      raw.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      raw.socket?.uncork();
    };
    let started = false;
    const start = (): void => {
      if (started) return;
      started = true;
      reply.hijack();
      raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-request-id": String(req.id) });
    };
    const onText = (text: string): void => {
      start();
      event("token", { text });
    };
    try {
      const [r] = (await submit(req, reply, m, "generate", [item], { onText })) as { text: string; tokens: number; truncated: boolean }[];
      start();
      event("done", { model: m.name, ...r! });
    } catch (e) {
      if (!started) throw e; // nothing sent yet: an ordinary error answer
      event("error", { message: (e as Error).message, statusCode: e instanceof TimeoutError ? 504 : e instanceof HttpError ? e.statusCode : 500 });
    }
    raw.end();
    record(req, 200, reply.elapsedTime / 1000);
    return reply;
  }

  const connections = trackConnections(app.server);
  // preClose runs before the server stops listening and waits for its connections
  app.addHook("preClose", async () => {
    state.draining = true;
    // every connection without a request in flight closes, now and until the server is shut;
    // the others close after their answer (connection: close, above)
    connections.closeIdle();
    const sweep = setInterval(() => connections.closeIdle(), 50).unref();
    app.server.once("close", () => clearInterval(sweep));
  });
  app.addHook("onClose", async () => {
    await Promise.all([...state.batchers.values()].map((b) => b.drained()));
    await host.close();
  });
  return app;
}

/** `lmforge serve`'s run: load, listen, log as JSON lines, drain on SIGTERM or SIGINT and exit 0. */
export async function serve(options: ServerOptions & { port?: number; host?: string; drainTimeoutMs?: number; threads?: number; onListening?: (address: string) => void }): Promise<FastifyInstance> {
  const app = createServer({ logger: options.logger ?? { level: "info" }, ...options });
  const address = await app.listen({ port: options.port ?? 8080, host: options.host ?? "127.0.0.1" });
  options.onListening?.(address);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    app.lmforge.draining = true;
    const drainMs = options.drainTimeoutMs ?? 10000;
    app.log.info({ signal, drainTimeoutMs: drainMs }, "draining: no new connections; finishing the requests in flight");
    const force = setTimeout(() => {
      app.log.error({ drainTimeoutMs: drainMs }, "drain timeout: requests still in flight are dropped");
      process.exit(1);
    }, drainMs);
    force.unref();
    app.close().then(
      () => {
        app.log.info("stopped");
        process.exit(0);
      },
      (e: Error) => {
        app.log.error({ err: e }, "close failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  try {
    await app.lmforge.ready;
    app.log.info({ address, models: Object.keys(options.models) }, "ready");
  } catch (e) {
    app.log.error({ err: e }, "a model failed to load");
    await app.close();
    throw e;
  }
  return app;
}

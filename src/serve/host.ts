// Where the served models live and run. A ModelHost loads the folders, warms each endpoint up
// and runs one batch at a time; the server asks it through this interface only. LocalHost does
// it on the calling thread; the inference worker (src/serve/worker.ts) is a LocalHost driven by
// messages, and WorkerHost (src/serve/remote-model.ts) its main-thread side.
//
// One thread per process may use the native addon: its tensor-handle table is process-wide and
// unguarded, so two threads making or freeing tensors at once corrupt it (measured: two workers
// making tensors crash within seconds). Hence one inference thread per process for every model
// (of every server in it), never a worker per model, and a main thread that makes no tensor
// while the worker serves: a process that makes tensors itself serves with --inference main.
import * as torch from "../torch/index.js";
import type { CpuCacheStats } from "../torch/index.js";
import type { Observation } from "../eval/drift.js";
import { TimeoutError } from "./batcher.js";
import { CancelledError, InputError, loadServedModel } from "./models.js";
import type { Endpoint, ModelInfo, ServedModel } from "./models.js";

export type { ModelInfo };

/** A model to host: its folder, and whether its classified inputs are observed (drift monitoring). */
export interface HostedModel {
  name: string;
  dir: string;
  observe: boolean;
}

/** The native counters: live tensor handles and the CPU allocator's bytes (process-wide), and the host thread's intra-op threads. */
export interface NativeStats {
  liveTensors: number;
  threads: number;
  cpuCache: CpuCacheStats;
}

/** A batch's answer: one result per item, and the drift observations of its inputs (classify). */
export interface RunOutcome {
  results: unknown[];
  observations: Observation[];
  /** Tokens the batch processed: its inputs' and the generated ones. */
  tokens: number;
}

/** What a run of one request hears beside its items. */
export interface RunOptions {
  /** Streaming generation: each piece of settled text. */
  onText?: (text: string) => void;
  /** The callers gave up: the run stops at its next check (a generation step) with CancelledError. */
  signal?: AbortSignal;
}

export interface ModelHost {
  /** Loads and warms the models in order; onLoaded hears each as it is ready. Rejects with the first failure. */
  load(onLoaded: (info: ModelInfo) => void): Promise<void>;
  /** Runs one batch of an endpoint's items (plain data) on a model. */
  run(model: string, endpoint: Endpoint, items: unknown[], options?: RunOptions): Promise<RunOutcome>;
  /** The native counters as of the host's last batch: read without waiting for a running one (/metrics). */
  lastStats(): NativeStats;
  /** The native counters now; with collect, after collecting the inference thread's garbage (tests counting leaks). */
  stats(options?: { collect?: boolean }): Promise<NativeStats>;
  /** Set when the host stopped on its own (the worker crashed); its runs fail with HostStoppedError. */
  readonly failure: Error | null;
  /** Hears the host stop on its own, once. */
  onFailure?: (e: Error) => void;
  /** Frees the host (terminates the worker); runs in flight fail. */
  close(): Promise<void>;
}

/** The inference worker stopped: its models cannot answer (503). */
export class HostStoppedError extends Error {}

export function nativeStats(): NativeStats {
  return { liveTensors: torch.liveTensors(), threads: torch.getNumThreads(), cpuCache: torch.cpuCache.stats() };
}

// A dummy request per endpoint: the first call of a model allocates and tunes, not a client's
const WARMUP: Record<Endpoint, unknown> = {
  classify: { text: "warm up" },
  tokens: { text: "warm up" },
  answer: { question: "warm up?", context: "warm up" },
  embed: { text: "warm up", pooling: "mean" },
  generate: { prompt: "warm up", options: { maxNewTokens: 1 }, deadline: Infinity, timeoutMs: Infinity },
};

/** The models on this thread: `lmforge serve --inference main`, and the inside of the inference worker. */
export class LocalHost implements ModelHost {
  readonly failure = null;
  private readonly models = new Map<string, ServedModel>();
  /** The observations of the batch running now (null: not collecting, as during warm-up). */
  private observations: Observation[] | null = null;
  /** Tokens of the batch running now. */
  private tokens = 0;

  /** threads: libtorch's intra-op threads on this thread (OpenMP's count is per calling thread). */
  constructor(private readonly hosted: readonly HostedModel[], private readonly threads?: number) {}

  async load(onLoaded: (info: ModelInfo) => void): Promise<void> {
    if (this.threads !== undefined) torch.setNumThreads(this.threads);
    for (const { name, dir, observe } of this.hosted) {
      const count = (n: number): void => void (this.tokens += n);
      const m = await loadServedModel(name, dir, observe ? { observe: (obs) => this.observations?.push(...obs), count } : { count });
      for (const e of m.endpoints) m.run(e, [WARMUP[e]]);
      this.models.set(name, m);
      const { run: _run, ...info } = m;
      onLoaded(info);
    }
  }

  async run(model: string, endpoint: Endpoint, items: unknown[], options: RunOptions = {}): Promise<RunOutcome> {
    return this.runChecked(model, endpoint, items, options.onText, () => options.signal?.aborted === true);
  }

  /** run, with cancelling asked of a function (the worker reads it from shared memory). Synchronous inside. */
  async runChecked(model: string, endpoint: Endpoint, items: unknown[], onText: ((text: string) => void) | undefined, cancelled: () => boolean): Promise<RunOutcome> {
    const m = this.models.get(model);
    if (!m) throw new Error(`no model "${model}" is loaded here`);
    if (cancelled()) throw new CancelledError();
    const observations: Observation[] = [];
    this.observations = observations;
    this.tokens = 0;
    try {
      const results = m.run(endpoint, items, { ...(onText ? { onText } : {}), cancelled });
      return { results, observations, tokens: this.tokens };
    } finally {
      this.observations = null;
    }
  }

  lastStats(): NativeStats {
    return nativeStats();
  }

  async stats(options: { collect?: boolean } = {}): Promise<NativeStats> {
    if (options.collect) await collectGarbage();
    return nativeStats();
  }

  async close(): Promise<void> {
    this.models.clear(); // the tensors go with the garbage collector
  }
}

/**
 * Collects garbage and lets the finalizers run: tensors that only the collector frees (kept
 * ones, such as generation's caches) are freed after it. Needs V8's gc, exposed on demand
 * (tests that count leaks; never on a request's path).
 */
export async function collectGarbage(): Promise<void> {
  const { setFlagsFromString } = await import("node:v8");
  const { runInNewContext } = await import("node:vm");
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An error as it crosses the thread boundary: its kind keeps its HTTP status. */
export type WireError =
  | { kind: "input"; message: string; field?: string }
  | { kind: "timeout"; timeoutMs: number }
  | { kind: "cancelled" }
  | { kind: "error"; name: string; message: string; stack?: string };

export function toWire(e: unknown): WireError {
  if (e instanceof InputError) return { kind: "input", message: e.message, ...(e.field !== undefined ? { field: e.field } : {}) };
  if (e instanceof TimeoutError) return { kind: "timeout", timeoutMs: e.timeoutMs };
  if (e instanceof CancelledError) return { kind: "cancelled" };
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: "error", name: err.name, message: err.message, ...(err.stack !== undefined ? { stack: err.stack } : {}) };
}

/** The error a WireError stands for: InputError (422 naming its field), TimeoutError (504), CancelledError, or an Error with the worker's stack (500). */
export function fromWire(w: WireError): Error {
  switch (w.kind) {
    case "input":
      return new InputError(w.message, w.field);
    case "timeout":
      return new TimeoutError(w.timeoutMs);
    case "cancelled":
      return new CancelledError();
    default: {
      const e = new Error(w.message);
      e.name = w.name;
      if (w.stack !== undefined) e.stack = w.stack;
      return e;
    }
  }
}

// The main thread's side of the inference worker (src/serve/worker.ts): a ModelHost whose
// models live in a worker_threads Worker, so that a running batch leaves the event loop free
// for other requests' I/O, /healthz and /metrics.
//
// One inference thread per process, shared by every server in it (tests start several): one
// thread at a time may use the native addon (src/serve/host.ts), and an idle worker may still
// free tensors whenever its garbage collector runs. Each server's WorkerHost loads its models
// there under a host id, and the thread ends with the last host. Each run is a message with an
// id; its answer, its error (a WireError, rebuilt as the error it was) and its streamed text
// come back under that id.
//
// A worker that stops on its own (an uncaught error, exit) fails every run in flight and every
// later one with HostStoppedError (503), and is not restarted: its models would load again for
// seconds, and a crash in native code takes the whole process anyway; the server's /readyz and
// /healthz fail so that the orchestrator replaces it.
import { Worker } from "node:worker_threads";
import * as torch from "../torch/index.js";
import { fromWire, HostStoppedError } from "./host.js";
import type { HostedModel, ModelHost, ModelInfo, NativeStats, RunOptions, RunOutcome } from "./host.js";
import { CANCEL_SLOTS } from "./worker.js";
import type { FromWorker, ToWorker, WorkerData } from "./worker.js";
import type { Endpoint } from "./models.js";

interface Pending {
  host: number;
  resolve(value: never): void;
  reject(e: unknown): void;
  onText?: ((text: string) => void) | undefined;
}

interface Loading {
  onLoaded: (info: ModelInfo) => void;
  resolve(): void;
  reject(e: unknown): void;
}

/** The process's inference worker and its bookkeeping: runs in flight, loads, the cancel ring. */
class InferenceThread {
  readonly worker: Worker;
  failure: Error | null = null;
  /** The hosts using the thread: they hear its failure; the last to leave ends it. */
  readonly hosts = new Map<number, WorkerHost>();
  private readonly pending = new Map<number, Pending>();
  private readonly loading = new Map<number, Loading>();
  private readonly ring = new Int32Array(new SharedArrayBuffer(4 * CANCEL_SLOTS));
  private nextId = 1;
  private ending = false;
  latest: NativeStats | null = null;

  constructor() {
    const data: WorkerData = { cancelled: this.ring.buffer as SharedArrayBuffer };
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: data });
    this.worker.on("message", (m: FromWorker) => this.receive(m));
    this.worker.on("error", (e) => this.stopped(e));
    this.worker.on("exit", (code) => this.stopped(new Error(`it exited with code ${code}`)));
  }

  private receive(m: FromWorker): void {
    if (m.type === "loaded") this.loading.get(m.host)?.onLoaded(m.info);
    else if (m.type === "ready" || m.type === "load-failed") {
      const l = this.loading.get(m.host);
      this.loading.delete(m.host);
      if (m.type === "ready") {
        this.latest = m.stats;
        l?.resolve();
      } else l?.reject(fromWire(m.error));
    } else if (m.type === "text") this.pending.get(m.id)?.onText?.(m.text);
    else {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      this.latest = m.stats;
      if (m.type === "done") p?.resolve({ results: m.results, observations: m.observations, tokens: m.tokens } as never);
      else if (m.type === "failed") p?.reject(fromWire(m.error));
      else p?.resolve(m.stats as never);
    }
  }

  /** The worker is gone: unless its last host left, that is a failure every host hears. */
  private stopped(e: Error): void {
    if (this.ending || this.failure) return;
    const failure = new HostStoppedError(`the inference worker stopped (${e.message})`);
    failure.cause = e;
    this.failure = failure;
    if (shared === this) shared = null; // a later server starts a fresh one
    for (const l of this.loading.values()) l.reject(failure);
    this.loading.clear();
    for (const p of this.pending.values()) p.reject(failure);
    this.pending.clear();
    for (const h of this.hosts.values()) h.onFailure?.(failure);
  }

  load(host: number, models: HostedModel[], threads: number | undefined, onLoaded: (info: ModelInfo) => void): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.loading.set(host, { onLoaded, resolve, reject });
      this.worker.postMessage({ type: "load", host, models, ...(threads !== undefined ? { threads } : {}) } satisfies ToWorker);
    });
  }

  /** Posts a message that expects an answer under its id. */
  request<T>(host: number, message: (id: number) => ToWorker, onText?: (text: string) => void): { id: number; answer: Promise<T> } {
    const id = this.nextId++;
    if (this.failure) return { id, answer: Promise.reject(this.failure) };
    const answer = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { host, resolve: resolve as (v: never) => void, reject, onText });
      this.worker.postMessage(message(id));
    });
    return { id, answer };
  }

  /** A run nobody waits for stops at its next check: its id goes into the shared ring. */
  cancel(id: number): void {
    const slot = 1 + (Atomics.add(this.ring, 0, 1) % (CANCEL_SLOTS - 1));
    Atomics.store(this.ring, slot, id);
  }

  /** A host leaves: its models are dropped, its runs in flight fail; the last host ends the thread. */
  async leave(host: number): Promise<void> {
    this.hosts.delete(host);
    for (const [id, p] of this.pending) {
      if (p.host !== host) continue;
      this.pending.delete(id);
      p.reject(new HostStoppedError("the server closed"));
    }
    if (this.failure) return;
    if (this.hosts.size > 0) {
      this.worker.postMessage({ type: "unload", host } satisfies ToWorker);
      return;
    }
    this.ending = true;
    if (shared === this) shared = null;
    await this.worker.terminate();
  }
}

let shared: InferenceThread | null = null;
let nextHost = 1;

/** A server's models in the process's inference worker; see the file's head. */
export class WorkerHost implements ModelHost {
  onFailure?: (e: Error) => void;
  private thread: InferenceThread | null = null;
  private readonly id = nextHost++;
  private closed = false;

  /** threads: libtorch's intra-op threads in the worker (default: OMP_NUM_THREADS, else every core); with several servers in one process, the last to load sets them. */
  constructor(private readonly models: readonly HostedModel[], private readonly threads?: number) {}

  get failure(): Error | null {
    return this.thread?.failure ?? null;
  }

  /** The worker thread (once load() started it). */
  get worker(): Worker {
    if (!this.thread) throw new Error("the inference worker is not started: call load()");
    return this.thread.worker;
  }

  load(onLoaded: (info: ModelInfo) => void): Promise<void> {
    if (this.thread) throw new Error("load() is called once");
    shared ??= new InferenceThread();
    this.thread = shared;
    this.thread.hosts.set(this.id, this);
    return this.thread.load(this.id, [...this.models], this.threads, onLoaded);
  }

  run(model: string, endpoint: Endpoint, items: unknown[], options: RunOptions = {}): Promise<RunOutcome> {
    const thread = this.thread;
    if (!thread || this.closed) return Promise.reject(new HostStoppedError("the inference worker is not started or closed"));
    const { id, answer } = thread.request<RunOutcome>(this.id, (id) => ({ type: "run", id, host: this.id, model, endpoint, items, stream: options.onText !== undefined }), options.onText);
    const signal = options.signal;
    const cancel = (): void => thread.cancel(id);
    if (signal?.aborted) cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    return answer.finally(() => signal?.removeEventListener("abort", cancel));
  }

  lastStats(): NativeStats {
    // before the first answer: the allocator's counters are safe to read here (it locks), the handle count is not
    return this.thread?.latest ?? { liveTensors: 0, threads: 0, cpuCache: torch.cpuCache.stats() };
  }

  stats(options: { collect?: boolean } = {}): Promise<NativeStats> {
    if (!this.thread || this.closed) return Promise.reject(new HostStoppedError("the inference worker is not started or closed"));
    return this.thread.request<NativeStats>(this.id, (id) => ({ type: "stats", id, collect: options.collect === true })).answer;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.thread?.leave(this.id);
  }
}

// The main thread's side of the inference worker (src/serve/worker.ts): a ModelHost whose
// models live in one worker_threads Worker, so that a running batch leaves the event loop free
// for other requests' I/O, /healthz and /metrics. Each run is a message with an id; its answer,
// its error (a WireError, rebuilt as the error it was) and its streamed text come back under
// that id. A worker that stops on its own (an uncaught error, exit) fails every run in flight
// and every later one with HostStoppedError (503), and is not restarted: its models would load
// again for seconds, and a crash in native code takes the whole process anyway; the server's
// /readyz and /healthz fail so that the orchestrator replaces it.
import { Worker } from "node:worker_threads";
import * as torch from "../torch/index.js";
import { fromWire, HostStoppedError } from "./host.js";
import type { HostedModel, ModelHost, ModelInfo, NativeStats, RunOptions, RunOutcome } from "./host.js";
import { CANCEL_SLOTS } from "./worker.js";
import type { FromWorker, ToWorker, WorkerData } from "./worker.js";
import type { Endpoint } from "./models.js";

interface Pending {
  resolve(value: never): void;
  reject(e: unknown): void;
  onText?: ((text: string) => void) | undefined;
}

/** The models in one inference worker; see the file's head. */
export class WorkerHost implements ModelHost {
  failure: Error | null = null;
  onFailure?: (e: Error) => void;
  private started: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly ring = new Int32Array(new SharedArrayBuffer(4 * CANCEL_SLOTS));
  private nextId = 1;
  private closing = false;
  private latest: NativeStats | null = null;
  private loading: { onLoaded: (info: ModelInfo) => void; resolve(): void; reject(e: unknown): void } | null = null;

  /** threads: the worker's libtorch intra-op threads (default: OMP_NUM_THREADS, else every core). */
  constructor(private readonly models: readonly HostedModel[], private readonly threads?: number) {}

  /** The worker thread (once load() started it). */
  get worker(): Worker {
    if (!this.started) throw new Error("the inference worker is not started: call load()");
    return this.started;
  }

  load(onLoaded: (info: ModelInfo) => void): Promise<void> {
    if (this.started) throw new Error("load() is called once");
    const data: WorkerData = { models: [...this.models], ...(this.threads !== undefined ? { threads: this.threads } : {}), cancelled: this.ring.buffer as SharedArrayBuffer };
    const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: data });
    this.started = worker;
    worker.on("message", (m: FromWorker) => this.receive(m));
    worker.on("error", (e) => this.stopped(e));
    worker.on("exit", (code) => this.stopped(new Error(`it exited with code ${code}`)));
    return new Promise<void>((resolve, reject) => {
      this.loading = { onLoaded, resolve, reject };
    });
  }

  private receive(m: FromWorker): void {
    if (m.type === "loaded") this.loading?.onLoaded(m.info);
    else if (m.type === "ready") {
      this.latest = m.stats;
      this.loading?.resolve();
      this.loading = null;
    } else if (m.type === "load-failed") {
      this.loading?.reject(fromWire(m.error));
      this.loading = null;
      void this.close();
    } else if (m.type === "text") this.pending.get(m.id)?.onText?.(m.text);
    else {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      this.latest = m.stats;
      if (m.type === "done") p?.resolve({ results: m.results, observations: m.observations } as never);
      else if (m.type === "failed") p?.reject(fromWire(m.error));
      else p?.resolve(m.stats as never);
    }
  }

  /** The worker is gone: unless asked to close, that is a failure every run hears. */
  private stopped(e: Error): void {
    if (this.closing || this.failure) return;
    this.failure = new HostStoppedError(`the inference worker stopped (${e.message})`);
    this.failure.cause = e;
    this.loading?.reject(this.failure);
    this.loading = null;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.onFailure?.(this.failure);
  }

  private post<T>(message: ToWorker, onText?: (text: string) => void): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new HostStoppedError("the inference worker is closed"));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(message.id, { resolve: resolve as (v: never) => void, reject, onText });
      this.worker.postMessage(message);
    });
  }

  run(model: string, endpoint: Endpoint, items: unknown[], options: RunOptions = {}): Promise<RunOutcome> {
    const id = this.nextId++;
    const signal = options.signal;
    // a run nobody waits for stops at its next check: its id goes into the shared ring
    const cancel = (): void => {
      const slot = 1 + (Atomics.add(this.ring, 0, 1) % (CANCEL_SLOTS - 1));
      Atomics.store(this.ring, slot, id);
    };
    if (signal?.aborted) cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    const out = this.post<RunOutcome>({ type: "run", id, model, endpoint, items, stream: options.onText !== undefined }, options.onText);
    return out.finally(() => signal?.removeEventListener("abort", cancel));
  }

  lastStats(): NativeStats {
    // before the first answer: the allocator's counters are safe to read here (it locks), the handle count is not
    return this.latest ?? { liveTensors: 0, threads: 0, cpuCache: torch.cpuCache.stats() };
  }

  stats(options: { collect?: boolean } = {}): Promise<NativeStats> {
    return this.post<NativeStats>({ type: "stats", id: this.nextId++, collect: options.collect === true });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const p of this.pending.values()) p.reject(new HostStoppedError("the inference worker was closed"));
    this.pending.clear();
    await this.started?.terminate();
  }
}

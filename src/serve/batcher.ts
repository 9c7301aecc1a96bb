// Dynamic batching with admission control, one queue per model. Requests wait at most
// maxWaitMs (from the oldest one's arrival) for others of the same endpoint, then run as one
// call of at most maxBatchSize items; the results are split back in order. The queue is
// bounded: a request that would make it longer than queueSize is refused at once (429), and a
// request whose signal aborts (its timeout, its client gone) leaves the queue and frees its slot.
// A run may be asynchronous (the model in a worker thread): one batch runs at a time per model,
// so a batch gathers whatever arrived while the previous one ran. A request that aborts while
// its batch runs is answered at once (its error); the run is told to stop (its signal) once no
// request of the batch waits for it, and holds its slots until it ends, since the model is busy.

/** The queue was full when the request came: answer 429 with Retry-After. */
export class QueueFullError extends Error {
  constructor(readonly model: string, readonly queueSize: number) {
    super(`model "${model}" has ${queueSize} requests waiting already; retry later`);
  }
}

/** The request ran out of time before (or while) it ran: answer 504. */
export class TimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the request took longer than ${timeoutMs} ms`);
  }
}

export interface BatcherOptions {
  /** Most items (texts, questions) per run. 1 turns batching off. */
  maxBatchSize: number;
  /** Longest wait for company, in milliseconds, counted from the oldest waiting request. */
  maxWaitMs: number;
  /** Most requests waiting or running; one more is refused. */
  queueSize: number;
}

/** What a run gets besides its items. */
export interface RunContext {
  /** Aborts when every request of the batch has given up (timed out, hung up). */
  signal: AbortSignal;
  /** The hooks its request passed to submit, for a run of one unbatchable request (streamed text). */
  hooks?: unknown;
}

/** Runs one endpoint's items as one call; returns (or resolves with) one result per item, in order. */
export type BatchRun = (endpoint: string, items: unknown[], context: RunContext) => unknown[] | Promise<unknown[]>;

interface Job {
  endpoint: string;
  items: unknown[];
  /** Whether items of other requests may join it (generation runs alone). */
  batchable: boolean;
  arrived: number;
  /** Hears the size of the model call that carries it, as it starts. */
  onRun?: ((items: number, requests: number) => void) | undefined;
  hooks?: unknown;
  /** Answered already (it aborted while its batch ran): the run's result is not for it. */
  settled: boolean;
  /** The running batch's abort, once it runs. */
  batch?: { jobs: Job[]; abort: AbortController };
  resolve(results: unknown[]): void;
  reject(e: unknown): void;
  detach(): void;
}

/** What the batcher reports after each run, for the metrics. */
export interface BatchObserver {
  batch?(endpoint: string, items: number, requests: number, seconds: number): void;
  depth?(waiting: number): void;
}

export class Batcher {
  private readonly queue: Job[] = [];
  private running = 0;
  /** A batch is running: the next one waits for it (one model call at a time per model). */
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;

  constructor(readonly model: string, private readonly run: BatchRun, readonly options: BatcherOptions, private readonly observer: BatchObserver = {}) {
    for (const k of ["maxBatchSize", "queueSize"] as const) if (!Number.isInteger(options[k]) || options[k] < 1) throw new RangeError(`${k} must be an integer >= 1, got ${options[k]}`);
    if (!(options.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${options.maxWaitMs}`);
  }

  /** Requests waiting or running. */
  get depth(): number {
    return this.queue.length + this.running;
  }

  /**
   * Queues items of one request; resolves with their results in order. Rejects at once with
   * QueueFullError when the queue is full, and with the signal's reason when it aborts first.
   * onRun hears the size of the model call that carries the request (for its log line).
   */
  submit(endpoint: string, items: unknown[], options: { signal?: AbortSignal; batchable?: boolean; onRun?: (items: number, requests: number) => void; hooks?: unknown } = {}): Promise<unknown[]> {
    if (this.depth >= this.options.queueSize) return Promise.reject(new QueueFullError(this.model, this.options.queueSize));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (job.settled) return;
        const i = this.queue.indexOf(job);
        if (i >= 0) {
          this.queue.splice(i, 1);
          this.observer.depth?.(this.depth);
        } else if (!job.batch) return; // done
        job.settled = true;
        reject(signal!.reason);
        // running: nobody left to answer stops the run (a generation stops at its next step)
        if (job.batch?.jobs.every((j) => j.settled)) job.batch.abort.abort(signal!.reason);
      };
      const job: Job = {
        endpoint,
        items,
        batchable: options.batchable ?? true,
        arrived: Date.now(),
        onRun: options.onRun,
        hooks: options.hooks,
        settled: false,
        resolve,
        reject,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(job);
      this.observer.depth?.(this.depth);
      this.schedule();
    });
  }

  /** The jobs the next run takes: the head job and the following ones of its endpoint, up to maxBatchSize items. */
  private nextBatch(): { jobs: Job[]; full: boolean } {
    const head = this.queue[0];
    if (!head) return { jobs: [], full: false };
    if (!head.batchable) return { jobs: [head], full: true };
    const jobs = [head];
    let items = head.items.length;
    for (const j of this.queue.slice(1)) {
      if (items >= this.options.maxBatchSize) break;
      if (j.endpoint !== head.endpoint || !j.batchable) continue;
      if (items + j.items.length > this.options.maxBatchSize) break; // FIFO: a request never splits
      jobs.push(j);
      items += j.items.length;
    }
    return { jobs, full: items >= this.options.maxBatchSize };
  }

  // The next run: now when its batch is full, else when the oldest waiting request has waited maxWaitMs.
  private schedule(): void {
    if (this.busy || this.immediate || this.queue.length === 0) return;
    const { full } = this.nextBatch();
    const wait = full ? 0 : Math.max(0, this.queue[0]!.arrived + this.options.maxWaitMs - Date.now());
    if (wait === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.immediate = setImmediate(() => void this.flush());
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), wait);
    }
  }

  private async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.immediate = null;
    const { jobs } = this.nextBatch();
    if (jobs.length === 0) return;
    const batch = { jobs, abort: new AbortController() };
    for (const j of jobs) {
      this.queue.splice(this.queue.indexOf(j), 1);
      j.batch = batch;
    }
    const items = jobs.flatMap((j) => j.items);
    for (const j of jobs) j.onRun?.(items.length, jobs.length);
    this.running += jobs.length;
    this.busy = true;
    const start = process.hrtime.bigint();
    try {
      const results = await this.run(jobs[0]!.endpoint, items, { signal: batch.abort.signal, ...(jobs.length === 1 && jobs[0]!.hooks !== undefined ? { hooks: jobs[0]!.hooks } : {}) });
      if (results.length !== items.length) throw new Error(`${this.model}: ${results.length} results for ${items.length} inputs`);
      let at = 0;
      for (const j of jobs) {
        j.resolve(results.slice(at, at + j.items.length));
        at += j.items.length;
      }
    } catch (e) {
      for (const j of jobs) j.reject(e);
    } finally {
      for (const j of jobs) {
        j.settled = true;
        j.detach();
      }
      this.running -= jobs.length;
      this.busy = false;
      this.observer.batch?.(jobs[0]!.endpoint, items.length, jobs.length, Number(process.hrtime.bigint() - start) / 1e9);
      this.observer.depth?.(this.depth);
      this.schedule();
    }
  }

  /** Waits until nothing is queued or running (graceful shutdown). */
  async drained(pollMs = 5): Promise<void> {
    while (this.depth > 0) await new Promise((r) => setTimeout(r, pollMs));
  }
}

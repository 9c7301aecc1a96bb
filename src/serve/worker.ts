// The inference worker: a worker_threads entry that hosts the served models so that their
// batches run off the server's event loop; one per process, shared by the servers in it
// (src/serve/remote-model.ts, its main-thread side). Each server's models are a LocalHost
// here, under the server's host id. The messages:
//
//   in:  { type: "load", host, models, threads? }              load and warm a server's models
//        { type: "unload", host }                              drop them (the server closed)
//        { type: "run", id, host, model, endpoint, items, stream }   one batch (items: plain JSON)
//        { type: "stats", id, collect }                        the native counters
//   out: { type: "loaded", host, info }                        a model is loaded and warmed
//        { type: "ready", host, stats } / { type: "load-failed", host, error }
//        { type: "text", id, text }                            streamed generation, as it settles
//        { type: "done", id, results, observations, tokens, stats }    a batch's answer
//        { type: "failed", id, error, stats }                  a batch's error (a WireError)
//        { type: "stats", id, stats }
//
// Cancelling crosses as shared memory, since a running batch holds this thread: the main thread
// writes the run's id into a ring of slots (WorkerData.cancelled) that generation reads at every
// step. Batches run one at a time, in the order they came.
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { LocalHost, collectGarbage, nativeStats, toWire } from "./host.js";
import type { HostedModel, ModelInfo, NativeStats, WireError } from "./host.js";
import type { Endpoint } from "./models.js";
import type { Observation } from "../eval/drift.js";

/** What the worker starts with. */
export interface WorkerData {
  /** Int32Array over it: [0] the next slot to write (mod CANCEL_SLOTS), [1..] ids of cancelled runs. */
  cancelled: SharedArrayBuffer;
}

/** The cancel ring's slots: more than the runs the worker can hold queued (one per model). */
export const CANCEL_SLOTS = 64;

export type ToWorker =
  | { type: "load"; host: number; models: HostedModel[]; threads?: number }
  | { type: "unload"; host: number }
  | { type: "run"; id: number; host: number; model: string; endpoint: Endpoint; items: unknown[]; stream: boolean }
  | { type: "stats"; id: number; collect: boolean };

export type FromWorker =
  | { type: "loaded"; host: number; info: ModelInfo }
  | { type: "load-failed"; host: number; error: WireError }
  | { type: "ready"; host: number; stats: NativeStats }
  | { type: "text"; id: number; text: string }
  | { type: "done"; id: number; results: unknown[]; observations: Observation[]; tokens: number; stats: NativeStats }
  | { type: "failed"; id: number; error: WireError; stats: NativeStats }
  | { type: "stats"; id: number; stats: NativeStats };

/** Whether the ring holds id (read by the worker at each generation step: 64 loads). */
export function isCancelled(ring: Int32Array, id: number): boolean {
  for (let i = 1; i < ring.length; i++) if (Atomics.load(ring, i) === id) return true;
  return false;
}

function main(): void {
  const port = parentPort!;
  const ring = new Int32Array((workerData as WorkerData).cancelled);
  const send = (m: FromWorker): void => port.postMessage(m);
  const hosts = new Map<number, LocalHost>();
  port.on("message", (m: ToWorker) => {
    if (m.type === "load") {
      const host = new LocalHost(m.models, m.threads);
      host.load((info) => send({ type: "loaded", host: m.host, info })).then(
        () => {
          hosts.set(m.host, host);
          send({ type: "ready", host: m.host, stats: nativeStats() });
        },
        (e: unknown) => send({ type: "load-failed", host: m.host, error: toWire(e) }),
      );
    } else if (m.type === "unload") {
      void hosts.get(m.host)?.close();
      hosts.delete(m.host);
    } else if (m.type === "stats") {
      void (m.collect ? collectGarbage() : Promise.resolve()).then(() => send({ type: "stats", id: m.id, stats: nativeStats() }));
    } else {
      const onText = m.stream ? (text: string) => send({ type: "text", id: m.id, text }) : undefined;
      const host = hosts.get(m.host);
      // synchronous inside the promise: one batch at a time, in order; the ring is read at the
      // run's start and at every generation step
      const run = host ? host.runChecked(m.model, m.endpoint, m.items, onText, () => isCancelled(ring, m.id)) : Promise.reject(new Error(`no models are loaded for server ${m.host}`));
      run.then(
        (out) => send({ type: "done", id: m.id, results: out.results, observations: out.observations, tokens: out.tokens, stats: nativeStats() }),
        (e: unknown) => send({ type: "failed", id: m.id, error: toWire(e), stats: nativeStats() }),
      );
    }
  });
}

// imported on the main thread for its protocol (WorkerHost): run only as the worker
if (!isMainThread && parentPort) main();

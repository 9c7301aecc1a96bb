// The inference worker: a worker_threads entry that hosts the served models (a LocalHost) so
// that their batches run off the server's event loop. The main thread (WorkerHost,
// src/serve/remote-model.ts) starts it with the models and the thread count; the messages:
//
//   in:  { type: "run", id, model, endpoint, items, stream }   one batch (items: plain JSON)
//        { type: "stats", id, collect }                        the native counters
//   out: { type: "loaded", info }                              a model is loaded and warmed
//        { type: "load-failed", error } / { type: "ready", stats }
//        { type: "text", id, text }                            streamed generation, as it settles
//        { type: "done", id, results, observations, stats }    a batch's answer
//        { type: "failed", id, error, stats }                  a batch's error (WireError)
//        { type: "stats", id, stats }
//
// Cancelling crosses as shared memory, since a running batch holds this thread: the main thread
// writes the run's id into a ring of slots (WorkerData.cancelled) that generation reads at every
// step. Batches run one at a time, in the order they came.
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { LocalHost, nativeStats, toWire } from "./host.js";
import type { HostedModel, NativeStats, WireError } from "./host.js";
import type { Endpoint } from "./models.js";
import type { ModelInfo } from "./host.js";
import type { Observation } from "../eval/drift.js";

/** What the worker starts with. */
export interface WorkerData {
  models: HostedModel[];
  threads?: number;
  /** Int32Array over it: [0] the next slot to write (mod CANCEL_SLOTS), [1..] ids of cancelled runs. */
  cancelled: SharedArrayBuffer;
}

/** The cancel ring's slots: more than the runs one worker can hold queued (one per model). */
export const CANCEL_SLOTS = 64;

export type ToWorker = { type: "run"; id: number; model: string; endpoint: Endpoint; items: unknown[]; stream: boolean } | { type: "stats"; id: number; collect: boolean };

export type FromWorker =
  | { type: "loaded"; info: ModelInfo }
  | { type: "load-failed"; error: WireError }
  | { type: "ready"; stats: NativeStats }
  | { type: "text"; id: number; text: string }
  | { type: "done"; id: number; results: unknown[]; observations: Observation[]; stats: NativeStats }
  | { type: "failed"; id: number; error: WireError; stats: NativeStats }
  | { type: "stats"; id: number; stats: NativeStats };

/** Whether the ring holds id (read by the worker at each generation step: 64 loads). */
export function isCancelled(ring: Int32Array, id: number): boolean {
  for (let i = 1; i < ring.length; i++) if (Atomics.load(ring, i) === id) return true;
  return false;
}

async function main(): Promise<void> {
  const port = parentPort!;
  const data = workerData as WorkerData;
  const ring = new Int32Array(data.cancelled);
  const send = (m: FromWorker): void => port.postMessage(m);
  const host = new LocalHost(data.models, data.threads);
  try {
    await host.load((info) => send({ type: "loaded", info }));
  } catch (e) {
    send({ type: "load-failed", error: toWire(e) });
    return;
  }
  send({ type: "ready", stats: nativeStats() });
  port.on("message", (m: ToWorker) => {
    if (m.type === "stats") {
      void host.stats({ collect: m.collect }).then((stats) => send({ type: "stats", id: m.id, stats }));
      return;
    }
    const onText = m.stream ? (text: string) => send({ type: "text", id: m.id, text }) : undefined;
    // synchronous inside the promise: one batch at a time, in order; the ring is read at the
    // run's start and at every generation step
    host.runChecked(m.model, m.endpoint, m.items, onText, () => isCancelled(ring, m.id)).then(
      (out) => send({ type: "done", id: m.id, results: out.results, observations: out.observations, stats: nativeStats() }),
      (e: unknown) => send({ type: "failed", id: m.id, error: toWire(e), stats: nativeStats() }),
    );
  });
}

// imported on the main thread for its protocol (WorkerHost): run only as the worker
if (!isMainThread && parentPort) await main();

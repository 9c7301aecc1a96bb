// The server's Prometheus metrics (prom-client), in a registry of its own so that several
// servers in one process (tests) keep separate counts: requests by route and status, latency,
// batch sizes, queue depth, model load time, the process's default metrics (memory, CPU,
// event-loop lag) and the native CPU allocator's bytes (src/torch's cpuCache.stats()), as the
// model host last reported them (the inference worker reports with each batch's answer).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { nativeStats } from "./host.js";
import type { NativeStats } from "./host.js";

export interface ServerMetrics {
  registry: Registry;
  requests: Counter<"route" | "method" | "status">;
  latency: Histogram<"route">;
  batchSize: Histogram<"model" | "endpoint">;
  batchSeconds: Histogram<"model" | "endpoint">;
  queueDepth: Gauge<"model">;
  loadSeconds: Gauge<"model">;
  tokens: Counter<"model" | "endpoint">;
}

/** A fresh registry with every metric the server reports; `native` reads the native counters (default: on this thread). */
export function createMetrics(native: () => NativeStats = nativeStats): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "lmforge_" });
  const requests = new Counter({ name: "lmforge_http_requests_total", help: "HTTP requests answered, by route and status", labelNames: ["route", "method", "status"] as const, registers: [registry] });
  const latency = new Histogram({
    name: "lmforge_http_request_duration_seconds",
    help: "time from the request's arrival to its answer",
    labelNames: ["route"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const batchSize = new Histogram({ name: "lmforge_batch_size", help: "items (texts, questions, prompts) per model call", labelNames: ["model", "endpoint"] as const, buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [registry] });
  const batchSeconds = new Histogram({ name: "lmforge_batch_duration_seconds", help: "time of one model call", labelNames: ["model", "endpoint"] as const, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] });
  const queueDepth = new Gauge({ name: "lmforge_queue_depth", help: "requests waiting or running, per model", labelNames: ["model"] as const, registers: [registry] });
  // Prometheus takes rates of counters: rate(lmforge_tokens_total[1m]) is tokens/s
  const tokens = new Counter({ name: "lmforge_tokens_total", help: "tokens processed: the inputs' (after truncation) and the generated ones", labelNames: ["model", "endpoint"] as const, registers: [registry] });
  const loadSeconds = new Gauge({ name: "lmforge_model_load_seconds", help: "time to load a model folder", labelNames: ["model"] as const, registers: [registry] });
  const cache = (key: "inUse" | "mapped" | "cached") => (): number => native().cpuCache[key];
  for (const [name, help, read] of [
    ["lmforge_native_allocator_in_use_bytes", "bytes of the native CPU allocator's blocks (1 MiB and more) held by live tensors", cache("inUse")],
    ["lmforge_native_allocator_mapped_bytes", "bytes the native CPU allocator has mapped: in use plus kept for reuse", cache("mapped")],
    ["lmforge_native_allocator_cached_bytes", "bytes the native CPU allocator keeps for reuse", cache("cached")],
    ["lmforge_live_tensors", "native tensor handles alive", () => native().liveTensors],
  ] as const) {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  }
  return { registry, requests, latency, batchSize, batchSeconds, queueDepth, loadSeconds, tokens };
}

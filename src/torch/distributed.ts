// Process groups and collectives through libtorch's c10d (gloo on the CPU; NCCL on CUDA
// devices in a build made against a CUDA libtorch), with torch.distributed's names:
// initProcessGroup, allReduce, broadcast, allGather, allGatherObject, barrier.
//
// A collective returns a Work at once: the communication runs on the process group's own
// threads while the caller goes on. A Work is waited for either with `await` (the wait runs
// on a libuv worker, the JS thread stays free: the API for users) or with `.wait()` (blocks
// the JS thread: the Trainer, whose step is synchronous, uses it where it needs the result).
//
// Rendezvous follows torch's env:// contract: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (set by `lmforge launch`, torchrun or, through SLURM_PROCID/SLURM_NTASKS, Slurm); rank 0
// hosts the TCPStore. A FileStore (a path every rank can see) replaces the TCPStore when given.
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { native } from "./native.js";
import type { GroupHandle, Handle, WorkHandle } from "./native.js";
import { Tensor, wrap } from "./tensor.js";
import type { DeviceLike } from "./dtype.js";

/** How a rank joins its group. */
export interface InitOptions {
  /**
   * gloo (CPU tensors, the default) or nccl (CUDA tensors), which only an addon built against a
   * CUDA libtorch has (distBackends() says which this one has).
   */
  backend?: "gloo" | "nccl";
  /** NCCL: this rank's GPU (default cuda:LOCAL_RANK); gloo ignores it (CPU). */
  device?: DeviceLike;
  rank: number;
  worldSize: number;
  /** The TCPStore's host (rank 0's address) and port... */
  masterAddr?: string;
  masterPort?: number;
  /** ...or a FileStore: a file every rank can reach (a shared folder). */
  storePath?: string;
  /** Rendezvous and every collective fail after this long (default 300000 ms, or LMFORGE_DIST_TIMEOUT_MS). */
  timeoutMs?: number;
  /** The address gloo's sockets bind to (default: 127.0.0.1 when the master is local, else this host's name). */
  interface?: string;
  /** Gloo's worker threads for this group (default 2, as torch's). */
  threads?: number;
  /** Host the TCPStore here (default: rank 0). */
  isMaster?: boolean;
}

/** What torchrun (or Slurm) tells a worker through the environment. */
export interface RendezvousEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
}

/** The process groups this build of the addon can make: ["gloo"], or ["gloo", "nccl"] where a CUDA libtorch was found at build time. */
export function distBackends(): readonly string[] {
  return native.distBackends;
}

/** The default timeout of rendezvous and collectives. */
export const DEFAULT_TIMEOUT_MS = 300_000;

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}="${v}" is not a non-negative integer`);
  return n;
}

/**
 * The worker's place in a group from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or Slurm's (SLURM_PROCID, SLURM_NTASKS,
 * SLURM_LOCALID, SLURM_NTASKS_PER_NODE; MASTER_ADDR or SLURM_LAUNCH_NODE_IPADDR); null when
 * the process was not started as part of a group.
 */
export function rendezvousFromEnv(env: NodeJS.ProcessEnv = process.env): RendezvousEnv | null {
  const torchrun = env.RANK !== undefined && env.WORLD_SIZE !== undefined;
  const slurm = !torchrun && env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined;
  if (!torchrun && !slurm) return null;
  const rank = envInt(env, torchrun ? "RANK" : "SLURM_PROCID")!;
  const worldSize = envInt(env, torchrun ? "WORLD_SIZE" : "SLURM_NTASKS")!;
  if (worldSize < 1 || rank >= worldSize) throw new Error(`rank ${rank} is not below the world size ${worldSize} (${torchrun ? "RANK, WORLD_SIZE" : "SLURM_PROCID, SLURM_NTASKS"})`);
  const localRank = envInt(env, torchrun ? "LOCAL_RANK" : "SLURM_LOCALID") ?? 0;
  const perNode = torchrun ? envInt(env, "LOCAL_WORLD_SIZE") : Number.parseInt(env.SLURM_NTASKS_PER_NODE ?? "", 10);
  const masterAddr = env.MASTER_ADDR ?? (slurm ? env.SLURM_LAUNCH_NODE_IPADDR : undefined);
  if (!masterAddr) throw new Error(`rank ${rank}: MASTER_ADDR is not set: the workers cannot find rank 0's store`);
  const masterPort = envInt(env, "MASTER_PORT") ?? 29500;
  if (masterPort < 1 || masterPort > 65535) throw new Error(`MASTER_PORT=${masterPort} is not a port (1-65535)`);
  return { rank, worldSize, localRank, localWorldSize: perNode && perNode > 0 ? perNode : 1, masterAddr, masterPort };
}

function isLoopback(addr: string): boolean {
  return addr === "localhost" || addr.startsWith("127.") || addr === "::1";
}

/** A launched collective: `await` it, or `.wait()` to block until it is done. Errors name the rank and the operation. */
export class Work<T> implements PromiseLike<T> {
  private promise: Promise<T> | undefined;

  /** @internal */
  constructor(
    private readonly handle: WorkHandle,
    private readonly convert: (hs: Handle[] | undefined) => T,
  ) {}

  /** Blocks the JS thread until the collective is done; its result (allGather's tensors). */
  wait(): T {
    return this.convert(native.distWait(this.handle));
  }

  then<A = T, B = never>(onDone?: ((value: T) => A | PromiseLike<A>) | null, onError?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    this.promise ??= native.distWaitAsync(this.handle).then((hs) => this.convert(hs));
    return this.promise.then(onDone, onError);
  }
}

const none = (): void => undefined;

// JSON has no NaN or Infinity (they would come back null): they travel as {"$number": "NaN"}.
function keepNonFinite(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? { $number: String(v) } : v;
}
function restoreNonFinite(_key: string, v: unknown): unknown {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$number") return Number((v as { $number: string }).$number);
  }
  return v;
}

/** One rank's membership of a group (torch.distributed's ProcessGroup). */
export class ProcessGroup {
  private handle: GroupHandle | null;

  /** @internal Use initProcessGroup. */
  constructor(
    handle: GroupHandle,
    readonly rank: number,
    readonly worldSize: number,
    readonly timeoutMs: number,
    /** Where this group's tensors live: cpu (gloo) or this rank's GPU (nccl). */
    readonly device: DeviceLike = "cpu",
  ) {
    this.handle = handle;
  }

  /** @internal The native group (the gradient reducer hooks into it). */
  get h(): GroupHandle {
    if (!this.handle) throw new Error(`rank ${this.rank}/${this.worldSize}: the process group was destroyed`);
    return this.handle;
  }

  /**
   * Reduces the tensors over the ranks, in place: sum, avg (the sum over the world size),
   * max or min. Several tensors travel as one flat buffer (one message, as DDP's buckets).
   */
  allReduce(tensors: Tensor | readonly Tensor[], op: "sum" | "avg" | "max" | "min" = "sum"): Work<void> {
    const ts = tensors instanceof Tensor ? [tensors] : tensors;
    return new Work(native.distAllReduce(this.h, ts.map((t) => t._h), op), none);
  }

  /** Every rank's tensors get the root rank's values, in place. */
  broadcast(tensors: Tensor | readonly Tensor[], root = 0): Work<void> {
    const ts = tensors instanceof Tensor ? [tensors] : tensors;
    return new Work(native.distBroadcast(this.h, ts.map((t) => t._h), root), none);
  }

  /** Every rank's tensor (same shape and dtype on every rank), in rank order. */
  allGather(tensor: Tensor): Work<Tensor[]> {
    return new Work(native.distAllGather(this.h, tensor._h), (hs) => (hs ?? []).map(wrap));
  }

  /**
   * Every rank's `value` (anything JSON can carry, and NaN and ±Infinity), in rank order:
   * torch's all_gather_object. Blocking. Two allgathers: the byte lengths, then the UTF-8 JSON
   * padded to the longest. Numbers come back exactly (JSON writes a double's shortest exact form).
   */
  allGatherObject<T>(value: T): T[] {
    const bytes = Buffer.from(JSON.stringify(value, keepNonFinite) ?? "null", "utf8");
    const lengths = this.allGather(this.toDevice(new Float64Array([bytes.length]), "float64")).wait();
    const sizes = lengths.map((t) => new Float64Array(this.toHost(t))[0]!);
    const longest = Math.max(...sizes);
    const padded = new Uint8Array(longest);
    padded.set(bytes);
    const parts = this.allGather(this.toDevice(padded, "uint8")).wait();
    const out = parts.map((t, r) => JSON.parse(Buffer.from(this.toHost(t)).subarray(0, sizes[r]!).toString("utf8"), restoreNonFinite) as T);
    for (const t of [...lengths, ...parts]) t.dispose();
    return out;
  }

  /** Done when every rank has reached it. */
  barrier(): Work<void> {
    return new Work(native.distBarrier(this.h), none);
  }

  /**
   * Throws on every rank, naming the ranks that differ, unless `value` (a model config, a
   * data description) is the same on all of them: its SHA-256 is allgathered.
   */
  checkSame(what: string, value: string): void {
    const digest = createHash("sha256").update(value).digest();
    // 8 bytes of the digest as two int32 words (exact in any dtype gloo carries)
    const mine = new Int32Array([digest.readInt32LE(0), digest.readInt32LE(4)]);
    const all = this.allGather(this.toDevice(mine, "int32")).wait();
    const words = all.map((t) => Array.from(new Int32Array(this.toHost(t))).join(":"));
    for (const t of all) t.dispose();
    const differ = words.map((w, r) => (w === words[0] ? -1 : r)).filter((r) => r >= 0);
    if (differ.length) {
      throw new Error(`rank ${this.rank}/${this.worldSize}: ${what} differs across ranks: rank${differ.length > 1 ? "s" : ""} ${differ.join(", ")} ${differ.length > 1 ? "have" : "has"} another than rank 0's; start every rank with the same ${what}`);
    }
  }

  /** A 1-D tensor of these values on the group's device (NCCL reduces GPU tensors only). */
  private toDevice(values: Float64Array | Int32Array | Uint8Array, dtype: "float64" | "int32" | "uint8"): Tensor {
    const t = new Tensor(native.fromBuffer(values, dtype, [values.length]));
    if (this.device === "cpu") return t;
    const moved = t.to(this.device);
    t.dispose();
    return moved;
  }

  /** A tensor's bytes, copied to the host first when it is on a GPU. */
  private toHost(t: Tensor): ArrayBuffer {
    if (this.device === "cpu") return t.toBuffer();
    const host = t.to("cpu");
    const out = host.toBuffer();
    host.dispose();
    return out;
  }

  /** Releases the group's threads and sockets; the group cannot be used afterwards. */
  destroy(): void {
    if (this.handle) native.distDestroy(this.handle);
    this.handle = null;
    if (defaultGroup === this) defaultGroup = null;
  }
}

let defaultGroup: ProcessGroup | null = null;

/**
 * Joins a process group (torch.distributed.init_process_group): resolves when every rank has
 * joined, rejects within the timeout otherwise, naming this rank and the cause (the store
 * unreachable, a port already taken, world sizes that differ). Without options, the
 * environment's (rendezvousFromEnv). The group becomes the default one of allReduce & co.
 */
export async function initProcessGroup(options?: InitOptions): Promise<ProcessGroup> {
  let o = options;
  if (!o) {
    const env = rendezvousFromEnv();
    if (!env) throw new Error("initProcessGroup: no options and no RANK/WORLD_SIZE (or SLURM_PROCID/SLURM_NTASKS) in the environment");
    o = { rank: env.rank, worldSize: env.worldSize, masterAddr: env.masterAddr, masterPort: env.masterPort };
  }
  const backend = o.backend ?? "gloo";
  if (backend !== "gloo" && backend !== "nccl") throw new Error(`initProcessGroup: unknown backend "${String(backend)}"; use gloo (CPU tensors) or nccl (CUDA tensors)`);
  if (!native.distBackends.includes(backend)) {
    throw new Error(
      `rank ${o.rank}/${o.worldSize}: backend nccl is not in this build of lmforge's addon: it was compiled without a CUDA libtorch ` +
        "(NCCL needs libtorch_cuda, c10_cuda, ProcessGroupNCCL.hpp, nccl.h and CUDA's headers at build time: `node scripts/find-libtorch.mjs --json` says what was missing); " +
        "use backend gloo, or rebuild the addon (npm run build:native) against a CUDA libtorch",
    );
  }
  for (const [name, v, min] of [["rank", o.rank, 0], ["worldSize", o.worldSize, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`initProcessGroup: ${name} must be an integer >= ${min}, got ${v}`);
  }
  if (o.rank >= o.worldSize) throw new RangeError(`initProcessGroup: rank ${o.rank} is not below the world size ${o.worldSize}`);
  const envTimeout = process.env.LMFORGE_DIST_TIMEOUT_MS ? Number(process.env.LMFORGE_DIST_TIMEOUT_MS) : undefined;
  const timeoutMs = o.timeoutMs ?? envTimeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`initProcessGroup: timeoutMs must be a positive integer, got ${timeoutMs}`);
  if (o.storePath === undefined && (o.masterAddr === undefined || o.masterPort === undefined)) {
    throw new Error("initProcessGroup: give masterAddr and masterPort (a TCPStore on rank 0) or storePath (a FileStore)");
  }
  const port = o.masterPort ?? 0;
  if (o.storePath === undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new RangeError(`initProcessGroup: masterPort must be a port (1-65535), got ${port}`);
  const masterAddr = o.masterAddr ?? "127.0.0.1";
  const handle = await native.distInit({
    store: o.storePath === undefined ? "tcp" : "file",
    backend,
    host: masterAddr,
    port,
    isMaster: o.isMaster ?? o.rank === 0,
    path: o.storePath ?? "",
    interface: o.interface ?? (isLoopback(masterAddr) ? "127.0.0.1" : hostname()),
    rank: o.rank,
    worldSize: o.worldSize,
    timeoutMs,
    threads: o.threads ?? 2,
  });
  const device: DeviceLike = backend === "nccl" ? (o.device ?? `cuda:${rendezvousFromEnv()?.localRank ?? 0}`) : "cpu";
  const group = new ProcessGroup(handle, o.rank, o.worldSize, timeoutMs, device);
  defaultGroup = group;
  return group;
}

/** The group initProcessGroup made last (torch.distributed's default group). */
export function getDefaultGroup(): ProcessGroup {
  if (!defaultGroup) throw new Error("no process group: call initProcessGroup first");
  return defaultGroup;
}

/** The default group's allReduce (see ProcessGroup.allReduce). */
export function allReduce(tensors: Tensor | readonly Tensor[], op: "sum" | "avg" | "max" | "min" = "sum"): Work<void> {
  return getDefaultGroup().allReduce(tensors, op);
}
/** The default group's broadcast. */
export function broadcast(tensors: Tensor | readonly Tensor[], root = 0): Work<void> {
  return getDefaultGroup().broadcast(tensors, root);
}
/** The default group's allGather. */
export function allGather(tensor: Tensor): Work<Tensor[]> {
  return getDefaultGroup().allGather(tensor);
}
/** The default group's barrier. */
export function barrier(): Work<void> {
  return getDefaultGroup().barrier();
}
/** Destroys the default group. */
export function destroyProcessGroup(): void {
  defaultGroup?.destroy();
}

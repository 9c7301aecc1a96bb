# What every PyTorch peer shares: its threads, its peak RSS per case (as bench/row.ts measures
# lmforge's), the timing loop, and the one JSON line it answers with.
import json, sys, time
import torch

def config():
    """The bench's JSON (argv[1]), with torch set to lmforge's thread count."""
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    return cfg

def release_free_memory():
    """Hands the memory the malloc keeps back to the system, where it can: tcmalloc's
    MallocExtension_ReleaseFreeMemory (the peer runs under tcmalloc), glibc's malloc_trim; so that
    an earlier case's freed memory does not count in the next case's peak (lmforge empties its
    cache before each case)."""
    import ctypes, gc
    gc.collect()
    lib = ctypes.CDLL(None)
    for name in ("MallocExtension_ReleaseFreeMemory", "malloc_trim"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn(*([0] if name == "malloc_trim" else []))
            return

def reset_peak_rss():
    # memory freed by earlier cases returned first, then VmHWM back to the current RSS
    # (Linux >= 4.0), so the next read is this case's peak
    release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def median_time(fn, warmup, steps):
    """Median seconds of `steps` calls of fn after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]

def fastest(variants, measure, higher_is_better):
    """Runs measure(variant) for each variant; (value, variant) of the best, the peer at its best."""
    best = None
    for v in variants:
        x = measure(v)
        if best is None or (x > best[0] if higher_is_better else x < best[0]):
            best = (x, v)
    return best

def answer(results):
    """results: one {"value", "rssMB", "variant"} per case, in the bench's order."""
    print(json.dumps({"torch": torch.__version__, "results": results}))

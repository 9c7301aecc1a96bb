// A caching CPU allocator for large tensors, installed as libtorch's CPU allocator.
//
// Why: glibc serves allocations above 32 MiB (its largest mmap threshold) with a fresh mmap
// and unmaps them on free, so every large activation is first touched page by page: a 50 MB
// (4096 x 3072 float) tensor costs ~12,000 page faults, ~10 ms, which is more than the op
// that fills it (an add into a warm buffer takes 2 ms). Training and batched inference make
// such tensors every layer. Here blocks of 1 MiB and more are
//   - mapped by size class: from 8 MiB, in 2 MiB-aligned regions with MADV_HUGEPAGE (first
//     touch: one fault per 2 MiB; rounding wastes at most a fifth), below in 64 KiB steps,
//   - kept on free, by size, and handed out again to a request of the same rounded size
//     (or up to 1/8 larger), so that a training step's activations reuse last step's pages,
//   - released when the cache passes its limit (LMFORGE_CPU_CACHE_MB, default a quarter of
//     physical memory up to 16 GiB, 0 turns the cache off), least recently freed first, or
//     when asked (emptyCache), and all of it before an allocation that the system refuses is
//     tried again. Least recently freed, not largest: a long-lived process (a benchmark of
//     many models, training with evaluation phases) fills the cache with blocks of shapes it
//     no longer makes, and evicting the largest first threw out the current step's own biggest
//     activations instead, which were mapped and zeroed again every step (a Llama-style
//     training step ran at half speed after three other models had run in the process).
// Smaller blocks go to libtorch's own allocator unchanged.
#include "lmf.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <unordered_map>
#include <mutex>

namespace lmf {
namespace {

constexpr size_t kMinCached = size_t(1) << 20;  // 1 MiB
constexpr size_t kHuge = size_t(2) << 20;       // 2 MiB: the x86-64 huge page
constexpr size_t kMinHuge = size_t(8) << 20;    // blocks from here on huge pages
constexpr size_t kStep = size_t(64) << 10;      // rounding below that

// A mapped block: its address and mapped bytes.
struct Block {
  void* ptr;
  size_t size;
};

// A cached block's address and when it was freed (a counter), so that the cache can evict the
// least recently freed first.
struct Cached {
  void* ptr;
  uint64_t freed;
};

size_t round_up(size_t n) {
  const size_t step = n >= kMinHuge ? kHuge : kStep;
  return (n + step - 1) / step * step;
}

void* map_block(size_t size) {
  if (size < kMinHuge) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // Over-map by one huge page and trim, so that the block starts on a 2 MiB boundary.
  size_t span = size + kHuge;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kHuge - 1) & ~(uintptr_t(kHuge) - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t end = aligned + size;
  uintptr_t raw_end = start + span;
  if (raw_end > end) munmap(reinterpret_cast<void*>(end), raw_end - end);
  void* p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

size_t default_limit() {
  if (const char* env = std::getenv("LMFORGE_CPU_CACHE_MB")) {
    char* end = nullptr;
    unsigned long long mb = std::strtoull(env, &end, 10);
    if (end != env) return static_cast<size_t>(mb) << 20;
  }
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return size_t(1) << 30;
  return std::min(static_cast<size_t>(pages) * static_cast<size_t>(page) / 4, size_t(16) << 30);
}

// The data pointer is its own deleter context (libtorch's raw_allocate asks for that), so
// a block's size is found by address.
class CachingAllocator final : public c10::Allocator {
 public:
  explicit CachingAllocator(c10::Allocator* fallback) : fallback_(fallback), limit_(default_limit()) {}

  c10::DataPtr allocate(size_t n) const override {
    if (n < kMinCached || limit_ == 0) return fallback_->allocate(n);
    size_t size = round_up(n);
    Block b = take(size);
    if (!b.ptr) {
      void* p = map_block(size);
      if (!p) {
        empty();  // the cache may be what stands in the way
        p = map_block(size);
      }
      if (!p) throw std::bad_alloc();
      b = {p, size};
      std::lock_guard<std::mutex> lock(mu_);
      stats_.mapped += size;
      stats_.misses++;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.in_use += b.size;
      live_.emplace(b.ptr, b.size);
    }
    return {b.ptr, b.ptr, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  CacheStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    CacheStats s = stats_;
    s.limit = limit_;
    return s;
  }

  void set_limit(size_t bytes) {
    limit_ = bytes;
    trim(bytes);
  }

  void empty() const { trim(0); }

  static CachingAllocator* instance() {
    static CachingAllocator* a = new CachingAllocator(c10::GetCPUAllocator());  // never destroyed: blocks outlive statics
    return a;
  }

 private:
  static void release(void* ptr) { instance()->give_back(ptr); }

  Block take(size_t size) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(size);
    if (it == free_.end() || it->first > size + size / 8) return {nullptr, 0};
    Block b{it->second.ptr, it->first};
    lru_.erase(it->second.freed);
    free_.erase(it);
    stats_.cached -= b.size;
    stats_.hits++;
    return b;
  }

  void give_back(void* ptr) const {
    Block b{nullptr, 0};
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(ptr);
      if (it != live_.end()) {
        b = {ptr, it->second};
        live_.erase(it);
        stats_.in_use -= b.size;
        if (b.size <= limit_) {
          const uint64_t freed = ++clock_;
          lru_.emplace(freed, free_.emplace(b.size, Cached{ptr, freed}));
          stats_.cached += b.size;
          b.ptr = nullptr;
        }
      }
    }
    if (!b.size) {
      fallback_->raw_deleter()(ptr);  // a small block: libtorch's own
      return;
    }
    if (b.ptr) unmap(b);
    trim(limit_);
  }

  // Unmaps cached blocks, least recently freed first, until the cache holds at most `bytes`.
  void trim(size_t bytes) const {
    for (;;) {
      Block b{nullptr, 0};
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stats_.cached <= bytes || lru_.empty()) return;
        auto oldest = lru_.begin();
        auto it = oldest->second;
        b = {it->second.ptr, it->first};
        lru_.erase(oldest);
        free_.erase(it);
        stats_.cached -= b.size;
      }
      unmap(b);
    }
  }

  void unmap(Block b) const {
    munmap(b.ptr, b.size);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.mapped -= b.size;
  }

  c10::Allocator* fallback_;
  std::atomic<size_t> limit_;
  mutable std::mutex mu_;
  mutable std::multimap<size_t, Cached> free_;       // cached blocks by size
  using FreeIt = std::multimap<size_t, Cached>::iterator;
  mutable std::map<uint64_t, FreeIt> lru_;            // the same blocks by when they were freed
  mutable uint64_t clock_ = 0;
  mutable std::unordered_map<void*, size_t> live_;  // blocks in use: address -> size
  mutable CacheStats stats_{};
};

}  // namespace

void install_caching_allocator() {
  // Priority 1 wins over libtorch's default (registered at 0).
  c10::SetCPUAllocator(CachingAllocator::instance(), 1);
}

CacheStats cache_stats() { return CachingAllocator::instance()->stats(); }
void cache_empty() {
  clear_linear_cache();  // its transposed weights are among what is freed
  CachingAllocator::instance()->empty();
}
void cache_set_limit(size_t bytes) { CachingAllocator::instance()->set_limit(bytes); }

}  // namespace lmf

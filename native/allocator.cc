// A caching CPU allocator for large tensors, installed as libtorch's CPU allocator.
//
// Why: glibc serves allocations above 32 MiB (its largest mmap threshold) with a fresh mmap
// and unmaps them on free, so every large activation is first touched page by page: a 50 MB
// (4096 x 3072 float) tensor costs ~12,000 page faults, ~10 ms, which is more than the op
// that fills it (an add into a warm buffer takes 2 ms). Training and batched inference make
// such tensors every layer. Here blocks of 1 MiB and more are
//   - mapped by size class: from 8 MiB, in 2 MiB-aligned regions with MADV_HUGEPAGE (first
//     touch: one fault per 2 MiB; rounding wastes at most a fifth), below in 64 KiB steps,
//   - kept on free as address ranges, merged with free neighbours, and handed out again by best
//     fit, split when 1 MiB or more is left over, so that a training step's activations reuse
//     last step's pages. Reuse by exact size class, as before, kept every class's own peak:
//     a checkpointed step recomputes a layer's activations and then makes its gradients, of
//     other shapes, so the cache held both sets (bert-base, batch 16: 2,067 MB mapped for a
//     1,270 MB peak in use; merged and split, 1,538, and no new mappings after the first step),
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
#include <dlfcn.h>
#include <malloc.h>
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
      stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
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

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_in_use = stats_.in_use;
  }

  static CachingAllocator* instance() {
    static CachingAllocator* a = new CachingAllocator(c10::GetCPUAllocator());  // never destroyed: blocks outlive statics
    return a;
  }

 private:
  static void release(void* ptr) { instance()->give_back(ptr); }

  // Best fit among the free ranges: the smallest that holds `size`, split when what is left is
  // worth keeping (1 MiB and more), else handed out whole (at most 1 MiB over).
  Block take(size_t size) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_size_.lower_bound(size);
    if (it == by_size_.end()) return {nullptr, 0};
    const uintptr_t addr = it->second;
    const size_t have = it->first;
    const uint64_t freed = by_addr_.at(addr).freed;
    erase_free(addr);
    const size_t give = have - size >= kMinCached ? size : have;
    if (give < have) insert_free(addr + give, have - give, freed);
    stats_.cached -= give;
    stats_.hits++;
    return {reinterpret_cast<void*>(addr), give};
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
          // merged with free neighbours, so that memory freed as one shape serves the next
          uintptr_t start = reinterpret_cast<uintptr_t>(ptr);
          size_t size = b.size;
          auto next = by_addr_.find(start + size);
          if (next != by_addr_.end()) {
            size += next->second.size;
            erase_free(next->first);
          }
          auto prev = by_addr_.lower_bound(start);
          if (prev != by_addr_.begin()) {
            --prev;
            if (prev->first + prev->second.size == start) {
              start = prev->first;
              size += prev->second.size;
              erase_free(start);
            }
          }
          insert_free(start, size, ++clock_);
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

  // Unmaps free ranges, least recently freed first, until the cache holds at most `bytes`.
  void trim(size_t bytes) const {
    for (;;) {
      Block b{nullptr, 0};
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stats_.cached <= bytes || by_age_.empty()) return;
        const uintptr_t addr = by_age_.begin()->second;
        b = {reinterpret_cast<void*>(addr), by_addr_.at(addr).size};
        erase_free(addr);
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

  // The three indexes of the free ranges change together (callers hold mu_).
  void insert_free(uintptr_t addr, size_t size, uint64_t freed) const {
    by_addr_.emplace(addr, Range{size, freed});
    by_size_.emplace(size, addr);
    by_age_.emplace(freed, addr);
  }

  void erase_free(uintptr_t addr) const {
    auto it = by_addr_.find(addr);
    auto [lo, hi] = by_size_.equal_range(it->second.size);
    for (auto s = lo; s != hi; ++s) {
      if (s->second == addr) {
        by_size_.erase(s);
        break;
      }
    }
    // (ages are unique; the address check is for safety, not for sharing)
    auto [alo, ahi] = by_age_.equal_range(it->second.freed);
    for (auto a = alo; a != ahi; ++a) {
      if (a->second == addr) {
        by_age_.erase(a);
        break;
      }
    }
    by_addr_.erase(it);
  }

  c10::Allocator* fallback_;
  std::atomic<size_t> limit_;
  mutable std::mutex mu_;
  // Free ranges: address ranges the cache has mapped and no tensor holds, merged when they touch
  // (ranges of separate mappings that happen to be adjacent too: munmap and tensors take any span)
  struct Range {
    size_t size;
    uint64_t freed;  // when its last part was freed: trim takes the oldest first
  };
  mutable std::map<uintptr_t, Range> by_addr_;
  mutable std::multimap<size_t, uintptr_t> by_size_;
  mutable std::multimap<uint64_t, uintptr_t> by_age_;
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
void cache_reset_peak() { CachingAllocator::instance()->reset_peak(); }
void cache_empty() {
  clear_linear_cache();  // its transposed weights are among what is freed
  CachingAllocator::instance()->empty();
  // and what the malloc under libtorch's small blocks keeps: tcmalloc (which the lmforge command
  // runs under) holds freed memory until asked, glibc's malloc returns its heap's free top
  using Release = void (*)();
  static const Release tcmalloc_release = reinterpret_cast<Release>(dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"));
  if (tcmalloc_release)
    tcmalloc_release();
  else
    malloc_trim(0);
}
void cache_set_limit(size_t bytes) { CachingAllocator::instance()->set_limit(bytes); }

}  // namespace lmf

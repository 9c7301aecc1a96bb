// What the c10d bindings share (distributed.cc: groups and collectives; reducer.cc: the
// gradient buckets reduced during the backward).
#pragma once

#include "lmf.h"

// The header hides ProcessGroupGloo unless libtorch was built with gloo, which Debian's
// libtorch and the pip wheels were (libtorch_cpu exports it); the headers it includes come
// from libgloo-dev (or the wheel's include/). Defined here, not in binding.gyp, so that
// the other sources' compile commands stay as they were.
#if !defined(LMF_NO_GLOO) && __has_include(<gloo/algorithm.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define LMF_HAVE_GLOO 1
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

// NCCL (CUDA tensors) beside gloo: binding.gyp defines LMFORGE_NCCL only where it found a
// CUDA libtorch (libtorch_cuda, c10_cuda) with ProcessGroupNCCL.hpp, nccl.h and CUDA's headers
// (scripts/find-libtorch.mjs --defines); the CPU build never sees this header.
#if defined(LMF_HAVE_GLOO) && defined(LMFORGE_NCCL)
#define USE_C10D_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#ifdef LMF_HAVE_GLOO
#include <torch/version.h>
namespace lmf {

// What gloo and NCCL groups have in common, so that every collective is written once:
// c10d::ProcessGroup up to libtorch 1.13, c10d::Backend from 2.0 on.
#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif

// One rank's membership of a group. JS holds it as an external; destroy() or the garbage
// collector releases the process group (its threads and sockets) and the store.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Backend> pg;
  std::string backend;  // "gloo" | "nccl"
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  std::string label() const { return "rank " + std::to_string(rank) + "/" + std::to_string(size); }
};

// A launched collective. done/error are set by the first wait (sync or async); a second wait
// returns the same outcome. `finish` runs after a successful wait: the average's division,
// the copy back from a flattened bucket.
struct Pending {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;   // "allreduce"
  std::string label;  // "rank 1/2"
  std::function<void()> finish;
  std::vector<at::Tensor> result;  // allgather: one tensor per rank
  std::mutex m;
  bool done = false;
  std::string error;

  void wait() {
    std::lock_guard<std::mutex> lock(m);
    if (done) return;
    try {
      work->wait();
      if (finish) finish();
    } catch (const c10::Error& e) {
      error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) error = label + ": " + what + " failed: " + first_lines(error);
    done = true;
    finish = nullptr;
    work.reset();
  }

  // libtorch messages carry a C++ source location and a backtrace: keep the first 3 lines.
  static std::string first_lines(const std::string& s) {
    size_t pos = 0;
    for (int i = 0; i < 3 && pos != std::string::npos; i++) pos = s.find('\n', pos + 1);
    std::string out = pos == std::string::npos ? s : s.substr(0, pos);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }
};

// The group an external from distInit holds (throws a TypeError naming op otherwise).
Group* group_arg(napi_env env, napi_value v, const char* op);

}  // namespace lmf
#endif  // LMF_HAVE_GLOO


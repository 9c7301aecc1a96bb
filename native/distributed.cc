// Process groups through libtorch's c10d: a TCPStore or FileStore rendezvous, a
// ProcessGroupGloo (CPU tensors) or, in a build with a CUDA libtorch, a ProcessGroupNCCL (CUDA
// tensors), and their collectives (allreduce, broadcast, allgather, barrier), written once
// against what the two have in common (lmf::Backend).
//
// A collective is launched on the JS thread and runs on the process group's own threads
// (gloo's work queue), so that the caller goes on computing while it runs. It comes back as a
// work handle that is waited for either synchronously (distWait: the Trainer, which is
// synchronous, blocks the JS thread exactly where it needs the result) or through a Promise
// (distWaitAsync: Work::wait() runs on a libuv worker and the JS thread stays free).
// Rendezvous blocks until every rank has joined, so distInit always runs on a libuv worker.
//
// Every error names the rank, the world size and the operation: "rank 1/2: allreduce: ...".
#include "distributed.h"

#ifdef LMF_HAVE_GLOO
using lmf::ArgError;
using lmf::Group;
using lmf::Pending;
using lmf::group_arg;

namespace lmf {
Group* group_arg(napi_env env, napi_value v, const char* op) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  void* data = nullptr;
  if (t != napi_external || napi_get_value_external(env, v, &data) != napi_ok || data == nullptr)
    lmf::arg_fail(env, v, op, "group", "a process group from distInit");
  Group* g = static_cast<Group*>(data);
  if (!g->pg) throw ArgError(std::string(op) + ": the process group was destroyed");
  return g;
}
}  // namespace lmf

namespace {

void finalize_group(napi_env /*env*/, void* data, void* /*hint*/) { delete static_cast<Group*>(data); }
void finalize_pending(napi_env /*env*/, void* data, void* /*hint*/) { delete static_cast<std::shared_ptr<Pending>*>(data); }


std::shared_ptr<Pending> pending_arg(napi_env env, napi_value v, const char* op) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  void* data = nullptr;
  if (t != napi_external || napi_get_value_external(env, v, &data) != napi_ok || data == nullptr)
    lmf::arg_fail(env, v, op, "work", "a work handle from a collective");
  return *static_cast<std::shared_ptr<Pending>*>(data);
}

napi_value wrap_pending(napi_env env, std::shared_ptr<Pending> p) {
  napi_value out;
  auto* holder = new std::shared_ptr<Pending>(std::move(p));
  lmf::check(env, napi_create_external(env, holder, finalize_pending, nullptr, &out), "create work handle");
  return out;
}

// Named-property readers for the options object of distInit.
napi_value prop(napi_env env, napi_value obj, const char* name) {
  napi_value v;
  lmf::check(env, napi_get_named_property(env, obj, name, &v), name);
  return v;
}

// --- rendezvous: distInit(options) -> Promise<group> ------------------------------------------

struct InitJob {
  // options, read on the JS thread
  std::string store_kind;  // "tcp" | "file"
  std::string backend;     // "gloo" | "nccl"
  std::string host;        // TCPStore's address
  int port = 0;
  bool is_master = false;
  std::string path;       // FileStore's file
  std::string interface;  // the address gloo binds to
  int rank = 0, size = 1, threads = 2;
  int64_t timeout_ms = 0;
  // results, made on the worker
  Group* group = nullptr;
  std::string error;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
};

void init_execute(napi_env /*env*/, void* data) {
  auto* job = static_cast<InitJob*>(data);
  auto group = std::make_unique<Group>();
  group->rank = job->rank;
  group->size = job->size;
  group->backend = job->backend;
  group->timeout = std::chrono::milliseconds(job->timeout_ms);
  const std::string label = group->label();
  std::string stage;
  try {
    if (job->store_kind == "tcp") {
      stage = job->is_master ? "starting the TCPStore at " + job->host + ":" + std::to_string(job->port) + " (this rank is the master)"
                             : "reaching the TCPStore at " + job->host + ":" + std::to_string(job->port);
      c10d::TCPStoreOptions o;
      o.port = static_cast<uint16_t>(job->port);
      o.isServer = job->is_master;
      o.numWorkers = job->size;
      o.waitWorkers = true;  // every rank counts itself in; the master waits for all of them
      o.timeout = group->timeout;
      group->store = c10::make_intrusive<c10d::TCPStore>(job->host, o);
    } else {
      stage = "opening the FileStore " + job->path;
      group->store = c10::make_intrusive<c10d::FileStore>(job->path, job->size);
      group->store->setTimeout(group->timeout);
    }
    // Every rank says its world size; each compares with a neighbour's, so that a mismatch is
    // named on both sides instead of ending in a rendezvous timeout.
    stage = "comparing world sizes";
    const std::string ws = std::to_string(job->size);
    group->store->set("lmforge/world_size/" + std::to_string(job->rank), std::vector<uint8_t>(ws.begin(), ws.end()));
    const int other = job->rank == 0 ? 1 : 0;
    if (job->size > 1) {
      stage = "waiting for rank " + std::to_string(other) + " to join";
      std::vector<uint8_t> got;
      try {
        got = group->store->get("lmforge/world_size/" + std::to_string(other));
      } catch (const std::exception& e) {
        throw std::runtime_error("it did not join within " + std::to_string(job->timeout_ms) + " ms (" +
                                 Pending::first_lines(e.what()) + ")");
      }
      stage = "comparing world sizes";
      const std::string theirs(got.begin(), got.end());
      if (theirs != ws) {
        // The store lives in the master's process: it waits (a few seconds at most) until its
        // neighbour has read the sizes too, so that both ranks report the mismatch.
        group->store->add("lmforge/world_size_read", 1);
        const auto until = std::chrono::steady_clock::now() + std::min(group->timeout, std::chrono::milliseconds(5000));
        while (job->is_master && group->store->add("lmforge/world_size_read", 0) < 2 && std::chrono::steady_clock::now() < until)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        throw std::runtime_error("rank " + std::to_string(other) + " has world size " + theirs + ", this rank " + ws +
                                 ": every rank must be started with the same WORLD_SIZE");
      }
      group->store->add("lmforge/world_size_read", 1);
    }
    if (job->backend == "nccl") {
#ifdef LMFORGE_NCCL
      // NCCL finds its peers through the store (rank 0 publishes its unique id there) and
      // its devices from the tensors: each rank uses the GPU its tensors are on.
      stage = "creating the NCCL process group";
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = group->timeout;
      group->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, job->rank, job->size, options);
#endif
    } else {
      stage = "creating the gloo process group on " + job->interface;
      auto options = c10d::ProcessGroupGloo::Options::create(group->timeout);
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(job->interface));
      options->threads = job->threads;
      group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, job->rank, job->size, options);
    }
    job->group = group.release();
  } catch (const c10::Error& e) {
    job->error = label + ": " + stage + ": " + Pending::first_lines(e.what_without_backtrace());
  } catch (const std::exception& e) {
    job->error = label + ": " + stage + ": " + Pending::first_lines(e.what());
  }
}

void init_complete(napi_env env, napi_status /*status*/, void* data) {
  auto* job = static_cast<InitJob*>(data);
  if (job->group) {
    napi_value out;
    napi_create_external(env, job->group, finalize_group, nullptr, &out);
    napi_resolve_deferred(env, job->deferred, out);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, job->error.c_str(), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_async_work(env, job->work);
  delete job;
}

// distInit({ store: "tcp"|"file", host, port, isMaster, path, interface, rank, worldSize,
// timeoutMs, threads }) -> Promise<group>. The options are validated in TypeScript first.
napi_value dist_init(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    auto job = std::make_unique<InitJob>();
    napi_value o = argv[0];
    job->store_kind = lmf::choice_arg(env, prop(env, o, "store"), "distInit", "store", {"tcp", "file"});
    job->backend = lmf::choice_arg(env, prop(env, o, "backend"), "distInit", "backend", {"gloo", "nccl"});
#ifndef LMFORGE_NCCL
    if (job->backend == "nccl")
      throw ArgError("distInit: backend nccl is not in this build of the addon: it was compiled without a CUDA libtorch "
                     "(libtorch_cuda, c10_cuda and ProcessGroupNCCL.hpp were not found); use gloo, or rebuild against a CUDA libtorch");
#endif
    job->rank = static_cast<int>(lmf::int_arg_at_least(env, prop(env, o, "rank"), "distInit", "rank", 0));
    job->size = static_cast<int>(lmf::int_arg_at_least(env, prop(env, o, "worldSize"), "distInit", "worldSize", 1));
    if (job->rank >= job->size)
      throw ArgError("distInit: rank " + std::to_string(job->rank) + " is not below the world size " + std::to_string(job->size));
    job->timeout_ms = lmf::int_arg_at_least(env, prop(env, o, "timeoutMs"), "distInit", "timeoutMs", 1);
    job->threads = static_cast<int>(lmf::int_arg_at_least(env, prop(env, o, "threads"), "distInit", "threads", 1));
    job->interface = lmf::str_arg(env, prop(env, o, "interface"), "distInit", "interface");
    if (job->store_kind == "tcp") {
      job->host = lmf::str_arg(env, prop(env, o, "host"), "distInit", "host");
      job->port = static_cast<int>(lmf::int_arg_at_least(env, prop(env, o, "port"), "distInit", "port", 1));
      job->is_master = lmf::bool_arg(env, prop(env, o, "isMaster"), "distInit", "isMaster");
    } else {
      job->path = lmf::str_arg(env, prop(env, o, "path"), "distInit", "path");
    }
    napi_value promise, name;
    lmf::check(env, napi_create_promise(env, &job->deferred, &promise), "create promise");
    napi_create_string_utf8(env, "lmforge:distInit", NAPI_AUTO_LENGTH, &name);
    lmf::check(env, napi_create_async_work(env, nullptr, name, init_execute, init_complete, job.get(), &job->work), "async work");
    lmf::check(env, napi_queue_async_work(env, job->work), "queue async work");
    job.release();
    return promise;
  }
  LMF_CATCH("distInit", argv, 1, "v")
}

// distDestroy(group): releases the process group and the store now (their threads, sockets).
napi_value dist_destroy(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    void* data = nullptr;
    if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == nullptr)
      lmf::arg_fail(env, argv[0], "distDestroy", "group", "a process group from distInit");
    Group* g = static_cast<Group*>(data);
    g->pg.reset();
    g->store.reset();
    return nullptr;
  }
  LMF_CATCH("distDestroy", argv, 1, "v")
}

// --- collectives --------------------------------------------------------------------------------

// The tensors of a collective as one contiguous buffer: the tensor itself when there is one
// contiguous tensor, else a flat copy of them all, copied back by `finish` (DDP's bucket).
struct Flat {
  at::Tensor buffer;
  std::vector<at::Tensor> parts;  // empty when buffer is the caller's own tensor
};
// Gloo reduces CPU tensors, NCCL CUDA ones.
void check_device(const Group* g, const at::Tensor& t, const char* op) {
  const bool nccl = g->backend == "nccl";
  if (nccl != t.device().is_cuda())
    throw ArgError(std::string(op) + ": " + g->backend + " takes " + (nccl ? "CUDA" : "CPU") + " tensors, got " + lmf::describe_tensor(t));
}

Flat flatten(const Group* g, const std::vector<at::Tensor>& ts, const char* op) {
  if (ts.empty()) throw ArgError(std::string(op) + ": no tensors given");
  for (const auto& t : ts) {
    check_device(g, t, op);
    if (t.scalar_type() != ts[0].scalar_type())
      throw ArgError(std::string(op) + ": every tensor must have one dtype, got " + lmf::describe_tensor(ts[0]) + " and " + lmf::describe_tensor(t));
  }
  if (ts.size() == 1 && ts[0].is_contiguous()) return {ts[0], {}};
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const auto& t : ts) flat.push_back(t.detach().reshape({-1}));
  return {at::cat(flat), ts};
}
// Copies a flat buffer back into its parts, in place (their identity and grad links kept).
void unflatten(const Flat& f) {
  int64_t offset = 0;
  at::NoGradGuard no_grad;
  for (const auto& t : f.parts) {
    const int64_t n = t.numel();
    at::Tensor(t).detach().copy_(f.buffer.narrow(0, offset, n).view(t.sizes()));
    lmf::mark_written(t);
    offset += n;
  }
}

std::shared_ptr<Pending> make_pending(Group* g, const char* what) {
  auto p = std::make_shared<Pending>();
  p->what = what;
  p->label = g->label();
  return p;
}

// distAllReduce(group, tensors, op "sum"|"avg"|"max"|"min") -> work. In place: after the
// wait every tensor holds the reduction over the ranks. avg is a sum divided by the world
// size (gloo has no average).
napi_value dist_all_reduce(napi_env env, napi_callback_info info) {
  LMF_ARGS(3);
  LMF_TRY {
    Group* g = group_arg(env, argv[0], "distAllReduce");
    auto ts = lmf::tensor_list_arg(env, argv[1], "distAllReduce", "tensors");
    std::string op = lmf::choice_arg(env, argv[2], "distAllReduce", "op", {"sum", "avg", "max", "min"});
    if (op == "avg" && !at::isFloatingType(ts.empty() ? at::kFloat : ts[0].scalar_type()))
      throw ArgError("distAllReduce: avg needs floating-point tensors, got " + lmf::describe_tensor(ts[0]));
    auto flat = std::make_shared<Flat>(flatten(g, ts, "distAllReduce"));
    c10d::AllreduceOptions o;
    o.reduceOp = op == "max" ? c10d::ReduceOp::MAX : op == "min" ? c10d::ReduceOp::MIN : c10d::ReduceOp::SUM;
    auto p = make_pending(g, "allreduce");
    std::vector<at::Tensor> bufs{flat->buffer};
    p->work = g->pg->allreduce(bufs, o);
    const int size = g->size;
    const bool avg = op == "avg";
    p->finish = [flat, size, avg]() {
      if (avg) flat->buffer.div_(size);
      if (!flat->parts.empty()) unflatten(*flat);
      else lmf::mark_written(flat->buffer);
    };
    return wrap_pending(env, std::move(p));
  }
  LMF_CATCH("distAllReduce", argv, 3, "vlv")
}

// distBroadcast(group, tensors, root) -> work: every rank's tensors get the root's values.
napi_value dist_broadcast(napi_env env, napi_callback_info info) {
  LMF_ARGS(3);
  LMF_TRY {
    Group* g = group_arg(env, argv[0], "distBroadcast");
    auto ts = lmf::tensor_list_arg(env, argv[1], "distBroadcast", "tensors");
    int64_t root = lmf::int_arg_at_least(env, argv[2], "distBroadcast", "root", 0);
    if (root >= g->size) throw ArgError("distBroadcast: root " + std::to_string(root) + " is not a rank of a group of " + std::to_string(g->size));
    auto flat = std::make_shared<Flat>(flatten(g, ts, "distBroadcast"));
    c10d::BroadcastOptions o;
    o.rootRank = root;
    auto p = make_pending(g, "broadcast");
    std::vector<at::Tensor> bufs{flat->buffer};
    p->work = g->pg->broadcast(bufs, o);
    p->finish = [flat]() {
      if (!flat->parts.empty()) unflatten(*flat);
      else lmf::mark_written(flat->buffer);
    };
    return wrap_pending(env, std::move(p));
  }
  LMF_CATCH("distBroadcast", argv, 3, "vlv")
}

// distAllGather(group, tensor) -> work whose wait gives one tensor per rank (rank order).
napi_value dist_all_gather(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    Group* g = group_arg(env, argv[0], "distAllGather");
    at::Tensor t = lmf::tensor_arg(env, argv[1], "distAllGather", "tensor");
    check_device(g, t, "distAllGather");
    std::vector<at::Tensor> in{t.detach().contiguous()};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < g->size; r++) out[0].push_back(at::empty_like(in[0]));
    auto p = make_pending(g, "allgather");
    p->work = g->pg->allgather(out, in);
    p->result = out[0];
    return wrap_pending(env, std::move(p));
  }
  LMF_CATCH("distAllGather", argv, 2, "vt")
}

// distBarrier(group) -> work: done when every rank has reached it.
napi_value dist_barrier(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    Group* g = group_arg(env, argv[0], "distBarrier");
    auto p = make_pending(g, "barrier");
    p->work = g->pg->barrier();
    return wrap_pending(env, std::move(p));
  }
  LMF_CATCH("distBarrier", argv, 1, "v")
}

// --- waiting ------------------------------------------------------------------------------------

// Fresh handles to the results each time a wait returns (a sync and an async wait may both).
napi_value result_of(napi_env env, Pending& p) {
  if (p.result.empty()) return nullptr;
  return lmf::ret_tensor_list(env, p.result);
}

// distWait(work) -> undefined | Tensor[]: blocks this thread until the collective is done.
napi_value dist_wait(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    auto p = pending_arg(env, argv[0], "distWait");
    p->wait();
    if (!p->error.empty()) throw std::runtime_error(p->error);
    return result_of(env, *p);
  }
  catch (const std::exception& e) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

struct WaitJob {
  std::shared_ptr<Pending> p;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
};

void wait_execute(napi_env /*env*/, void* data) { static_cast<WaitJob*>(data)->p->wait(); }

void wait_complete(napi_env env, napi_status /*status*/, void* data) {
  auto* job = static_cast<WaitJob*>(data);
  if (job->p->error.empty()) {
    napi_value v = result_of(env, *job->p);
    if (v == nullptr) napi_get_undefined(env, &v);
    napi_resolve_deferred(env, job->deferred, v);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, job->p->error.c_str(), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_async_work(env, job->work);
  delete job;
}

// distWaitAsync(work) -> Promise<undefined | Tensor[]>: the wait runs on a libuv worker.
napi_value dist_wait_async(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    auto job = std::make_unique<WaitJob>();
    job->p = pending_arg(env, argv[0], "distWaitAsync");
    napi_value promise, name;
    lmf::check(env, napi_create_promise(env, &job->deferred, &promise), "create promise");
    napi_create_string_utf8(env, "lmforge:distWait", NAPI_AUTO_LENGTH, &name);
    lmf::check(env, napi_create_async_work(env, nullptr, name, wait_execute, wait_complete, job.get(), &job->work), "async work");
    lmf::check(env, napi_queue_async_work(env, job->work), "queue async work");
    job.release();
    return promise;
  }
  LMF_CATCH("distWaitAsync", argv, 1, "v")
}

struct Entry {
  const char* name;
  napi_callback fn;
};
const Entry kEntries[] = {
    {"distInit", dist_init},           {"distDestroy", dist_destroy}, {"distAllReduce", dist_all_reduce},
    {"distBroadcast", dist_broadcast}, {"distAllGather", dist_all_gather}, {"distBarrier", dist_barrier},
    {"distWait", dist_wait},           {"distWaitAsync", dist_wait_async},
};

}  // namespace

#else  // no gloo headers at build time: every entry point says so

namespace {
napi_value dist_unavailable(napi_env env, napi_callback_info /*info*/) {
  napi_throw_error(env, nullptr,
                   "lmforge was built without gloo's headers, so process groups are unavailable: install libgloo-dev "
                   "(Debian/Ubuntu) and rebuild the addon (npm run build:native)");
  return nullptr;
}
struct Entry {
  const char* name;
  napi_callback fn;
};
const Entry kEntries[] = {{"distInit", dist_unavailable},      {"distDestroy", dist_unavailable},
                          {"distAllReduce", dist_unavailable}, {"distBroadcast", dist_unavailable},
                          {"distAllGather", dist_unavailable}, {"distBarrier", dist_unavailable},
                          {"distWait", dist_unavailable},      {"distWaitAsync", dist_unavailable}};
}  // namespace
#endif

namespace lmf {
void register_distributed(napi_env env, napi_value exports) {
  for (const Entry& e : kEntries) {
    napi_value fn;
    check(env, napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &fn), e.name);
    check(env, napi_set_named_property(env, exports, e.name, fn), e.name);
  }
  // distBackends: the process groups this build can make
  std::vector<const char*> backends;
#ifdef LMF_HAVE_GLOO
  backends.push_back("gloo");
#endif
#ifdef LMFORGE_NCCL
  backends.push_back("nccl");
#endif
  napi_value list, name;
  check(env, napi_create_array_with_length(env, backends.size(), &list), "distBackends");
  for (size_t i = 0; i < backends.size(); i++) {
    napi_create_string_utf8(env, backends[i], NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, list, static_cast<uint32_t>(i), name);
  }
  check(env, napi_set_named_property(env, exports, "distBackends", list), "distBackends");
}
}  // namespace lmf

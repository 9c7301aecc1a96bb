// The gradient reducer of data-parallel training (PyTorch DDP's Reducer, smaller): a hook on
// each parameter's gradient accumulator counts the parameters of its bucket whose gradient is
// final; when a bucket is complete, its gradients are copied into one flat buffer and its
// allreduce (sum) starts on gloo's threads while the backward goes on with the layers below.
//
// Buckets are sent strictly in order (bucket 0, 1, ...) on every rank: gloo matches
// collectives by the order they are issued, so a bucket complete early waits for the ones
// before it. finish() sends what the backward left (buckets with a parameter that got no
// gradient on this rank: zeros stand in for it), waits for all and copies the sums back.
//
// Gradient accumulation: only the last micro-batch's backward is armed (DDP's no_sync for the
// others); the hooks of a disarmed backward do nothing.
//
// Timing (steady clock): each bucket's allreduce is stamped when it is launched and when it
// completes (its future's callback, on gloo's thread), and the backward's end by a callback
// the autograd engine runs when the graph is done (queued by the armed backward's first hook,
// as DDP finalizes). finish() reports the communication time (the union of the buckets'
// [launched, completed] intervals: buckets queued behind one another count once) and how
// much of it lay before the backward's end: what the backward hid. With NCCL the future
// completes when the work is enqueued on its stream, so there the figure is not meaningful.
#include "distributed.h"

#ifdef LMF_HAVE_GLOO
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <atomic>

namespace {

using lmf::ArgError;
using Clock = std::chrono::steady_clock;

int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

// Of intervals [start, end] (ns): the length of their union, and of its part before `until`.
std::pair<int64_t, int64_t> union_before(std::vector<std::pair<int64_t, int64_t>> spans, int64_t until) {
  std::sort(spans.begin(), spans.end());
  int64_t total = 0, before = 0;
  for (size_t i = 0; i < spans.size();) {
    int64_t start = spans[i].first, end = spans[i].second;
    for (i++; i < spans.size() && spans[i].first <= end; i++) end = std::max(end, spans[i].second);
    total += end - start;
    before += std::max<int64_t>(0, std::min(end, until) - start);
  }
  return {total, before};
}

struct Reducer {
  c10::intrusive_ptr<lmf::Backend> pg;
  std::string label;
  std::vector<at::Tensor> params;
  // kept alive here: a parameter holds its accumulator weakly, and the hooks live on it
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<std::vector<int64_t>> buckets;  // parameter indices
  std::vector<int64_t> bucket_of;             // -1: in no bucket
  std::vector<int64_t> left;                  // per bucket: parameters whose gradient is not final yet
  std::vector<char> ready;                    // per parameter, in this backward
  size_t next = 0;                            // the next bucket to send
  struct Sent {
    int64_t bucket;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
    int64_t launched_ns;
    std::shared_ptr<std::atomic<int64_t>> completed_ns;  // 0 until the future's callback ran
  };
  std::vector<Sent> sent;
  int64_t sent_in_backward = 0;
  bool armed = false;
  bool end_queued = false;       // the backward-end callback of this armed backward
  int64_t backward_end_ns = 0;   // 0: no armed backward ran (this rank had no examples)
  std::weak_ptr<Reducer> self;
  std::string error;
  std::mutex m;

  // Sends every complete bucket from `next` on, in order. Called with m held.
  void send_ready() {
    while (next < buckets.size() && left[next] == 0) send(next++);
  }

  void send(size_t b) {
    std::vector<at::Tensor> flat;
    at::NoGradGuard no_grad;
    for (int64_t i : buckets[b]) {
      at::Tensor& p = params[i];
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);  // unused here: a zero contribution
      flat.push_back(p.grad().reshape({-1}));
    }
    std::vector<at::Tensor> bufs{at::cat(flat)};
    const int64_t launched = now_ns();
    auto work = pg->allreduce(bufs);
    auto completed = std::make_shared<std::atomic<int64_t>>(0);
    work->getFuture()->addCallback([completed](c10::ivalue::Future&) { completed->store(now_ns()); });
    sent.push_back({static_cast<int64_t>(b), bufs[0], std::move(work), launched, std::move(completed)});
  }

  void on_gradient(int64_t i) {
    std::lock_guard<std::mutex> lock(m);
    if (!armed) return;
    if (ready[i]) {
      error = "parameter " + std::to_string(i) + "'s gradient was accumulated twice in one armed backward (a second backward through the same graph, or a parameter used in two graphs); reduce after the backward instead (overlap off)";
      return;
    }
    ready[i] = 1;
    if (!end_queued) {
      end_queued = true;
      std::weak_ptr<Reducer> weak = self;
      torch::autograd::Engine::get_default_engine().queue_callback([weak]() {
        if (auto r = weak.lock()) {
          std::lock_guard<std::mutex> lock(r->m);
          r->backward_end_ns = now_ns();
        }
      });
    }
    const int64_t b = bucket_of[i];
    if (b < 0) return;
    if (--left[b] == 0) {
      const size_t before = sent.size();
      send_ready();
      sent_in_backward += static_cast<int64_t>(sent.size() - before);
    }
  }
};

void finalize_reducer(napi_env /*env*/, void* data, void* /*hint*/) { delete static_cast<std::shared_ptr<Reducer>*>(data); }

std::shared_ptr<Reducer> reducer_arg(napi_env env, napi_value v, const char* op) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  void* data = nullptr;
  if (t != napi_external || napi_get_value_external(env, v, &data) != napi_ok || data == nullptr)
    lmf::arg_fail(env, v, op, "reducer", "a reducer from distReducer");
  return *static_cast<std::shared_ptr<Reducer>*>(data);
}

// distReducer(group, params) -> reducer: hooks every parameter's gradient accumulator.
napi_value dist_reducer(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    lmf::Group* g = lmf::group_arg(env, argv[0], "distReducer");
    auto r = std::make_shared<Reducer>();
    r->self = r;
    r->pg = g->pg;
    r->label = g->label();
    r->params = lmf::tensor_list_arg(env, argv[1], "distReducer", "params");
    std::weak_ptr<Reducer> weak = r;  // the hooks must not keep the reducer (and its accumulators) alive
    for (size_t i = 0; i < r->params.size(); i++) {
      const at::Tensor& p = r->params[i];
      if (!p.requires_grad() || !p.is_leaf()) throw ArgError("distReducer: parameter " + std::to_string(i) + " is not a leaf that requires grad");
      auto acc = torch::autograd::impl::grad_accumulator(p);
      const int64_t index = static_cast<int64_t>(i);
      acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [weak, index](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list& /*inputs*/) {
            if (auto reducer = weak.lock()) reducer->on_gradient(index);
            return outputs;
          }));
      r->accumulators.push_back(std::move(acc));
    }
    r->ready.assign(r->params.size(), 0);
    r->bucket_of.assign(r->params.size(), -1);
    napi_value out;
    lmf::check(env, napi_create_external(env, new std::shared_ptr<Reducer>(r), finalize_reducer, nullptr, &out), "create reducer");
    return out;
  }
  LMF_CATCH("distReducer", argv, 2, "vl")
}

// distReducerArm(reducer, buckets | null): arms the next backward with these buckets (lists of
// parameter indices, in the order they are sent); null disarms (a no_sync micro-batch).
napi_value dist_reducer_arm(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    auto r = reducer_arg(env, argv[0], "distReducerArm");
    std::lock_guard<std::mutex> lock(r->m);
    if (!r->sent.empty()) throw std::runtime_error(r->label + ": distReducerArm: the last armed backward was not finished");
    if (lmf::is_nullish(env, argv[1])) {
      r->armed = false;
      return nullptr;
    }
    uint32_t n = 0;
    bool is_array = false;
    napi_is_array(env, argv[1], &is_array);
    if (!is_array) lmf::arg_fail(env, argv[1], "distReducerArm", "buckets", "an array of arrays of parameter indices");
    napi_get_array_length(env, argv[1], &n);
    r->buckets.assign(n, {});
    r->bucket_of.assign(r->params.size(), -1);
    for (uint32_t b = 0; b < n; b++) {
      napi_value v;
      napi_get_element(env, argv[1], b, &v);
      r->buckets[b] = lmf::int_list_arg(env, v, "distReducerArm", "buckets");
      for (int64_t i : r->buckets[b]) {
        if (i < 0 || i >= static_cast<int64_t>(r->params.size()) || r->bucket_of[i] >= 0)
          throw ArgError("distReducerArm: parameter index " + std::to_string(i) + " is out of range or in two buckets");
        r->bucket_of[i] = b;
      }
    }
    r->left.resize(n);
    for (uint32_t b = 0; b < n; b++) r->left[b] = static_cast<int64_t>(r->buckets[b].size());
    r->ready.assign(r->params.size(), 0);
    r->next = 0;
    r->sent_in_backward = 0;
    r->end_queued = false;
    r->backward_end_ns = 0;
    r->error.clear();
    r->armed = true;
    return nullptr;
  }
  LMF_CATCH("distReducerArm", argv, 2, "vv")
}

// distReducerFinish(reducer) -> [hadGradient: boolean[], sentInBackward, commMs, hiddenMs]:
// sends the buckets the backward left, waits for every bucket and writes the sums into the
// gradients. hadGradient says which parameters had a gradient of their own (before any zero
// filling); commMs is the buckets' communication time, hiddenMs its part before the backward's end.
napi_value dist_reducer_finish(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    auto r = reducer_arg(env, argv[0], "distReducerFinish");
    std::vector<char> had(r->params.size());
    std::vector<Reducer::Sent> sent;
    int64_t in_backward = 0;
    int64_t backward_end = 0;
    {
      std::lock_guard<std::mutex> lock(r->m);
      if (!r->armed) throw std::runtime_error(r->label + ": distReducerFinish: no armed backward");
      r->armed = false;
      // before any zero filling (only the sends below fill: a bucket sent during the backward
      // had every parameter ready); a gradient from an earlier, disarmed micro-batch counts
      for (size_t i = 0; i < r->params.size(); i++) had[i] = r->ready[i] || r->params[i].grad().defined();
      while (r->next < r->buckets.size()) r->send(r->next++);
      sent = std::move(r->sent);
      r->sent.clear();
      in_backward = r->sent_in_backward;
      backward_end = r->backward_end_ns;
      if (!r->error.empty()) {
        for (auto& s : sent) s.work->wait();  // the other ranks' collectives must still complete
        throw std::runtime_error(r->label + ": " + r->error);
      }
    }
    at::NoGradGuard no_grad;
    std::vector<std::pair<int64_t, int64_t>> spans;
    for (auto& s : sent) {
      try {
        s.work->wait();
      } catch (const std::exception& e) {
        throw std::runtime_error(r->label + ": gradient allreduce (bucket " + std::to_string(s.bucket) + ") failed: " +
                                 lmf::Pending::first_lines(e.what()));
      }
      // the future's callback runs before wait() returns; a backend whose does not: now
      const int64_t completed = s.completed_ns->load();
      spans.emplace_back(s.launched_ns, completed > 0 ? completed : now_ns());
      int64_t offset = 0;
      for (int64_t i : r->buckets[s.bucket]) {
        at::Tensor g = r->params[i].grad();
        g.copy_(s.flat.narrow(0, offset, g.numel()).view(g.sizes()));
        offset += g.numel();
      }
    }
    const auto [comm, hidden] = union_before(std::move(spans), backward_end);
    napi_value out, mask, v;
    napi_create_array_with_length(env, 4, &out);
    napi_create_array_with_length(env, had.size(), &mask);
    for (size_t i = 0; i < had.size(); i++) napi_set_element(env, mask, i, lmf::ret_bool(env, had[i] != 0));
    napi_set_element(env, out, 0, mask);
    napi_create_int64(env, in_backward, &v);
    napi_set_element(env, out, 1, v);
    napi_create_double(env, static_cast<double>(comm) / 1e6, &v);
    napi_set_element(env, out, 2, v);
    napi_create_double(env, static_cast<double>(hidden) / 1e6, &v);
    napi_set_element(env, out, 3, v);
    return out;
  }
  LMF_CATCH("distReducerFinish", argv, 1, "v")
}

}  // namespace

namespace lmf {
void register_reducer(napi_env env, napi_value exports) {
  const std::pair<const char*, napi_callback> entries[] = {
      {"distReducer", dist_reducer}, {"distReducerArm", dist_reducer_arm}, {"distReducerFinish", dist_reducer_finish}};
  for (const auto& e : entries) {
    napi_value fn;
    check(env, napi_create_function(env, e.first, NAPI_AUTO_LENGTH, e.second, nullptr, &fn), e.first);
    check(env, napi_set_named_property(env, exports, e.first, fn), e.first);
  }
}
}  // namespace lmf

#else

namespace lmf {
void register_reducer(napi_env /*env*/, napi_value /*exports*/) {}  // distributed.cc's entry points say why
}  // namespace lmf

#endif

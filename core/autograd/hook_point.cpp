#include "core/autograd/hook_point.h"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "core/ops/ops.h"

namespace plateau {

namespace {

struct Registered {
  uint64_t id;
  std::string point;
  ForwardHook hook;
};

// Process-wide, so that hooks registered by an experiment reach a model run by the same thread or
// another. hook_point checks an atomic count first: a model without hooks pays no lock.
struct Registry {
  std::mutex mutex;
  std::vector<Registered> hooks;
  std::atomic<size_t> count{0};
  uint64_t next_id = 1;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: handles may outlive statics
  return *r;
}

}  // namespace

ForwardHookHandle& ForwardHookHandle::operator=(ForwardHookHandle&& other) noexcept {
  if (this != &other) {
    remove();
    id_ = other.id_;
    other.id_ = 0;
  }
  return *this;
}

void ForwardHookHandle::remove() {
  if (!id_) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::erase_if(r.hooks, [&](const Registered& h) { return h.id == id_; });
  r.count = r.hooks.size();
  id_ = 0;
}

ForwardHookHandle register_forward_hook(const std::string& point, ForwardHook hook) {
  if (point.empty()) throw std::invalid_argument("plateau: register_forward_hook: the point name is empty");
  if (!hook) throw std::invalid_argument("plateau: register_forward_hook: empty hook for point '" + point + "'");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  uint64_t id = r.next_id++;
  r.hooks.push_back({id, point, std::move(hook)});
  r.count = r.hooks.size();
  return ForwardHookHandle(id);
}

ForwardHookHandle add_perturbation(const std::string& point, const Tensor& delta) {
  if (!delta.defined()) throw std::invalid_argument("plateau: add_perturbation: undefined delta for '" + point + "'");
  return register_forward_hook(point, [delta, point](const Tensor& h) {
    bool fits = delta.dim() <= h.dim();
    for (int64_t i = 1; fits && i <= delta.dim(); ++i) {
      const int64_t d = delta.shape()[delta.dim() - i];
      fits = d == 1 || d == h.shape()[h.dim() - i];
    }
    if (!fits)
      throw std::invalid_argument("plateau: add_perturbation: a perturbation of shape " + delta.shape().str() +
                                  " does not fit the activation '" + point + "' of shape " + h.shape().str());
    return h + delta;
  });
}

Tensor hook_point(const std::string& point, const Tensor& activation) {
  Registry& r = registry();
  if (r.count.load(std::memory_order_relaxed) == 0) return activation;
  std::vector<ForwardHook> hooks;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const Registered& h : r.hooks)
      if (h.point == point) hooks.push_back(h.hook);
  }
  // Run outside the lock: a hook may register or remove hooks.
  Tensor out = activation;
  for (const ForwardHook& hook : hooks) {
    Tensor next = hook(out);
    if (!next.defined())
      throw std::runtime_error("plateau: a forward hook on '" + point + "' returned an undefined tensor");
    out = next;
  }
  return out;
}

}  // namespace plateau

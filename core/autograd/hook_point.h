#pragma once
// Named points in a forward pass where hooks read, replace or perturb an interior activation: the
// core half of latent-perturbation methods (SLAT, SAQ), on which nn's module forward hooks build.
//
//   h = hook_point("block1", relu(linear(x, w1, b1)));  // in the model: h, or what hooks make of it
//
//   Tensor delta = zeros({batch, 512}, DType::f32).requires_grad_();
//   ForwardHookHandle perturb = add_perturbation("block1", delta);  // h + δ from now on
//   TensorList g = grad({loss}, {w1, delta});  // ∂loss/∂h (= ∂loss/∂δ) beside the weights' gradient
//
// Gradients with respect to an interior activation need no hook: pass the activation itself to
// grad() with the parameters, and one backward pass computes both.
#include <functional>
#include <string>

#include "core/tensor.h"

namespace plateau {

// Receives the activation (or the previous hook's result) and returns it, or a replacement.
using ForwardHook = std::function<Tensor(const Tensor& activation)>;

// Owns a registered hook: it is removed when the handle is destroyed or remove() is called.
class ForwardHookHandle {
 public:
  ForwardHookHandle() = default;
  explicit ForwardHookHandle(uint64_t id) : id_(id) {}
  ~ForwardHookHandle() { remove(); }
  ForwardHookHandle(ForwardHookHandle&& other) noexcept : id_(other.id_) { other.id_ = 0; }
  ForwardHookHandle& operator=(ForwardHookHandle&& other) noexcept;
  ForwardHookHandle(const ForwardHookHandle&) = delete;
  ForwardHookHandle& operator=(const ForwardHookHandle&) = delete;
  void remove();

 private:
  uint64_t id_ = 0;
};

// Hooks on one point run in the order they were registered.
[[nodiscard]] ForwardHookHandle register_forward_hook(const std::string& point, ForwardHook hook);
// activation + delta (broadcast; delta may require grad, and may be changed in place between passes).
[[nodiscard]] ForwardHookHandle add_perturbation(const std::string& point, const Tensor& delta);
// What the hooks registered on `point` make of the activation; the activation itself when there are none.
Tensor hook_point(const std::string& point, const Tensor& activation);

}  // namespace plateau

#include "optim/clip.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace plateau::optim {

namespace {

Tensor total_norm(const TensorList& tensors, double norm_type) {
  if (!(norm_type == 1.0 || norm_type == 2.0 || std::isinf(norm_type)))
    throw std::invalid_argument("plateau: gradient norm: norm_type must be 1, 2 or infinity, got " +
                                std::to_string(norm_type));
  TensorList norms;
  for (const auto& t : tensors)
    if (t.defined()) norms.push_back(norm(t.detach(), norm_type));
  if (norms.empty()) return Tensor();
  // PyTorch: the norm of the stacked per-tensor norms (the maximum of them for infinity).
  return norm(stack(norms), norm_type);
}

}  // namespace

double global_norm(const TensorList& tensors, double norm_type) {
  NoGradGuard no_grad;
  Tensor total = total_norm(tensors, norm_type);
  return total.defined() ? total.item() : 0.0;
}

double clip_grad_norm_(const TensorList& grads, double max_norm, double norm_type) {
  NoGradGuard no_grad;
  Tensor total = total_norm(grads, norm_type);
  if (!total.defined()) return 0.0;
  // In the gradients' dtype, as torch: coef = max_norm / (total + 1e-6), clamped to at most 1.
  Tensor coef = clamp(div(full_like(total, max_norm), add(total, 1e-6)), std::nullopt, 1.0);
  const double factor = coef.item();
  for (const auto& g : grads) {
    if (!g.defined()) continue;
    Tensor t = g;
    mul_(t, factor);
  }
  return total.item();
}

double clip_grad_norm_of_parameters_(const TensorList& params, double max_norm, double norm_type) {
  TensorList grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  return clip_grad_norm_(grads, max_norm, norm_type);
}

}  // namespace plateau::optim

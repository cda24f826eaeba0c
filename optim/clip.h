#pragma once
// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_).
#include <limits>

#include "core/core.h"

namespace plateau::optim {

// Scales the gradients in place by min(1, max_norm / (total + 1e-6)), where total is the norm of
// the vector of all their elements; returns total (before clipping). norm_type 2, 1 or infinity.
double clip_grad_norm_(const TensorList& grads, double max_norm, double norm_type = 2.0);
// The same on each parameter's .grad() (parameters without one are left out).
double clip_grad_norm_of_parameters_(const TensorList& params, double max_norm, double norm_type = 2.0);

// The global norm alone (norm of the per-tensor norms, as PyTorch computes it).
double global_norm(const TensorList& tensors, double norm_type = 2.0);

}  // namespace plateau::optim

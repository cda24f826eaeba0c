#pragma once
// Fused softmax / log-softmax along one dim (internal).
#include <cstdint>

#include "core/tensor.h"

namespace plateau::cpu {

// out (contiguous, same shape as x, overwritten) = softmax(x) or log_softmax(x) along dim (already
// wrapped). x may have any strides.
void softmax(const Tensor& x, const Tensor& out, int64_t dim, bool log);

}  // namespace plateau::cpu

#pragma once
#include "core/tensor.h"

namespace plateau::cpu {

// dst[i] = convert(src[i]) for tensors of the same shape (or src broadcast to dst), any strides.
void copy(const Tensor& src, const Tensor& dst);
void fill(const Tensor& dst, double value);
// x itself when contiguous, else a contiguous copy (never recorded: kernels work on values).
Tensor dense(const Tensor& x);

}  // namespace plateau::cpu

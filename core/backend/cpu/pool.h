#pragma once
// Pooling kernels (internal).
#include <cstdint>

#include "core/backend/kernel_types.h"
#include "core/tensor.h"

namespace plateau::cpu {

using kernels::PoolGeometry;

// values ([planes, OH, OW] in x's dtype) and indices (i64 [planes, OH, OW]), both contiguous and
// overwritten: each window's maximum and its position ih·W + iw in the plane of x (any strides).
// Padding never wins, ties go to the first (row-major) position, and a NaN beats everything (the
// last NaN of a window wins), as in torch.
void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const PoolGeometry& g);

}  // namespace plateau::cpu

#pragma once
// Pooling kernels (internal).
#include <cstdint>

#include "core/tensor.h"

namespace plateau::cpu {

struct PoolGeometry {
  int64_t planes = 0, height = 0, width = 0;  // input [N·C planes, H, W]
  int64_t out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// indices (i64 [planes, OH, OW] contiguous, overwritten) = position ih·W + iw of each window's
// maximum in its plane of x (any strides); padding never wins, ties go to the first (row-major)
// position, NaN beats everything (as torch).
void max_pool2d_indices(const Tensor& x, const Tensor& indices, const PoolGeometry& g);

}  // namespace plateau::cpu

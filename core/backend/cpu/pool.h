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

// values ([planes, OH, OW] in x's dtype) and indices (i64 [planes, OH, OW]), both contiguous and
// overwritten: each window's maximum and its position ih·W + iw in the plane of x (any strides).
// Padding never wins, ties go to the first (row-major) position, and a NaN beats everything (the
// last NaN of a window wins), as in torch.
void max_pool2d(const Tensor& x, const Tensor& values, const Tensor& indices, const PoolGeometry& g);

}  // namespace plateau::cpu

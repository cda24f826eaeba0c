#pragma once
#include "core/tensor.h"

namespace plateau {

// numpy matmul: 1-D operands are promoted and the added dim removed; batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor outer(const Tensor& a, const Tensor& b);  // a [n], b [m] -> [n, m]
Tensor dot(const Tensor& a, const Tensor& b);    // a [n], b [n] -> []
// y = x Wᵀ + b over the last dim of x (b optional).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace plateau

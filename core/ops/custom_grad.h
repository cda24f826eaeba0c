#pragma once
// Ops whose backward rule is deliberately not the derivative of their forward.
#include "core/tensor.h"

namespace plateau {

// Identity forward; backward multiplies the gradient by −lambda (domain-adversarial training).
Tensor gradient_reversal(const Tensor& x, double lambda = 1.0);
// The values of `value`, with the gradient of the identity with respect to x: the straight-through
// estimator. straight_through(x, round(x)) rounds forward and passes gradients through unchanged.
// x and value must have the same shape and dtype; value gets no gradient.
Tensor straight_through(const Tensor& x, const Tensor& value);

}  // namespace plateau

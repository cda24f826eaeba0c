#pragma once
// Elementwise CPU kernels (internal to core/ops). Each kernel writes `out`, whose shape is the
// broadcast shape of the operands; operands are broadcast to it and may have any strides. `out` may
// be one of the operands (in-place updates) when it is the very same view. Checks of shapes and
// dtypes belong to the ops; the kernels assume them.
#include <cstdint>

#include "core/backend/kernel_types.h"
#include "core/tensor.h"

namespace plateau::cpu {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;

// out = op(x); x and out have the same shape and dtype.
void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0 = 0.0, double p1 = 0.0);
// out = op(a, b); a, b and out share one dtype.
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha = 1.0);
// out (bool) = op(a, b); a and b share one dtype.
void compare(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out);
// out = cond ? a : b; cond bool, a, b and out share one dtype.
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
// out (bool) = x is neither infinite nor NaN (always true for integer and bool tensors).
void isfinite(const Tensor& x, const Tensor& out);

}  // namespace plateau::cpu

#pragma once
// Elementwise CPU kernels (internal to core/ops). Each kernel writes `out`, whose shape is the
// broadcast shape of the operands; operands are broadcast to it and may have any strides. `out` may
// be one of the operands (in-place updates) when it is the very same view. Checks of shapes and
// dtypes belong to the ops; the kernels assume them.
#include <cstdint>

#include "core/tensor.h"

namespace plateau::cpu {

enum class UnaryOp : uint8_t {
  neg,   // also i64
  abs,   // also i64
  sign,  // also i64
  exp,
  log,
  log1p,
  sqrt,
  rsqrt,
  relu,
  leaky_relu,  // p0: negative slope
  gelu,        // x Φ(x)
  gelu_tanh,   // 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))
  tanh,
  sigmoid,
  softplus,  // p0: beta, p1: threshold
  sin,
  cos,
  erf,
  clamp,       // p0: min, p1: max (±inf when absent)
  pow_scalar,  // p0: exponent
};

enum class BinaryOp : uint8_t {
  add,  // also i64
  sub,  // also i64
  mul,  // also i64
  div,
  pow,
  maximum,     // also i64; NaN propagates
  minimum,     // also i64; NaN propagates
  add_scaled,  // a + alpha * b, also i64
};

// Comparisons of two operands of one dtype (any dtype), giving bool.
enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge, logical_and };

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

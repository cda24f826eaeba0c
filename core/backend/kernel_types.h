#pragma once
// The vocabulary every backend's kernels share: which elementwise function, the geometry of a
// convolution or a pooling window. The CPU kernels (backend/cpu) are the reference, the CUDA kernels
// (backend/cuda) are checked against them, and core/backend/kernels.h picks one by device.
#include <cstdint>

namespace plateau::kernels {

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

struct ConvGeometry {
  int64_t batch = 0, channels = 0, height = 0, width = 0;  // input [N, C, H, W]
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;    // weight [O, C/groups, kH, kW]
  int64_t out_h = 0, out_w = 0;                            // output [N, O, OH, OW]
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// The first index (in row-major order) outside [0, size), or position -1 when all are in range.
struct BadIndex {
  int64_t position = -1;
  int64_t value = 0;
};

struct PoolGeometry {
  int64_t planes = 0, height = 0, width = 0;  // input [N·C planes, H, W]
  int64_t out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

}  // namespace plateau::kernels

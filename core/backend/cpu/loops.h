#pragma once
// Building blocks of the CPU kernels (internal): dtype dispatch and strided iteration.
#include <array>
#include <stdexcept>
#include <string>

#include "core/tensor.h"

// Runs the body with scalar_t bound to the C++ type of a floating dtype.
#define PLATEAU_DISPATCH_FLOATING(dtype, what, ...)                                                     \
  switch (dtype) {                                                                                      \
    case ::plateau::DType::f32: { using scalar_t = float; __VA_ARGS__; break; }                          \
    case ::plateau::DType::f64: { using scalar_t = double; __VA_ARGS__; break; }                         \
    default:                                                                                            \
      throw std::invalid_argument(std::string("plateau: ") + (what) + " needs a floating tensor, got " + \
                                  ::plateau::dtype_name(dtype));                                         \
  }

#define PLATEAU_DISPATCH_ALL(dtype, what, ...)                                  \
  switch (dtype) {                                                              \
    case ::plateau::DType::f32: { using scalar_t = float; __VA_ARGS__; break; }  \
    case ::plateau::DType::f64: { using scalar_t = double; __VA_ARGS__; break; } \
    case ::plateau::DType::i64: { using scalar_t = int64_t; __VA_ARGS__; break; } \
    case ::plateau::DType::b8: { using scalar_t = bool; __VA_ARGS__; break; }    \
  }

namespace plateau::cpu {

// Visits every element of `shape` for N operands with their own (element) strides, row-major,
// calling inner(ptrs, count, inner_strides) once per innermost row so the caller's inner loop can
// specialise on unit or zero strides and vectorize.
template <size_t N, typename Inner>
void for_each_row(const Shape& shape, const std::array<const Shape*, N>& strides, std::array<char*, N> base,
                  const std::array<size_t, N>& elem_size, Inner inner) {
  int64_t rank = shape.size();
  if (shape.numel() == 0) return;
  if (rank == 0) {
    std::array<int64_t, N> s{};
    inner(base, 1, s);
    return;
  }
  int64_t n = shape[rank - 1];
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = (*strides[k])[rank - 1];
  int64_t rows = shape.numel() / n;
  int64_t idx[Shape::max_dims] = {};
  for (int64_t r = 0; r < rows; ++r) {
    std::array<char*, N> p = base;
    for (int64_t d = 0; d < rank - 1; ++d)
      for (size_t k = 0; k < N; ++k) p[k] += idx[d] * (*strides[k])[d] * static_cast<int64_t>(elem_size[k]);
    inner(p, n, inner_strides);
    for (int64_t d = rank - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Strides of `t` seen as a tensor of shape `out` (broadcast dims get stride 0).
Shape broadcast_strides(const Tensor& t, const Shape& out);

}  // namespace plateau::cpu

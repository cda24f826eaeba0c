#pragma once
// Building blocks of the CPU kernels (internal): dtype dispatch and strided iteration.
#include <array>
#include <stdexcept>
#include <string>

#include "core/tensor.h"

// One case of a dtype switch: the body runs with scalar_t bound to the C++ type.
#define PLATEAU_DTYPE_CASE(tag, type, ...) \
  case ::plateau::DType::tag: {            \
    using scalar_t = type;                 \
    __VA_ARGS__;                           \
    break;                                 \
  }

// Runs the body with scalar_t bound to the C++ type of a floating dtype; other dtypes are an error.
#define PLATEAU_DISPATCH_FLOATING(dtype, what, ...)                                                      \
  switch (dtype) {                                                                                       \
    PLATEAU_DTYPE_CASE(f32, float, __VA_ARGS__)                                                          \
    PLATEAU_DTYPE_CASE(f64, double, __VA_ARGS__)                                                         \
    default:                                                                                             \
      throw std::invalid_argument(std::string("plateau: ") + (what) + " needs a floating tensor, got " + \
                                  ::plateau::dtype_name(dtype));                                         \
  }

// Runs the body with scalar_t bound to the C++ type of any dtype.
#define PLATEAU_DISPATCH_ALL(dtype, what, ...)    \
  switch (dtype) {                                \
    PLATEAU_DTYPE_CASE(f32, float, __VA_ARGS__)   \
    PLATEAU_DTYPE_CASE(f64, double, __VA_ARGS__)  \
    PLATEAU_DTYPE_CASE(i64, int64_t, __VA_ARGS__) \
    PLATEAU_DTYPE_CASE(b8, bool, __VA_ARGS__)     \
  }

namespace plateau::cpu {

// Merges adjacent dims that every operand walks as one (stride[d] == stride[d+1]·size[d+1], which
// includes broadcast operands with stride 0 in both) and drops size-1 dims, so that contiguous and
// scalar-broadcast operands become one long row whatever their rank.
template <size_t N>
void coalesce_dims(Shape& shape, std::array<Shape, N>& strides) {
  Shape out_shape;
  std::array<Shape, N> out_strides;
  for (int64_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out_shape.empty();
    for (size_t k = 0; merge && k < N; ++k) merge = out_strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out_shape[out_shape.size() - 1] *= shape[d];
      for (size_t k = 0; k < N; ++k) out_strides[k][out_strides[k].size() - 1] = strides[k][d];
    } else {
      out_shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) out_strides[k].push_back(strides[k][d]);
    }
  }
  if (out_shape.empty() && shape.numel() == 1) {  // a single element: one row of length 1
    out_shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out_strides[k].push_back(0);
  }
  shape = out_shape;
  strides = out_strides;
}

// Visits every element of `shape` for N operands with their own (element) strides, row-major,
// calling inner(ptrs, count, inner_strides) once per innermost row so the caller's inner loop can
// specialise on unit or zero strides and vectorize. Dims are coalesced first (coalesce_dims).
template <size_t N, typename Inner>
void for_each_row(const Shape& full_shape, const std::array<const Shape*, N>& full_strides, std::array<char*, N> base,
                  const std::array<size_t, N>& elem_size, Inner inner) {
  if (full_shape.numel() == 0) return;
  Shape shape = full_shape;
  std::array<Shape, N> strides;
  for (size_t k = 0; k < N; ++k) strides[k] = *full_strides[k];
  coalesce_dims<N>(shape, strides);
  int64_t rank = shape.size();
  int64_t n = shape[rank - 1];
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = strides[k][rank - 1];
  int64_t rows = shape.numel() / n;
  int64_t idx[Shape::max_dims] = {};
  std::array<char*, N> p = base;
  for (int64_t r = 0; r < rows; ++r) {
    inner(p, n, inner_strides);
    // Advance the row counter like an odometer, moving the pointers incrementally.
    for (int64_t d = rank - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        for (size_t k = 0; k < N; ++k) p[k] += strides[k][d] * static_cast<int64_t>(elem_size[k]);
        break;
      }
      for (size_t k = 0; k < N; ++k) p[k] -= (shape[d] - 1) * strides[k][d] * static_cast<int64_t>(elem_size[k]);
      idx[d] = 0;
    }
  }
}

// Views shape s as [A, R, B] around dim: A = product of the dims before, R = s[dim], B = after.
inline void split(const Shape& s, int64_t dim, int64_t& A, int64_t& R, int64_t& B) {
  A = 1, B = 1;
  for (int64_t d = 0; d < dim; ++d) A *= s[d];
  R = s[dim];
  for (int64_t d = dim + 1; d < s.size(); ++d) B *= s[d];
}

// Strides of `t` seen as a tensor of shape `out` (broadcast dims get stride 0).
Shape broadcast_strides(const Tensor& t, const Shape& out);

}  // namespace plateau::cpu

// Softmax along a dim, viewing the contiguous input as [outer, n, inner]: the max is subtracted
// before exponentiating (so large inputs do not overflow), then
//   softmax = exp(x - m) / Σ exp(x - m),   log_softmax = x - m - log Σ exp(x - m).
// Rows are independent, so any split over rows gives the same result.
// GCC 12 reports its own AVX-512 intrinsics (_mm512_undefined_*) as maybe-uninitialized when
// Eigen inlines them; the warning is spurious.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "core/backend/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Core>

#include "core/backend/cpu/copy.h"
#include "core/backend/cpu/loops.h"
#include "core/ops/factory.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

template <typename T>
using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// exp(d) for d = x − max ≤ 0, exactly 0 where it underflows: Eigen's SSE2 exp (builds without
// -march=native) returns a denormal instead of 0 for arguments far below the underflow point.
template <typename T, typename E>
auto exp_shifted(const E& d) {
  constexpr T underflow = sizeof(T) == 4 ? T(-104) : T(-746);
  return (d < underflow).select(T(0), d.exp());
}

// One contiguous row of n elements (the last dim): Eigen's vectorized exp.
template <typename T>
void row_softmax(const T* x, T* y, int64_t n, bool log) {
  ConstArray<T> xs(x, n);
  Array<T> ys(y, n);
  const T m = xs.maxCoeff();
  if (log) {
    ys = exp_shifted<T>(xs - m);
    const T lse = std::log(ys.sum());
    ys = xs - m - lse;
  } else {
    ys = exp_shifted<T>(xs - m);
    ys *= T(1) / ys.sum();
  }
}

// A block [n, inner] with the softmax along n: every step runs over `inner` contiguous lanes.
template <typename T>
void block_softmax(const T* x, T* y, int64_t n, int64_t inner, bool log, T* m, T* s) {
  Array<T> ms(m, inner), ss(s, inner);
  ms = ConstArray<T>(x, inner);
  for (int64_t i = 1; i < n; ++i) ms = ms.max(ConstArray<T>(x + i * inner, inner));
  ss.setZero();
  for (int64_t i = 0; i < n; ++i) {
    Array<T> yi(y + i * inner, inner);
    yi = exp_shifted<T>(ConstArray<T>(x + i * inner, inner) - ms);
    ss += yi;
  }
  if (log) {
    ss = ss.log() + ms;
    for (int64_t i = 0; i < n; ++i) Array<T>(y + i * inner, inner) = ConstArray<T>(x + i * inner, inner) - ss;
  } else {
    ss = ss.inverse();
    for (int64_t i = 0; i < n; ++i) Array<T>(y + i * inner, inner) *= ss;
  }
}

template <typename T>
void softmax_impl(const Tensor& x, const Tensor& out, int64_t dim, bool log) {
  const Shape& shape = x.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t n = shape.size() == 0 ? 1 : shape[dim];
  if (outer * n * inner == 0) return;
  const T* xp = x.data<T>();
  T* yp = out.data<T>();
  const int64_t block = n * inner;
  const int64_t grain = std::max<int64_t>(1, 16384 / block);
  parallel_for(outer, grain, [&](int64_t o0, int64_t o1) {
    std::vector<T> m(inner > 1 ? inner : 0), s(inner > 1 ? inner : 0);
    for (int64_t o = o0; o < o1; ++o) {
      if (inner == 1)
        row_softmax(xp + o * block, yp + o * block, n, log);
      else
        block_softmax(xp + o * block, yp + o * block, n, inner, log, m.data(), s.data());
    }
  });
}

}  // namespace

void softmax(const Tensor& x, const Tensor& out, int64_t dim, bool log) {
  Tensor xc = x;
  if (!x.is_contiguous()) {
    xc = empty(x.shape(), x.dtype());
    copy(x, xc);
  }
  PLATEAU_DISPATCH_FLOATING(x.dtype(), log ? "log_softmax" : "softmax", softmax_impl<scalar_t>(xc, out, dim, log));
}

}  // namespace plateau::cpu

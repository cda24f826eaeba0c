// Elementwise kernels: one templated loop per arity, specialised per op through a lambda so each
// inner loop is a plain loop the compiler can vectorize. Fast paths: contiguous operands of the
// output's size (flat loop), a scalar operand, and a contiguous row repeated over leading dims
// (bias add [N, K] + [K]); everything else goes through the strided row iterator.
#include "core/backend/cpu/elementwise.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/backend/cpu/loops.h"
#include "core/threads.h"

namespace plateau::cpu {

namespace {

// Elements per parallel chunk. Fixed (not derived from the thread count), and every element is
// computed independently, so results never depend on the number of threads.
constexpr int64_t kGrain = 32768;

template <typename F>
void flat_apply(int64_t n, const F& body) {
  if (n <= kGrain) {
    body(int64_t{0}, n);
    return;
  }
  parallel_for(n, kGrain, body);
}

// for_each_row over `shape`, split over dim 0 in parallel when the tensor is large.
template <size_t N, typename Inner>
void strided_apply(const Shape& shape, const std::array<Shape, N>& strides, const std::array<char*, N>& base,
                   const std::array<size_t, N>& elem_size, const Inner& inner) {
  int64_t n = shape.numel();
  if (n == 0) return;
  std::array<Shape, N> merged_strides = strides;
  Shape merged = shape;
  coalesce_dims<N>(merged, merged_strides);
  if (merged.size() == 1 && n >= 2 * kGrain) {
    // One long row (contiguous or scalar-broadcast operands): split it into fixed-size pieces.
    parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
      std::array<char*, N> p = base;
      std::array<int64_t, N> s;
      for (size_t k = 0; k < N; ++k) {
        s[k] = merged_strides[k][0];
        p[k] += begin * s[k] * static_cast<int64_t>(elem_size[k]);
      }
      inner(p, end - begin, s);
    });
    return;
  }
  std::array<const Shape*, N> all;
  for (size_t k = 0; k < N; ++k) all[k] = &strides[k];
  if (shape.size() < 2 || n < 2 * kGrain || shape[0] == 1) {
    for_each_row<N>(shape, all, base, elem_size, inner);
    return;
  }
  Shape sub = shape;
  sub.erase(0);
  std::array<Shape, N> sub_strides = strides;
  std::array<const Shape*, N> rest;
  for (size_t k = 0; k < N; ++k) {
    sub_strides[k].erase(0);
    rest[k] = &sub_strides[k];
  }
  int64_t per_slice = n / shape[0];
  parallel_for(shape[0], std::max<int64_t>(1, kGrain / per_slice), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      std::array<char*, N> p = base;
      for (size_t k = 0; k < N; ++k) p[k] += i * strides[k][0] * static_cast<int64_t>(elem_size[k]);
      for_each_row<N>(sub, rest, p, elem_size, inner);
    }
  });
}

// True when `t` is contiguous and, after leading size-1 dims, has exactly the trailing dims of
// `shape`: one row repeated over the leading dims (a bias [K] added to [N, K]).
bool is_trailing_row(const Tensor& t, const Shape& shape) {
  if (!t.is_contiguous()) return false;
  int64_t lead = 0;
  while (lead < t.dim() && t.shape()[lead] == 1) ++lead;
  int64_t k = t.dim() - lead;
  if (k == 0 || k > shape.size()) return false;
  for (int64_t i = 0; i < k; ++i)
    if (t.shape()[lead + i] != shape[shape.size() - k + i]) return false;
  return true;
}

char* base_of(const Tensor& t) { return static_cast<char*>(t.raw_data()); }

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

// ---- exp and tanh for f32 tensors, evaluated in double without libm calls, so loops vectorize.
// Their error (~1e-13 relative) is far below float's half ulp (3e-8): the float results are the
// correctly rounded values in all but rare ties. f64 tensors use <cmath> (the reference dtype).

// exp(x) for x from a float: |x| > 150 already over/underflows float, so the argument is clamped
// there. x = n ln2 + r, |r| <= ln2/2, exp(x) = 2^n exp(r) with exp(r) by its Taylor series to r^11.
[[gnu::always_inline]] inline double exp_for_float(double x) {
  constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  constexpr double log2e = 1.4426950408889634074;
  constexpr double ln2_hi = 6.93147180369123816490e-01;  // ln 2 split so n * ln2_hi is exact
  constexpr double ln2_lo = 1.90821492927058770002e-10;
  double xc = x < -150.0 ? -150.0 : (x > 150.0 ? 150.0 : x);
  xc = xc == xc ? xc : 0.0;  // NaN: computed on 0, replaced below
  double t = xc * log2e + magic;
  double n = t - magic;
  int64_t ni = std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(magic);
  double r = (xc - n * ln2_hi) - n * ln2_lo;
  double p = 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  double scale = std::bit_cast<double>((ni + 1023) << 52);  // 2^n, |n| <= 217
  return x == x ? p * scale : x + x;  // NaN in, NaN out (x + x rather than x keeps gcc's loop a vector select)
}

// tanh(x) = 1 - 2 / (exp(2|x|) + 1) with x's sign; near 0, where that form cancels, its odd Taylor
// series (error below 1e-16 relative for |x| < 0.05).
[[gnu::always_inline]] inline double tanh_for_float(double x) {
  double ax = std::abs(x);
  double big = 1.0 - 2.0 / (exp_for_float(2.0 * ax) + 1.0);
  double x2 = x * x;
  double small =
      ax *
      (1.0 + x2 * (-1.0 / 3 + x2 * (2.0 / 15 + x2 * (-17.0 / 315 + x2 * (62.0 / 2835 + x2 * (-1382.0 / 155925))))));
  return std::copysign(ax < 0.05 ? small : big, x);
}

template <typename TI, typename TO, typename F>
void unary_loop(const Tensor& x, const Tensor& out, F f) {
  if (out.numel() == 0) return;
  if (x.is_contiguous() && out.is_contiguous()) {
    const TI* px = reinterpret_cast<const TI*>(base_of(x));
    TO* po = reinterpret_cast<TO*>(base_of(out));
    flat_apply(out.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) po[i] = f(px[i]);
    });
    return;
  }
  strided_apply<2>(out.shape(), {out.strides(), broadcast_strides(x, out.shape())}, {base_of(out), base_of(x)},
                   {sizeof(TO), sizeof(TI)}, [&f](std::array<char*, 2> p, int64_t n, std::array<int64_t, 2> s) {
                     TO* o = reinterpret_cast<TO*>(p[0]);
                     const TI* v = reinterpret_cast<const TI*>(p[1]);
                     if (s[0] == 1 && s[1] == 1)
                       for (int64_t i = 0; i < n; ++i) o[i] = f(v[i]);
                     else
                       for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(v[i * s[1]]);
                   });
}

template <typename T, typename TO, typename F>
void binary_loop(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const Shape& shape = out.shape();
  int64_t n = shape.numel();
  if (n == 0) return;
  const T* pa = reinterpret_cast<const T*>(base_of(a));
  const T* pb = reinterpret_cast<const T*>(base_of(b));
  if (out.is_contiguous()) {
    TO* po = reinterpret_cast<TO*>(base_of(out));
    // An operand with as many elements as the output that broadcasts to it has the output's dims
    // (up to leading 1s), so a contiguous one is indexed flat like the output.
    bool a_full = a.numel() == n && a.is_contiguous();
    bool b_full = b.numel() == n && b.is_contiguous();
    if (a_full && b_full) {
      flat_apply(n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
      });
      return;
    }
    if (a_full && b.numel() == 1) {
      T vb = *pb;
      flat_apply(n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], vb);
      });
      return;
    }
    if (b_full && a.numel() == 1) {
      T va = *pa;
      flat_apply(n, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) po[i] = f(va, pb[i]);
      });
      return;
    }
    if ((a_full && is_trailing_row(b, shape)) || (b_full && is_trailing_row(a, shape))) {
      bool row_is_b = a_full;
      int64_t k = row_is_b ? b.numel() : a.numel();
      int64_t rows = n / k;
      auto body = [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          TO* o = po + r * k;
          if (row_is_b) {
            const T* x = pa + r * k;
            for (int64_t j = 0; j < k; ++j) o[j] = f(x[j], pb[j]);
          } else {
            const T* y = pb + r * k;
            for (int64_t j = 0; j < k; ++j) o[j] = f(pa[j], y[j]);
          }
        }
      };
      if (n <= kGrain)
        body(0, rows);
      else
        parallel_for(rows, std::max<int64_t>(1, kGrain / k), body);
      return;
    }
  }
  strided_apply<3>(shape, {out.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)},
                   {base_of(out), base_of(a), base_of(b)}, {sizeof(TO), sizeof(T), sizeof(T)},
                   [&f](std::array<char*, 3> p, int64_t m, std::array<int64_t, 3> s) {
                     TO* o = reinterpret_cast<TO*>(p[0]);
                     const T* x = reinterpret_cast<const T*>(p[1]);
                     const T* y = reinterpret_cast<const T*>(p[2]);
                     if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
                       for (int64_t i = 0; i < m; ++i) o[i] = f(x[i], y[i]);
                     } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
                       T v = *y;
                       for (int64_t i = 0; i < m; ++i) o[i] = f(x[i], v);
                     } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
                       T v = *x;
                       for (int64_t i = 0; i < m; ++i) o[i] = f(v, y[i]);
                     } else {
                       for (int64_t i = 0; i < m; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]]);
                     }
                   });
}

[[noreturn]] void fail_dtype(const char* what, DType t) {
  throw std::invalid_argument(std::string("plateau: elementwise kernel '") + what + "' does not support " +
                              dtype_name(t) + " tensors");
}

template <typename T>
void unary_floating(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  switch (op) {
    case UnaryOp::neg: return unary_loop<T, T>(x, out, [](T v) { return -v; });
    case UnaryOp::abs: return unary_loop<T, T>(x, out, [](T v) { return std::abs(v); });
    // NaN stays NaN; zero stays (signed) zero.
    case UnaryOp::sign: return unary_loop<T, T>(x, out, [](T v) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v); });
    case UnaryOp::exp:
      if constexpr (std::is_same_v<T, float>)
        return unary_loop<T, T>(x, out, [](T v) { return static_cast<float>(exp_for_float(v)); });
      else
        return unary_loop<T, T>(x, out, [](T v) { return std::exp(v); });
    case UnaryOp::log: return unary_loop<T, T>(x, out, [](T v) { return std::log(v); });
    case UnaryOp::log1p: return unary_loop<T, T>(x, out, [](T v) { return std::log1p(v); });
    case UnaryOp::sqrt: return unary_loop<T, T>(x, out, [](T v) { return std::sqrt(v); });
    case UnaryOp::rsqrt: return unary_loop<T, T>(x, out, [](T v) { return T(1) / std::sqrt(v); });
    // Written so NaN propagates (NaN < 0 is false).
    case UnaryOp::relu: return unary_loop<T, T>(x, out, [](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::leaky_relu: {
      T slope = static_cast<T>(p0);
      return unary_loop<T, T>(x, out, [slope](T v) { return v > T(0) ? v : v * slope; });
    }
    // Both gelu forms are evaluated in double, also for f32: in the negative tail 1 + erf(...) and
    // 1 + tanh(...) cancel, and float constants and arithmetic would cost many ulps there.
    case UnaryOp::gelu: {
      // x Φ(x) with Φ(x) = (1 + erf(x / √2)) / 2.
      constexpr double inv_sqrt2 = 0.70710678118654752440;
      return unary_loop<T, T>(x, out, [](T v) {
        double d = v;
        return static_cast<T>(0.5 * d * (1.0 + std::erf(d * inv_sqrt2)));
      });
    }
    case UnaryOp::gelu_tanh: {
      constexpr double k = 0.79788456080286535588;  // √(2/π)
      constexpr double c = 0.044715;
      if constexpr (std::is_same_v<T, float>)
        return unary_loop<T, T>(x, out, [](T v) {
          double d = v;
          return static_cast<float>(0.5 * d * (1.0 + tanh_for_float(k * (d + c * d * d * d))));
        });
      else
        return unary_loop<T, T>(x, out, [](T v) { return 0.5 * v * (1.0 + std::tanh(k * (v + c * v * v * v))); });
    }
    case UnaryOp::tanh:
      if constexpr (std::is_same_v<T, float>)
        return unary_loop<T, T>(x, out, [](T v) { return static_cast<float>(tanh_for_float(v)); });
      else
        return unary_loop<T, T>(x, out, [](T v) { return std::tanh(v); });
    case UnaryOp::sigmoid:
      // In double, exp(-x) is clamped at exp(150) and never overflows.
      if constexpr (std::is_same_v<T, float>)
        return unary_loop<T, T>(x, out,
                                [](T v) { return static_cast<float>(1.0 / (1.0 + exp_for_float(-double(v)))); });
      // exp of a non-positive argument only, so neither branch overflows.
      return unary_loop<T, T>(x, out, [](T v) {
        if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
        T e = std::exp(v);
        return e / (T(1) + e);
      });
    case UnaryOp::softplus: {
      // log(1 + exp(βx)) / β, and x itself once βx passes the threshold (as torch).
      T beta = static_cast<T>(p0), threshold = static_cast<T>(p1);
      return unary_loop<T, T>(x, out, [beta, threshold](T v) {
        T bx = v * beta;
        return bx > threshold ? v : std::log1p(std::exp(bx)) / beta;
      });
    }
    case UnaryOp::sin: return unary_loop<T, T>(x, out, [](T v) { return std::sin(v); });
    case UnaryOp::cos: return unary_loop<T, T>(x, out, [](T v) { return std::cos(v); });
    case UnaryOp::erf: return unary_loop<T, T>(x, out, [](T v) { return std::erf(v); });
    case UnaryOp::clamp: {
      // NaN propagates: std::max(NaN, lo) and std::min(NaN, hi) both return NaN.
      T lo = static_cast<T>(p0), hi = static_cast<T>(p1);
      return unary_loop<T, T>(x, out, [lo, hi](T v) { return std::min(std::max(v, lo), hi); });
    }
    case UnaryOp::pow_scalar: {
      if (p0 == 2.0) return unary_loop<T, T>(x, out, [](T v) { return v * v; });
      if (p0 == 1.0) return unary_loop<T, T>(x, out, [](T v) { return v; });
      T p = static_cast<T>(p0);
      return unary_loop<T, T>(x, out, [p](T v) { return std::pow(v, p); });
    }
  }
}

void unary_integer(UnaryOp op, const Tensor& x, const Tensor& out) {
  using T = int64_t;
  switch (op) {
    case UnaryOp::neg: return unary_loop<T, T>(x, out, [](T v) { return -v; });
    case UnaryOp::abs: return unary_loop<T, T>(x, out, [](T v) { return v < 0 ? -v : v; });
    case UnaryOp::sign: return unary_loop<T, T>(x, out, [](T v) { return static_cast<T>((v > 0) - (v < 0)); });
    default: fail_dtype("unary", DType::i64);
  }
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha) {
  switch (op) {
    case BinaryOp::add: return binary_loop<T, T>(a, b, out, [](T x, T y) { return x + y; });
    case BinaryOp::sub: return binary_loop<T, T>(a, b, out, [](T x, T y) { return x - y; });
    case BinaryOp::mul: return binary_loop<T, T>(a, b, out, [](T x, T y) { return x * y; });
    case BinaryOp::div:
      if constexpr (std::is_floating_point_v<T>)
        return binary_loop<T, T>(a, b, out, [](T x, T y) { return x / y; });
      else
        fail_dtype("div", out.dtype());
    case BinaryOp::pow:
      if constexpr (std::is_floating_point_v<T>)
        return binary_loop<T, T>(a, b, out, [](T x, T y) { return std::pow(x, y); });
      else
        fail_dtype("pow", out.dtype());
    // NaN in either operand propagates, as torch.maximum / torch.minimum.
    case BinaryOp::maximum: return binary_loop<T, T>(a, b, out, [](T x, T y) { return (is_nan(x) || x > y) ? x : y; });
    case BinaryOp::minimum: return binary_loop<T, T>(a, b, out, [](T x, T y) { return (is_nan(x) || x < y) ? x : y; });
    case BinaryOp::add_scaled: {
      T s = static_cast<T>(alpha);
      return binary_loop<T, T>(a, b, out, [s](T x, T y) { return x + s * y; });
    }
  }
}

template <typename T>
void compare_typed(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  switch (op) {
    case CompareOp::eq: return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x == y; });
    case CompareOp::ne: return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x != y; });
    case CompareOp::lt: return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x < y; });
    case CompareOp::le: return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x <= y; });
    case CompareOp::gt: return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x > y; });
    case CompareOp::ge: return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x >= y; });
    case CompareOp::logical_and:
      return binary_loop<T, bool>(a, b, out, [](T x, T y) { return x != T(0) && y != T(0); });
  }
}

template <typename T>
void where_typed(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  const Shape& shape = out.shape();
  int64_t n = shape.numel();
  if (n == 0) return;
  auto full = [n](const Tensor& t) { return t.numel() == n && t.is_contiguous(); };
  if (out.is_contiguous() && full(cond) && full(a) && full(b)) {
    // The condition read as bytes (0 or 1): gcc vectorizes a select on uint8_t, not on bool.
    const uint8_t* pc = reinterpret_cast<const uint8_t*>(base_of(cond));
    const T* pa = reinterpret_cast<const T*>(base_of(a));
    const T* pb = reinterpret_cast<const T*>(base_of(b));
    T* po = reinterpret_cast<T*>(base_of(out));
    flat_apply(n, [&](int64_t s, int64_t e) {
      // Both operands loaded unconditionally: a select, which vectorizes, rather than masked loads.
      for (int64_t i = s; i < e; ++i) {
        T x = pa[i], y = pb[i];
        po[i] = pc[i] != 0 ? x : y;
      }
    });
    return;
  }
  strided_apply<4>(
      shape, {out.strides(), broadcast_strides(cond, shape), broadcast_strides(a, shape), broadcast_strides(b, shape)},
      {base_of(out), base_of(cond), base_of(a), base_of(b)}, {sizeof(T), sizeof(bool), sizeof(T), sizeof(T)},
      [](std::array<char*, 4> p, int64_t m, std::array<int64_t, 4> s) {
        T* o = reinterpret_cast<T*>(p[0]);
        const uint8_t* c = reinterpret_cast<const uint8_t*>(p[1]);
        const T* x = reinterpret_cast<const T*>(p[2]);
        const T* y = reinterpret_cast<const T*>(p[3]);
        if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
          for (int64_t i = 0; i < m; ++i) {
            T u = x[i], v = y[i];
            o[i] = c[i] != 0 ? u : v;
          }
        } else if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 0) {  // where(mask, g, 0): ReLU's backward
          const T v = y[0];
          for (int64_t i = 0; i < m; ++i) {
            T u = x[i];
            o[i] = c[i] != 0 ? u : v;
          }
        } else {
          for (int64_t i = 0; i < m; ++i) o[i * s[0]] = c[i * s[1]] != 0 ? x[i * s[2]] : y[i * s[3]];
        }
      });
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  switch (x.dtype()) {
    case DType::f32: return unary_floating<float>(op, x, out, p0, p1);
    case DType::f64: return unary_floating<double>(op, x, out, p0, p1);
    case DType::i64: return unary_integer(op, x, out);
    case DType::b8: fail_dtype("unary", DType::b8);
  }
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha) {
  switch (out.dtype()) {
    case DType::f32: return binary_typed<float>(op, a, b, out, alpha);
    case DType::f64: return binary_typed<double>(op, a, b, out, alpha);
    case DType::i64: return binary_typed<int64_t>(op, a, b, out, alpha);
    case DType::b8: fail_dtype("binary", DType::b8);
  }
}

void compare(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  PLATEAU_DISPATCH_ALL(a.dtype(), "compare", compare_typed<scalar_t>(op, a, b, out));
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  PLATEAU_DISPATCH_ALL(out.dtype(), "where", where_typed<scalar_t>(cond, a, b, out));
}

void isfinite(const Tensor& x, const Tensor& out) {
  PLATEAU_DISPATCH_ALL(x.dtype(), "isfinite", {
    unary_loop<scalar_t, bool>(x, out, [](scalar_t v) {
      if constexpr (std::is_floating_point_v<scalar_t>)
        return static_cast<bool>(std::isfinite(v));
      else
        return true;
    });
  });
}

}  // namespace plateau::cpu

#pragma once
// The per-element functions of the CUDA elementwise kernels, one functor per op, each the formula
// of its CPU twin in core/backend/cpu/elementwise.cpp (same NaN rules, same f32 evaluation in
// double where the CPU does it). Internal to core/backend/cuda.
//
// Precision: f32 transcendental functions are evaluated in double and rounded once, as the CPU's
// exp/tanh/sigmoid/gelu are, so f32 results are nearly always the correctly rounded value and
// match the CPU to the last bit or within one ulp. sqrt and division are IEEE-rounded on the
// device (nvcc's default -prec-sqrt/-prec-div), so sqrt, rsqrt and div match the CPU exactly.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace plateau::cuda::math {

template <typename T>
constexpr bool floating = std::is_floating_point_v<T>;

// v != v is true exactly for NaN (no fast-math here); integers are never NaN.
template <typename T>
__host__ __device__ bool is_nan(T v) {
  if constexpr (floating<T>)
    return v != v;
  else
    return false;
}

// Correctly rounded square root in the operand's own precision.
__host__ __device__ inline float root(float v) { return sqrtf(v); }
__host__ __device__ inline double root(double v) { return sqrt(v); }

// ---- conversions and constants (copy, fill)

// static_cast, as the CPU's copy: to bool means != 0 (NaN is true), float to integer truncates.
template <typename D, typename S>
struct Convert {
  __host__ __device__ D operator()(S v) const { return static_cast<D>(v); }
};

template <typename T>
struct Constant {
  T value;
  __host__ __device__ T operator()() const { return value; }
};

// ---- unary (f32, f64; neg/abs/sign also i64)

template <typename T>
struct Neg {
  __host__ __device__ T operator()(T v) const { return -v; }
};
template <typename T>
struct Abs {  // fabs for floats (|-0| = +0, NaN stays NaN), as std::abs
  __host__ __device__ T operator()(T v) const {
    if constexpr (std::is_same_v<T, float>)
      return fabsf(v);
    else if constexpr (floating<T>)
      return fabs(v);
    else
      return v < 0 ? -v : v;
  }
};
// 1, -1, or v itself: zero keeps its sign and NaN stays NaN (for i64 this is (v > 0) - (v < 0)).
template <typename T>
struct Sign {
  __host__ __device__ T operator()(T v) const { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v); }
};
template <typename T>
struct Exp {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(exp(static_cast<double>(v))); }
};
template <typename T>
struct Log {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(log(static_cast<double>(v))); }
};
template <typename T>
struct Log1p {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(log1p(static_cast<double>(v))); }
};
template <typename T>
struct Sqrt {  // sqrtf for f32: correctly rounded, as on the CPU
  __host__ __device__ T operator()(T v) const { return root(v); }
};
template <typename T>
struct Rsqrt {  // 1 / sqrt(v) with both steps rounded (not the approximate rsqrt instruction)
  __host__ __device__ T operator()(T v) const { return T(1) / root(v); }
};
template <typename T>
struct Relu {  // NaN < 0 is false: NaN propagates
  __host__ __device__ T operator()(T v) const { return v < T(0) ? T(0) : v; }
};
template <typename T>
struct LeakyRelu {
  T slope;
  __host__ __device__ T operator()(T v) const { return v > T(0) ? v : v * slope; }
};
// x Φ(x) = x (1 + erf(x / √2)) / 2, in double for f32 too (the negative tail cancels).
template <typename T>
struct Gelu {
  __host__ __device__ T operator()(T v) const {
    constexpr double inv_sqrt2 = 0.70710678118654752440;
    double d = v;
    return static_cast<T>(0.5 * d * (1.0 + erf(d * inv_sqrt2)));
  }
};
// 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))), in double.
template <typename T>
struct GeluTanh {
  __host__ __device__ T operator()(T v) const {
    constexpr double k = 0.79788456080286535588;  // √(2/π)
    constexpr double c = 0.044715;
    double d = v;
    return static_cast<T>(0.5 * d * (1.0 + tanh(k * (d + c * d * d * d))));
  }
};
template <typename T>
struct Tanh {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(tanh(static_cast<double>(v))); }
};
// f32: 1 / (1 + exp(-x)) in double (cannot overflow to a wrong value: exp(+large) = inf gives 0).
// f64: the CPU's two branches, each taking exp of a non-positive argument only.
template <typename T>
struct Sigmoid {
  __host__ __device__ T operator()(T v) const {
    if constexpr (std::is_same_v<T, float>) {
      return static_cast<float>(1.0 / (1.0 + exp(-static_cast<double>(v))));
    } else {
      if (v >= T(0)) return T(1) / (T(1) + exp(-v));
      T e = exp(v);
      return e / (T(1) + e);
    }
  }
};
// log(1 + exp(βx)) / β, and x itself once βx passes the threshold (as torch).
template <typename T>
struct Softplus {
  T beta, threshold;
  __host__ __device__ T operator()(T v) const {
    T bx = v * beta;
    if (bx > threshold) return v;
    // Rounded to T after each function, as the CPU's float expf and log1pf are.
    T e = static_cast<T>(exp(static_cast<double>(bx)));
    T l = static_cast<T>(log1p(static_cast<double>(e)));
    return l / beta;
  }
};
template <typename T>
struct Sin {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(sin(static_cast<double>(v))); }
};
template <typename T>
struct Cos {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(cos(static_cast<double>(v))); }
};
template <typename T>
struct Erf {
  __host__ __device__ T operator()(T v) const { return static_cast<T>(erf(static_cast<double>(v))); }
};
// min(max(v, lo), hi) written as std::max/std::min are, so NaN propagates.
template <typename T>
struct Clamp {
  T lo, hi;
  __host__ __device__ T operator()(T v) const {
    T m = v < lo ? lo : v;   // std::max(v, lo)
    return hi < m ? hi : m;  // std::min(m, hi)
  }
};
template <typename T>
struct Square {  // pow_scalar with exponent 2
  __host__ __device__ T operator()(T v) const { return v * v; }
};
template <typename T>
struct Identity {  // pow_scalar with exponent 1
  __host__ __device__ T operator()(T v) const { return v; }
};
template <typename T>
struct PowScalar {
  T p;
  __host__ __device__ T operator()(T v) const {
    return static_cast<T>(pow(static_cast<double>(v), static_cast<double>(p)));
  }
};

// ---- binary (add, sub, mul, maximum, minimum, add_scaled also i64)

template <typename T>
struct Add {
  __host__ __device__ T operator()(T x, T y) const { return x + y; }
};
template <typename T>
struct Sub {
  __host__ __device__ T operator()(T x, T y) const { return x - y; }
};
template <typename T>
struct Mul {
  __host__ __device__ T operator()(T x, T y) const { return x * y; }
};
template <typename T>
struct Div {
  __host__ __device__ T operator()(T x, T y) const { return x / y; }
};
template <typename T>
struct Pow {
  __host__ __device__ T operator()(T x, T y) const {
    return static_cast<T>(pow(static_cast<double>(x), static_cast<double>(y)));
  }
};
// NaN in either operand propagates (x NaN: x; y NaN: the comparison is false, so y).
template <typename T>
struct Maximum {
  __host__ __device__ T operator()(T x, T y) const { return (is_nan(x) || x > y) ? x : y; }
};
template <typename T>
struct Minimum {
  __host__ __device__ T operator()(T x, T y) const { return (is_nan(x) || x < y) ? x : y; }
};
template <typename T>
struct AddScaled {  // x + alpha y
  T alpha;
  __host__ __device__ T operator()(T x, T y) const { return x + alpha * y; }
};

// ---- comparisons (any dtype, giving bool)

template <typename T>
struct Eq {
  __host__ __device__ bool operator()(T x, T y) const { return x == y; }
};
template <typename T>
struct Ne {
  __host__ __device__ bool operator()(T x, T y) const { return x != y; }
};
template <typename T>
struct Lt {
  __host__ __device__ bool operator()(T x, T y) const { return x < y; }
};
template <typename T>
struct Le {
  __host__ __device__ bool operator()(T x, T y) const { return x <= y; }
};
template <typename T>
struct Gt {
  __host__ __device__ bool operator()(T x, T y) const { return x > y; }
};
template <typename T>
struct Ge {
  __host__ __device__ bool operator()(T x, T y) const { return x >= y; }
};
template <typename T>
struct LogicalAnd {
  __host__ __device__ bool operator()(T x, T y) const { return x != T(0) && y != T(0); }
};

// ---- where and isfinite

// cond ? a : b, the condition read as a byte (any nonzero byte is true, as on the CPU).
template <typename T>
struct Select {
  __host__ __device__ T operator()(uint8_t c, T a, T b) const { return c != 0 ? a : b; }
};
template <typename T>
struct IsFinite {
  __host__ __device__ bool operator()(T v) const { return isfinite(v); }  // floats only: integers are always finite
};

}  // namespace plateau::cuda::math

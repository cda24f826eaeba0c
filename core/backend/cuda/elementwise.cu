// CUDA elementwise kernels: unary, binary, compare, where, isfinite, with the semantics of
// core/backend/cpu/elementwise.cpp. The op is chosen by a switch on the host, which launches the
// kernel of elementwise_loops.cuh with that op's functor (elementwise_math.cuh): no per-element
// branching on the op. Operands broadcast to out's shape; out may be the very same view as one.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/backend/cuda/elementwise_loops.cuh"
#include "core/backend/cuda/elementwise_math.cuh"
#include "core/backend/cuda/kernels.h"

namespace plateau::cuda {

namespace {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;
using loops::In;

[[noreturn]] void fail_dtype(const char* what, DType t) {
  throw std::invalid_argument(std::string("plateau: cuda ") + what + ": " + dtype_name(t) +
                              " tensors are not supported; convert the operands to f32 or f64 first");
}

// out = op(x) for f32 and f64.
template <typename T>
void unary_floating(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  auto run = [&](auto f) { loops::launch<T>("cuda unary kernel", f, out, In<T>{x}); };
  switch (op) {
    case UnaryOp::neg: return run(math::Neg<T>{});
    case UnaryOp::abs: return run(math::Abs<T>{});
    case UnaryOp::sign: return run(math::Sign<T>{});
    case UnaryOp::exp: return run(math::Exp<T>{});
    case UnaryOp::log: return run(math::Log<T>{});
    case UnaryOp::log1p: return run(math::Log1p<T>{});
    case UnaryOp::sqrt: return run(math::Sqrt<T>{});
    case UnaryOp::rsqrt: return run(math::Rsqrt<T>{});
    case UnaryOp::relu: return run(math::Relu<T>{});
    case UnaryOp::leaky_relu: return run(math::LeakyRelu<T>{static_cast<T>(p0)});
    case UnaryOp::gelu: return run(math::Gelu<T>{});
    case UnaryOp::gelu_tanh: return run(math::GeluTanh<T>{});
    case UnaryOp::tanh: return run(math::Tanh<T>{});
    case UnaryOp::sigmoid: return run(math::Sigmoid<T>{});
    case UnaryOp::softplus: return run(math::Softplus<T>{static_cast<T>(p0), static_cast<T>(p1)});
    case UnaryOp::sin: return run(math::Sin<T>{});
    case UnaryOp::cos: return run(math::Cos<T>{});
    case UnaryOp::erf: return run(math::Erf<T>{});
    case UnaryOp::clamp: return run(math::Clamp<T>{static_cast<T>(p0), static_cast<T>(p1)});
    case UnaryOp::pow_scalar:
      // The exponent is compared as a double, before its cast to T, as on the CPU.
      if (p0 == 2.0) return run(math::Square<T>{});
      if (p0 == 1.0) return run(math::Identity<T>{});
      return run(math::PowScalar<T>{static_cast<T>(p0)});
  }
}

// out = op(x) for i64: neg, abs and sign only.
void unary_integer(UnaryOp op, const Tensor& x, const Tensor& out) {
  using T = int64_t;
  auto run = [&](auto f) { loops::launch<T>("cuda unary kernel", f, out, In<T>{x}); };
  switch (op) {
    case UnaryOp::neg: return run(math::Neg<T>{});
    case UnaryOp::abs: return run(math::Abs<T>{});
    case UnaryOp::sign: return run(math::Sign<T>{});
    default: fail_dtype("unary", DType::i64);
  }
}

// out = op(a, b); div and pow for floating tensors only.
template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out, double alpha) {
  auto run = [&](auto f) { loops::launch<T>("cuda binary kernel", f, out, In<T>{a}, In<T>{b}); };
  switch (op) {
    case BinaryOp::add: return run(math::Add<T>{});
    case BinaryOp::sub: return run(math::Sub<T>{});
    case BinaryOp::mul: return run(math::Mul<T>{});
    case BinaryOp::div:
      if constexpr (std::is_floating_point_v<T>)
        return run(math::Div<T>{});
      else
        fail_dtype("div", out.dtype());
    case BinaryOp::pow:
      if constexpr (std::is_floating_point_v<T>)
        return run(math::Pow<T>{});
      else
        fail_dtype("pow", out.dtype());
    case BinaryOp::maximum: return run(math::Maximum<T>{});
    case BinaryOp::minimum: return run(math::Minimum<T>{});
    case BinaryOp::add_scaled: return run(math::AddScaled<T>{static_cast<T>(alpha)});
  }
}

// out (bool) = op(a, b) for a and b of one dtype T.
template <typename T>
void compare_typed(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  auto run = [&](auto f) { loops::launch<bool>("cuda compare kernel", f, out, In<T>{a}, In<T>{b}); };
  switch (op) {
    case CompareOp::eq: return run(math::Eq<T>{});
    case CompareOp::ne: return run(math::Ne<T>{});
    case CompareOp::lt: return run(math::Lt<T>{});
    case CompareOp::le: return run(math::Le<T>{});
    case CompareOp::gt: return run(math::Gt<T>{});
    case CompareOp::ge: return run(math::Ge<T>{});
    case CompareOp::logical_and: return run(math::LogicalAnd<T>{});
  }
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
  loops::dispatch_all(a.dtype(), [&](auto tag) { compare_typed<typename decltype(tag)::type>(op, a, b, out); });
}

// out = cond ? a : b (cond bool, read as bytes).
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  loops::dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    loops::launch<T>("cuda where kernel", math::Select<T>{}, out, In<uint8_t>{cond}, In<T>{a}, In<T>{b});
  });
}

// out (bool) = x is neither infinite nor NaN; integer and bool tensors are always finite.
void isfinite(const Tensor& x, const Tensor& out) {
  switch (x.dtype()) {
    case DType::f32: return loops::launch<bool>("cuda isfinite kernel", math::IsFinite<float>{}, out, In<float>{x});
    case DType::f64: return loops::launch<bool>("cuda isfinite kernel", math::IsFinite<double>{}, out, In<double>{x});
    case DType::i64:
    case DType::b8: return fill(out, 1.0);
  }
}

}  // namespace plateau::cuda

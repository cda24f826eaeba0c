#pragma once
// Checks and small helpers shared by the op files (internal to core/ops). Every error starts with
// "plateau: <op>: " and says what to do.
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd/node.h"
#include "core/backend/kernels.h"
#include "core/ops/factory.h"

namespace plateau::ops_detail {

// How an op treats dimension 0, the example dimension of per_example_grads: keeps its rows apart or mixes them.
inline autograd::ExampleMap rows_kept(bool kept) {
  return kept ? autograd::ExampleMap::rowwise : autograd::ExampleMap::mixes;
}
// An op working along dim d (a softmax, a gather, a cat) keeps examples apart unless d is dim 0.
inline autograd::ExampleMap along_dim(int64_t d) { return rows_kept(d != 0); }

inline std::string prefix(const char* op) { return std::string("plateau: ") + op + ": "; }

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }
[[noreturn]] inline void fail(const char* op, const std::string& msg) { fail(std::string(op) + ": " + msg); }

inline std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

inline void check_defined(const char* op, const Tensor& t) {
  if (!t.defined()) fail(op, "got an undefined tensor");
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    fail(op, std::string("operands have different dtypes, ") + dtype_name(a.dtype()) + " " + a.shape().str() + " and " +
                 dtype_name(b.dtype()) + " " + b.shape().str() + "; convert one with to_dtype() first");
  if (a.device() != b.device())
    fail(op, "operands are on different devices, " + a.device().str() + " and " + b.device().str());
}

inline void check_floating(const char* op, const Tensor& x) {
  check_defined(op, x);
  if (!x.is_floating_point())
    fail(op, std::string("needs a floating tensor (f32 or f64), got ") + dtype_name(x.dtype()) + " " + x.shape().str() +
                 "; convert it with to_dtype() first");
}

// Arithmetic that also makes sense on integers (add, mul, neg, maximum, ...).
inline void check_numeric(const char* op, const Tensor& x) {
  if (x.dtype() == DType::b8)
    fail(op, "needs a numeric tensor (f32, f64 or i64), got bool " + x.shape().str() +
                 "; use logical_and/logical_not, or convert it with to_dtype()");
}

inline Tensor scalar_like(const Tensor& t, double value) { return scalar_tensor(value, t.dtype(), t.device()); }

// A fresh contiguous copy of x's values (records nothing).
inline Tensor copy_of(const Tensor& x, DType dtype) {
  Tensor out = empty(x.shape(), dtype, x.device());
  kernels::copy(x, out);
  return out;
}

}  // namespace plateau::ops_detail

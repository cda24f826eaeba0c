#pragma once
// Checks shared by the elementwise op files (internal to core/ops).
#include <stdexcept>
#include <string>

#include "core/ops/factory.h"

namespace plateau::elementwise_detail {

inline std::string prefix(const char* op) { return std::string("plateau: ") + op + ": "; }

inline void check_defined(const char* op, const Tensor& t) {
  if (!t.defined()) throw std::invalid_argument(prefix(op) + "got an undefined tensor");
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(prefix(op) + "operands have different dtypes, " + dtype_name(a.dtype()) + " " +
                                a.shape().str() + " and " + dtype_name(b.dtype()) + " " + b.shape().str() +
                                "; convert one with to_dtype() first");
  if (a.device() != b.device())
    throw std::invalid_argument(prefix(op) + "operands are on different devices, " + a.device().str() + " and " +
                                b.device().str());
}

inline void check_floating(const char* op, const Tensor& x) {
  if (!x.is_floating_point())
    throw std::invalid_argument(prefix(op) + "needs a floating tensor (f32 or f64), got " + dtype_name(x.dtype()) +
                                " " + x.shape().str() + "; convert it with to_dtype() first");
}

// Arithmetic that also makes sense on integers (add, mul, neg, maximum, ...).
inline void check_numeric(const char* op, const Tensor& x) {
  if (x.dtype() == DType::b8)
    throw std::invalid_argument(prefix(op) + "needs a numeric tensor (f32, f64 or i64), got bool " + x.shape().str() +
                                "; use logical_and/logical_not, or convert it with to_dtype()");
}

inline Tensor scalar_like(const Tensor& t, double value) { return scalar_tensor(value, t.dtype(), t.device()); }

}  // namespace plateau::elementwise_detail

#pragma once
// Small helpers shared by the op files (internal to core/ops).
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend/cpu/copy.h"
#include "core/ops/factory.h"

namespace plateau::ops_detail {

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

inline std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

inline void check_defined(const Tensor& x, const char* op) {
  if (!x.defined()) fail(std::string(op) + ": got an undefined tensor");
}

// A fresh contiguous copy of x's values (records nothing).
inline Tensor copy_of(const Tensor& x, DType dtype) {
  Tensor out = empty(x.shape(), dtype, x.device());
  cpu::copy(x, out);
  return out;
}

}  // namespace plateau::ops_detail

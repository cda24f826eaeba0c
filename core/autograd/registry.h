#pragma once
// The op registry: every op is registered once, next to its definition, with a test domain.
// tests/test_registry.cpp runs gradcheck and gradgradcheck in f64 over every case of every entry,
// with contiguous and non-contiguous inputs; `plateau-ops --markdown` writes docs/ops.md from it.
//
//   PLATEAU_REGISTER_OP(exp, {"exp", "d exp(x) = exp(x) dx",
//                             {{"", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList {
//                                 return {exp(in[0])}; }}}});
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace plateau::registry {

enum class Domain {
  real,            // uniform in [low, high]
  away_from_zero,  // uniform in [low, high] with sign flipped at random (kinks at 0 stay away)
  index,           // i64 uniform in [0, high)
  mask,            // bool, true with probability 1/2
};

struct InputSpec {
  Shape shape;
  Domain domain = Domain::real;
  double low = -2.0;
  double high = 2.0;
  bool differentiable = true;  // floating inputs only; the checks perturb these
};

inline InputSpec real(const Shape& s, double low = -2.0, double high = 2.0) {
  return {s, Domain::real, low, high, true};
}
inline InputSpec positive(const Shape& s, double low = 0.5, double high = 2.0) {
  return {s, Domain::real, low, high, true};
}
inline InputSpec away_from_zero(const Shape& s, double low = 0.2, double high = 2.0) {
  return {s, Domain::away_from_zero, low, high, true};
}
inline InputSpec constant(const Shape& s, double low = -2.0, double high = 2.0) {
  return {s, Domain::real, low, high, false};
}
inline InputSpec index(const Shape& s, int64_t high) { return {s, Domain::index, 0, static_cast<double>(high), false}; }
inline InputSpec mask(const Shape& s) { return {s, Domain::mask, 0, 1, false}; }

using OpFn = std::function<TensorList(const TensorList&)>;

struct OpCase {
  std::string label;  // what this case covers: "broadcast", "stride 2 groups 2", ...
  std::vector<InputSpec> inputs;
  OpFn fn;
};

struct OpEntry {
  std::string name;
  std::string math;            // the derivative rule in one line
  std::vector<OpCase> cases;   // gradcheck / gradgradcheck domains (empty for ops without gradient)
  bool differentiable = true;  // false for comparisons, random draws, argmax, one_hot
  // For ops without gradient, and custom-gradient ops: checks values (and, for the latter, the
  // backward rule) against a reference and throws on a mismatch.
  std::function<void()> check = {};
  // Ops whose backward is deliberately not the derivative of their forward (gradient reversal,
  // straight-through): gradcheck would fail by design, so `check` verifies the rule instead.
  bool custom_gradient = false;
};

void register_op(OpEntry entry);
// Sorted by name.
const std::vector<OpEntry>& entries();
const OpEntry* find(const std::string& name);

// Random inputs for a case in the given floating dtype, from a generator seeded by `seed`.
// noncontiguous: floating inputs are built as every-other-element views of a larger buffer.
TensorList make_inputs(const OpCase& c, DType dtype, uint64_t seed, bool noncontiguous);

}  // namespace plateau::registry

#define PLATEAU_CONCAT_INNER(a, b) a##b
#define PLATEAU_CONCAT(a, b) PLATEAU_CONCAT_INNER(a, b)
#define PLATEAU_REGISTER_OP(...)                                       \
  static const bool PLATEAU_CONCAT(plateau_registered_op_, __LINE__) = \
      (::plateau::registry::register_op(__VA_ARGS__), true)

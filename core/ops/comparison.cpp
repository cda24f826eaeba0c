// Comparisons and logic (bool results, no gradient), the scalar forms of the elementwise ops, and
// the in-place updates optimizers use.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using namespace ops_detail;

namespace {

Tensor compare_forward(const char* op, kernels::CompareOp kernel, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  check_same_dtype(op, a, b);
  Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), op), DType::b8, a.device());
  kernels::compare(kernel, a, b, out);
  return out;
}

}  // namespace

// ---- Comparisons and logic: bool results, no gradient. ----

namespace {

// Registry check of a comparison against C++'s own operator, element by element, in every dtype
// (with NaN and infinities in the floating ones), broadcasting [2, 3] against [3].
void check_comparison(const char* name, const std::function<Tensor(const Tensor&, const Tensor&)>& op,
                      const std::function<bool(double, double)>& reference) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dtype : {DType::f32, DType::f64, DType::i64}) {
    bool floating = is_floating(dtype);
    std::vector<double> av =
        floating ? std::vector<double>{1, 2, nan, 4, -inf, 3} : std::vector<double>{1, 2, 7, 4, -5, 3};
    std::vector<double> bv = {3, 2, 1};
    Tensor r = op(tensor(av, {2, 3}, dtype), tensor(bv, {3}, dtype));
    if (r.dtype() != DType::b8 || r.shape() != Shape{2, 3})
      throw std::runtime_error(prefix(name) + "registry check: expected a bool [2, 3] result, got " +
                               dtype_name(r.dtype()) + " " + r.shape().str());
    for (int64_t i = 0; i < 6; ++i)
      if (r.data<bool>()[i] != reference(av[i], bv[i % 3]))
        throw std::runtime_error(prefix(name) + "registry check: wrong value at element " + std::to_string(i) +
                                 " for " + dtype_name(dtype) + " operands");
  }
}

void expect_bools(const char* name, const Tensor& r, const Shape& shape, const std::vector<bool>& expected) {
  if (r.dtype() != DType::b8 || r.shape() != shape)
    throw std::runtime_error(prefix(name) + "registry check: expected a bool " + shape.str() + " result, got " +
                             dtype_name(r.dtype()) + " " + r.shape().str());
  for (size_t i = 0; i < expected.size(); ++i)
    if (r.data<bool>()[i] != expected[i])
      throw std::runtime_error(prefix(name) + "registry check: wrong value at element " + std::to_string(i));
}

}  // namespace

// a == b (no gradient)
Tensor eq(const Tensor& a, const Tensor& b) { return compare_forward("eq", kernels::CompareOp::eq, a, b); }
PLATEAU_REGISTER_OP({"eq",
                     "no gradient",
                     {{{"broadcast [3, 4] vs [4], and against itself",
                        {registry::real({3, 4}), registry::real({4})},
                        [](const TensorList& in) -> TensorList {
                          return {eq(in[0], in[1]), eq(in[0], in[0])};
                        }}}},
                     false,
                     [] {
                       check_comparison(
                           "eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); },
                           [](double x, double y) { return x == y; });
                     }});

// a != b (no gradient)
Tensor ne(const Tensor& a, const Tensor& b) { return compare_forward("ne", kernels::CompareOp::ne, a, b); }
PLATEAU_REGISTER_OP({"ne",
                     "no gradient",
                     {{{"broadcast [3, 4] vs [4], and against itself",
                        {registry::real({3, 4}), registry::real({4})},
                        [](const TensorList& in) -> TensorList {
                          return {ne(in[0], in[1]), ne(in[0], in[0])};
                        }}}},
                     false,
                     [] {
                       check_comparison(
                           "ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); },
                           [](double x, double y) { return x != y; });
                     }});

// a < b (no gradient)
Tensor lt(const Tensor& a, const Tensor& b) { return compare_forward("lt", kernels::CompareOp::lt, a, b); }
PLATEAU_REGISTER_OP({"lt",
                     "no gradient",
                     {{{"broadcast [3, 4] vs [4], and against itself",
                        {registry::real({3, 4}), registry::real({4})},
                        [](const TensorList& in) -> TensorList {
                          return {lt(in[0], in[1]), lt(in[0], in[0])};
                        }}}},
                     false,
                     [] {
                       check_comparison(
                           "lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); },
                           [](double x, double y) { return x < y; });
                     }});

// a <= b (no gradient)
Tensor le(const Tensor& a, const Tensor& b) { return compare_forward("le", kernels::CompareOp::le, a, b); }
PLATEAU_REGISTER_OP({"le",
                     "no gradient",
                     {{{"broadcast [3, 4] vs [4], and against itself",
                        {registry::real({3, 4}), registry::real({4})},
                        [](const TensorList& in) -> TensorList {
                          return {le(in[0], in[1]), le(in[0], in[0])};
                        }}}},
                     false,
                     [] {
                       check_comparison(
                           "le", [](const Tensor& a, const Tensor& b) { return le(a, b); },
                           [](double x, double y) { return x <= y; });
                     }});

// a > b (no gradient)
Tensor gt(const Tensor& a, const Tensor& b) { return compare_forward("gt", kernels::CompareOp::gt, a, b); }
PLATEAU_REGISTER_OP({"gt",
                     "no gradient",
                     {{{"broadcast [3, 4] vs [4], and against itself",
                        {registry::real({3, 4}), registry::real({4})},
                        [](const TensorList& in) -> TensorList {
                          return {gt(in[0], in[1]), gt(in[0], in[0])};
                        }}}},
                     false,
                     [] {
                       check_comparison(
                           "gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); },
                           [](double x, double y) { return x > y; });
                     }});

// a >= b (no gradient)
Tensor ge(const Tensor& a, const Tensor& b) { return compare_forward("ge", kernels::CompareOp::ge, a, b); }
PLATEAU_REGISTER_OP({"ge",
                     "no gradient",
                     {{{"broadcast [3, 4] vs [4], and against itself",
                        {registry::real({3, 4}), registry::real({4})},
                        [](const TensorList& in) -> TensorList {
                          return {ge(in[0], in[1]), ge(in[0], in[0])};
                        }}}},
                     false,
                     [] {
                       check_comparison(
                           "ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); },
                           [](double x, double y) { return x >= y; });
                     }});

// !x, i.e. x == 0, for any dtype (no gradient)
Tensor logical_not(const Tensor& x) {
  check_defined("logical_not", x);
  return compare_forward("logical_not", kernels::CompareOp::eq, x, scalar_like(x, 0.0));
}
PLATEAU_REGISTER_OP({"logical_not",
                     "no gradient",
                     {{{"floating and bool",
                        {registry::real({3, 4})},
                        [](const TensorList& in) -> TensorList {
                          return {logical_not(in[0]), logical_not(gt(in[0], 0.0))};
                        }}}},
                     false,
                     [] {
                       expect_bools("logical_not", logical_not(tensor({0.0, 1.0, -2.0, 0.5}, {2, 2}, DType::f64)),
                                    {2, 2}, {true, false, false, false});
                       expect_bools("logical_not", logical_not(gt(tensor({1.0, -1.0, 3.0}, {3}, DType::f32), 0.0)), {3},
                                    {false, true, false});
                     }});

// a && b, each operand of any dtype read as "nonzero" (no gradient)
Tensor logical_and(const Tensor& a, const Tensor& b) {
  check_defined("logical_and", a);
  check_defined("logical_and", b);
  auto as_bool = [](const Tensor& t) { return t.dtype() == DType::b8 ? t : ne(t, scalar_like(t, 0.0)); };
  return compare_forward("logical_and", kernels::CompareOp::logical_and, as_bool(a), as_bool(b));
}
PLATEAU_REGISTER_OP(
    {"logical_and",
     "no gradient",
     {{{"broadcast [3, 1] and [4]",
        {registry::real({3, 1}), registry::real({4})},
        [](const TensorList& in) -> TensorList { return {logical_and(gt(in[0], 0.0), gt(in[1], 0.0))}; }}}},
     false,
     [] {
       Tensor a = gt(tensor({1.0, -1.0, 2.0, -2.0}, {2, 2}, DType::f32), 0.0);  // [[T, F], [T, F]]
       Tensor b = tensor({0.0, 3.0}, {2, 1}, DType::f64);                       // [[F], [T]]
       expect_bools("logical_and", logical_and(a, b), {2, 2}, {false, false, true, false});
     }});

// x is neither infinite nor NaN (no gradient); integers and bools are always finite
Tensor isfinite(const Tensor& x) {
  check_defined("isfinite", x);
  Tensor out = empty(x.shape(), DType::b8, x.device());
  kernels::isfinite(x, out);
  return out;
}
PLATEAU_REGISTER_OP({"isfinite",
                     "no gradient",
                     {{{"log of reals (NaN below 0)",
                        {registry::real({3, 4})},
                        [](const TensorList& in) -> TensorList {
                          return {isfinite(log(in[0])), isfinite(in[0])};
                        }}}},
                     false,
                     [] {
                       const double inf = std::numeric_limits<double>::infinity();
                       for (DType dtype : {DType::f32, DType::f64})
                         expect_bools("isfinite",
                                      isfinite(tensor({1.0, inf, -inf, std::nan(""), 0.0, -3.5}, {2, 3}, dtype)),
                                      {2, 3}, {true, false, false, false, true, true});
                       expect_bools("isfinite", isfinite(tensor(std::vector<int64_t>{1, -7}, {2})), {2}, {true, true});
                     }});

// ---- Scalar forms: the scalar becomes a 0-d tensor of the other operand's dtype. ----

Tensor add(const Tensor& a, double b) { return (check_defined("add", a), add(a, scalar_like(a, b))); }
Tensor sub(const Tensor& a, double b) { return (check_defined("sub", a), sub(a, scalar_like(a, b))); }
Tensor mul(const Tensor& a, double b) { return (check_defined("mul", a), mul(a, scalar_like(a, b))); }
Tensor div(const Tensor& a, double b) { return (check_defined("div", a), div(a, scalar_like(a, b))); }
Tensor eq(const Tensor& a, double b) { return (check_defined("eq", a), eq(a, scalar_like(a, b))); }
Tensor gt(const Tensor& a, double b) { return (check_defined("gt", a), gt(a, scalar_like(a, b))); }
Tensor lt(const Tensor& a, double b) { return (check_defined("lt", a), lt(a, scalar_like(a, b))); }
Tensor ge(const Tensor& a, double b) { return (check_defined("ge", a), ge(a, scalar_like(a, b))); }
Tensor le(const Tensor& a, double b) { return (check_defined("le", a), le(a, scalar_like(a, b))); }

// ---- In-place updates: not recorded, each bumps the storage version. ----

namespace {

void check_inplace(const char* op, const Tensor& self) {
  check_defined(op, self);
  if (!GradMode::is_enabled() || !self.requires_grad()) return;
  if (self.is_leaf())
    throw std::invalid_argument(prefix(op) + "in-place write into a leaf tensor " + self.shape().str() +
                                " that requires grad while grad mode is on; do the update inside a NoGradGuard "
                                "(as optimizers do) or write into a detach()ed tensor");
  throw std::invalid_argument(prefix(op) + "in-place write into a tensor " + self.shape().str() +
                              " that requires grad (made by op '" + self.grad_fn()->name() +
                              "'); in-place ops are not recorded, so its gradient would be wrong: use the "
                              "out-of-place op, or a NoGradGuard if no gradient is wanted");
}

void check_broadcasts_to(const char* op, const Tensor& src, const Tensor& self) {
  if (broadcast_shapes(self.shape(), src.shape(), op) != self.shape())
    throw std::invalid_argument(prefix(op) + "a source of shape " + src.shape().str() +
                                " does not broadcast to self's shape " + self.shape().str() +
                                " (an in-place op cannot change self's shape)");
}

// A source that shares memory with self but is not the very same view (x += x.transpose()) would
// be read after parts of it were overwritten: copy it first.
Tensor unaliased(const Tensor& self, const Tensor& src) {
  if (src.impl()->storage != self.impl()->storage) return src;
  if (src.shape() == self.shape() && src.strides() == self.strides() && src.offset() == self.offset()) return src;
  Tensor copy = empty(src.shape(), src.dtype(), src.device());
  kernels::copy(src, copy);
  return copy;
}

}  // namespace

Tensor& add_(Tensor& self, const Tensor& other, double alpha) {
  check_inplace("add_", self);
  check_defined("add_", other);
  check_same_dtype("add_", self, other);
  check_numeric("add_", self);
  check_broadcasts_to("add_", other, self);
  Tensor src = unaliased(self, other);
  if (alpha == 1.0)
    kernels::binary(kernels::BinaryOp::add, self, src, self);
  else
    kernels::binary(kernels::BinaryOp::add_scaled, self, src, self, alpha);
  self.bump_version();
  return self;
}

Tensor& mul_(Tensor& self, double factor) {
  check_inplace("mul_", self);
  check_numeric("mul_", self);
  kernels::binary(kernels::BinaryOp::mul, self, scalar_like(self, factor), self);
  self.bump_version();
  return self;
}

Tensor& fill_(Tensor& self, double value) {
  check_inplace("fill_", self);
  kernels::fill(self, value);
  self.bump_version();
  return self;
}

Tensor& copy_(Tensor& self, const Tensor& src) {
  check_inplace("copy_", self);
  check_defined("copy_", src);
  check_broadcasts_to("copy_", src, self);
  kernels::copy(unaliased(self, src), self);
  self.bump_version();
  return self;
}

}  // namespace plateau

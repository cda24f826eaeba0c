// Reductions. sum is the primitive (a kernel, and a backward that expands the gradient back); mean,
// var, std, norm and logsumexp are composites of public ops, so their derivatives of every order
// come from their parts. max, min and topk choose positions with a kernel and take the values with
// gather, so the gradient flows through gather to the chosen elements.
#include "core/ops/reduction.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using namespace ops_detail;

using autograd::BackwardContext;

namespace {

// Which dims of x a reduction over `dims` covers (all of them when dims is empty).
std::vector<bool> reduced_dims(const char* op, const Tensor& x, const Dims& dims) {
  std::vector<bool> r(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    if (x.dim() == 0) continue;
    if (r[w])
      fail(std::string(op) + ": dim " + std::to_string(w) + " appears more than once in dims " + list_str(dims));
    r[w] = true;
  }
  return r;
}

Shape reduced_shape(const Shape& s, const std::vector<bool>& r, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < s.size(); ++d)
    if (!r[d])
      out.push_back(s[d]);
    else if (keepdim)
      out.push_back(1);
  return out;
}

int64_t reduced_count(const Shape& s, const std::vector<bool>& r) {
  int64_t n = 1;
  for (int64_t d = 0; d < s.size(); ++d)
    if (r[d]) n *= s[d];
  return n;
}

// Values and positions of the first maximum (or minimum) along dim.
ValuesIndices extreme_along(const char* op, const Tensor& x, int64_t dim, bool keepdim, bool largest) {
  check_defined(op, x);
  if (x.dim() == 0) {
    wrap_dim(dim, 0, op);
    return extreme_along(op, reshape(x, {1}), 0, false, largest);
  }
  int64_t d = wrap_dim(dim, x.dim(), op);
  if (x.size(d) == 0)
    fail(std::string(op) + ": dim " + std::to_string(d) + " of shape " + x.shape().str() + " is empty");
  Shape kept = x.shape();
  kept[d] = 1;
  Tensor idx = empty(kept, DType::i64, x.device());
  kernels::arg_extreme(x, d, largest, idx);
  Tensor values = gather(x, d, idx);
  if (!keepdim) {
    values = squeeze(values, d);
    idx = squeeze(idx, d);
  }
  return {values, idx};
}

// The first maximum (or minimum) of all elements, through gather on the flattened tensor.
Tensor extreme_all(const char* op, const Tensor& x, bool largest) {
  check_defined(op, x);
  if (x.numel() == 0) fail(std::string(op) + ": of an empty tensor (shape " + x.shape().str() + ")");
  Tensor flat = reshape(x, {-1});
  Tensor idx = empty({1}, DType::i64, x.device());
  kernels::arg_extreme(flat, 0, largest, idx);
  return reshape(gather(flat, 0, idx), {});
}

// Maximum over the dims marked in r: they are moved last and flattened into one.
Tensor max_over(const Tensor& x, const std::vector<bool>& r, bool keepdim) {
  if (x.dim() == 0) return x;
  std::vector<int64_t> order;
  Shape flat;
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!r[d]) order.push_back(d), flat.push_back(x.size(d));
  for (int64_t d = 0; d < x.dim(); ++d)
    if (r[d]) order.push_back(d), count *= x.size(d);
  flat.push_back(count);
  Tensor y = max(reshape(permute(x, order), flat), -1, false).values;
  return reshape(y, reduced_shape(x.shape(), r, keepdim));
}

TensorList one(const Tensor& t) { return {t}; }

}  // namespace

// sum: y = Σ_dims x; dx = expand(reshape(dy, keepdim shape), x.shape).
Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
  check_defined("sum", x);
  std::vector<bool> r = reduced_dims("sum", x, dims);
  Shape kept = reduced_shape(x.shape(), r, true);
  Tensor out = empty(kept, is_floating(x.dtype()) ? x.dtype() : DType::i64, x.device());
  kernels::sum(x, r, out);
  if (!keepdim) {
    // The kept shape and the dropped shape have the same contiguous layout.
    out.impl()->shape = reduced_shape(x.shape(), r, false);
    out.impl()->strides = contiguous_strides(out.impl()->shape);
  }
  if (autograd::should_record({&x})) {
    Shape in = x.shape();
    autograd::record("sum", {x}, {&out}, {}, [in, kept](BackwardContext& c) -> TensorList {
      return {expand(reshape(c.grad(), kept), in)};
    }).examples(rows_kept(!r.empty() && !r[0]));
  }
  return out;
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

PLATEAU_REGISTER_OP({"sum",
                     "dx = expand(dy, x.shape)",
                     {{"all", {registry::real({3, 4})}, [](const TensorList& in) { return one(sum(in[0])); }},
                      {"dims 0 and 2, keepdim",
                       {registry::real({2, 3, 4})},
                       [](const TensorList& in) {
                         return one(sum(in[0], {0, 2}, true));
                       }},
                      {"dim -1", {registry::real({3, 5})}, [](const TensorList& in) {
                         return one(sum(in[0], {-1}));
                       }}}});

// mean: y = Σ_dims x / count; dx = dy / count (through sum and div).
Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
  autograd::OpScope scope("mean");
  check_floating("mean", x);
  std::vector<bool> r = reduced_dims("mean", x, dims);
  return div(sum(x, dims, keepdim), static_cast<double>(reduced_count(x.shape(), r)));
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

PLATEAU_REGISTER_OP({"mean",
                     "dx = expand(dy, x.shape) / count",
                     {{"all", {registry::real({3, 4})}, [](const TensorList& in) { return one(mean(in[0])); }},
                      {"dim 1, keepdim", {registry::real({2, 3, 2})}, [](const TensorList& in) {
                         return one(mean(in[0], {1}, true));
                       }}}});

// max: the first largest element; dx = dy at that element, 0 elsewhere (through gather).
Tensor max(const Tensor& x) { return extreme_all("max", x, true); }
Tensor min(const Tensor& x) { return extreme_all("min", x, false); }
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along("max", x, dim, keepdim, true); }
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along("min", x, dim, keepdim, false); }

PLATEAU_REGISTER_OP({"max",
                     "dx = dy at the (first) maximum, 0 elsewhere",
                     {{"all elements", {registry::real({3, 4})}, [](const TensorList& in) { return one(max(in[0])); }},
                      {"dim 1, keepdim",
                       {registry::real({3, 4})},
                       [](const TensorList& in) { return one(max(in[0], 1, true).values); }},
                      {"dim 0", {registry::real({4, 2, 3})}, [](const TensorList& in) {
                         return one(max(in[0], 0).values);
                       }}}});

PLATEAU_REGISTER_OP({"min",
                     "dx = dy at the (first) minimum, 0 elsewhere",
                     {{"all elements", {registry::real({3, 4})}, [](const TensorList& in) { return one(min(in[0])); }},
                      {"dim -1", {registry::real({3, 4})}, [](const TensorList& in) {
                         return one(min(in[0], -1).values);
                       }}}});

// argmax/argmin: position of the first maximum/minimum along dim (i64, no gradient).
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along("argmax", x.detach(), dim, keepdim, true).indices;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along("argmin", x.detach(), dim, keepdim, false).indices;
}

namespace {
void check_arg(const char* op, const Tensor& got, const std::vector<int64_t>& want, const Shape& shape) {
  if (got.dtype() != DType::i64 || got.shape() != shape || got.to_vector<int64_t>() != want)
    throw std::runtime_error(std::string("plateau: ") + op + " check: got " + got.str() + ", want " + list_str(want));
}
}  // namespace

PLATEAU_REGISTER_OP({"argmax",
                     "no gradient (integer output)",
                     {{{"dims 1 and 0",
                        {registry::real({4, 5})},
                        [](const TensorList& in) -> TensorList {
                          return {argmax(in[0], 1), argmax(in[0], 0, true)};
                        }}}},
                     false,
                     [] {
                       // Ties go to the first position.
                       Tensor x = tensor(std::vector<double>{1, 5, 5, 7, 2, 0}, {2, 3}, DType::f64);
                       check_arg("argmax", argmax(x, 1), {1, 0}, {2});
                       check_arg("argmax", argmax(x, 0, true), {1, 0, 0}, {1, 3});
                       check_arg("argmax", argmax(transpose(x, 0, 1), -1), {1, 0, 0}, {3});
                     }});

PLATEAU_REGISTER_OP({"argmin",
                     "no gradient (integer output)",
                     {{{"dims 1 and 0",
                        {registry::real({4, 5})},
                        [](const TensorList& in) -> TensorList {
                          return {argmin(in[0], 1), argmin(in[0], 0, true)};
                        }}}},
                     false,
                     [] {
                       Tensor x = tensor(std::vector<double>{3, 1, 1, 0, 2, 4}, {2, 3}, DType::f32);
                       check_arg("argmin", argmin(x, 1), {1, 0}, {2});
                       check_arg("argmin", argmin(x, -2, true), {1, 0, 0}, {1, 3});
                     }});

// logsumexp: y = m + log Σ exp(x − m) with m = max(x) held constant (exact for any m, and stable);
// dx = softmax(x) dy through the composite.
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim) {
  autograd::OpScope scope("logsumexp");
  check_floating("logsumexp", x);
  std::vector<bool> r = reduced_dims("logsumexp", x, dims);
  Tensor m;
  {
    NoGradGuard no_grad;
    m = x.detach();
    for (int64_t d = 0; d < x.dim(); ++d)
      if (r[d]) m = max(m, d, true).values;
    m = masked_fill(m, logical_not(isfinite(m)), 0.0);  // all -inf (or inf) rows: shift by 0
  }
  Tensor y = add(log(sum(exp(sub(x, m)), dims, true)), m);
  return keepdim ? y : reshape(y, reduced_shape(x.shape(), r, false));
}

PLATEAU_REGISTER_OP(
    {"logsumexp",
     "dx = softmax(x) dy",
     {{"dim 1", {registry::real({3, 4})}, [](const TensorList& in) { return one(logsumexp(in[0], {1})); }},
      {"dims 0 and -1, keepdim", {registry::real({2, 3, 2}, -3, 3)}, [](const TensorList& in) {
         return one(logsumexp(in[0], {0, -1}, true));
       }}}});

// var: y = Σ (x − mean)² / (count − correction); dx = 2 (x − mean) dy / (count − correction).
Tensor var(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  autograd::OpScope scope("var");
  check_floating("var", x);
  std::vector<bool> r = reduced_dims("var", x, dims);
  int64_t n = reduced_count(x.shape(), r);
  Tensor d = sub(x, mean(x, dims, true));
  return div(sum(mul(d, d), dims, keepdim), static_cast<double>(std::max<int64_t>(0, n - correction)));
}

PLATEAU_REGISTER_OP(
    {"var",
     "dx = 2 (x - mean) dy / (count - correction)",
     {{"dim 1, unbiased", {registry::real({3, 4})}, [](const TensorList& in) { return one(var(in[0], {1})); }},
      {"all, population, keepdim", {registry::real({2, 3})}, [](const TensorList& in) {
         return one(var(in[0], {}, 0, true));
       }}}});

// std: y = sqrt(var); dx = (x − mean) dy / ((count − correction) y).
Tensor std(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  autograd::OpScope scope("std");
  check_floating("std", x);
  return sqrt(var(x, dims, correction, keepdim));
}

PLATEAU_REGISTER_OP({"std",
                     "dx = (x - mean) dy / ((count - correction) std)",
                     {{"dim 0", {registry::real({4, 3})}, [](const TensorList& in) { return one(std(in[0], {0})); }},
                      {"dims 0 and 2, keepdim", {registry::real({2, 2, 3})}, [](const TensorList& in) {
                         return one(std(in[0], {0, 2}, 1, true));
                       }}}});

namespace {

// sqrt(Σ x²) with its own node, so that the gradient at y = 0 is 0 (the subgradient libtorch
// uses) instead of the 0/0 that the composite sqrt(sum(x * x)) would give.
Tensor norm2(const Tensor& x, const Dims& dims, const std::vector<bool>& r, bool keepdim) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = sqrt(sum(mul(x, x), dims, keepdim));
  }
  if (autograd::should_record({&x})) {
    Shape kept = reduced_shape(x.shape(), r, true);
    autograd::record("norm", {x}, {&y}, {x, y}, [kept](BackwardContext& c) -> TensorList {
      Tensor yk = reshape(c.saved(1), kept);
      Tensor gx = div(mul(c.saved(0), reshape(c.grad(), kept)), yk);
      return {masked_fill(gx, eq(yk, 0.0), 0.0)};
    }).examples(rows_kept(!r.empty() && !r[0]));
  }
  return y;
}

}  // namespace

// norm: p = 1: Σ|x| (dx = sign(x) dy); p = 2: y = sqrt(Σ x²) (dx = x dy / y, 0 where y = 0);
// p = ∞: max |x| (dx = sign(x) dy at the first largest |x|).
Tensor norm(const Tensor& x, double p, const Dims& dims, bool keepdim) {
  check_floating("norm", x);
  std::vector<bool> r = reduced_dims("norm", x, dims);
  if (p == 1) return sum(abs(x), dims, keepdim);
  if (p == 2) return norm2(x, dims, r, keepdim);
  if (std::isinf(p) && p > 0) return max_over(abs(x), r, keepdim);
  std::ostringstream msg;
  msg << "norm: p = " << p << " is not supported; use 1, 2 or infinity";
  fail(msg.str());
}

PLATEAU_REGISTER_OP(
    {"norm",
     "p=1: sign(x) dy; p=2: x dy / y; p=inf: sign(x) dy at the largest |x|",
     {{"p 2, all", {registry::real({3, 4})}, [](const TensorList& in) { return one(norm(in[0])); }},
      {"p 2, dim -1, keepdim",
       {registry::real({2, 3, 2})},
       [](const TensorList& in) { return one(norm(in[0], 2, {-1}, true)); }},
      {"p 1, dim 1", {registry::away_from_zero({3, 4})}, [](const TensorList& in) { return one(norm(in[0], 1, {1})); }},
      {"p inf, dims 0 and 2, keepdim", {registry::away_from_zero({2, 3, 2})}, [](const TensorList& in) {
         return one(norm(in[0], std::numeric_limits<double>::infinity(), {0, 2}, true));
       }}}});

// topk: the k largest (smallest) along dim, sorted; dx = dy scattered to their positions (through gather).
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_defined("topk", x);
  if (x.dim() == 0) {
    wrap_dim(dim, 0, "topk");
    ValuesIndices r = topk(reshape(x, {1}), k, 0, largest);
    return {reshape(r.values, {}), reshape(r.indices, {})};
  }
  int64_t d = wrap_dim(dim, x.dim(), "topk");
  if (k < 0 || k > x.size(d))
    fail("topk: k = " + std::to_string(k) + " is out of range for dim " + std::to_string(d) + " of size " +
         std::to_string(x.size(d)) + " (shape " + x.shape().str() + ")");
  Shape shape = x.shape();
  shape[d] = k;
  Tensor idx = empty(shape, DType::i64, x.device());
  kernels::topk_indices(x, k, d, largest, idx);
  return {gather(x, d, idx), idx};
}

PLATEAU_REGISTER_OP(
    {"topk",
     "dx = dy at the chosen positions, 0 elsewhere",
     {{"k 2, last dim", {registry::real({3, 5})}, [](const TensorList& in) { return one(topk(in[0], 2).values); }},
      {"k 3 smallest, dim 0", {registry::real({4, 2, 3})}, [](const TensorList& in) {
         return one(topk(in[0], 3, 0, false).values);
       }}}});

// sum_to_shape: sums the leading dims and the dims where shape has 1 (the inverse of broadcasting).
Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  check_defined("sum_to_shape", x);
  if (x.shape() == shape) return x;
  int64_t lead = x.dim() - shape.size();
  bool ok = lead >= 0;
  Dims dims;
  for (int64_t i = 0; i < lead; ++i) dims.push_back(i);
  for (int64_t i = 0; ok && i < shape.size(); ++i) {
    if (shape[i] == x.size(lead + i)) continue;
    if (shape[i] == 1)
      dims.push_back(lead + i);
    else
      ok = false;
  }
  if (!ok)
    fail("sum_to_shape: cannot sum a tensor of shape " + x.shape().str() + " down to shape " + shape.str() +
         " (the target must broadcast to the tensor's shape)");
  return reshape(dims.empty() ? x : sum(x, dims, true), shape);
}

}  // namespace plateau

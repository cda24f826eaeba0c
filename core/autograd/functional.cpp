#include "core/autograd/functional.h"

#include <stdexcept>
#include <string>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace plateau {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

// Fresh leaves with the inputs' values: floating ones require grad, others pass through.
TensorList as_leaves(const TensorList& inputs, const char* what) {
  TensorList leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) fail(std::string(what) + ": input " + std::to_string(i) + " is undefined");
    Tensor t = inputs[i].detach();
    if (t.is_floating_point()) t.requires_grad_(true);
    leaves.push_back(t);
  }
  return leaves;
}

void check_like(const TensorList& given, const TensorList& like, const char* what, const char* name) {
  if (given.size() != like.size())
    fail(std::string(what) + ": got " + std::to_string(given.size()) + " " + name + " for " +
         std::to_string(like.size()) + " tensors");
  for (size_t i = 0; i < given.size(); ++i)
    if (!given[i].defined() || given[i].shape() != like[i].shape() || given[i].dtype() != like[i].dtype())
      fail(std::string(what) + ": " + name + " " + std::to_string(i) + " must have shape " + like[i].shape().str() +
           " and dtype " + dtype_name(like[i].dtype()) +
           (given[i].defined() ? ", got " + given[i].shape().str() + " " + dtype_name(given[i].dtype())
                               : ", got an undefined tensor"));
}

// grad of Σ <roots, cotangents> w.r.t. wrt, with zeros (not undefined) where unused.
TensorList grad_or_zeros(const TensorList& roots, const TensorList& cotangents, const TensorList& wrt,
                         bool create_graph) {
  TensorList used_roots, used_cotangents, wrt_grad;
  for (size_t i = 0; i < roots.size(); ++i)
    if (roots[i].requires_grad()) used_roots.push_back(roots[i]), used_cotangents.push_back(cotangents[i]);
  for (const Tensor& t : wrt)
    if (t.requires_grad()) wrt_grad.push_back(t);
  TensorList g;
  if (!used_roots.empty() && !wrt_grad.empty()) {
    GradOptions opt;
    opt.grad_outputs = used_cotangents;
    opt.create_graph = create_graph;
    opt.retain_graph = true;
    opt.allow_unused = true;
    g = grad(used_roots, wrt_grad, opt);
  }
  TensorList out;
  size_t k = 0;
  for (const Tensor& t : wrt) {
    Tensor gi = t.requires_grad() && k < g.size() ? g[k++] : Tensor();
    out.push_back(gi.defined() ? gi : zeros_like(t));
  }
  return out;
}

}  // namespace

FunctionalResult vjp(const TensorFunction& f, const TensorList& inputs, const TensorList& cotangents,
                     bool create_graph) {
  TensorList x = as_leaves(inputs, "vjp");
  TensorList y = f(x);
  check_like(cotangents, y, "vjp", "cotangents");
  TensorList d = grad_or_zeros(y, cotangents, x, create_graph);
  if (!create_graph)
    for (Tensor& t : y) t = t.detach();
  return {y, d};
}

FunctionalResult jvp(const TensorFunction& f, const TensorList& inputs, const TensorList& tangents, bool create_graph) {
  TensorList x = as_leaves(inputs, "jvp");
  check_like(tangents, x, "jvp", "tangents");
  TensorList y = f(x);
  // u: dummy cotangents; g(u) = Σ uᵀ ∂y/∂x is linear in u, so ∂<g(u), v>/∂u = J v.
  TensorList u;
  for (const Tensor& yi : y) u.push_back(zeros_like(yi).requires_grad_(yi.is_floating_point()));
  TensorList g = grad_or_zeros(y, u, x, /*create_graph=*/true);
  TensorList d = grad_or_zeros(g, tangents, u, create_graph);
  if (!create_graph)
    for (Tensor& t : y) t = t.detach();
  return {y, d};
}

FunctionalResult hvp(const ScalarFunction& f, const TensorList& inputs, const TensorList& v, bool create_graph) {
  TensorList x = as_leaves(inputs, "hvp");
  check_like(v, x, "hvp", "directions");
  Tensor y = f(x);
  if (y.numel() != 1) fail("hvp needs a scalar function, got an output of shape " + y.shape().str());
  TensorList g = grad_or_zeros({y}, {ones_like(y)}, x, /*create_graph=*/true);
  TensorList d = grad_or_zeros(std::move(g), v, x, create_graph);
  return {{create_graph ? y : y.detach()}, d};
}

Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& input) {
  Tensor x = as_leaves({input}, "jacobian")[0];
  Tensor y = f(x);
  Tensor flat_y = reshape(y, {y.numel()});
  TensorList rows;
  for (int64_t r = 0; r < y.numel(); ++r) {
    Tensor e = zeros({y.numel()}, DType::f64);  // one-hot cotangent selecting output element r
    e.data<double>()[r] = 1.0;
    e = e.to(y.dtype());
    rows.push_back(reshape(grad_or_zeros({flat_y}, {e}, {x}, false)[0], {x.numel()}));
  }
  Shape shape = y.shape();
  for (int64_t d : x.shape()) shape.push_back(d);
  if (rows.empty()) return zeros(shape, x.dtype());
  return reshape(stack(rows, 0), shape);
}

Tensor hessian(const std::function<Tensor(const Tensor&)>& f, const Tensor& input) {
  return jacobian(
      [&f](const Tensor& x) {
        Tensor y = f(x);
        if (y.numel() != 1) fail("hessian needs a scalar function, got an output of shape " + y.shape().str());
        GradOptions opt;
        opt.create_graph = true;
        return grad({y}, {x}, opt)[0];
      },
      input);
}

}  // namespace plateau

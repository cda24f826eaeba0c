// gradcheck and gradgradcheck: the analytic Jacobian, one backward pass per output element, against
// central differences (f(x + eps·e_j) − f(x − eps·e_j)) / 2eps, one pair of forward passes per input element.
#include "core/autograd/check.h"

#include <cmath>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace plateau {

namespace {

// Element j (row-major) of a strided f64 tensor.
double* element(const Tensor& t, int64_t j) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (j % t.shape()[d]) * t.strides()[d];
    j /= t.shape()[d];
  }
  return t.data<double>() + off;
}

bool checked_output(const Tensor& t) { return t.defined() && t.is_floating_point(); }

TensorList evaluate(const registry::OpFn& fn, const TensorList& inputs) {
  TensorList out = fn(inputs);
  for (Tensor& t : out)
    if (t.defined()) t = t.detach().clone();
  return out;
}

}  // namespace

GradcheckResult gradcheck(const registry::OpFn& fn, const TensorList& inputs, const GradcheckOptions& opt) {
  GradcheckResult result;
  std::vector<size_t> wrt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    if (inputs[i].dtype() != DType::f64) {
      result.ok = false;
      result.message =
          "gradcheck needs f64 inputs; input " + std::to_string(i) + " is " + dtype_name(inputs[i].dtype());
      return result;
    }
    wrt.push_back(i);
  }
  TensorList outputs = fn(inputs);
  // Numeric Jacobian columns: numeric[i][j] holds d outputs / d input_i[j], one flat vector per output.
  std::vector<std::vector<TensorList>> numeric(wrt.size());
  for (size_t w = 0; w < wrt.size(); ++w) {
    const Tensor& x = inputs[wrt[w]];
    for (int64_t j = 0; j < x.numel(); ++j) {
      double* p = element(x, j);
      double saved = *p;
      *p = saved + opt.eps;
      TensorList plus = evaluate(fn, inputs);
      *p = saved - opt.eps;
      TensorList minus = evaluate(fn, inputs);
      *p = saved;
      TensorList column;
      for (size_t o = 0; o < outputs.size(); ++o)
        column.push_back(checked_output(outputs[o]) ? div(sub(plus[o], minus[o]), 2 * opt.eps).to(DType::f64)
                                                    : Tensor());
      numeric[w].push_back(column);
    }
  }
  TensorList wrt_tensors;
  for (size_t i : wrt) wrt_tensors.push_back(inputs[i]);
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& out = outputs[o];
    if (!checked_output(out)) continue;
    for (int64_t r = 0; r < out.numel(); ++r) {
      TensorList analytic(wrt.size());
      if (out.requires_grad() && !wrt.empty()) {
        Tensor seed = zeros(out.shape(), DType::f64);  // one-hot cotangent selecting element r
        *element(seed, r) = 1.0;
        GradOptions go;
        go.grad_outputs = {seed.to(out.dtype())};
        go.retain_graph = true;
        go.allow_unused = true;
        analytic = grad({out}, wrt_tensors, go);
      }
      for (size_t w = 0; w < wrt.size(); ++w) {
        const Tensor& x = inputs[wrt[w]];
        Tensor a = analytic[w].defined() ? analytic[w].to(DType::f64).contiguous() : zeros(x.shape(), DType::f64);
        for (int64_t j = 0; j < x.numel(); ++j) {
          double an = *element(a, j);
          double nu = *element(numeric[w][j][o], r);
          double err = std::abs(an - nu);
          result.max_abs_error = std::max(result.max_abs_error, err);
          if (!(err <= opt.atol + opt.rtol * std::abs(nu)) && result.ok) {
            std::ostringstream msg;
            msg << "Jacobian mismatch for output " << o << " element " << r << ", input " << wrt[w] << " element " << j
                << ": analytic " << an << ", numeric " << nu;
            result.ok = false;
            result.message = msg.str();
          }
        }
      }
    }
  }
  return result;
}

GradcheckResult gradgradcheck(const registry::OpFn& fn, const TensorList& inputs, const GradcheckOptions& opt) {
  // Cotangents u for every floating output, fixed by a seed; they are inputs of the checked map too.
  TensorList outputs = fn(inputs);
  TensorList extended = inputs;
  std::vector<size_t> out_index;
  Generator gen(1234);
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (!checked_output(outputs[o]) || !outputs[o].requires_grad()) continue;
    Tensor u = normal(outputs[o].shape(), 0.0, 1.0, DType::f64, gen);
    u.requires_grad_(true);
    extended.push_back(u);
    out_index.push_back(o);
  }
  size_t n = inputs.size();
  registry::OpFn first_derivative = [&fn, n, out_index](const TensorList& in) -> TensorList {
    TensorList x(in.begin(), in.begin() + n);
    TensorList outs = fn(x);
    TensorList roots, cotangents, wrt;
    for (size_t k = 0; k < out_index.size(); ++k) {
      if (!outs[out_index[k]].requires_grad()) continue;
      roots.push_back(outs[out_index[k]]);
      cotangents.push_back(in[n + k]);
    }
    for (const Tensor& t : x)
      if (t.defined() && t.requires_grad()) wrt.push_back(t);
    if (roots.empty()) return {};
    GradOptions go;
    go.grad_outputs = cotangents;
    go.create_graph = true;
    go.allow_unused = true;
    TensorList g = grad(roots, wrt, go);
    for (size_t i = 0; i < g.size(); ++i)
      if (!g[i].defined()) g[i] = zeros(wrt[i].shape(), wrt[i].dtype());
    return g;
  };
  return gradcheck(first_derivative, extended, opt);
}

}  // namespace plateau

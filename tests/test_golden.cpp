// Golden tests: op compositions against values, gradients and Hessian-vector products that
// PyTorch computed (tools/make_golden.py; fixtures in tests/golden, see the README there).
// Tolerances: 1e-10 (f64) and 1e-5 (f32), relative to the largest magnitude of each reference tensor.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "plateau.h"

using namespace plateau;

namespace {

struct Fixture {
  io::TensorMap t;
  DType dtype;
  double tol;
  Tensor operator[](const std::string& name) const {
    auto it = t.find(name);
    REQUIRE_MESSAGE(it != t.end(), "fixture has no tensor " << name);
    return it->second;
  }
  Tensor param(const std::string& name) const { return (*this)["param." + name].clone().requires_grad_(); }
};

Fixture load(const std::string& name, DType dtype) {
  std::string suffix = dtype == DType::f64 ? "_f64" : "_f32";
  return {io::load_safetensors(std::string(PLATEAU_SOURCE_ROOT) + "/tests/golden/" + name + suffix + ".safetensors"),
          dtype, dtype == DType::f64 ? 1e-10 : 1e-5};
}

// max |ours − reference| ≤ tol · max(1, max |reference|)... relative to the reference's scale,
// with an absolute floor of tol for tensors that are rounding noise around zero.
void check_close(const Tensor& ours, const Tensor& ref, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(ours.defined());
  REQUIRE(ours.shape() == ref.shape());
  std::vector<double> a = ours.to_vector<double>(), b = ref.to_vector<double>();
  double scale = 0, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    err = std::max(err, std::abs(a[i] - b[i]));
  }
  CHECK_MESSAGE(err <= tol * std::max(scale, 1e-3), what << ": max error " << err << " at scale " << scale);
}

// Checks the gradient and the Hessian-vector product of loss(params) against grad.* and hvp.*.
// Names in `exactly_zero` have a true derivative of zero (the conv bias under training-mode batch
// norm): the reference holds rounding noise, so both sides are checked to be ≤ tol·scale, with the
// scale of the first parameter's gradient.
void check_derivatives(const Fixture& f, const std::vector<std::string>& names, const TensorList& params,
                       const Tensor& loss, const std::vector<std::string>& grad_only = {}, const TensorList& extra = {},
                       const std::vector<std::string>& exactly_zero = {}) {
  GradOptions opt;
  opt.create_graph = true;
  TensorList all = params;
  all.insert(all.end(), extra.begin(), extra.end());
  TensorList g = grad({loss}, all, opt);
  auto is_zero = [&](const std::string& n) {
    return std::find(exactly_zero.begin(), exactly_zero.end(), n) != exactly_zero.end();
  };
  double scale = max(abs(f["grad." + names[0]])).item();
  auto check_zero = [&](const Tensor& ours, const std::string& ref) {
    INFO(ref);
    CHECK(max(abs(ours)).item() <= f.tol * scale);
    CHECK(max(abs(f[ref])).item() <= f.tol * scale);
  };
  for (size_t i = 0; i < names.size(); ++i) {
    if (is_zero(names[i]))
      check_zero(g[i], "grad." + names[i]);
    else
      check_close(g[i], f["grad." + names[i]], f.tol, "grad." + names[i]);
  }
  for (size_t i = 0; i < grad_only.size(); ++i)
    check_close(g[names.size() + i], f["grad." + grad_only[i]], f.tol, "grad." + grad_only[i]);
  Tensor gv = zeros({}, f.dtype);
  for (size_t i = 0; i < names.size(); ++i) gv = gv + sum(g[i] * f["v." + names[i]]);
  TensorList hv = grad({gv}, params, GradOptions{{}, {}, false, true});
  for (size_t i = 0; i < names.size(); ++i) {
    Tensor h = hv[i].defined() ? hv[i] : zeros_like(params[i]);
    if (is_zero(names[i]))
      check_zero(h, "hvp." + names[i]);
    else
      check_close(h, f["hvp." + names[i]], f.tol, "hvp." + names[i]);
  }
}

}  // namespace

TEST_CASE("golden: 2-layer MLP with cross-entropy") {
  for (DType dtype : {DType::f64, DType::f32}) {
    Fixture f = load("mlp_ce", dtype);
    Tensor w1 = f.param("w1"), b1 = f.param("b1"), w2 = f.param("w2"), b2 = f.param("b2");
    Tensor logits = linear(tanh(linear(f["in.x"], w1, b1)), w2, b2);
    Tensor loss = cross_entropy(logits, f["in.target"]);
    check_close(logits, f["out.logits"], f.tol, "logits");
    check_close(loss, f["out.loss"], f.tol, "loss");
    check_derivatives(f, {"w1", "b1", "w2", "b2"}, {w1, b1, w2, b2}, loss);
  }
}

TEST_CASE("golden: conv + batch norm + ReLU + max-pool") {
  for (DType dtype : {DType::f64, DType::f32}) {
    Fixture f = load("conv_bn_relu_pool", dtype);
    Tensor w = f.param("w"), b = f.param("b"), gamma = f.param("gamma"), beta = f.param("beta");
    Tensor x = f["in.x"].clone().requires_grad_();
    Tensor running_mean = f["in.running_mean"].clone(), running_var = f["in.running_var"].clone();
    Conv2dOptions conv;
    conv.padding = {1, 1};
    Tensor bn = batch_norm(conv2d(x, w, b, conv), running_mean, running_var, gamma, beta, true, 0.1, 1e-5);
    Tensor y = max_pool2d(relu(bn), {{2, 2}, {2, 2}});
    Tensor loss = sum(y * f["in.r"]);
    check_close(y, f["out.y"], f.tol, "y");
    check_close(loss, f["out.loss"], f.tol, "loss");
    check_close(running_mean, f["out.running_mean"], f.tol, "running_mean");
    check_close(running_var, f["out.running_var"], f.tol, "running_var");
    check_derivatives(f, {"w", "b", "gamma", "beta"}, {w, b, gamma, beta}, loss, {"x"}, {x}, {"b"});
  }
}

TEST_CASE("golden: softmax attention") {
  for (DType dtype : {DType::f64, DType::f32}) {
    Fixture f = load("attention", dtype);
    Tensor q = f.param("q"), k = f.param("k"), v = f.param("v_");
    Tensor scores = matmul(q, transpose(k, -1, -2)) / std::sqrt(8.0);
    Tensor attn = matmul(softmax(scores, -1), v);
    Tensor loss = sum(attn * f["in.r"]);
    check_close(attn, f["out.attn"], f.tol, "attn");
    check_close(loss, f["out.loss"], f.tol, "loss");
    check_derivatives(f, {"q", "k", "v_"}, {q, k, v}, loss);
  }
}

TEST_CASE("golden: cross-entropy with label smoothing, ignore_index, reductions and probability targets") {
  for (DType dtype : {DType::f64, DType::f32}) {
    Fixture f = load("label_smoothing", dtype);
    Tensor logits = f.param("logits");
    CrossEntropyOptions smooth;
    smooth.label_smoothing = 0.1;
    Tensor loss = cross_entropy(logits, f["in.target"], smooth);
    check_close(loss, f["out.loss"], f.tol, "loss");
    CrossEntropyOptions summed = smooth;
    summed.reduction = Reduction::sum;
    check_close(cross_entropy(logits, f["in.target"], summed), f["out.loss_sum"], f.tol, "loss_sum");
    CrossEntropyOptions none = smooth;
    none.reduction = Reduction::none;
    check_close(cross_entropy(logits, f["in.target"], none), f["out.loss_none"], f.tol, "loss_none");
    CrossEntropyOptions ignore = smooth;
    ignore.ignore_index = 2;
    check_close(cross_entropy(logits, f["in.target_ig"], ignore), f["out.loss_ignore"], f.tol, "loss_ignore");
    check_close(cross_entropy(logits, f["in.probs"]), f["out.loss_probs"], f.tol, "loss_probs");
    check_derivatives(f, {"logits"}, {logits}, loss);
  }
}

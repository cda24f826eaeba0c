// Custom-gradient ops. Their rules are still written in recorded ops, so they compose with
// create_graph like every other op; the registry checks each rule directly (custom_gradient).
#include "core/ops/custom_grad.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/autograd/autograd.h"
#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/ops/ops.h"

namespace plateau {

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("plateau: custom-gradient check failed: " + what);
}

bool close(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > 1e-12 * (1 + std::abs(b[i]))) return false;
  return true;
}

}  // namespace

// forward y = x; backward dx = −λ·g
Tensor gradient_reversal(const Tensor& x, double lambda) {
  if (!x.defined() || !x.is_floating_point())
    throw std::invalid_argument("plateau: gradient_reversal needs a floating tensor");
  Tensor y = x.detach();  // same values and storage, a new autograd identity
  if (autograd::should_record({&x}))
    autograd::record("gradient_reversal", {x}, {&y}, {}, [lambda](autograd::BackwardContext& c) -> TensorList {
      return {mul(c.grad(), -lambda)};
    }).examples(autograd::ExampleMap::elementwise);
  return y;
}

PLATEAU_REGISTER_OP({"gradient_reversal",
                     "dx = −λ·g (not the derivative of the identity: by design)",
                     {{"lambda 0.5",
                       {registry::real({3, 4})},
                       [](const TensorList& in) -> TensorList { return {gradient_reversal(in[0] * in[0], 0.5)}; }}},
                     true,
                     [] {
                       Tensor x = tensor({0.5, -1.0, 2.0}, {3}, DType::f64).requires_grad_();
                       Tensor w = tensor({1.0, 2.0, 3.0}, {3}, DType::f64);
                       Tensor y = gradient_reversal(x, 0.5);
                       require(close(y.to_vector<double>(), x.to_vector<double>()), "forward is the identity");
                       GradOptions create;
                       create.create_graph = true;
                       Tensor g = grad({sum(y * y * w)}, {x}, create)[0];  // −0.5 · 2 x w
                       require(close(g.to_vector<double>(), {-0.5, 2.0, -6.0}), "gradient is −λ times the gradient");
                       // Σg = −2λ Σ y w: its gradient in y, −2λw, is reversed again on the way to x: 2λ²w.
                       Tensor gg = grad({sum(g)}, {x})[0];
                       require(close(gg.to_vector<double>(), {0.5, 1.0, 1.5}), "second derivative through it");
                     },
                     true});

// forward y = value; backward dx = g (value is a constant)
Tensor straight_through(const Tensor& x, const Tensor& value) {
  if (!x.defined() || !value.defined() || x.shape() != value.shape() || x.dtype() != value.dtype())
    throw std::invalid_argument(
        "plateau: straight_through needs x and value of the same shape and dtype, got " +
        (x.defined() ? x.shape().str() + " " + dtype_name(x.dtype()) : std::string("undefined")) + " and " +
        (value.defined() ? value.shape().str() + " " + dtype_name(value.dtype()) : std::string("undefined")));
  Tensor y = value.detach().clone();
  if (autograd::should_record({&x}))
    autograd::record("straight_through", {x}, {&y}, {}, [](autograd::BackwardContext& c) -> TensorList {
      return {c.grad()};
    }).examples(autograd::ExampleMap::elementwise);
  return y;
}

PLATEAU_REGISTER_OP({"straight_through",
                     "dx = g (the identity's gradient for a forward that is not the identity)",
                     {{"sign as the forward",
                       {registry::real({3, 4})},
                       [](const TensorList& in) -> TensorList {
                         return {straight_through(in[0] * 2.0, sign(in[0]))};
                       }}},
                     true,
                     [] {
                       Tensor x = tensor({0.4, 1.6, -2.7}, {3}, DType::f64).requires_grad_();
                       Tensor rounded = tensor({0.0, 2.0, -3.0}, {3}, DType::f64);
                       Tensor y = straight_through(x, rounded);
                       require(close(y.to_vector<double>(), rounded.to_vector<double>()), "forward gives value");
                       Tensor w = tensor({1.0, -2.0, 0.5}, {3}, DType::f64);
                       Tensor g = grad({sum(y * w)}, {x})[0];
                       require(close(g.to_vector<double>(), w.to_vector<double>()), "gradient passes through");
                     },
                     true});

}  // namespace plateau

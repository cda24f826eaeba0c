// vjp, jvp, hvp, jacobian and hessian against closed forms and finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "plateau.h"

using namespace plateau;

namespace {

Tensor f64(std::vector<double> v, Shape s) { return tensor(v, s, DType::f64); }

void check_close(const Tensor& got, const Tensor& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(tol).scale(1.0));
}

// f(x, w) = (tanh(W x), Σ x²): two outputs, two inputs.
TensorList two_by_two(const TensorList& in) { return {tanh(matmul(in[1], in[0])), sum(in[0] * in[0])}; }

}  // namespace

TEST_CASE("functional: vjp equals the gradient of the cotangent-weighted outputs") {
  Generator gen(1);
  Tensor x = normal({3}, 0, 1, DType::f64, gen), w = normal({2, 3}, 0, 1, DType::f64, gen);
  Tensor u0 = normal({2}, 0, 1, DType::f64, gen), u1 = f64({0.5}, {});
  FunctionalResult r = vjp(two_by_two, {x, w}, {u0, u1});
  // By hand: y0 = tanh(Wx): d/dx = Wᵀ((1 − y0²)·u0), d/dW = ((1 − y0²)·u0) xᵀ; y1 = Σx²: d/dx = 2x·u1.
  Tensor s = (1.0 - r.outputs[0] * r.outputs[0]) * u0;
  check_close(r.derivatives[0], matmul(transpose(w, 0, 1), s) + 2.0 * x * 0.5, 1e-12);
  check_close(r.derivatives[1], outer(s, x), 1e-12);
  CHECK_FALSE(x.requires_grad());  // inputs are left alone
  CHECK_THROWS_WITH_AS(vjp(two_by_two, {x, w}, {u0}), doctest::Contains("cotangents"), std::invalid_argument);
}

TEST_CASE("functional: jvp (double-VJP) matches central differences") {
  Generator gen(2);
  Tensor x = normal({3}, 0, 1, DType::f64, gen), w = normal({2, 3}, 0, 1, DType::f64, gen);
  Tensor vx = normal({3}, 0, 1, DType::f64, gen), vw = normal({2, 3}, 0, 1, DType::f64, gen);
  FunctionalResult r = jvp(two_by_two, {x, w}, {vx, vw});
  const double eps = 1e-6;
  TensorList plus = two_by_two({x + eps * vx, w + eps * vw}), minus = two_by_two({x - eps * vx, w - eps * vw});
  for (size_t o = 0; o < 2; ++o) check_close(r.derivatives[o], (plus[o] - minus[o]) / (2 * eps), 1e-7);
  CHECK_THROWS_WITH_AS(jvp(two_by_two, {x, w}, {vx, vx}), doctest::Contains("tangents 1 must have shape [2, 3]"),
                       std::invalid_argument);
}

TEST_CASE("functional: hvp matches finite differences of gradients and the dense Hessian") {
  Generator gen(3);
  Tensor a = normal({4, 3}, 0, 1, DType::f64, gen);
  auto f = [&a](const TensorList& in) { return sum(exp(matmul(a, in[0]))) + sum(sin(in[0]) * in[0]); };
  Tensor x = normal({3}, 0, 0.5, DType::f64, gen), v = normal({3}, 0, 1, DType::f64, gen);
  Tensor hv = hvp(f, {x}, {v}).derivatives[0];
  auto gradient = [&](const Tensor& at) {
    return vjp([&](const TensorList& in) -> TensorList { return {f(in)}; }, {at}, {ones({}, DType::f64)})
        .derivatives[0];
  };
  const double eps = 1e-6;
  check_close(hv, (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps), 1e-7);
  Tensor h = hessian([&](const Tensor& t) { return f({t}); }, x);
  REQUIRE(h.shape() == Shape{3, 3});
  check_close(hv, matmul(h, v), 1e-12);
  check_close(h, transpose(h, 0, 1), 1e-12);  // symmetric
}

TEST_CASE("functional: jacobian and hessian of closed forms") {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor x = f64({0.1, -0.2, 0.3}, {3});
  check_close(jacobian([&](const Tensor& t) { return matmul(a, t); }, x), a, 1e-14);  // J(Ax) = A
  Tensor q = f64({2, 1, 0, 1, 3, 1, 0, 1, 4}, {3, 3});
  Tensor h = hessian([&](const Tensor& t) { return 0.5 * dot(t, matmul(q, t)); }, x);  // H(½xᵀQx) = Q (symmetric)
  check_close(h, q, 1e-14);
  Tensor j = jacobian([](const Tensor& t) { return t * t; }, tensor(std::vector<float>{1, 2}, {2}));  // f32 works
  CHECK(j.to_vector<double>() == std::vector<double>{2, 0, 0, 4});
}

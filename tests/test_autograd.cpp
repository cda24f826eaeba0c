// The tape engine: gradients against closed forms, higher derivatives, hooks, and every error the
// issue names.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "plateau.h"

using namespace plateau;

namespace {
Tensor leaf(std::vector<double> v, Shape s) { return tensor(v, s, DType::f64).requires_grad_(); }
double at(const Tensor& t, int64_t i) { return t.to_vector<double>()[i]; }
}  // namespace

TEST_CASE("autograd: gradient of a polynomial against its closed form") {
  Tensor x = leaf({0.5, -1.5, 2.0}, {3});
  Tensor y = sum(x * x * x + 3.0 * x);  // dy/dx = 3x² + 3 (x is used three times: accumulation)
  y.backward();
  for (int i = 0; i < 3; ++i) {
    double v = at(x, i);
    CHECK(at(x.grad(), i) == doctest::Approx(3 * v * v + 3));
  }
}

TEST_CASE("autograd: backward accumulates into .grad across calls; zero_grad clears") {
  Tensor x = leaf({1.0, 2.0}, {2});
  sum(x * 2.0).backward();
  sum(x * 3.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5.0, 5.0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: grad() with respect to interior tensors and leaves in one pass") {
  Tensor x = leaf({1.0, 2.0, 3.0}, {3});
  Tensor h = exp(x);      // interior
  Tensor y = sum(h * h);  // dy/dh = 2h, dy/dx = 2 e^{2x}
  TensorList g = grad({y}, {h, x});
  for (int i = 0; i < 3; ++i) {
    CHECK(at(g[0], i) == doctest::Approx(2 * std::exp(i + 1.0)));
    CHECK(at(g[1], i) == doctest::Approx(2 * std::exp(2 * (i + 1.0))));
  }
  CHECK_FALSE(x.grad().defined());  // grad() leaves .grad() alone
}

TEST_CASE("autograd: second and third derivatives through create_graph") {
  Tensor x = leaf({0.7}, {1});
  Tensor y = sum(sin(x) * x);  // y' = cos x·x + sin x, y'' = 2cos x − x sin x, y''' = −3 sin x − x cos x
  GradOptions opt;
  opt.create_graph = true;
  Tensor d1 = grad({y}, {x}, opt)[0];
  Tensor d2 = grad({sum(d1)}, {x}, opt)[0];
  Tensor d3 = grad({sum(d2)}, {x})[0];
  double v = 0.7;
  CHECK(at(d1, 0) == doctest::Approx(std::cos(v) * v + std::sin(v)));
  CHECK(at(d2, 0) == doctest::Approx(2 * std::cos(v) - v * std::sin(v)));
  CHECK(at(d3, 0) == doctest::Approx(-3 * std::sin(v) - v * std::cos(v)));
}

TEST_CASE("autograd: Hessian-vector product by double backward matches the closed form") {
  // f(w) = Σ_i exp(a_i·w) for a fixed matrix a: H = Σ_i exp(a_i·w) a_i a_iᵀ.
  Tensor a = tensor({1.0, 0.5, -0.3, 0.2, 0.1, 0.4}, {3, 2}, DType::f64);
  Tensor w = leaf({0.3, -0.2}, {2});
  Tensor v = tensor({1.0, 2.0}, {2}, DType::f64);
  GradOptions opt;
  opt.create_graph = true;
  Tensor g = grad({sum(exp(matmul(a, w)))}, {w}, opt)[0];
  Tensor hv = grad({sum(g * v)}, {w})[0];
  std::vector<double> av = a.to_vector<double>(), expected(2, 0.0);
  for (int i = 0; i < 3; ++i) {
    double s = std::exp(av[2 * i] * 0.3 + av[2 * i + 1] * -0.2);
    double dot_av = av[2 * i] * 1.0 + av[2 * i + 1] * 2.0;
    expected[0] += s * av[2 * i] * dot_av;
    expected[1] += s * av[2 * i + 1] * dot_av;
  }
  CHECK(at(hv, 0) == doctest::Approx(expected[0]));
  CHECK(at(hv, 1) == doctest::Approx(expected[1]));
}

TEST_CASE("autograd: hooks read and replace gradients; retain_grad keeps interior gradients") {
  Tensor x = leaf({1.0, 2.0}, {2});
  Tensor h = x * 3.0;
  Tensor seen;
  h.register_hook([&](const Tensor& g) {
    seen = g;
    return g * 10.0;  // replaces the gradient flowing on
  });
  h.retain_grad();
  sum(h * h).backward();
  CHECK(seen.to_vector<double>() == std::vector<double>{6.0, 12.0});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{180.0, 360.0});
  CHECK(h.grad().defined());
  x.register_hook([](const Tensor& g) { return g * 0.0; });  // hook on a leaf
  sum(x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{180.0, 360.0});
}

TEST_CASE("autograd: detach and grad-mode guards") {
  Tensor x = leaf({2.0}, {1});
  {
    NoGradGuard no_grad;
    Tensor y = x * x;
    CHECK_FALSE(y.requires_grad());
    {
      EnableGradGuard with_grad;
      CHECK((x * x).requires_grad());
    }
  }
  Tensor d = (x * x).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(at(d, 0) == 4.0);
}

TEST_CASE("autograd error: in-place write to a tensor saved for backward names the op") {
  Tensor x = leaf({1.0, 2.0}, {2});
  Tensor e = exp(x);  // exp saves its output
  Tensor y = sum(e);
  {
    NoGradGuard no_grad;
    mul_(e, 2.0);
  }
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("saved by op 'exp'"), std::runtime_error);
}

TEST_CASE("autograd error: backward through a freed graph says to pass retain_graph") {
  Tensor x = leaf({1.0, 2.0}, {2});
  Tensor y = sum(x * x);
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("retain_graph"), std::runtime_error);
  Tensor z = sum(x * x);
  z.backward({}, /*retain_graph=*/true);
  CHECK_NOTHROW(z.backward());
}

TEST_CASE("autograd error: shape, dtype and device mismatches") {
  Tensor a = leaf({1, 2, 3}, {3});
  Tensor b = leaf({1, 2}, {2});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("[3]"), std::invalid_argument);
  Tensor f = tensor(std::vector<float>{1, 2, 3}, {3});
  CHECK_THROWS_WITH_AS(add(a, f), doctest::Contains("f32"), std::invalid_argument);
  if (!cuda::is_available())
    CHECK_THROWS_WITH_AS(zeros({2}, DType::f32, Device::cuda(0)), doctest::Contains("cuda:0"), std::runtime_error);
  Tensor y = sum(a * a);
  GradOptions opt;
  opt.grad_outputs = {ones({2}, DType::f64)};
  CHECK_THROWS_WITH_AS(grad({y}, {a}, opt), doctest::Contains("shape"), std::runtime_error);
  opt.grad_outputs = {ones({}, DType::f32)};
  CHECK_THROWS_WITH_AS(grad({y}, {a}, opt), doctest::Contains("dtype"), std::runtime_error);
}

TEST_CASE("autograd error: non-scalar backward needs grad_outputs") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = x * x;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("grad_outputs"), std::runtime_error);
  y.backward(tensor({1.0, 1.0}, {2}, DType::f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2.0, 4.0});
}

TEST_CASE("autograd: unused inputs are an error unless allow_unused") {
  Tensor x = leaf({1}, {1}), z = leaf({1}, {1});
  Tensor y = sum(x * 2.0);
  GradOptions opt;
  opt.retain_graph = true;
  CHECK_THROWS_WITH_AS(grad({y}, {z}, opt), doctest::Contains("allow_unused"), std::runtime_error);
  opt.allow_unused = true;
  TensorList g = grad({y}, {x, z}, opt);
  CHECK(at(g[0], 0) == 2.0);
  CHECK_FALSE(g[1].defined());
}

TEST_CASE("autograd: tape printing as text and DOT") {
  Tensor x = leaf({1, 2, 3}, {3});
  x.set_name("x");
  Tensor y = sum(exp(x) * x);
  std::string text = tape_text({y});
  CHECK(text.find("exp") != std::string::npos);
  CHECK(text.find("mul") != std::string::npos);
  CHECK(text.find("sum") != std::string::npos);
  CHECK(text.find("[3] f64 from x") != std::string::npos);
  // Latest op first: sum, then mul, then exp.
  CHECK(text.find("sum") < text.find("mul"));
  CHECK(text.find("mul") < text.find("exp"));
  std::string dot = tape_dot({y});
  CHECK(dot.rfind("digraph tape {", 0) == 0);
  CHECK(dot.find("->") != std::string::npos);
}

TEST_CASE("autograd: anomaly mode names the forward op whose backward made NaN or Inf") {
  Tensor x = leaf({0.0, 1.0}, {2});
  Tensor y = sum(sqrt(x));  // d sqrt(x) at 0 is infinite
  {
    AnomalyModeGuard anomaly;
    CHECK_THROWS_WITH_AS(y.backward({}, true), doctest::Contains("'sqrt'"), std::runtime_error);
  }
  CHECK_NOTHROW(y.backward());  // without anomaly mode the Inf just flows
  CHECK(std::isinf(at(x.grad(), 0)));
}

TEST_CASE("autograd: a graph dies with its outputs") {
  Tensor x = leaf({1, 2}, {2});
  std::weak_ptr<autograd::Node> node;
  {
    Tensor y = exp(x);
    node = y.grad_fn();
    CHECK_FALSE(node.expired());
  }
  CHECK(node.expired());
}

TEST_CASE("autograd: .grad() owns its buffer even when the gradient is someone else's tensor") {
  Tensor x = leaf({1, 2}, {2});
  Tensor g0 = tensor({1.0, 1.0}, {2}, DType::f64);
  add(x, 0.0).backward(g0);  // add's backward passes g0 through unchanged
  Tensor seen;
  Tensor z = leaf({3, 4}, {2});
  z.register_hook([&](const Tensor& g) {
    seen = g;  // the hook keeps a reference to the gradient it was given
    return Tensor();
  });
  sum(z * 2.0).backward();
  {
    NoGradGuard no_grad;
    Tensor gx = x.grad(), gz = z.grad();
    add_(gx, g0);
    add_(gz, gz);
  }
  CHECK(g0.to_vector<double>() == std::vector<double>{1.0, 1.0});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2.0, 2.0});
  CHECK(seen.to_vector<double>() == std::vector<double>{2.0, 2.0});
  CHECK(z.grad().to_vector<double>() == std::vector<double>{4.0, 4.0});
}

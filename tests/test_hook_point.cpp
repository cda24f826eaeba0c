// Forward hooks on named activations, and gradients with respect to interior activations.
#include <doctest/doctest.h>

#include <cmath>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;

namespace {

struct TwoLayer {
  Tensor x, w1, w2;
  Tensor hidden;  // the activation at hook point "hidden", as the last forward saw it
  Tensor loss() {
    hidden = hook_point("hidden", tanh(linear(x, w1)));
    Tensor y = linear(hidden, w2);
    return sum(y * y);
  }
};

TwoLayer make_model() {
  Generator gen(3);
  return {normal({4, 3}, 0, 1, DType::f64, gen), normal({5, 3}, 0, 1, DType::f64, gen).requires_grad_(),
          normal({2, 5}, 0, 1, DType::f64, gen).requires_grad_(), Tensor()};
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }

}  // namespace

TEST_CASE("hook_point: without hooks the activation passes through untouched") {
  TwoLayer m = make_model();
  Tensor h = tanh(linear(m.x, m.w1));
  CHECK(hook_point("hidden", h).is_same(h));
}

TEST_CASE("hook_point: interior gradients come from the same backward pass as the weights'") {
  TwoLayer m = make_model();
  Tensor loss = m.loss();
  TensorList g = grad({loss}, {m.w1, m.hidden});
  // By hand: loss = Σ (h W2ᵀ)², so ∂loss/∂h = 2 (h W2ᵀ) W2.
  Tensor expected = 2.0 * matmul(linear(m.hidden, m.w2), m.w2);
  CHECK(max_abs_diff(g[1], expected.detach()) < 1e-12);
  Tensor again = m.loss();
  CHECK(max_abs_diff(g[0], grad({again}, {m.w1})[0]) < 1e-12);
}

TEST_CASE("hook_point: a perturbation is added, its gradient is the activation's, and removal restores") {
  TwoLayer m = make_model();
  Tensor clean_loss = m.loss();
  const double clean = clean_loss.item();
  Tensor g_hidden = grad({clean_loss}, {m.hidden})[0];

  Tensor delta = zeros({4, 5}, DType::f64).requires_grad_();
  {
    ForwardHookHandle handle = add_perturbation("hidden", delta);
    Tensor loss = m.loss();
    CHECK(loss.item() == doctest::Approx(clean).epsilon(1e-14));
    CHECK(max_abs_diff(grad({loss}, {delta})[0], g_hidden) < 1e-12);

    // A small step along v changes the loss by ε⟨∂loss/∂h, v⟩ to first order (central difference).
    Generator gen(4);
    Tensor v = normal({4, 5}, 0, 1, DType::f64, gen);
    const double eps = 1e-5;
    {
      NoGradGuard no_grad;
      add_(delta, v * eps);
    }
    const double up = m.loss().item();
    {
      NoGradGuard no_grad;
      add_(delta, v * (-2 * eps));
    }
    const double down = m.loss().item();
    CHECK((up - down) / (2 * eps) == doctest::Approx(sum(g_hidden * v).item()).epsilon(1e-8));
  }
  CHECK(m.loss().item() == doctest::Approx(clean).epsilon(1e-14));  // the handle removed its hook
}

TEST_CASE("hook_point: hooks run in registration order and may replace the activation") {
  TwoLayer m = make_model();
  std::vector<int> order;
  ForwardHookHandle doubled = register_forward_hook("hidden", [&](const Tensor& h) {
    order.push_back(1);
    return h * 2.0;
  });
  ForwardHookHandle shifted = register_forward_hook("hidden", [&](const Tensor& h) {
    order.push_back(2);
    return h + 1.0;
  });
  ForwardHookHandle elsewhere = register_forward_hook("other", [&](const Tensor& h) {
    order.push_back(3);
    return h;
  });
  Tensor h = tanh(linear(m.x, m.w1));
  Tensor out = hook_point("hidden", h);
  CHECK(order == std::vector<int>{1, 2});
  CHECK(max_abs_diff(out, h * 2.0 + 1.0) < 1e-15);
  doubled.remove();
  CHECK(max_abs_diff(hook_point("hidden", h), h + 1.0) < 1e-15);
}

TEST_CASE("hook_point: a perturbation of the wrong shape is a clear error") {
  TwoLayer m = make_model();
  ForwardHookHandle handle = add_perturbation("hidden", zeros({3, 5}, DType::f64));
  testing::check_error([&] { m.loss(); }, {"add_perturbation", "[3, 5]", "'hidden'", "[4, 5]"});
  testing::check_error([] { (void)register_forward_hook("", [](const Tensor& h) { return h; }); }, {"point name"});
}

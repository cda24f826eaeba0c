// Sharpness tools: the worst case in a ρ-ball against a brute-force search, the line between two
// weight settings and the 2-D surface against closed forms, filter normalization, and restoration.
#include <doctest/doctest.h>

#include <cmath>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
using namespace plateau::optim;
using testing::f64;
using testing::values;
using testing::Vec;

namespace {

// L(w) = ½ Σ aᵢ wᵢ² + Σ wᵢ, half of it from each of two "batches".
double quadratic(double w0, double w1) { return 0.5 * (2 * w0 * w0 + 5 * w1 * w1) + w0 + w1; }
ModelLoss quadratic_loss() {
  return [](nn::Module& m, int64_t) {
    Tensor w = dynamic_cast<Vec&>(m).w;
    return 0.5 * sum(f64({2, 5}, {2}) * w * w) + sum(w);
  };
}

}  // namespace

TEST_CASE("optim: worst-case sharpness in a rho-ball reaches the brute-force maximum and restores the weights") {
  auto m = std::make_shared<Vec>(f64({0.3, -0.4}, {2}));
  const double rho = 0.2;
  WorstCase r = worst_case_sharpness(*m, quadratic_loss(), 2, {.rho = rho, .steps = 200, .step_size = 0.01});
  // Brute force over the circle ‖ε‖ = ρ (the maximum of a convex function on a ball is on its boundary).
  double best = -1e9;
  for (int k = 0; k < 200000; ++k) {
    const double t = 2 * M_PI * k / 200000;
    best = std::max(best, quadratic(0.3 + rho * std::cos(t), -0.4 + rho * std::sin(t)));
  }
  const double base = quadratic(0.3, -0.4);
  CHECK(r.loss == doctest::Approx(base).epsilon(1e-14));
  CHECK(r.perturbed_loss <= best + 1e-12);
  CHECK(r.perturbed_loss == doctest::Approx(best).epsilon(1e-6));
  CHECK(r.sharpness == doctest::Approx(best - base).epsilon(1e-5));
  // At least SAM's first-order point ε = ρ g/‖g‖.
  const double g0 = 2 * 0.3 + 1, g1 = 5 * -0.4 + 1, gn = std::hypot(g0, g1);
  CHECK(r.perturbed_loss >= quadratic(0.3 + rho * g0 / gn, -0.4 + rho * g1 / gn) - 1e-12);
  CHECK(m->w.to_vector<double>() == std::vector<double>{0.3, -0.4});
  testing::check_error([&] { worst_case_sharpness(*m, quadratic_loss(), 0); }, {"at least one batch"});
  testing::check_error([&] { worst_case_sharpness(*m, quadratic_loss(), 1, {.rho = -1}); }, {"rho >= 0"});
}

TEST_CASE("optim: the loss along the line between two weight settings, and restoration") {
  auto m = std::make_shared<Vec>(f64({9, 9}, {2}));
  io::TensorMap a = {{"w", f64({1, 0}, {2})}}, b = {{"w", f64({-1, 2}, {2})}};
  std::vector<double> alphas = {0, 0.25, 0.5, 1, 1.5};
  std::vector<double> l = loss_along_line(*m, a, b, alphas, quadratic_loss(), 1);
  for (size_t i = 0; i < alphas.size(); ++i) {
    const double t = alphas[i];
    CHECK(l[i] == doctest::Approx(quadratic(1 - 2 * t, 2 * t)).epsilon(1e-14));
  }
  CHECK(m->w.to_vector<double>() == std::vector<double>{9, 9});
  io::TensorMap bad = {{"w", f64({1}, {1})}};
  testing::check_error([&] { loss_along_line(*m, a, bad, alphas, quadratic_loss(), 1); }, {"differ at 'w'"});
}

TEST_CASE("optim: filter-normalized directions match each filter's norm; the surface's centre is L(w)") {
  nn::DefaultDTypeGuard f64_layers(DType::f64);
  manual_seed(3);
  nn::Sequential net(std::make_shared<nn::Conv2d>(2, 3, 3), std::make_shared<nn::Flatten>(),
                     std::make_shared<nn::Linear>(3 * 2 * 2, 2));
  Generator gen(4);
  TensorList d = filter_normalized_direction(net, gen);
  auto params = net.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& w = params[i].tensor;
    if (w.dim() < 2) {
      CHECK(sum(abs(d[i])).item() == 0);  // biases are not moved
      continue;
    }
    for (int64_t f = 0; f < w.size(0); ++f) {
      Tensor wf = slice(w.detach(), 0, f, f + 1), df = slice(d[i], 0, f, f + 1);
      CHECK(std::sqrt(sum(df * df).item()) == doctest::Approx(std::sqrt(sum(wf * wf).item())).epsilon(1e-10));
    }
  }
  Tensor x = normal({4, 2, 4, 4}, 0, 1, DType::f64, gen), y = randint(0, 2, {4}, gen);
  ModelLoss loss = [&](nn::Module& model, int64_t) { return cross_entropy(model(x), y); };
  const double centre = cross_entropy(net(x), y).item();
  std::vector<double> grid = {-0.5, 0.0, 0.5};
  Surface s = loss_surface(net, loss, 1, grid, grid, gen);
  REQUIRE(s.loss.size() == 9);
  CHECK(s.loss[4] == doctest::Approx(centre).epsilon(1e-14));
  CHECK(s.loss[0] != doctest::Approx(centre));
  CHECK(cross_entropy(net(x), y).item() == centre);  // the weights are back
}

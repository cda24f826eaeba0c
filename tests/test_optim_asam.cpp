// ASAM's perturbation (both choices of T) and unnormalized SAM: one step on a quadratic computed by
// hand in f64, and ASAM with T = I equal to SAM.
#include <doctest/doctest.h>

#include <cmath>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
using namespace plateau::optim;

namespace {

Tensor f64(std::vector<double> v, Shape s) { return tensor(v, s, DType::f64); }

// A weight and a bias, as a layer names them, under L = ½ Σ aᵢ wᵢ² + ½ c b².
class Quadratic : public nn::Module {
 public:
  Quadratic(const std::string& weight_name) : Module("Quadratic") {
    register_parameter(weight_name, weight, nn::ParamRole::weight);
    register_parameter("bias", bias, nn::ParamRole::bias);
  }
  Tensor weight = f64({1, -0.5}, {2});
  Tensor bias = f64({0.4}, {1});
};

const double a0 = 2, a1 = 3, c = 5;

LossFn quadratic_loss() {
  return [](nn::Module& m, const Tensor&, const Tensor&) {
    auto& q = dynamic_cast<Quadratic&>(m);
    Tensor a = f64({a0, a1}, {2});
    return LossOutput{0.5 * sum(a * q.weight * q.weight) + 0.5 * c * sum(q.bias * q.bias), {}};
  };
}

// One SGD step (lr) from w, b with the gradient taken at w + ε, b + ε_b.
void check_step(const Quadratic& q, double w0, double w1, double b, double e0, double e1, double eb, double lr) {
  const double expect0 = w0 - lr * a0 * (w0 + e0), expect1 = w1 - lr * a1 * (w1 + e1), expect_b = b - lr * c * (b + eb);
  auto w = q.weight.to_vector<double>();
  CHECK(w[0] == doctest::Approx(expect0).epsilon(1e-12));
  CHECK(w[1] == doctest::Approx(expect1).epsilon(1e-12));
  CHECK(q.bias.to_vector<double>()[0] == doctest::Approx(expect_b).epsilon(1e-12));
}

}  // namespace

TEST_CASE("optim: ASAM's official scaling (|w| + eta on weights, 1 on biases), one step by hand") {
  auto q = std::make_shared<Quadratic>("weight");
  SGD sgd(q->parameters(), {.lr = 0.1});
  ASAM asam(*q, sgd, quadratic_loss(), {.rho = 0.5, .eta = 0.01});
  StepResult r = asam.step(zeros({1}), Tensor());
  // g = (2, −1.5 | 2); T = (1.01, 0.51 | 1); ε = ρ T²g / ‖Tg‖.
  const double g0 = 2, g1 = -1.5, gb = 2, t0 = 1.01, t1 = 0.51;
  const double n = std::sqrt(t0 * g0 * t0 * g0 + t1 * g1 * t1 * g1 + gb * gb);
  const double e0 = 0.5 * t0 * t0 * g0 / n, e1 = 0.5 * t1 * t1 * g1 / n, eb = 0.5 * gb / n;
  check_step(*q, 1, -0.5, 0.4, e0, e1, eb, 0.1);
  REQUIRE(r.diagnostics.has_value());
  CHECK(r.diagnostics->perturbation_norm == doctest::Approx(std::sqrt(e0 * e0 + e1 * e1 + eb * eb)).epsilon(1e-12));
  CHECK(r.passes.forward == 2);
  CHECK(r.passes.backward == 2);
}

TEST_CASE("optim: ASAM's every-parameter scaling (T = |w| on all, eta = 0), one step by hand") {
  auto q = std::make_shared<Quadratic>("weight");
  SGD sgd(q->parameters(), {.lr = 0.1});
  ASAM asam(*q, sgd, quadratic_loss(), {.rho = 0.5, .eta = 0.01, .scaling = ASAMScaling::every_parameter});
  asam.step(zeros({1}), Tensor());
  const double g0 = 2, g1 = -1.5, gb = 2, t0 = 1, t1 = 0.5, tb = 0.4;
  const double n = std::sqrt(t0 * g0 * t0 * g0 + t1 * g1 * t1 * g1 + tb * gb * tb * gb);
  check_step(*q, 1, -0.5, 0.4, 0.5 * t0 * t0 * g0 / n, 0.5 * t1 * t1 * g1 / n, 0.5 * tb * tb * gb / n, 0.1);
}

TEST_CASE("optim: ASAM with T = I is SAM") {
  // Named "w", the weight gets T = 1 under the official scaling, as the bias does: ASAM's ε is then
  // SAM's (up to the norm's epsilons, 1e-16 against 1e-12).
  auto q1 = std::make_shared<Quadratic>("w"), q2 = std::make_shared<Quadratic>("w");
  SGD sgd1(q1->parameters(), {.lr = 0.1}), sgd2(q2->parameters(), {.lr = 0.1});
  ASAM asam(*q1, sgd1, quadratic_loss(), {.rho = 0.3});
  SAM sam(*q2, sgd2, quadratic_loss(), {.rho = 0.3});
  for (int step = 0; step < 5; ++step) {
    asam.step(zeros({1}), Tensor());
    sam.step(zeros({1}), Tensor());
  }
  auto w1 = q1->weight.to_vector<double>(), w2 = q2->weight.to_vector<double>();
  for (size_t i = 0; i < w1.size(); ++i) CHECK(w1[i] == doctest::Approx(w2[i]).epsilon(1e-12));
  CHECK(q1->bias.to_vector<double>()[0] == doctest::Approx(q2->bias.to_vector<double>()[0]).epsilon(1e-12));
}

TEST_CASE("optim: unnormalized SAM perturbs by rho times the gradient") {
  auto q = std::make_shared<Quadratic>("weight");
  SGD sgd(q->parameters(), {.lr = 0.1});
  PerturbedStep step(*q, sgd, quadratic_loss(), unnormalized_sam_rule(0.2));
  step.step(zeros({1}), Tensor());
  check_step(*q, 1, -0.5, 0.4, 0.2 * 2, 0.2 * -1.5, 0.2 * 2, 0.1);
}

TEST_CASE("optim: ASAM and unnormalized SAM refuse a negative rho or eta") {
  testing::check_error([] { asam_rule({.rho = -1}); }, {"ASAM", "rho >= 0"});
  testing::check_error([] { asam_rule({.rho = 1, .eta = -0.1}); }, {"ASAM", "eta >= 0"});
  testing::check_error([] { unnormalized_sam_rule(-0.5); }, {"unnormalized SAM", "rho >= 0"});
}

// ASAM's perturbation (both choices of T) and unnormalized SAM: one step on a quadratic computed by
// hand in f64, and ASAM with T = I equal to SAM.
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

TEST_CASE("optim: Fisher SAM's perturbation lies on its ellipsoid, and eta = 0 is SAM") {
  const TensorList grads = {f64({2, -1.5}, {2}), f64({0.5}, {1})};
  const std::vector<nn::NamedParameter> params = {{"weight", f64({0, 0}, {2}), nn::ParamRole::weight},
                                                  {"bias", f64({0}, {1}), nn::ParamRole::bias}};
  // εᵀ diag(1 + η g²) ε = γ².
  TensorList eps = fisher_sam_rule(0.1, 1.0)(params, grads);
  double quad = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    auto e = eps[i].to_vector<double>(), g = grads[i].to_vector<double>();
    for (size_t j = 0; j < e.size(); ++j) quad += e[j] * (1 + g[j] * g[j]) * e[j];
  }
  CHECK(quad == doctest::Approx(0.01).epsilon(1e-10));
  // By hand: g/f = (2/5, −1.5/3.25, 0.5/1.25), gᵀ(g/f) = 0.8 + 0.6923… + 0.2.
  const double r0 = 2.0 / 5, r1 = -1.5 / 3.25, rb = 0.5 / 1.25, s = std::sqrt(2 * r0 - 1.5 * r1 + 0.5 * rb);
  CHECK(eps[0].to_vector<double>()[0] == doctest::Approx(0.1 * r0 / s).epsilon(1e-10));
  CHECK(eps[0].to_vector<double>()[1] == doctest::Approx(0.1 * r1 / s).epsilon(1e-10));
  CHECK(eps[1].to_vector<double>()[0] == doctest::Approx(0.1 * rb / s).epsilon(1e-10));
  // η = 0: ε = γ g/‖g‖, SAM's.
  TensorList sam = sam_rule(0.1)(params, grads), fisher = fisher_sam_rule(0.1, 0.0)(params, grads);
  for (size_t i = 0; i < grads.size(); ++i) {
    auto a = sam[i].to_vector<double>(), b = fisher[i].to_vector<double>();
    for (size_t j = 0; j < a.size(); ++j) CHECK(a[j] == doctest::Approx(b[j]).epsilon(1e-10));
  }
}

TEST_CASE("optim: mSAM with one shard is SAM, and 1-SAM on a batch of one is SAM") {
  // micro_batch = the batch size (one shard) and micro_batch = 1 on a one-example batch both make
  // one perturbation from the whole batch's gradient: SAM's step, to rounding.
  for (int64_t batch : {6, 1}) {
    Generator gen(5);
    Tensor x = normal({batch, 3}, 0, 1, DType::f64, gen), y = randint(0, 2, {batch}, gen);
    auto make = [] {
      nn::DefaultDTypeGuard f64_layers(DType::f64);
      manual_seed(9);
      return std::make_shared<nn::Linear>(3, 2);
    };
    auto m1 = make(), m2 = make();
    SGD s1(m1->parameters(), {.lr = 0.1}), s2(m2->parameters(), {.lr = 0.1});
    SAMOptions sharded;
    sharded.rho = 0.05;
    sharded.perturbation.micro_batch = batch == 1 ? 1 : batch;
    SAM msam(*m1, s1, cross_entropy_loss(), sharded);
    SAM sam(*m2, s2, cross_entropy_loss(), {.rho = 0.05});
    for (int step = 0; step < 3; ++step) {
      msam.step(x, y);
      sam.step(x, y);
    }
    auto a = m1->weight.to_vector<double>(), b = m2->weight.to_vector<double>();
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-12));
  }
}

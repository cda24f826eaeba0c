// SAM variants of schedule and placement: rho following the learning rate, SAM for a window of
// training, and weight decay inside the loss.
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

// L(w) = ½ Σ aᵢ wᵢ² with a = (2, 3).
LossFn quadratic() {
  return [](nn::Module& m, const Tensor&, const Tensor&) {
    Tensor w = dynamic_cast<Vec&>(m).w;
    return LossOutput{0.5 * sum(f64({2, 3}, {2}) * w * w), {}};
  };
}

}  // namespace

TEST_CASE("optim: rho scaled with the learning rate follows the optimizer's schedule") {
  auto m = std::make_shared<Vec>(f64({1, -0.5}, {2}));
  SGD sgd(m->parameters(), {.lr = 0.1});
  PerturbedStep step(*m, sgd, quadratic(), scale_with_lr(sam_rule(0.2), sgd));
  StepResult first = step.step(zeros({1}), Tensor());
  CHECK(first.diagnostics->perturbation_norm == doctest::Approx(0.2).epsilon(1e-12));
  sgd.set_lr(0, 0.025);  // a schedule dropped the lr to a quarter
  StepResult second = step.step(zeros({1}), Tensor());
  CHECK(second.diagnostics->perturbation_norm == doctest::Approx(0.05).epsilon(1e-12));
}

TEST_CASE("optim: SAM for a window of training switches the step and its pass counts") {
  auto m = std::make_shared<Vec>(f64({1, -0.5}, {2}));
  SGD sgd(m->parameters(), {.lr = 0.1});
  SwitchedStep step(std::make_unique<PlainStep>(*m, sgd, quadratic()),
                    std::make_unique<SAM>(*m, sgd, quadratic(), SAMOptions{.rho = 0.1}), 2, 4);
  std::vector<int64_t> forwards;
  for (int i = 0; i < 6; ++i) forwards.push_back(step.step(zeros({1}), Tensor()).passes.forward);
  CHECK(forwards == std::vector<int64_t>{1, 1, 2, 2, 1, 1});
  CHECK(step.total_passes().forward == 8);
  CHECK(step.total_passes().backward == 8);
  testing::check_error(
      [&] {
        SwitchedStep bad(std::make_unique<PlainStep>(*m, sgd, quadratic()),
                         std::make_unique<PlainStep>(*m, sgd, quadratic()), 3, 2);
      },
      {"start 3, until 2"});
}

TEST_CASE("optim: weight decay in the loss gives the optimizer's decayed step, and shapes SAM's perturbation") {
  // Plain steps: SGD on L + ½λ‖w‖² equals SGD with weight_decay λ on L.
  auto a = std::make_shared<Vec>(f64({1, -0.5}, {2})), b = std::make_shared<Vec>(f64({1, -0.5}, {2}));
  SGD in_loss(a->parameters(), {.lr = 0.1}), in_optimizer(b->parameters(), {.lr = 0.1, .weight_decay = 0.3});
  PlainStep s1(*a, in_loss, with_weight_decay(quadratic(), 0.3)), s2(*b, in_optimizer, quadratic());
  for (int i = 0; i < 3; ++i) {
    s1.step(zeros({1}), Tensor());
    s2.step(zeros({1}), Tensor());
  }
  auto wa = values(a->w), wb = values(b->w);
  for (size_t i = 0; i < wa.size(); ++i) CHECK(wa[i] == doctest::Approx(wb[i]).epsilon(1e-14));
  // SAM: the perturbation follows g + λw, by hand: w = (1, −0.5), g = (2, −1.5), λ = 0.3 → (2.3, −1.65).
  auto c = std::make_shared<Vec>(f64({1, -0.5}, {2}));
  SGD sgd(c->parameters(), {.lr = 0.1});
  SAM sam(*c, sgd, with_weight_decay(quadratic(), 0.3), {.rho = 0.1});
  sam.step(zeros({1}), Tensor());
  const double n = std::hypot(2.3, 1.65), e0 = 0.1 * 2.3 / n, e1 = -0.1 * 1.65 / n;
  // Second gradient at w + ε of L + ½λ‖w‖²: (a + λ)(w + ε).
  auto w = values(c->w);
  CHECK(w[0] == doctest::Approx(1 - 0.1 * (2.3 * (1 + e0))).epsilon(1e-12));
  CHECK(w[1] == doctest::Approx(-0.5 - 0.1 * (3.3 * (-0.5 + e1))).epsilon(1e-12));
}

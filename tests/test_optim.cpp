// Optimizer mechanics (groups, skipping, errors, state_dict resume), schedules in closed form,
// clipping by hand, SWA / EMA averages and update_bn's recomputed statistics.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
using namespace plateau::optim;
using testing::f64;
using testing::values;
using testing::Vec;

namespace {

// ½ Σ aᵢ wᵢ²: a quadratic whose gradient is a ∘ w.
Tensor quadratic(const Tensor& w, const Tensor& a) { return 0.5 * sum(a * w * w); }

}  // namespace

TEST_CASE("optim: SGD step by hand, skipping parameters without a gradient") {
  Tensor w = f64({1, -2}, {2}).requires_grad_(true), v = f64({3}, {1}).requires_grad_(true);
  SGD sgd({w, v}, {.lr = 0.1, .momentum = 0.5});
  quadratic(w, f64({1, 1}, {2})).backward();  // v gets no gradient
  sgd.step();
  CHECK(values(w) == std::vector<double>{1 - 0.1 * 1, -2 - 0.1 * -2});  // first step: buffer = g
  CHECK(values(v) == std::vector<double>{3});
  CHECK(sgd.state(1).buffers.empty());
  // Second step with explicit gradients: b = 0.5·b + g.
  sgd.step({f64({1, 1}, {2}), Tensor()});
  CHECK(values(w)[0] == doctest::Approx(0.9 - 0.1 * (0.5 * 1 + 1)).epsilon(1e-15));
  sgd.zero_grad();
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("optim: optimizer errors name what is wrong") {
  Tensor w = f64({1, 2}, {2}).requires_grad_(true);
  SGD sgd({w}, {.lr = 0.1});
  testing::check_error([&] { sgd.step({f64({1}, {1}), f64({1}, {1})}); }, {"SGD.step", "2 gradients for 1 parameters"});
  testing::check_error([&] { sgd.step({f64({1, 2, 3}, {3})}); }, {"gradient 0 is [3] f64", "[2] f64"});
  testing::check_error([&] { SGD bad({w, w}, {}); }, {"appears twice"});
  testing::check_error([&] { SGD bad({w}, {.lr = 0.1, .nesterov = true}); }, {"nesterov needs momentum > 0"});
  testing::check_error([&] { Adam bad({w}, {.beta1 = 1.0}); }, {"Adam", "beta1 must be in [0, 1)"});
  testing::check_error([&] { (void)sgd.lr(3); }, {"group 3 out of range"});
  Adam adam({w}, {});
  testing::check_error([&] { adam.load_state_dict(sgd.state_dict()); }, {"Adam", "state is of a SGD optimizer"});
}

TEST_CASE("optim: state_dict through safetensors resumes bit for bit") {
  for (int which = 0; which < 2; ++which) {
    INFO((which == 0 ? "SGD" : "AdamW"));
    Generator gen(5);
    Tensor a = uniform({6}, 0.5, 2.0, DType::f32, gen);
    Tensor w0 = normal({6}, 0, 1, DType::f32, gen);
    auto make = [&](const Tensor& w) -> std::unique_ptr<Optimizer> {
      if (which == 0)
        return std::make_unique<SGD>(TensorList{w}, SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
      return std::make_unique<AdamW>(TensorList{w}, AdamWOptions{.lr = 0.05, .amsgrad = true});
    };
    Tensor w1 = w0.clone().requires_grad_(true);
    auto opt1 = make(w1);
    LRScheduler sched1(*opt1, cosine_lr(6));
    auto train = [&](Optimizer& opt, LRScheduler& sched, Tensor& w, int steps) {
      for (int s = 0; s < steps; ++s) {
        opt.step(grad({quadratic(w, a)}, {w}));
        sched.step();
      }
    };
    train(*opt1, sched1, w1, 3);
    const std::string path = (std::filesystem::temp_directory_path() / "plateau_optim_state_test.safetensors").string();
    OptimizerState saved = opt1->state_dict();
    io::save_safetensors(path, saved.tensors, saved.metadata);
    Tensor w2 = w1.detach().clone().requires_grad_(true);
    auto opt2 = make(w2);
    LRScheduler sched2(*opt2, cosine_lr(6));
    OptimizerState loaded;
    loaded.tensors = io::load_safetensors(path, &loaded.metadata);
    std::remove(path.c_str());
    opt2->load_state_dict(loaded);
    sched2.set_last_step(sched1.last_step());
    CHECK(opt2->lr(0) == opt1->lr(0));
    CHECK(opt2->state(0).step == 3);
    train(*opt1, sched1, w1, 3);
    train(*opt2, sched2, w2, 3);
    CHECK(values(w1) == values(w2));
  }
}

TEST_CASE("optim: schedules in closed form") {
  const double pi = std::numbers::pi;
  CHECK(step_lr(3, 0.5)->lr(7, 0.4) == doctest::Approx(0.4 * 0.25));
  CHECK(multistep_lr({2, 5}, 0.1)->lr(1, 1.0) == 1.0);
  CHECK(multistep_lr({2, 5}, 0.1)->lr(2, 1.0) == doctest::Approx(0.1));
  CHECK(multistep_lr({2, 5}, 0.1)->lr(5, 1.0) == doctest::Approx(0.01));
  auto cosine = cosine_lr(10, 0.01);
  CHECK(cosine->lr(0, 0.1) == doctest::Approx(0.1));
  CHECK(cosine->lr(10, 0.1) == doctest::Approx(0.01));
  CHECK(cosine->lr(3, 0.1) == doctest::Approx(0.01 + 0.09 * (1 + std::cos(0.3 * pi)) / 2));
  auto warm = linear_warmup(4, 0.2, step_lr(2, 0.5));
  CHECK(warm->lr(0, 1.0) == doctest::Approx(0.2));
  CHECK(warm->lr(2, 1.0) == doctest::Approx(0.6));
  CHECK(warm->lr(4, 1.0) == 1.0);  // the next schedule's step 0
  CHECK(warm->lr(7, 1.0) == doctest::Approx(0.5));
  // One cycle over 100 steps: 0.04 → 1 at step 29, then to 0.04/1e4 at step 99; momentum the other way.
  auto cycle = one_cycle_lr({.total_steps = 100});
  CHECK(cycle->lr(0, 1.0) == doctest::Approx(0.04));
  CHECK(cycle->lr(29, 1.0) == doctest::Approx(1.0));
  CHECK(cycle->lr(99, 1.0) == doctest::Approx(4e-6));
  CHECK(*cycle->momentum(0) == doctest::Approx(0.95));
  CHECK(*cycle->momentum(29) == doctest::Approx(0.85));
  CHECK(*cycle->momentum(99) == doctest::Approx(0.95));
  CHECK(cycle->lr(14, 1.0) == doctest::Approx(1.0 + (0.04 - 1.0) / 2 * (std::cos(pi * 14 / 29.0) + 1)));
  testing::check_error([&] { cycle->lr(101, 1.0); }, {"past its total_steps 100"});
  CHECK_FALSE(one_cycle_lr({.total_steps = 10, .cycle_momentum = false})->momentum(3).has_value());

  // The scheduler sets every group from its own base lr, and momentum where cycled.
  Tensor w = f64({1}, {1}).requires_grad_(true), b = f64({1}, {1}).requires_grad_(true);
  SGD sgd(std::vector<ParamGroup<SGDOptions>>{{{w}, {.lr = 1.0}}, {{b}, {.lr = 0.5}}});
  LRScheduler s(sgd, one_cycle_lr({.total_steps = 10}));
  CHECK(sgd.lr(1) == doctest::Approx(0.02));
  CHECK(*sgd.momentum(0) == doctest::Approx(0.95));  // like PyTorch, momentum is switched on
  s.step();
  CHECK(s.last_step() == 1);
  CHECK(sgd.lr(0) == doctest::Approx(one_cycle_lr({.total_steps = 10})->lr(1, 1.0)));
  Adam adam({w}, {});
  CHECK(adam.momentum(0) == 0.9);
  LRScheduler t(adam, one_cycle_lr({.total_steps = 10}));
  CHECK(adam.options(0).beta1 == doctest::Approx(0.95));
}

TEST_CASE("optim: clip_grad_norm_ by hand") {
  Tensor g1 = f64({3, 0}, {2}), g2 = f64({4}, {1});
  TensorList grads{g1, g2};
  CHECK(clip_grad_norm_(grads, 1.0) == doctest::Approx(5.0));
  CHECK(values(g1)[0] == doctest::Approx(3.0 / (5 + 1e-6)).epsilon(1e-14));
  CHECK(values(g2)[0] == doctest::Approx(4.0 / (5 + 1e-6)).epsilon(1e-14));
  // Under max_norm nothing changes; infinity norm is the largest magnitude.
  Tensor h = f64({-3, 1}, {2});
  CHECK(clip_grad_norm_({h}, 10.0, std::numeric_limits<double>::infinity()) == 3.0);
  CHECK(values(h) == std::vector<double>{-3, 1});
  Tensor w = f64({1, 2}, {2}).requires_grad_(true);
  quadratic(w, f64({3, 2}, {2})).backward();  // grad (3, 4)
  CHECK(clip_grad_norm_of_parameters_({w}, 2.5) == doctest::Approx(5.0));
  CHECK(values(w.grad())[1] == doctest::Approx(4.0 * 2.5 / (5 + 1e-6)));
  CHECK(global_norm({f64({1, 2, 2}, {3})}) == doctest::Approx(3.0));
}

TEST_CASE("optim: SWA averages equally from its start step, EMA decays") {
  auto m = std::make_shared<Vec>(f64({0, 0}, {2}));
  WeightAverage swa = WeightAverage::swa(*m, 1);
  WeightAverage ema = WeightAverage::ema(*m, 0.5);
  auto set = [&](double v0, double v1) {
    NoGradGuard no_grad;
    copy_(m->w, f64({v0, v1}, {2}));
  };
  testing::check_error([&] { swa.copy_to(); }, {"nothing averaged yet"});
  for (double v : {1.0, 2.0, 3.0, 7.0}) {
    set(v, -v);
    swa.update();
    ema.update();
  }
  CHECK(swa.num_updates() == 4);
  CHECK(swa.num_averaged() == 3);  // 2, 3 and 7
  CHECK(values(swa.averaged()[0]) == std::vector<double>{4, -4});
  // EMA from 1: 0.5·1 + 0.5·2 = 1.5, then 2.25, then 4.625.
  CHECK(values(ema.averaged()[0]) == std::vector<double>{4.625, -4.625});
  CHECK(swa.names()[0] == "w");
  swa.swap();
  CHECK(values(m->w) == std::vector<double>{4, -4});
  swa.swap();
  CHECK(values(m->w) == std::vector<double>{7, -7});
  // A checkpointed average continues where it left off.
  WeightAverage resumed = WeightAverage::swa(*m, 1);
  resumed.load_state_dict(swa.state_dict());
  set(9, -9);
  swa.update();
  resumed.update();
  CHECK(values(resumed.averaged()[0]) == std::vector<double>{5.25, -5.25});
  CHECK(values(resumed.averaged()[0]) == values(swa.averaged()[0]));
  ema.copy_to();
  CHECK(values(m->w) == std::vector<double>{4.625, -4.625});
}

TEST_CASE("optim: update_bn recomputes running statistics as cumulative averages") {
  manual_seed(3);
  auto model =
      std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::BatchNorm1d>(4));
  auto bn = model->at<nn::BatchNorm1d>(1);
  Generator gen(4);
  TensorList batches{normal({5, 3}, 0, 1, DType::f32, gen), normal({7, 3}, 1, 2, DType::f32, gen),
                     normal({6, 3}, -1, 0.5, DType::f32, gen)};
  // Stale statistics and eval mode before: both are replaced or restored.
  {
    NoGradGuard no_grad;
    fill_(bn->running_mean, 5.0);
  }
  model->eval();
  update_bn(*model, batches);
  CHECK_FALSE(model->is_training());
  CHECK_FALSE(bn->is_training());
  REQUIRE(bn->momentum.has_value());
  CHECK(*bn->momentum == 0.1);
  CHECK(bn->num_batches_tracked.item() == 3);
  // The average over batches of each batch's mean and unbiased variance of the linear outputs.
  auto fc = model->at<nn::Linear>(0);
  NoGradGuard no_grad;
  Tensor want_mean = zeros({4}, DType::f64), want_var = zeros({4}, DType::f64);
  for (const auto& x : batches) {
    Tensor h = to_dtype((*fc)(x), DType::f64);
    want_mean = want_mean + mean(h, {0}) / 3.0;
    want_var = want_var + var(h, {0}) / 3.0;
  }
  auto got_mean = values(bn->running_mean), got_var = values(bn->running_var);
  for (int c = 0; c < 4; ++c) {
    CHECK(got_mean[c] == doctest::Approx(values(want_mean)[c]).epsilon(1e-5));
    CHECK(got_var[c] == doctest::Approx(values(want_var)[c]).epsilon(1e-5));
  }
}

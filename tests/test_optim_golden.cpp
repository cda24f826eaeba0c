// Optimizers and schedules against PyTorch 1.13: 10 steps of a tiny model, parameters compared at
// every step (tools/make_optim_golden.py writes the fixtures), and clip_grad_norm_.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "plateau.h"

using namespace plateau;
using namespace plateau::optim;

namespace {

const char* const kNames[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

io::TensorMap fixture(const std::string& name) {
  return io::load_safetensors(std::string(PLATEAU_SOURCE_ROOT) + "/tests/golden/" + name + ".safetensors");
}

// Largest |got − want| relative to the largest |want| of the tensor.
double relative_error(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

// Row i of dim 0.
Tensor row(const Tensor& x, int64_t i) { return squeeze(slice(x, 0, i, i + 1), 0); }

struct Case {
  std::function<std::unique_ptr<Optimizer>(const TensorList& params)> optimizer;
  std::function<ScheduleRef()> schedule;
  double clip = 0;            // clip_grad_norm_ max_norm, 0 for none
  bool use_backward = false;  // .grad() and step() instead of grad() and step(grads)
};

// Trains the fixture's model as the script did and checks every step's lr, momentum and parameters.
void check_training(const std::string& name, const Case& c) {
  INFO("fixture optim_" << name);
  io::TensorMap g = fixture("optim_" + name);
  TensorList params;
  for (const char* n : kNames) params.push_back(g.at(std::string("param.0.") + n).clone().requires_grad_(true));
  std::unique_ptr<Optimizer> opt = c.optimizer(params);
  LRScheduler scheduler(*opt, c.schedule());
  const Tensor x = g.at("x"), y = g.at("y");
  double worst = 0;
  for (int64_t t = 0; t < 10; ++t) {
    INFO("step " << t);
    for (size_t group = 0; group < opt->num_groups(); ++group) {
      const double want = g.at("lr." + std::to_string(group)).to_vector<double>()[t];
      CHECK(opt->lr(group) == doctest::Approx(want).epsilon(1e-12));
    }
    if (g.count("momentum"))
      CHECK(*opt->momentum(0) == doctest::Approx(g.at("momentum").to_vector<double>()[t]).epsilon(1e-12));
    Tensor xt = row(x, t), yt = row(y, t);
    Tensor loss = cross_entropy(linear(tanh(linear(xt, params[0], params[1])), params[2], params[3]), yt);
    CHECK(loss.item() == doctest::Approx(g.at("loss").to_vector<double>()[t]).epsilon(1e-5));
    // The optimizer's parameter order (groups may regroup them).
    TensorList order = opt->parameters();
    if (c.use_backward) {
      opt->zero_grad();
      loss.backward();
      if (c.clip > 0) clip_grad_norm_of_parameters_(params, c.clip);
      opt->step();
    } else {
      TensorList grads = grad({loss}, order);
      if (c.clip > 0) clip_grad_norm_(grads, c.clip);
      opt->step(grads);
    }
    scheduler.step();
    for (size_t i = 0; i < 4; ++i) {
      double err = relative_error(params[i], g.at("param." + std::to_string(t + 1) + "." + kNames[i]));
      worst = std::max(worst, err);
      INFO(kNames[i]);
      CHECK(err <= 1e-6);
    }
  }
  MESSAGE("optim_" << name << ": largest relative error over 10 steps " << worst);
}

}  // namespace

TEST_CASE("optim: SGD with a step schedule matches PyTorch") {
  check_training("sgd_step", {[](const TensorList& p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1}); },
                              [] { return step_lr(3, 0.5); }, 0, true});
}

TEST_CASE("optim: SGD with momentum, dampening and a cosine schedule matches PyTorch") {
  check_training("sgd_momentum_cosine", {[](const TensorList& p) {
                                           return std::make_unique<SGD>(
                                               p, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
                                         },
                                         [] { return cosine_lr(10, 0.01); }});
}

TEST_CASE("optim: SGD with Nesterov momentum, per-group weight decay and multistep matches PyTorch") {
  check_training("sgd_nesterov_multistep",
                 {[](const TensorList& p) {
                    SGDOptions weights{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true};
                    SGDOptions biases{.lr = 0.05, .momentum = 0.9, .nesterov = true};
                    return std::make_unique<SGD>(
                        std::vector<ParamGroup<SGDOptions>>{{{p[0], p[2]}, weights}, {{p[1], p[3]}, biases}});
                  },
                  [] {
                    return multistep_lr({3, 7}, 0.3);
                  }});
}

TEST_CASE("optim: SGD with one-cycle (momentum cycled) matches PyTorch") {
  check_training("sgd_onecycle",
                 {[](const TensorList& p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.5, .momentum = 0.9}); },
                  [] { return one_cycle_lr({.total_steps = 10}); }, 0, true});
}

TEST_CASE("optim: Adam with one-cycle (beta1 cycled) matches PyTorch") {
  check_training("adam_onecycle",
                 {[](const TensorList& p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01}); },
                  [] { return one_cycle_lr({.total_steps = 10}); }});
}

TEST_CASE("optim: Adam with L2 weight decay, AMSGrad and warmup into cosine matches PyTorch") {
  check_training("adam_wd_amsgrad_warmup", {[](const TensorList& p) {
                                              return std::make_unique<Adam>(
                                                  p, AdamOptions{.lr = 0.01, .weight_decay = 0.1, .amsgrad = true});
                                            },
                                            [] { return linear_warmup(3, 0.1, cosine_lr(7)); }});
}

TEST_CASE("optim: AdamW with gradient clipping and a step schedule matches PyTorch") {
  check_training("adamw_step_clip", {[](const TensorList& p) {
                                       return std::make_unique<AdamW>(
                                           p,
                                           AdamWOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1});
                                     },
                                     [] { return step_lr(4, 0.5); }, 0.5});
  // The same run through .grad() and step().
  check_training("adamw_step_clip", {[](const TensorList& p) {
                                       return std::make_unique<AdamW>(
                                           p,
                                           AdamWOptions{.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1});
                                     },
                                     [] { return step_lr(4, 0.5); }, 0.5, true});
}

TEST_CASE("optim: clip_grad_norm_ matches PyTorch for norms 2, 1 and infinity") {
  io::TensorMap g = fixture("optim_clip");
  struct Clip {
    const char* name;
    double max_norm, norm_type;
  };
  for (Clip c : {Clip{"2", 1.0, 2.0}, Clip{"2big", 100.0, 2.0},
                 Clip{"inf", 0.5, std::numeric_limits<double>::infinity()}, Clip{"1", 2.0, 1.0}}) {
    INFO("case " << c.name);
    TensorList grads;
    for (int i = 0; i < 3; ++i) grads.push_back(g.at("grad." + std::to_string(i)).clone());
    const double total = clip_grad_norm_(grads, c.max_norm, c.norm_type);
    CHECK(total == doctest::Approx(g.at(std::string("total.") + c.name).item()).epsilon(1e-6));
    for (int i = 0; i < 3; ++i)
      CHECK(relative_error(grads[i], g.at(std::string("clipped.") + c.name + "." + std::to_string(i))) <= 1e-6);
  }
}

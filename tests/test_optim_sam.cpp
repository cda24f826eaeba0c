// The perturb-evaluate-restore mechanism and SAM: bit-exact reduction to the base optimizer at
// ρ = 0, one step on a quadratic by hand, ε's norm, the parameter filter, exact restore, pass
// counts, the batch-norm policies and micro-batches.
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

// Linear → BatchNorm → ReLU → Dropout → Linear.
std::shared_ptr<nn::Sequential> bn_dropout_net() {
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 8), std::make_shared<nn::BatchNorm1d>(8),
                                          std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.3),
                                          std::make_shared<nn::Linear>(8, 3));
}

struct Batch {
  Tensor x, y;
};
std::vector<Batch> batches(int n, int64_t size = 10) {
  Generator gen(2);
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) out.push_back({normal({size, 6}, 0, 1, DType::f32, gen), randint(0, 3, {size}, gen)});
  return out;
}

// Parameters and buffers (running statistics, batch counts) compared with ==.
void check_identical(const nn::Module& a, const nn::Module& b) {
  io::TensorMap sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (const auto& entry : sa) {
    const std::string& name = entry.first;  // a named variable: INFO cannot capture a binding on clang
    const Tensor& t = entry.second;
    INFO(name);
    CHECK(values(t) == values(sb.at(name)));
  }
}

bool any_different(const nn::Module& a, const nn::Module& b) {
  io::TensorMap sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [name, t] : sa)
    if (values(t) != values(sb.at(name))) return true;
  return false;
}

}  // namespace

TEST_CASE("optim: SAM with rho 0, BN policy first and generator replay is the base optimizer bit for bit") {
  manual_seed(1);
  auto base_model = bn_dropout_net(), sam_model = bn_dropout_net(), no_replay_model = bn_dropout_net();
  sam_model->load_state_dict(base_model->state_dict());
  no_replay_model->load_state_dict(base_model->state_dict());
  const SGDOptions options{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
  auto data = batches(5);

  SGD base(base_model->parameters(), options);
  manual_seed(9);
  for (const auto& b : data) {
    Tensor loss = cross_entropy((*base_model)(b.x), b.y);
    base.step(grad({loss}, base.parameters()));
  }
  const uint64_t base_offset = default_generator().offset();

  SGD sgd(sam_model->parameters(), options);
  SAM sam(*sam_model, sgd, cross_entropy_loss(), {.rho = 0.0});
  manual_seed(9);
  for (const auto& b : data) {
    StepResult r = sam.step(b.x, b.y);
    REQUIRE(r.diagnostics.has_value());
    CHECK(r.diagnostics->sharpness == 0.0);
    CHECK(r.diagnostics->perturbation_norm == 0.0);
    CHECK(r.diagnostics->grad_cosine == doctest::Approx(1.0).epsilon(1e-6));
  }
  CHECK(default_generator().offset() == base_offset);
  check_identical(*base_model, *sam_model);
  CHECK(sam_model->at<nn::BatchNorm1d>(1)->num_batches_tracked.item() == 5);

  // Without the replay the second pass draws other dropout masks: the trajectories part.
  SGD sgd2(no_replay_model->parameters(), options);
  SAM no_replay(*no_replay_model, sgd2, cross_entropy_loss(),
                {.rho = 0.0, .perturbation = {.replay_generator = false}});
  manual_seed(9);
  for (const auto& b : data) no_replay.step(b.x, b.y);
  CHECK(any_different(*base_model, *no_replay_model));
}

TEST_CASE("optim: one SAM step on a quadratic by hand") {
  // L(w) = ½ Σ aᵢ wᵢ², g = a ∘ w; ε = ρ g/‖g‖; the SGD step uses a ∘ (w + ε).
  const Tensor a = f64({2, 3}, {2});
  auto model = std::make_shared<Vec>(f64({1, -0.5}, {2}));
  LossFn loss = [&a](nn::Module& m, const Tensor&, const Tensor&) {
    Tensor w = dynamic_cast<Vec&>(m).w;
    return LossOutput{0.5 * sum(a * w * w), {}};
  };
  SGD sgd(model->parameters(), {.lr = 0.1});
  SAM sam(*model, sgd, loss, {.rho = 0.1});
  StepResult r = sam.step(zeros({1}), Tensor());
  // g = (2, −1.5), ‖g‖ = 2.5, ε = (0.08, −0.06), w + ε = (1.08, −0.56), g_SAM = (2.16, −1.68).
  auto w = values(model->w);
  CHECK(w[0] == doctest::Approx(1 - 0.1 * 2.16).epsilon(1e-12));
  CHECK(w[1] == doctest::Approx(-0.5 + 0.1 * 1.68).epsilon(1e-12));
  CHECK(r.loss == doctest::Approx(1.375).epsilon(1e-14));
  REQUIRE(r.diagnostics.has_value());
  const auto& d = *r.diagnostics;
  CHECK(d.grad_norm == doctest::Approx(2.5).epsilon(1e-14));
  CHECK(d.perturbation_norm == doctest::Approx(0.1).epsilon(1e-11));
  CHECK(d.perturbed_loss == doctest::Approx(0.5 * (2 * 1.08 * 1.08 + 3 * 0.56 * 0.56)).epsilon(1e-11));
  CHECK(d.sharpness == doctest::Approx(0.5 * (2 * 1.08 * 1.08 + 3 * 0.56 * 0.56) - 1.375).epsilon(1e-10));
  CHECK(d.grad_cosine ==
        doctest::Approx((2 * 2.16 + 1.5 * 1.68) / (2.5 * std::sqrt(2.16 * 2.16 + 1.68 * 1.68))).epsilon(1e-11));
  CHECK(r.passes.forward == 2);
  CHECK(r.passes.backward == 2);
  CHECK(r.passes.hvp == 0);
}

TEST_CASE("optim: SAM's perturbation has norm rho over the chosen parameters") {
  manual_seed(4);
  auto model = bn_dropout_net();
  auto b = batches(1)[0];
  std::vector<nn::NamedParameter> params = model->named_parameters();
  TensorList tensors;
  for (auto& p : params) tensors.push_back(p.tensor);
  TensorList g = grad({cross_entropy((*model)(b.x), b.y)}, tensors);
  for (double rho : {0.05, 2.0}) {
    TensorList eps = sam_rule(rho)(params, g);
    CHECK(global_norm(eps) == doctest::Approx(rho).epsilon(1e-6));
    // Parallel to g.
    double dot = 0, gg = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      dot += sum(eps[i] * g[i]).item();
      gg += sum(g[i] * g[i]).item();
    }
    CHECK(dot == doctest::Approx(rho * std::sqrt(gg)).epsilon(1e-5));
  }
  SGD sgd(model->parameters(), {.lr = 0.1});
  SAM sam(*model, sgd, cross_entropy_loss(), {.rho = 0.05});
  CHECK(sam.step(b.x, b.y).diagnostics->perturbation_norm == doctest::Approx(0.05).epsilon(1e-6));
  testing::check_error([] { sam_rule(-1.0); }, {"rho >= 0"});
}

TEST_CASE("optim: the parameter filter leaves excluded parameters unperturbed") {
  manual_seed(5);
  auto model = bn_dropout_net();
  io::TensorMap before = model->state_dict();
  std::vector<io::TensorMap> seen;  // the parameters each pass saw
  LossFn recording = [&seen, ce = cross_entropy_loss()](nn::Module& m, const Tensor& x, const Tensor& y) {
    io::TensorMap snapshot;
    for (auto& p : m.named_parameters()) snapshot[p.name] = p.tensor.detach().clone();
    seen.push_back(snapshot);
    return ce(m, x, y);
  };
  SGD sgd(model->parameters(), {.lr = 0.0});
  SAM sam(*model, sgd, recording,
          {.rho = 0.5, .perturbation = {.filter = !roles({nn::ParamRole::bias, nn::ParamRole::norm})}});
  std::vector<std::string> chosen;
  for (auto& p : sam.perturbed_parameters()) chosen.push_back(p.name);
  CHECK(chosen == std::vector<std::string>{"0.weight", "4.weight"});
  auto b = batches(1)[0];
  sam.step(b.x, b.y);
  REQUIRE(seen.size() == 2);
  for (const auto& entry : seen[1]) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    INFO(name);
    const bool perturbed = name == "0.weight" || name == "4.weight";
    CHECK((values(t) != values(before.at(name))) == perturbed);
    CHECK(values(seen[0].at(name)) == values(before.at(name)));
  }
  // Path filters: a module's parameters, not a sibling's with a longer name.
  nn::NamedParameter p10{"layer10.weight", Tensor(), nn::ParamRole::weight},
      p1{"layer1.0.bias", Tensor(), nn::ParamRole::bias};
  CHECK(path_under("layer1")(p1));
  CHECK_FALSE(path_under("layer1")(p10));
  CHECK((path_under("layer1") || path_under("layer10"))(p10));
  CHECK_FALSE((path_under("layer1") && roles({nn::ParamRole::weight}))(p1));
  testing::check_error(
      [&] { SAM none(*model, sgd, cross_entropy_loss(), {.perturbation = {.filter = path_under("9")}}); },
      {"keeps none of the model's parameters"});
}

TEST_CASE("optim: restore puts the weights back exactly") {
  // (w + ε) − ε is not w in floating point; the saved copy is.
  Tensor w = tensor(std::vector<float>{1e-8f, 3.3f}, {2}).requires_grad_(true);
  const Tensor original = w.detach().clone(), eps = tensor(std::vector<float>{1.0f, 1e-3f}, {2});
  CHECK(values(sub(add(original, eps), eps)) != values(original));
  {
    WeightPerturbation perturbation({w}, {eps});
    CHECK(values(w) == values(add(original, eps)));
  }
  CHECK(values(w) == values(original));
  // A whole SAM step with a zero learning rate leaves the model as it was.
  manual_seed(6);
  auto model = bn_dropout_net();
  model->at<nn::BatchNorm1d>(1)->momentum = 0.0;  // running statistics stay too
  io::TensorMap before = model->state_dict();
  SGD sgd(model->parameters(), {.lr = 0.0});
  SAM sam(*model, sgd, cross_entropy_loss(), {.rho = 0.5});
  auto b = batches(1)[0];
  sam.step(b.x, b.y);
  for (const auto& entry : model->state_dict()) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    if (name.find("num_batches") != std::string::npos) continue;
    INFO(name);
    CHECK(values(t) == values(before.at(name)));
  }
}

TEST_CASE("optim: a SAM step costs two forward and two backward passes") {
  manual_seed(7);
  auto model = bn_dropout_net();
  int calls = 0;
  LossFn counting = [&calls, ce = cross_entropy_loss()](nn::Module& m, const Tensor& x, const Tensor& y) {
    ++calls;
    return ce(m, x, y);
  };
  SGD sgd(model->parameters(), {.lr = 0.1});
  SAM sam(*model, sgd, counting, {.rho = 0.05});
  auto data = batches(3);
  for (const auto& b : data) {
    StepResult r = sam.step(b.x, b.y);
    CHECK(r.passes.forward == 2);
    CHECK(r.passes.backward == 2);
    CHECK(r.output.shape() == Shape{10, 3});
  }
  CHECK(calls == 6);
  CHECK(sam.total_passes().forward == 6);
  CHECK(sam.total_passes().backward == 6);
  // Micro-batches of 4 of a batch of 10: three ε, six loss calls, still two passes over the batch.
  SAM micro(*model, sgd, counting, {.rho = 0.05, .perturbation = {.micro_batch = 4}});
  calls = 0;
  StepResult r = micro.step(data[0].x, data[0].y);
  CHECK(calls == 6);
  CHECK(r.passes.forward == 2);
  CHECK(r.output.shape() == Shape{10, 3});
  PlainStep plain(*model, sgd, counting);
  CHECK(plain.step(data[0].x, data[0].y).passes.forward == 1);
}

TEST_CASE("optim: each batch-norm policy's effect on the running statistics") {
  auto data = batches(1);
  const Tensor x = data[0].x, y = data[0].y;
  std::map<std::string, std::vector<double>> running_means;
  for (BNPolicy policy : {BNPolicy::first, BNPolicy::both, BNPolicy::none, BNPolicy::eval}) {
    INFO(bn_policy_name(policy));
    CHECK(bn_policy_from_name(bn_policy_name(policy)) == policy);
    manual_seed(8);
    auto model = std::make_shared<nn::Sequential>(
        std::make_shared<nn::Linear>(6, 5), std::make_shared<nn::BatchNorm1d>(5), std::make_shared<nn::Linear>(5, 3));
    auto bn = model->at<nn::BatchNorm1d>(1);
    {
      NoGradGuard no_grad;
      fill_(bn->running_mean, 0.5);
      fill_(bn->running_var, 2.0);
    }
    Tensor h, eval_output;
    {
      NoGradGuard no_grad;
      h = (*model->at<nn::Linear>(0))(x);
      bn->eval();
      eval_output = (*model)(x);
      bn->train();
    }
    SGD sgd(model->parameters(), {.lr = 0.1});
    SAM sam(*model, sgd, cross_entropy_loss(), {.rho = 0.05, .perturbation = {.bn_policy = policy}});
    StepResult r = sam.step(x, y);
    CHECK(bn->is_training());
    const auto mean_now = values(bn->running_mean), var_now = values(bn->running_var);
    running_means[bn_policy_name(policy)] = mean_now;
    const int64_t tracked = bn->num_batches_tracked.item<int64_t>();
    switch (policy) {
      case BNPolicy::first: {
        CHECK(tracked == 1);
        // One update, from the batch at w: 0.9·0.5 + 0.1·mean(h).
        auto batch_mean = values(mean(h, {0}));
        for (size_t c = 0; c < 5; ++c) CHECK(mean_now[c] == doctest::Approx(0.45 + 0.1 * batch_mean[c]).epsilon(1e-6));
        break;
      }
      case BNPolicy::both:
        CHECK(tracked == 2);
        CHECK(mean_now != running_means["first"]);
        break;
      case BNPolicy::none:
      case BNPolicy::eval:
        CHECK(tracked == 0);
        CHECK(mean_now == std::vector<double>(5, 0.5));
        CHECK(var_now == std::vector<double>(5, 2.0));
        break;
    }
    // Only eval normalises with the running statistics.
    CHECK((values(r.output) == values(eval_output)) == (policy == BNPolicy::eval));
  }
  testing::check_error([] { bn_policy_from_name("second"); }, {"unknown batch-norm policy 'second'", "first"});
}

TEST_CASE("optim: micro-batches average the second gradients of per-micro-batch perturbations") {
  manual_seed(10);
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 4), std::make_shared<nn::Tanh>(),
                                                std::make_shared<nn::Linear>(4, 3));
  auto b = batches(1, 8)[0];
  const double rho = 0.3, lr = 0.5;
  std::vector<nn::NamedParameter> params = model->named_parameters();
  TensorList tensors = model->parameters(), expected;
  {
    // By hand: two micro-batches of 4, each with its own ε; the update averages the second gradients.
    std::vector<TensorList> g2;
    for (int64_t start : {0, 4}) {
      Tensor x = slice(b.x, 0, start, start + 4), y = slice(b.y, 0, start, start + 4);
      TensorList g1 = grad({cross_entropy((*model)(x), y)}, tensors);
      WeightPerturbation perturbation(tensors, sam_rule(rho)(params, g1));
      g2.push_back(grad({cross_entropy((*model)(x), y)}, tensors));
    }
    NoGradGuard no_grad;
    for (size_t i = 0; i < tensors.size(); ++i) expected.push_back(tensors[i] - lr * (0.5 * g2[0][i] + 0.5 * g2[1][i]));
  }
  SGD sgd(tensors, {.lr = lr});
  SAM sam(*model, sgd, cross_entropy_loss(), {.rho = rho, .perturbation = {.micro_batch = 4}});
  sam.step(b.x, b.y);
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto got = values(tensors[i]), want = values(expected[i]);
    for (size_t j = 0; j < got.size(); ++j) CHECK(got[j] == doctest::Approx(want[j]).epsilon(1e-5));
  }
}

TEST_CASE("optim: rho 0 is the base optimizer bit for bit for ASAM (both scalings), Fisher SAM and multi-step SAM") {
  // Batch norm (policy first) and dropout (replayed), as the SAM case above; each method with a zero
  // radius must leave exactly what plain SGD leaves, running statistics included.
  manual_seed(1);
  auto base_model = bn_dropout_net();
  const SGDOptions options{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
  auto data = batches(4);
  SGD base(base_model->parameters(), options);
  io::TensorMap initial;  // copies: state_dict() shares the live tensors
  for (const auto& [key, t] : base_model->state_dict()) initial[key] = t.clone();
  manual_seed(9);
  for (const auto& b : data) {
    Tensor loss = cross_entropy((*base_model)(b.x), b.y);
    base.step(grad({loss}, base.parameters()));
  }
  const uint64_t base_offset = default_generator().offset();
  using Make = std::function<std::unique_ptr<TrainStep>(nn::Module&, Optimizer&)>;
  const std::vector<std::pair<std::string, Make>> methods = {
      {"asam official",
       [](nn::Module& m, Optimizer& o) {
         return std::make_unique<ASAM>(m, o, cross_entropy_loss(), ASAMOptions{.rho = 0});
       }},
      {"asam every_parameter",
       [](nn::Module& m, Optimizer& o) {
         return std::make_unique<ASAM>(m, o, cross_entropy_loss(),
                                       ASAMOptions{.rho = 0, .scaling = ASAMScaling::every_parameter});
       }},
      {"fisher sam",
       [](nn::Module& m, Optimizer& o) {
         return std::make_unique<FisherSAM>(m, o, cross_entropy_loss(), FisherSAMOptions{.gamma = 0});
       }},
      {"multi-step sam",
       [](nn::Module& m, Optimizer& o) {
         return std::make_unique<SAM>(m, o, cross_entropy_loss(), SAMOptions{.rho = 0, .steps = 3});
       }},
  };
  for (const auto& [name, make] : methods) {
    INFO(name);
    auto model = bn_dropout_net();
    model->load_state_dict(initial);
    SGD sgd(model->parameters(), options);
    auto step = make(*model, sgd);
    manual_seed(9);
    for (const auto& b : data) step->step(b.x, b.y);
    CHECK(default_generator().offset() == base_offset);
    check_identical(*base_model, *model);
  }
}

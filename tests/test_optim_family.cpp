// The rest of the sharpness-aware family on the one perturb-evaluate-restore mechanism: multi-step
// SAM, Fisher SAM (both Fisher diagonals), mSAM and 1-SAM, HERO and ΔSAM, each one step by hand in
// f64; HERO's penalty gradient against finite differences and the toolkit's hvp; pass counts;
// gradient clipping.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
using namespace plateau::optim;
using testing::f64;
using testing::values;

namespace {

using Vector = std::vector<double>;

double dot(const Vector& a, const Vector& b) { return std::inner_product(a.begin(), a.end(), b.begin(), 0.0); }
Vector axpy(const Vector& x, double a, const Vector& y) {  // x + a·y
  Vector r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = x[i] + a * y[i];
  return r;
}

void check_close(const Vector& got, const Vector& want, double rel = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(rel));
}

// One parameter "weight" w ∈ R³ (role weight) and per-example losses ℓ_i = ½ Σ_j a_j (w_j − x_ij)²:
// ∇ℓ_i = a ⊙ (w − x_i), Hessian diag(a), so every step below has a closed form.
const Vector kA = {2, 3, 0.5};

class PerExampleQuadratic : public nn::Module {
 public:
  PerExampleQuadratic() : Module("PerExampleQuadratic") { register_parameter("weight", weight, nn::ParamRole::weight); }
  Tensor weight = f64({1, -0.5, 2}, {3});
};

LossFn quadratic_per_example() {
  return [](nn::Module& m, const Tensor& x, const Tensor&) {
    Tensor d = sub(dynamic_cast<PerExampleQuadratic&>(m).weight, x);  // [B, 3]
    return LossOutput{sum(mul(mul(d, d), f64(kA, {3})), {1}) * 0.5, {}};
  };
}
LossFn quadratic_mean() {
  LossFn per_example = quadratic_per_example();
  return [per_example](nn::Module& m, const Tensor& x, const Tensor& y) {
    return LossOutput{mean(per_example(m, x, y).loss), {}};
  };
}

const std::vector<Vector> kX = {{0.5, 0.2, -1}, {-0.3, 0.4, 1.5}, {1.2, -0.7, 0.1}, {0, 0.3, 0.6}};
Tensor examples(size_t count = 4) {
  Vector flat;
  for (size_t i = 0; i < count; ++i) flat.insert(flat.end(), kX[i].begin(), kX[i].end());
  return f64(flat, {static_cast<int64_t>(count), 3});
}

// ∇ of the mean loss over examples [first, last) at w.
Vector grad_at(const Vector& w, size_t first, size_t last) {
  Vector g(3, 0.0);
  for (size_t i = first; i < last; ++i)
    for (size_t j = 0; j < 3; ++j) g[j] += kA[j] * (w[j] - kX[i][j]) / static_cast<double>(last - first);
  return g;
}

Vector normalized(const Vector& g, double length) {
  const double n = std::sqrt(dot(g, g));
  Vector r(g.size());
  for (size_t i = 0; i < g.size(); ++i) r[i] = length * g[i] / (n + 1e-12);
  return r;
}

const Vector kW0 = {1, -0.5, 2};

CrossEntropyOptions none_reduction() {
  CrossEntropyOptions o;
  o.reduction = Reduction::none;
  return o;
}

}  // namespace

TEST_CASE("optim: multi-step SAM, two projected ascent steps by hand") {
  // ε₁ = αĝ(w), ε₂ = Π_ρ(ε₁ + αĝ(w + ε₁)), α = mult·ρ; SGD with the gradient at w + ε₂.
  const double rho = 0.2, mult = 0.75, lr = 0.1;
  auto model = std::make_shared<PerExampleQuadratic>();
  SGD sgd(model->parameters(), {.lr = lr});
  SAM sam(*model, sgd, quadratic_mean(), {.rho = rho, .steps = 2, .step_size_mult = mult});
  StepResult r = sam.step(examples(), Tensor());
  Vector e1 = normalized(grad_at(kW0, 0, 4), mult * rho);
  Vector e2 = axpy(e1, 1.0, normalized(grad_at(axpy(kW0, 1, e1), 0, 4), mult * rho));
  const double n2 = std::sqrt(dot(e2, e2));
  REQUIRE(n2 > rho);  // the projection acts
  for (double& e : e2) e *= rho / n2;
  check_close(values(model->weight), axpy(kW0, -lr, grad_at(axpy(kW0, 1, e2), 0, 4)));
  CHECK(r.diagnostics->perturbation_norm == doctest::Approx(rho).epsilon(1e-12));
  CHECK(r.passes.forward == 3);
  CHECK(r.passes.backward == 3);

  // With a random start: ε₀ on the ρ-sphere, then `steps` ascent steps, all inside the ball.
  auto m2 = std::make_shared<PerExampleQuadratic>();
  SGD sgd2(m2->parameters(), {.lr = lr});
  SAM random(*m2, sgd2, quadratic_mean(), {.rho = rho, .steps = 2, .step_size_mult = 0.1, .random_start = true});
  StepResult r2 = random.step(examples(), Tensor());
  CHECK(r2.diagnostics->perturbation_norm <= rho * (1 + 1e-12));
  CHECK(r2.passes.forward == 4);  // w, two ascent points, w + ε
  CHECK(r2.passes.backward == 3);
  testing::check_error([&] { SAM(*m2, sgd2, quadratic_mean(), {.rho = rho, .steps = 0}); }, {"steps >= 1"});
}

TEST_CASE("optim: mSAM and 1-SAM, one step by hand") {
  const double rho = 0.1, lr = 0.2;
  for (int64_t m : {2, 1}) {
    auto model = std::make_shared<PerExampleQuadratic>();
    SGD sgd(model->parameters(), {.lr = lr});
    SAMOptions o;
    o.rho = rho;
    o.perturbation.micro_batch = m;
    SAM sam(*model, sgd, quadratic_mean(), o);
    StepResult r = sam.step(examples(), Tensor());
    // Each shard j: ε_j = ρ ĝ_j, h_j = ∇L_j(w + ε_j); the update averages the h_j.
    Vector h(3, 0.0);
    const size_t shards = 4 / static_cast<size_t>(m);
    for (size_t j = 0; j < shards; ++j) {
      const size_t first = j * static_cast<size_t>(m), last = first + static_cast<size_t>(m);
      Vector eps = normalized(grad_at(kW0, first, last), rho);
      h = axpy(h, 1.0 / static_cast<double>(shards), grad_at(axpy(kW0, 1, eps), first, last));
    }
    check_close(values(model->weight), axpy(kW0, -lr, h));
    CHECK(r.passes.forward == 2);
    CHECK(r.passes.backward == 2);
  }
}

TEST_CASE("optim: Fisher SAM with the squared gradient and with the empirical Fisher, one step by hand") {
  const double gamma = 0.3, eta = 2.0, lr = 0.1;
  for (bool empirical : {false, true}) {
    INFO("empirical Fisher: " << empirical);
    auto model = std::make_shared<PerExampleQuadratic>();
    SGD sgd(model->parameters(), {.lr = lr});
    FisherSAMOptions o;
    o.gamma = gamma;
    o.eta = eta;
    o.empirical_fisher = empirical;
    o.per_example_loss = quadratic_per_example();
    FisherSAM fsam(*model, sgd, quadratic_mean(), o);
    StepResult r = fsam.step(examples(), Tensor());
    Vector g = grad_at(kW0, 0, 4), f(3), ratio(3);
    for (size_t j = 0; j < 3; ++j) {
      double fisher = g[j] * g[j];
      if (empirical) {
        fisher = 0;
        for (size_t i = 0; i < 4; ++i) fisher += std::pow(kA[j] * (kW0[j] - kX[i][j]), 2) / 4;
      }
      f[j] = 1 + eta * fisher;
      ratio[j] = g[j] / f[j];
    }
    Vector eps(3);
    for (size_t j = 0; j < 3; ++j) eps[j] = gamma * ratio[j] / (std::sqrt(dot(g, ratio)) + 1e-12);
    double ellipsoid = 0;
    for (size_t j = 0; j < 3; ++j) ellipsoid += eps[j] * f[j] * eps[j];
    CHECK(ellipsoid == doctest::Approx(gamma * gamma).epsilon(1e-10));
    check_close(values(model->weight), axpy(kW0, -lr, grad_at(axpy(kW0, 1, eps), 0, 4)));
    double loss = 0;
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 3; ++j) loss += 0.5 * kA[j] * std::pow(kW0[j] - kX[i][j], 2) / 4;
    CHECK(r.loss == doctest::Approx(loss).epsilon(1e-14));
    CHECK(r.passes.forward == 2);
    CHECK(r.passes.backward == (empirical ? 3 : 2));  // the per-example gradients are one more backward
  }
}

namespace {

// The HERO step on the quadratic model with a bias: ε from ASAM's every-parameter rule, the penalty on
// the weight only. L = mean_i ℓ_i + ½ c b².
class QuadraticWithBias : public PerExampleQuadratic {
 public:
  QuadraticWithBias() { register_parameter("bias", bias, nn::ParamRole::bias); }
  Tensor bias = f64({0.4}, {1});
};
const double kC = 5;

LossFn quadratic_with_bias() {
  LossFn mean_loss = quadratic_mean();
  return [mean_loss](nn::Module& m, const Tensor& x, const Tensor& y) {
    Tensor b = dynamic_cast<QuadraticWithBias&>(m).bias;
    return LossOutput{add(mean_loss(m, x, y).loss, sum(mul(b, b)) * (0.5 * kC)), {}};
  };
}

}  // namespace

TEST_CASE("optim: one HERO step by hand, and its pass counts") {
  const double rho = 0.5, lambda = 5, lr = 0.1, b0 = 0.4;
  auto model = std::make_shared<QuadraticWithBias>();
  SGD sgd(model->parameters(), {.lr = lr});
  HERO hero(*model, sgd, quadratic_with_bias(), {.rho = rho, .lambda = lambda});
  StepResult r = hero.step(examples(), Tensor());
  // ε = ρ w⊙w⊙g / (‖|w|⊙g‖ + 1e-12) over weight and bias together.
  Vector g = grad_at(kW0, 0, 4);
  const double gb = kC * b0;
  double norm_sq = gb * gb * b0 * b0;
  for (size_t j = 0; j < 3; ++j) norm_sq += kW0[j] * kW0[j] * g[j] * g[j];
  const double scale = rho / (std::sqrt(norm_sq) + 1e-12);
  Vector eps(3);
  for (size_t j = 0; j < 3; ++j) eps[j] = scale * kW0[j] * kW0[j] * g[j];
  const double eps_b = scale * b0 * b0 * gb;
  // g′ = ∇L(w + ε); P = λ·mean((g′ − g)²) over the weight; ∇P = 2λ/3 · diag(a)(g′ − g).
  Vector g2 = grad_at(axpy(kW0, 1, eps), 0, 4), update(3);
  for (size_t j = 0; j < 3; ++j) update[j] = g2[j] + 2 * lambda / 3 * kA[j] * (g2[j] - g[j]);
  check_close(values(model->weight), axpy(kW0, -lr, update));
  CHECK(values(model->bias)[0] == doctest::Approx(b0 - lr * kC * (b0 + eps_b)).epsilon(1e-12));
  CHECK(r.passes.forward == 2);
  CHECK(r.passes.backward == 2);
  CHECK(r.passes.hvp == 1);
  CHECK(hero.total_passes().hvp == 1);
}

TEST_CASE("optim: HERO's penalty gradient is 2λ·H(w+ε)·v, against finite differences and the toolkit's hvp") {
  manual_seed(4);
  nn::DefaultDTypeGuard f64_layers(DType::f64);
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 5), std::make_shared<nn::Tanh>(),
                                                std::make_shared<nn::Linear>(5, 3));
  Generator gen(8);
  Tensor x = normal({6, 4}, 0, 1, DType::f64, gen), y = randint(0, 3, {6}, gen);
  const double rho = 0.3, lambda = 2.0;
  std::vector<nn::NamedParameter> named = model->named_parameters();
  TensorList params = model->parameters();
  std::vector<std::string> names;
  for (auto& p : named) names.push_back(p.name);
  // L as a function of the parameter values (for hvp), via functional_call.
  auto loss_of = [&](const TensorList& values_) {
    std::map<std::string, Tensor> m;
    for (size_t i = 0; i < names.size(); ++i) m[names[i]] = values_[i];
    return cross_entropy(model->functional_call(m, x), y);
  };
  // By hand: g at w, ε by HERO's rule, g′ at w + ε, v = (g′ − g)/N on the weights (zero on biases).
  TensorList g = grad({cross_entropy((*model)(x), y)}, params);
  ASAMOptions asam{.rho = rho, .eta = 0, .scaling = ASAMScaling::every_parameter, .norm_eps = 1e-12};
  TensorList eps = asam_rule(asam)(named, g);
  TensorList shifted, v;
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) shifted.push_back(add(params[i], eps[i]).requires_grad_(true));
  }
  TensorList g2 = grad({loss_of(shifted)}, shifted);
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i)
      v.push_back(named[i].role == nn::ParamRole::weight ? div(sub(g2[i], g[i]), static_cast<double>(params[i].numel()))
                                                         : zeros_like(params[i]));
  }
  TensorList hv = hvp(loss_of, shifted, v).derivatives;
  // The penalty P(u) = λ Σ_weights mean((∇L(u) − g)²) at u = w + ε, by central differences.
  auto penalty_at = [&](const TensorList& u) {
    TensorList leaves;
    for (const Tensor& t : u) leaves.push_back(t.detach().requires_grad_(true));
    TensorList gu = grad({loss_of(leaves)}, leaves);
    TensorList a, b;
    for (size_t i = 0; i < u.size(); ++i)
      if (named[i].role == nn::ParamRole::weight) {
        a.push_back(gu[i]);
        b.push_back(g[i]);
      }
    return hero_penalty(a, b, lambda).item();
  };

  // The step itself: SGD with lr 1 moves w by −(g′ + ∇P).
  SGD sgd(params, {.lr = 1.0});
  TensorList before;
  for (const Tensor& p : params) before.push_back(p.clone());
  HERO hero(*model, sgd, cross_entropy_loss(), {.rho = rho, .lambda = lambda});
  hero.step(x, y);
  for (size_t i = 0; i < params.size(); ++i) {
    INFO(names[i]);
    Vector moved = values(sub(before[i], params[i])), grad_p = values(g2[i]), hvv = values(hv[i]);
    Vector want(moved.size());
    for (size_t j = 0; j < moved.size(); ++j) want[j] = grad_p[j] + 2 * lambda * hvv[j];
    check_close(moved, want, 1e-10);
    // Finite differences of P along two coordinates of this tensor.
    for (size_t j : {size_t{0}, moved.size() - 1}) {
      const double h = 1e-5;
      TensorList up, down;
      for (size_t k = 0; k < shifted.size(); ++k) {
        up.push_back(shifted[k].detach().clone());
        down.push_back(shifted[k].detach().clone());
      }
      up[i].data<double>()[j] += h;
      down[i].data<double>()[j] -= h;
      const double fd = (penalty_at(up) - penalty_at(down)) / (2 * h);
      CHECK(2 * lambda * hvv[j] == doctest::Approx(fd).epsilon(1e-6).scale(1e-9));
    }
  }
}

TEST_CASE("optim: HERO before its start makes no update (the official first epoch), or ASAM steps") {
  auto model = std::make_shared<QuadraticWithBias>();
  SGD sgd(model->parameters(), {.lr = 0.1});
  HERO hero(*model, sgd, quadratic_with_bias(), {.rho = 0.5, .lambda = 5, .start_step = 2});
  StepResult r = hero.step(examples(), Tensor());
  check_close(values(model->weight), kW0);
  CHECK(r.passes.forward == 1);
  CHECK(r.passes.backward == 0);
  hero.step(examples(), Tensor());
  check_close(values(model->weight), kW0);
  CHECK(hero.step(examples(), Tensor()).passes.hvp == 1);  // step 2: HERO proper

  // before_start = asam: the same ε, no penalty, so the step equals ASAM's every-parameter step.
  auto m1 = std::make_shared<QuadraticWithBias>(), m2 = std::make_shared<QuadraticWithBias>();
  SGD s1(m1->parameters(), {.lr = 0.1}), s2(m2->parameters(), {.lr = 0.1});
  HERO warm(*m1, s1, quadratic_with_bias(),
            {.rho = 0.5, .lambda = 5, .start_step = 1, .before_start = HEROWarmup::asam});
  ASAM asam(*m2, s2, quadratic_with_bias(),
            {.rho = 0.5, .eta = 0, .scaling = ASAMScaling::every_parameter, .norm_eps = 1e-12});
  CHECK(warm.step(examples(), Tensor()).passes.hvp == 0);
  asam.step(examples(), Tensor());
  CHECK(values(m1->weight) == values(m2->weight));
  testing::check_error([&] { HERO(*m1, s1, quadratic_with_bias(), {.lambda = -1}); }, {"lambda >= 0"});
}

TEST_CASE("optim: ΔSAM perturbs along the weighted loss's gradient, one step by hand, with its noise forwards") {
  const double rho = 0.1, lr = 0.2;
  const Vector omega = {0.1, 0.2, 0.3, 0.4};
  auto model = std::make_shared<PerExampleQuadratic>();
  SGD sgd(model->parameters(), {.lr = lr});
  DeltaSAMOptions o;
  o.rho = rho;
  o.noise_samples = 2;
  o.per_example_loss = quadratic_per_example();
  Tensor seen_sensitivity;
  o.weights = [&](const Tensor& s) {
    seen_sensitivity = s;
    return f64(omega, {4});
  };
  DeltaSAM delta(*model, sgd, quadratic_mean(), o);
  StepResult r = delta.step(examples(), Tensor());
  // ĝ = Σ ω_i ∇ℓ_i(w), ε = ρ ĝ/‖ĝ‖; the second pass on the ordinary mean loss.
  Vector g_hat(3, 0.0);
  for (size_t i = 0; i < 4; ++i) g_hat = axpy(g_hat, omega[i], grad_at(kW0, i, i + 1));
  Vector eps = normalized(g_hat, rho);
  check_close(values(model->weight), axpy(kW0, -lr, grad_at(axpy(kW0, 1, eps), 0, 4)));
  CHECK(r.passes.forward == 4);  // w, two noise forwards, w + ε
  CHECK(r.passes.backward == 2);
  REQUIRE(seen_sensitivity.defined());
  CHECK(seen_sensitivity.numel() == 4);
  CHECK(values(delta.last_weights()) == omega);
}

TEST_CASE("optim: ΔSAM's default weights up-weight the sensitive examples; uniform weights give SAM") {
  Tensor s = f64({0.0, 0.1, 0.5, 0.2}, {4});
  Vector w = values(softmax_weights()(s));
  CHECK(std::accumulate(w.begin(), w.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(w[2] > w[3]);
  CHECK(w[3] > w[1]);
  CHECK(w[1] > w[0]);
  Vector flat = values(softmax_weights()(f64({0.3, 0.3}, {2})));
  CHECK(flat == Vector{0.5, 0.5});
  Vector p = values(proportional_weights()(f64({-1, 1, 3}, {3})));
  check_close(p, {0, 0.25, 0.75});
  // With the estimator's output ignored and uniform weights, ΔSAM's step is SAM's.
  auto m1 = std::make_shared<PerExampleQuadratic>(), m2 = std::make_shared<PerExampleQuadratic>();
  SGD s1(m1->parameters(), {.lr = 0.1}), s2(m2->parameters(), {.lr = 0.1});
  DeltaSAMOptions o;
  o.per_example_loss = quadratic_per_example();
  o.weights = [](const Tensor& sens) { return full_like(sens, 1.0 / static_cast<double>(sens.numel())); };
  DeltaSAM delta(*m1, s1, quadratic_mean(), o);
  SAM sam(*m2, s2, quadratic_mean(), {.rho = o.rho});
  delta.step(examples(), Tensor());
  sam.step(examples(), Tensor());
  check_close(values(m1->weight), values(m2->weight), 1e-14);
  testing::check_error(
      [&] {
        o.noise_samples = 0;
        DeltaSAM(*m1, s1, quadratic_mean(), o);
      },
      {"noise_samples"});
}

TEST_CASE("optim: gradient clipping in a perturbed step and a plain step") {
  for (bool perturbed : {false, true}) {
    auto model = std::make_shared<PerExampleQuadratic>();
    SGD sgd(model->parameters(), {.lr = 1.0});
    const double clip = 0.01;
    std::unique_ptr<TrainStep> step;
    if (perturbed)
      step = std::make_unique<SAM>(*model, sgd, quadratic_mean(),
                                   SAMOptions{.rho = 0.05, .perturbation = {.clip_grad_norm = clip}});
    else
      step = std::make_unique<PlainStep>(*model, sgd, quadratic_mean(), clip);
    step->step(examples(), Tensor());
    Vector moved = axpy(kW0, -1.0, values(model->weight));
    CHECK(std::sqrt(dot(moved, moved)) == doctest::Approx(clip).epsilon(1e-4));
  }
}

TEST_CASE("optim: ΔSAM on a network: the noise forwards leave pass 1's tape intact and the weights restored") {
  // The noise forwards move the weights in place; they run before pass 1 is recorded, so its backward
  // finds the saved weights unmodified, and the step equals SAM around the ΔSAM-weighted gradient.
  Generator gen(3);
  Tensor x = normal({8, 5}, 0, 1, DType::f64, gen), y = randint(0, 3, {8}, gen);
  auto make = [] {
    nn::DefaultDTypeGuard f64_layers(DType::f64);
    manual_seed(12);
    return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(5, 6), std::make_shared<nn::Tanh>(),
                                            std::make_shared<nn::Linear>(6, 3));
  };
  auto model = make(), reference = make();
  SGD sgd(model->parameters(), {.lr = 0.1});
  DeltaSAMOptions o;
  o.rho = 0.1;
  DeltaSAM delta(*model, sgd, cross_entropy_loss(), o);
  StepResult r = delta.step(x, y);
  CHECK(r.passes.forward == 5);
  CHECK(r.passes.backward == 2);
  Vector w = values(delta.last_weights());
  CHECK(std::accumulate(w.begin(), w.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-12));
  // By hand on the reference copy, with the weights the step used.
  TensorList params = reference->parameters();
  Tensor weighted = sum(mul(delta.last_weights(), cross_entropy((*reference)(x), y, none_reduction())));
  TensorList g_hat = grad({weighted}, params);
  TensorList g2;
  {
    WeightPerturbation at(params, sam_rule(0.1)(reference->named_parameters(), g_hat));
    g2 = grad({cross_entropy((*reference)(x), y)}, params);
  }
  TensorList moved = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) check_close(values(moved[i]), values(sub(params[i], mul(g2[i], 0.1))));
}

TEST_CASE("optim: with diagnostics off a perturbed step is the same step, reporting only the losses") {
  for (int64_t m : {0, 2}) {
    auto m1 = std::make_shared<PerExampleQuadratic>(), m2 = std::make_shared<PerExampleQuadratic>();
    SGD s1(m1->parameters(), {.lr = 0.1}), s2(m2->parameters(), {.lr = 0.1});
    SAMOptions quiet{.rho = 0.1, .perturbation = {.micro_batch = m, .diagnostics = false}};
    SAM a(*m1, s1, quadratic_mean(), quiet),
        b(*m2, s2, quadratic_mean(), {.rho = 0.1, .perturbation = {.micro_batch = m}});
    StepResult ra = a.step(examples(), Tensor()), rb = b.step(examples(), Tensor());
    CHECK(values(m1->weight) == values(m2->weight));
    CHECK(ra.diagnostics->perturbed_loss == rb.diagnostics->perturbed_loss);
    CHECK(ra.diagnostics->sharpness == rb.diagnostics->sharpness);
    CHECK(ra.diagnostics->grad_norm == 0);
    CHECK(rb.diagnostics->grad_norm > 0);
  }
}

TEST_CASE("optim: HERO's start counts the steps a resumed run had taken") {
  auto model = std::make_shared<QuadraticWithBias>();
  SGD sgd(model->parameters(), {.lr = 0.1});
  HERO hero(*model, sgd, quadratic_with_bias(), {.rho = 0.5, .lambda = 5, .start_step = 10});
  hero.set_steps_taken(10);  // as after resuming at step 10
  CHECK(hero.step(examples(), Tensor()).passes.hvp == 1);
  CHECK(hero.steps_taken() == 11);
}

TEST_CASE("optim: a gradient penalty given as P or as its cotangent ∂P/∂g′ gives the same step") {
  Generator gen(6);
  Tensor x = normal({6, 4}, 0, 1, DType::f64, gen), y = randint(0, 3, {6}, gen);
  auto make = [] {
    nn::DefaultDTypeGuard f64_layers(DType::f64);
    manual_seed(21);
    return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 5), std::make_shared<nn::Tanh>(),
                                            std::make_shared<nn::Linear>(5, 3));
  };
  auto a = make(), b = make();
  SGD sa(a->parameters(), {.lr = 0.3}), sb(b->parameters(), {.lr = 0.3});
  HERO hero(*a, sa, cross_entropy_loss(), {.rho = 0.4, .lambda = 3});  // the cotangent route
  ASAMOptions asam{.rho = 0.4, .eta = 0, .scaling = ASAMScaling::every_parameter, .norm_eps = 1e-12};
  PerturbationOptions scalar{.bn_policy = BNPolicy::both};
  scalar.penalty =
      GradientPenalty{.filter = roles({nn::ParamRole::weight}),
                      .penalty = [](const TensorList& g2, const TensorList& g1) { return hero_penalty(g2, g1, 3.0); },
                      .cotangent = {}};
  PerturbedStep by_value(*b, sb, cross_entropy_loss(), asam_rule(asam), scalar);
  for (int step = 0; step < 3; ++step) {
    hero.step(x, y);
    by_value.step(x, y);
  }
  TensorList pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) check_close(values(pa[i]), values(pb[i]), 1e-12);
  testing::check_error(
      [&] {
        PerturbationOptions both = scalar;
        both.penalty->cotangent = [](const TensorList& g, const TensorList&) { return g; };
        PerturbedStep(*b, sb, cross_entropy_loss(), asam_rule(asam), both);
      },
      {"exactly one of penalty and cotangent"});
}

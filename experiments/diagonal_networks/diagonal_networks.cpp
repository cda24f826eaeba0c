#include "experiments/diagonal_networks/diagonal_networks.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace plateau::diagonal {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: diagonal_networks: " + msg); }

}  // namespace

DiagonalSetup make_diagonal_setup(const DiagonalDataOptions& options) {
  if (options.n < 1 || options.d < 1 || options.n_test < 1)
    fail("n, d and n_test must be >= 1, got n = " + std::to_string(options.n) + ", d = " + std::to_string(options.d) +
         ", n_test = " + std::to_string(options.n_test));
  if (options.sparsity < 1 || options.sparsity > options.d)
    fail("the sparsity must be in [1, d = " + std::to_string(options.d) + "], got " + std::to_string(options.sparsity));
  Generator gen(options.seed);
  DiagonalSetup s;
  s.x_train = normal({options.n, options.d}, 0.0, 1.0, DType::f64, gen);
  s.x_test = normal({options.n_test, options.d}, 0.0, 1.0, DType::f64, gen);
  // β*: |N(0, 1)| on the first `sparsity` coordinates, zero elsewhere, scaled to unit norm.
  std::vector<double> beta = normal({options.d}, 0.0, 1.0, DType::f64, gen).to_vector<double>();
  double norm2 = 0;
  for (int64_t i = 0; i < options.d; ++i) {
    beta[i] = i < options.sparsity ? std::abs(beta[i]) : 0.0;
    norm2 += beta[i] * beta[i];
  }
  for (double& b : beta) b /= std::sqrt(norm2);
  s.beta_star = tensor(beta, {options.d}, DType::f64);
  s.y_train = matmul(s.x_train, s.beta_star);
  s.y_test = matmul(s.x_test, s.beta_star);
  return s;
}

DiagonalLinearNetwork::DiagonalLinearNetwork(int64_t d, double alpha)
    : DiagonalLinearNetwork(full({d}, alpha, DType::f64), zeros({d}, DType::f64)) {}

DiagonalLinearNetwork::DiagonalLinearNetwork(Tensor u_init, Tensor v_init)
    : Module("DiagonalLinearNetwork"), u(std::move(u_init)), v(std::move(v_init)) {
  if (u.dim() != 1 || v.shape() != u.shape())
    fail("u and v must be vectors of one length, got " + u.shape().str() + " and " + v.shape().str());
  register_parameter("u", u);
  register_parameter("v", v);
}

Tensor DiagonalLinearNetwork::forward(const Tensor& x) { return matmul(x, mul(u, v)); }

Tensor DiagonalLinearNetwork::beta() const {
  NoGradGuard no_grad;
  return mul(u, v).detach();
}

optim::LossFn half_squared_loss() {
  return [](nn::Module& model, const Tensor& x, const Tensor& y) {
    Tensor prediction = model(x);
    Tensor r = sub(prediction, y);
    return optim::LossOutput{mul(mean(mul(r, r)), 0.5), prediction};
  };
}

double half_squared_loss(const Tensor& beta, const Tensor& x, const Tensor& y) {
  NoGradGuard no_grad;
  Tensor r = sub(matmul(x, beta), y);
  return 0.5 * mean(mul(r, r)).item();
}

const char* method_name(Method method) {
  switch (method) {
    case Method::gd: return "GD";
    case Method::n_sam: return "n-SAM";
    case Method::one_sam: return "1-SAM";
  }
  return "?";
}

double rule_rho(Method method, double rho) { return method == Method::one_sam ? 2 * rho : rho; }

std::unique_ptr<optim::TrainStep> make_diagonal_step(DiagonalLinearNetwork& model, optim::SGD& sgd, Method method,
                                                     double rho) {
  if (method == Method::gd) return std::make_unique<optim::PlainStep>(model, sgd, half_squared_loss());
  optim::PerturbationOptions options;
  // n-SAM: one ε from the whole batch's gradient; 1-SAM: one ε per example (m-sharpness with m = 1),
  // each example's second gradient taken at its own w + ε_k, averaged over the batch.
  options.micro_batch = method == Method::one_sam ? 1 : 0;
  return std::make_unique<optim::PerturbedStep>(model, sgd, half_squared_loss(),
                                                optim::unnormalized_sam_rule(rule_rho(method, rho)), options);
}

DiagonalOutcome train_diagonal_network(const DiagonalSetup& setup, Method method, double rho,
                                       const DiagonalTrainOptions& options) {
  if (options.iterations < 1) fail("--iterations must be >= 1, got " + std::to_string(options.iterations));
  if (!(options.step_size > 0)) fail("the step size must be > 0, got " + std::to_string(options.step_size));
  const int64_t d = setup.x_train.size(1);
  auto model = std::make_shared<DiagonalLinearNetwork>(d, options.alpha);
  optim::SGD sgd(model->parameters(), {.lr = options.step_size});
  std::unique_ptr<optim::TrainStep> step = make_diagonal_step(*model, sgd, method, rho);

  std::vector<int64_t> record = options.record_at;
  std::sort(record.begin(), record.end());
  auto next_record = record.begin();
  DiagonalOutcome out;
  auto measure = [&](int64_t iteration) {
    Tensor beta = model->beta();
    LossPoint p{iteration, half_squared_loss(beta, setup.x_train, setup.y_train),
                half_squared_loss(beta, setup.x_test, setup.y_test)};
    if (out.curve.empty() || out.curve.back().iteration != iteration) out.curve.push_back(p);
    return p;
  };
  bool non_finite = false;
  for (int64_t it = 1; it <= options.iterations; ++it) {
    const optim::StepResult r = step->step(setup.x_train, setup.y_train);
    out.iterations_run = it;
    // r.loss is the loss before this step: once it is non-finite, so is every later one.
    if (!std::isfinite(r.loss)) {
      non_finite = true;
      break;
    }
    while (next_record != record.end() && *next_record < it) ++next_record;
    if (next_record != record.end() && *next_record == it) measure(it);
  }
  const LossPoint last = measure(out.iterations_run);
  out.train_loss = last.train_loss;
  out.test_loss = last.test_loss;
  out.diverged = non_finite || !std::isfinite(out.train_loss) || !std::isfinite(out.test_loss);
  out.beta = model->beta();
  return out;
}

std::vector<int64_t> log_spaced_iterations(int64_t last, int64_t first, int64_t per_decade) {
  std::vector<int64_t> its;
  for (int64_t i = 1; i <= std::min(first, last); ++i) its.push_back(i);
  for (int64_t k = 0;; ++k) {
    const double value = std::pow(10.0, static_cast<double>(k) / static_cast<double>(per_decade));
    const int64_t it = std::llround(value);
    if (it > last) break;
    its.push_back(it);
  }
  its.push_back(last);
  std::sort(its.begin(), its.end());
  its.erase(std::unique(its.begin(), its.end()), its.end());
  return its;
}

}  // namespace plateau::diagonal

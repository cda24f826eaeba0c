#pragma once
// Diagonal linear networks (Andriushchenko & Flammarion, "Towards Understanding Sharpness-Aware
// Minimization", ICML 2022; official code diagonal_linear_nets/ of tml-epfl/understanding-sam): the
// prediction is x·(u⊙v), trained on sparse noiseless regression with GD, n-SAM or 1-SAM. The paper's
// claim: 1-SAM's implicit bias recovers the sparse β* far better than GD, n-SAM's barely moves it.
//
// Every method runs on Plateau's own training steps, none is written by hand here:
//   GD:    optim::PlainStep,
//   n-SAM: optim::PerturbedStep with unnormalized_sam_rule over the whole batch,
//   1-SAM: the same with PerturbationOptions.micro_batch = 1,
// each around optim::SGD without momentum (lr = the step size), in f64.
//
//   DiagonalSetup setup = make_diagonal_setup({.seed = 0});
//   DiagonalOutcome gd = train_diagonal_network(setup, Method::gd, 0, {.step_size = 15.0 / 30});
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plateau.h"

namespace plateau::diagonal {

// The data: n training and n_test test points x ~ N(0, I_d), labels y = x·β* without noise, β* with
// `sparsity` non-zero, non-negative entries (the first ones) and unit norm.
struct DiagonalDataOptions {
  int64_t n = 20;
  int64_t d = 30;
  int64_t sparsity = 3;
  int64_t n_test = 1000;
  uint64_t seed = 0;
};

struct DiagonalSetup {
  Tensor x_train, y_train;  // [n, d], [n], f64
  Tensor x_test, y_test;    // [n_test, d], [n_test], f64
  Tensor beta_star;         // [d], f64
};

// Draws, from one Generator(seed), X_train, then X_test, then β*'s Gaussian entries: the notebook's
// order. The numbers differ from the notebook's anyway (Philox, not numpy's Mersenne Twister).
DiagonalSetup make_diagonal_setup(const DiagonalDataOptions& options);

// β = u⊙v, prediction x·β. Both factors are parameters (role weight, names "u" and "v").
class DiagonalLinearNetwork : public nn::Module {
 public:
  // u = α·1, v = 0: the notebook's initialisation (β starts at 0 and u² − v² = α² is balanced).
  DiagonalLinearNetwork(int64_t d, double alpha);
  DiagonalLinearNetwork(Tensor u, Tensor v);
  Tensor forward(const Tensor& x) override;  // x [b, d] -> [b]
  Tensor beta() const;                       // u⊙v, detached
  Tensor u, v;
};

// The notebook's loss (1/2n)‖Xβ − y‖², i.e. the mean over the examples of ½ r², r = x·β − y.
optim::LossFn half_squared_loss();
// The same loss of β on a data set, without a graph.
double half_squared_loss(const Tensor& beta, const Tensor& x, const Tensor& y);

enum class Method { gd, n_sam, one_sam };
const char* method_name(Method method);  // "GD", "n-SAM", "1-SAM"

// The rule's ρ for the notebook's ρ. n-SAM: the notebook perturbs by +ρ∇L, L = (1/2n)‖Xβ − y‖², our
// batch loss, so the rule gets ρ. 1-SAM: the notebook perturbs example k by 2ρ r_k x_k⊙(v, u), which is
// ρ·∇(r_k²), while our per-example loss ½ r_k² has the gradient r_k x_k⊙(v, u): the rule gets 2ρ.
// (Its second gradient, r_k(w + ε) x_k⊙(v + ε_v, u + ε_u) averaged over k, is then the notebook's.)
double rule_rho(Method method, double rho);

// The training step of `method` for `model` around `sgd` (plain SGD, lr = the step size).
std::unique_ptr<optim::TrainStep> make_diagonal_step(DiagonalLinearNetwork& model, optim::SGD& sgd, Method method,
                                                     double rho);

struct DiagonalTrainOptions {
  double step_size = 0.5;  // γ (the notebook's 15/d for d = 30)
  double alpha = 0.1;      // initialisation scale
  int64_t iterations = 10000;
  // Iterations after which the train and test losses are recorded (i: after the i-th step); the
  // last iteration run always is.
  std::vector<int64_t> record_at = {};
};

struct LossPoint {
  int64_t iteration = 0;
  double train_loss = 0, test_loss = 0;
};

struct DiagonalOutcome {
  double train_loss = 0, test_loss = 0;  // after the last iteration run (non-finite if diverged)
  bool diverged = false;                 // a non-finite loss appeared; training stopped there
  int64_t iterations_run = 0;
  std::vector<LossPoint> curve;  // at options.record_at, and at the end
  Tensor beta;                   // u⊙v at the end
};

// Trains from u = α·1, v = 0 with `method` at the notebook's ρ (ignored by GD), stopping early once
// a loss is non-finite.
DiagonalOutcome train_diagonal_network(const DiagonalSetup& setup, Method method, double rho,
                                       const DiagonalTrainOptions& options);

// 1, 2, ..., first and `per_decade` log-spaced iterations per decade up to `last`, and `last` (the
// notebook records its curves so), sorted and unique.
std::vector<int64_t> log_spaced_iterations(int64_t last, int64_t first = 10, int64_t per_decade = 10);

}  // namespace plateau::diagonal

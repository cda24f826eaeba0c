#pragma once
// ΔSAM, SAM with dynamic reweighting (Zhou, Liu, Zhang, Chen, Findings of EMNLP 2022). A
// RECONSTRUCTION: there is no public code and the paper's estimator was not read
// (../shared/reference/verification.md §2). What the abstract and two summaries agree on:
//   1. the per-example losses ℓ_i(w) at w;
//   2. K forward passes under random Gaussian weight noise ξ_k (no backward): ℓ_i(w + ξ_k);
//   3. a per-example sensitivity s_i from those ("guardedness"), weights ω = Weights(s) that
//      up-weight the unguarded (sensitive) examples, Σ ω_i = 1;
//   4. ε = ρ ĝ/‖ĝ‖ with ĝ = ∇ Σ_i ω_i ℓ_i(w);
//   5. the second pass on the ordinary mean loss at w + ε; restore; base step.
// The estimator and the weights are pluggable; the defaults are our choice, documented in
// docs/methods.md: s_i = mean_k ℓ_i(w + ξ_k) − ℓ_i(w), ω = softmax(z/τ) with z the batch z-score of s.
#include "optim/sam.h"

namespace plateau::optim {

// s from ℓ(w) [B] and the K noisy ℓ(w + ξ_k) [B] each.
using SensitivityEstimator = std::function<Tensor(const Tensor& clean, const TensorList& noisy)>;
// ω [B] from s [B]: non-negative, summing to 1.
using ExampleWeights = std::function<Tensor(const Tensor& sensitivity)>;

// s_i = mean_k (ℓ_i(w + ξ_k) − ℓ_i(w)).
SensitivityEstimator mean_loss_increase();
// ω = softmax(z / τ), z_i = (s_i − mean s)/std s (ω uniform when s is constant). τ → ∞ gives SAM.
ExampleWeights softmax_weights(double temperature = 1.0);
// ω_i = max(s_i, 0)/Σ max(s, 0), uniform when no s_i is positive.
ExampleWeights proportional_weights();

struct DeltaSAMOptions {
  double rho = 0.05;
  int64_t noise_samples = 3;  // K: the "three additional fast forward passes" of the summaries
  double sigma = 0.01;        // the std of each weight's noise (absolute)
  SensitivityEstimator estimator = mean_loss_increase();
  ExampleWeights weights = softmax_weights();
  LossFn per_example_loss = per_example_cross_entropy();
  PerturbationOptions perturbation = {};  // its filter also picks the parameters that get noise
};

class DeltaSAM : public PerturbedStep {
 public:
  DeltaSAM(nn::Module& model, Optimizer& base, LossFn loss, const DeltaSAMOptions& options = {});
  // ω of the last step's (last micro-batch's) examples.
  const Tensor& last_weights() const { return *last_weights_; }

 private:
  DeltaSAM(nn::Module& model, Optimizer& base, LossFn loss, const DeltaSAMOptions& options,
           std::shared_ptr<Tensor> last_weights);
  std::shared_ptr<Tensor> last_weights_;
};

}  // namespace plateau::optim

#pragma once
// Fisher SAM (Kim, Li, Hu, Hospedales, ICML 2022), as a perturbation rule. A RECONSTRUCTION: there is
// no official code and third-party implementations disagree (../shared/reference/verification.md §4);
// this is the form that lies on the Fisher ellipsoid and reduces to SAM at η = 0 (docs/methods.md):
//   f = 1 + η·F  (element-wise; F the diagonal Fisher)
//   ε = γ·(g/f) / sqrt(gᵀ(g/f)),  so that εᵀ diag(f) ε = γ².
// F is g², the squared mini-batch gradient (the third-party codes' approximation), or, with
// `empirical_fisher`, the empirical Fisher diagonal (1/B) Σ_b g_b², from the per-example gradients of
// the derivative toolkit (one more backward pass; per-example-safe layers only, see
// core/autograd/per_example.h). The two differ in scale by about the batch size, and so does η.
#include "optim/perturbation.h"

namespace plateau::optim {

struct FisherSAMOptions {
  double gamma = 0.1;  // third-party defaults; the paper's values are unverified
  double eta = 1.0;
  bool empirical_fisher = false;
  LossFn per_example_loss = per_example_cross_entropy();  // for the empirical Fisher
  PerturbationOptions perturbation = {};
};

// With F = g².
PerturbationRule fisher_sam_rule(double gamma, double eta);
// With F read from `fisher` (one tensor per perturbed parameter) when the rule runs.
PerturbationRule fisher_sam_rule(double gamma, double eta, std::shared_ptr<const TensorList> fisher);

class FisherSAM : public PerturbedStep {
 public:
  FisherSAM(nn::Module& model, Optimizer& base, LossFn loss, const FisherSAMOptions& options = {});

 private:
  FisherSAM(nn::Module& model, Optimizer& base, LossFn loss, const FisherSAMOptions& options,
            std::shared_ptr<TensorList> fisher);
};

}  // namespace plateau::optim

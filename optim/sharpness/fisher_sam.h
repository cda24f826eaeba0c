#pragma once
// Fisher SAM (Kim, Li, Hu, Hospedales, ICML 2022), as a perturbation rule. A RECONSTRUCTION: there is
// no official code and third-party implementations disagree (../shared/reference/verification.md §4);
// this is the form that lies on the Fisher ellipsoid and reduces to SAM at η = 0 (docs/optim.md):
//   f = 1 + η·g²  (element-wise; the diagonal Fisher approximated by the squared mini-batch gradient)
//   ε = γ·(g/f) / sqrt(gᵀ(g/f)),  so that εᵀ diag(f) ε = γ².
#include "optim/perturbation.h"

namespace plateau::optim {

struct FisherSAMOptions {
  double gamma = 0.1;  // third-party defaults; the paper's values are unverified
  double eta = 1.0;
  PerturbationOptions perturbation = {};
};

PerturbationRule fisher_sam_rule(double gamma, double eta);

class FisherSAM : public PerturbedStep {
 public:
  FisherSAM(nn::Module& model, Optimizer& base, LossFn loss, const FisherSAMOptions& options = {});
};

}  // namespace plateau::optim

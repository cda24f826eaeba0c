#pragma once
// Sharpness-Aware Minimization (Foret et al., ICLR 2021) on the perturb-evaluate-restore mechanism:
// ε = ρ·g/(‖g‖ + 1e-12), ‖g‖ the norm over every perturbed parameter together; the gradient at
// w + ε goes to any base optimizer.
//
//   SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
//   SAM sam(*model, sgd, cross_entropy_loss(), {.rho = 0.05});
//   for (auto& [x, y] : batches) sam.step(x, y);
#include "optim/perturbation.h"

namespace plateau::optim {

// SAM's rule (the official implementation's first_step): the gradient scaled to length ρ.
PerturbationRule sam_rule(double rho);

struct SAMOptions {
  double rho = 0.05;
  // Multi-step SAM (Andriushchenko & Flammarion's sam_iters): `steps` normalized ascent steps of length
  // step_size_mult·ρ, each projected back onto the ρ-ball, optionally from a random point on its
  // sphere. steps = 1 without random start is SAM.
  int64_t steps = 1;
  double step_size_mult = 1.0;
  bool random_start = false;
  PerturbationOptions perturbation = {};
};

class SAM : public PerturbedStep {
 public:
  SAM(nn::Module& model, Optimizer& base, LossFn loss, const SAMOptions& options = {});
  double rho() const { return rho_; }

 private:
  double rho_;
};

}  // namespace plateau::optim

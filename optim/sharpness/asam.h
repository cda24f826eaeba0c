#pragma once
// ASAM (Kwon et al., ICML 2021) and unnormalized SAM as perturbation rules on the
// perturb-evaluate-restore mechanism (optim/perturbation.h).
//
// ASAM: ε = ρ · T²g / ‖T g‖ with the element-wise operator T_w = |w| + η, so the ρ-ball is measured
// relative to each weight's size. Which parameters get T moves the best ρ by about 4×, so both
// common choices are options (docs/optim.md):
//   - official (SamsungLabs/ASAM, the default): T = |w| + η on tensors named "weight" — linear and
//     conv weights and the norm layers' scales — with η = 0.01; every other parameter (biases) uses
//     T = 1 and is still perturbed;
//   - every_parameter (the davda54 "adaptive=True" variant): T = |w| on every parameter, η = 0.
#include "optim/perturbation.h"

namespace plateau::optim {

enum class ASAMScaling { official, every_parameter };

struct ASAMOptions {
  double rho = 0.5;   // the official README's CIFAR-10 value (SAM's is 0.05)
  double eta = 0.01;  // ignored with every_parameter (η = 0 there)
  ASAMScaling scaling = ASAMScaling::official;
  double norm_eps = 1e-16;  // the official code's; davda54 (and HERO, built on it) use 1e-12
  PerturbationOptions perturbation = {};
};

// T for one parameter as ASAM's options define it: |w| + η, or a tensor of ones (shape of w).
Tensor asam_scale(const nn::NamedParameter& p, const ASAMOptions& options);
// ε = ρ · T²g / (‖T g‖ + norm_eps), the norm over every perturbed parameter together.
PerturbationRule asam_rule(const ASAMOptions& options);
// ε = ρ · g: SAM without the normalisation (Andriushchenko & Flammarion's unnormalized SAM).
PerturbationRule unnormalized_sam_rule(double rho);

class ASAM : public PerturbedStep {
 public:
  ASAM(nn::Module& model, Optimizer& base, LossFn loss, const ASAMOptions& options = {});
};

}  // namespace plateau::optim

#pragma once
// The sharpness-aware family by name, for experiments configured from the command line:
//   plateau run fmnist_label_noise --method hero --rho 0.5 --lambda 5
// Every method is a configuration of optim::PerturbedStep around the same base optimizer, so runs
// that differ only in --method differ only in the step.
#include <memory>
#include <string>

#include "experiments/runner/runner.h"
#include "optim/optim.h"

namespace plateau::runner {

// The method names make_train_step knows, comma-separated (for help and errors).
const char* train_step_methods();

// Config keys read (each optional; the default in brackets):
//   method      sgd | sam | usam | multistep_sam | msam | asam | asam_every | fisher_sam |
//               fisher_sam_empirical | hero | delta_sam                                  [sgd]
//   rho [default]  ε's radius (γ for Fisher SAM, ρ of the ASAM-style ε for HERO); "default" or
//               absent: default_rho(method)
//   eta         ASAM's η [0.01], Fisher SAM's η [1]
//   m [32]      examples per perturbation for msam (m-sharpness)
//   steps [2], step_size_mult [1], random_start [false]   multi-step SAM
//   lambda [5], hero_start_epoch [0]   HERO (the official code starts at epoch 1)
//   noise_samples [3], sigma [0.01], temperature [1]      ΔSAM
//   bn_policy [default: first, HERO both], clip_grad_norm [0: off], perturb [all | weights]
// steps_per_epoch turns hero_start_epoch into steps.
// Each method's radius in its official code: SAM 0.05, ASAM and HERO 0.5, davda54's adaptive SAM 2,
// Fisher SAM's γ 0.1 (third-party).
double default_rho(const std::string& method);

std::unique_ptr<optim::TrainStep> make_train_step(const Config& config, nn::Module& model, optim::Optimizer& optimizer,
                                                  int64_t steps_per_epoch);

}  // namespace plateau::runner

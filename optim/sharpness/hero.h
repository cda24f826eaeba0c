#pragma once
// HERO, Hessian-enhanced robust optimization (Yang, Yang, Gong, Chen, DAC 2022), as the official code
// implements it (github.com/Xiaoxuan-Yang/HERO at 6a94c47; ../shared/reference/verification.md §3):
//   1. g = ∇L(w), kept as a constant;
//   2. ε = ρ · w⊙w⊙g / (‖|w|⊙g‖ + 1e-12) over every parameter (ASAM's every_parameter scaling);
//   3. g′ = ∇L(w + ε), recorded;
//   4. P = λ Σ_{l ∈ S} mean((g′_l − g_l)²) over the penalized tensors S (conv and linear weights);
//      its gradient, 2λ·H(w + ε)·v with v_l = (g′_l − g_l)/N_l, is one Hessian-vector product;
//   5. restore w; the base optimizer gets g′ + ∇P.
// The official code updates batch-norm statistics in both passes and makes no update in its first
// epoch (the penalty and g′ sit inside `if epoch > 0`); `start_step` and `before_start` reproduce or
// replace that.
//
//   HERO hero(*model, sgd, cross_entropy_loss(), {.rho = 0.5, .lambda = 5});
#include "optim/sharpness/asam.h"

namespace plateau::optim {

// What a HERO step does before `start_step`.
enum class HEROWarmup {
  no_update,  // the official code's first epoch: one forward pass (loss, batch-norm statistics), no step
  asam,       // ASAM steps with the same ε, without the penalty
};

struct HEROOptions {
  double rho = 0.5;     // the README's command (the script's default is 0.01)
  double lambda = 5.0;  // the README's command (the script's default is 1)
  // S: the official code penalizes tensors whose name has neither "bias" nor "bn", i.e. conv and
  // linear weights (plus the batch norms inside downsample shortcuts, which we leave out).
  ParamFilter penalized = roles({nn::ParamRole::weight});
  int64_t start_step = 0;  // steps before HERO proper (official: one epoch's worth)
  HEROWarmup before_start = HEROWarmup::no_update;
  PerturbationOptions perturbation = {.bn_policy = BNPolicy::both};
};

// P = λ Σ_l mean((g′_l − g_l)²) over the tensors given (undefined g′_l or g_l count as zero).
Tensor hero_penalty(const TensorList& g_perturbed, const TensorList& g_clean, double lambda);
// ∂P/∂g′_l = 2λ (g′_l − g_l)/N_l: what HERO's step differentiates through (GradientPenalty::cotangent).
TensorList hero_penalty_cotangent(const TensorList& g_perturbed, const TensorList& g_clean, double lambda);

class HERO : public PerturbedStep {
 public:
  HERO(nn::Module& model, Optimizer& base, LossFn loss, const HEROOptions& options = {});
  StepResult step(const Tensor& input, const Tensor& target) override;
  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t steps) override { steps_ = steps; }

 private:
  HEROOptions options_;
  int64_t steps_ = 0;
};

}  // namespace plateau::optim

#pragma once
// Variants of SAM that change when and how strongly it perturbs, not the perturbation's direction
// (issue 5): ρ tied to the learning-rate schedule, SAM for part of training only, and weight decay
// placed in the loss (as the official SAM code does) rather than in the base optimizer.
#include <memory>

#include "optim/perturbation.h"

namespace plateau::optim {

// A rule whose ε is `rule`'s scaled by lr(t) / lr(0), lr read from the optimizer's first group at
// each step: ρ follows the schedule the optimizer is on (lr(0) is its value when the rule is made).
PerturbationRule scale_with_lr(PerturbationRule rule, const Optimizer& optimizer);

// Plain steps before step `start` and the perturbed step from then on (start = 0: always perturbed);
// `until` > 0 switches back to plain steps from step `until` on (SAM for a window of training only).
class SwitchedStep : public TrainStep {
 public:
  SwitchedStep(std::unique_ptr<TrainStep> plain, std::unique_ptr<TrainStep> perturbed, int64_t start,
               int64_t until = 0);
  StepResult step(const Tensor& input, const Tensor& target) override;
  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t steps) override { steps_ = steps; }

 private:
  std::unique_ptr<TrainStep> plain_, perturbed_;
  int64_t start_, until_, steps_ = 0;
};

// loss + ½λ Σ‖w‖² over the model's parameters that `filter` keeps: weight decay inside the loss, so it
// shapes the perturbation and both passes' gradients (give the base optimizer weight_decay = 0).
LossFn with_weight_decay(LossFn loss, double weight_decay, ParamFilter filter = {});

}  // namespace plateau::optim

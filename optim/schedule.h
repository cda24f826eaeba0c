#pragma once
// Learning-rate schedules. A Schedule is a pure function of the step count and a group's base lr
// (its lr when the scheduler was made); an LRScheduler applies one to an optimizer's groups. Each
// matches PyTorch's scheduler of the same name (StepLR, MultiStepLR, CosineAnnealingLR, LinearLR
// followed by another through SequentialLR, OneCycleLR) in closed form.
//
//   LRScheduler scheduler(sgd, linear_warmup(5, 0.1, cosine_lr(95)));
//   for (...) { ...; sgd.step(grads); scheduler.step(); }
//
// "Step" means whatever the caller counts: call step() once per batch or once per epoch.
#include <memory>
#include <optional>
#include <vector>

#include "optim/optimizer.h"

namespace plateau::optim {

class Schedule {
 public:
  virtual ~Schedule() = default;
  // The lr at `step` (0 for the first) of a group whose base lr is base_lr.
  virtual double lr(int64_t step, double base_lr) const = 0;
  // The momentum (SGD's momentum, Adam's beta1) at `step`, for schedules that cycle it.
  virtual std::optional<double> momentum(int64_t) const { return std::nullopt; }
};
using ScheduleRef = std::shared_ptr<const Schedule>;

// base_lr at every step.
ScheduleRef constant_lr();
// base_lr · gamma^⌊step / step_size⌋.
ScheduleRef step_lr(int64_t step_size, double gamma = 0.1);
// base_lr · gamma^(number of milestones ≤ step); milestones increasing.
ScheduleRef multistep_lr(std::vector<int64_t> milestones, double gamma = 0.1);
// eta_min + (base_lr − eta_min)·(1 + cos(π·step / t_max))/2; periodic past t_max, as PyTorch's.
ScheduleRef cosine_lr(int64_t t_max, double eta_min = 0.0);
// base_lr·(start_factor + (1 − start_factor)·step / warmup_steps) for step < warmup_steps, then
// `after` from its own step 0 (PyTorch: SequentialLR([LinearLR(start_factor, 1, warmup_steps), after],
// milestones=[warmup_steps])).
ScheduleRef linear_warmup(int64_t warmup_steps, double start_factor, ScheduleRef after = constant_lr());

// PyTorch's OneCycleLR (two phases). The group's base lr is max_lr: the lr rises from
// max_lr/div_factor to max_lr over the first pct_start of total_steps and anneals to
// max_lr/(div_factor·final_div_factor) by the last; the momentum, when cycled, moves the other way
// between max_momentum and base_momentum. Like PyTorch, cycling momentum is on by default and sets
// it even where it was 0.
struct OneCycleOptions {
  int64_t total_steps = 0;
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool cos_annealing = true;  // false: linear
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
};
ScheduleRef one_cycle_lr(const OneCycleOptions& options);

class LRScheduler {
 public:
  // Records each group's lr as its base lr and sets the values of step 0.
  LRScheduler(Optimizer& optimizer, ScheduleRef schedule);
  // Moves to the next step and sets each group's lr (and momentum, if the schedule cycles it).
  void step();
  int64_t last_step() const { return step_; }
  // Resuming: sets the values of `step` (base lrs are those recorded at construction).
  void set_last_step(int64_t step);
  double last_lr(size_t group = 0) const { return optimizer_.lr(group); }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

 private:
  void apply();

  Optimizer& optimizer_;
  ScheduleRef schedule_;
  std::vector<double> base_lrs_;
  int64_t step_ = 0;
};

}  // namespace plateau::optim

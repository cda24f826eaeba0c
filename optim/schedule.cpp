#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace plateau::optim {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

class ConstantLR : public Schedule {
 public:
  double lr(int64_t, double base_lr) const override { return base_lr; }
};

class StepLR : public Schedule {
 public:
  StepLR(int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {}
  double lr(int64_t step, double base_lr) const override {
    return base_lr * std::pow(gamma_, static_cast<double>(step / step_size_));
  }

 private:
  int64_t step_size_;
  double gamma_;
};

class MultiStepLR : public Schedule {
 public:
  MultiStepLR(std::vector<int64_t> milestones, double gamma) : milestones_(std::move(milestones)), gamma_(gamma) {}
  double lr(int64_t step, double base_lr) const override {
    auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
    return base_lr * std::pow(gamma_, static_cast<double>(passed));
  }

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

class CosineLR : public Schedule {
 public:
  CosineLR(int64_t t_max, double eta_min) : t_max_(t_max), eta_min_(eta_min) {}
  double lr(int64_t step, double base_lr) const override {
    return eta_min_ + (base_lr - eta_min_) *
                          (1 + std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(t_max_))) /
                          2;
  }

 private:
  int64_t t_max_;
  double eta_min_;
};

class LinearWarmup : public Schedule {
 public:
  LinearWarmup(int64_t steps, double start_factor, ScheduleRef after)
      : steps_(steps), start_factor_(start_factor), after_(std::move(after)) {}
  double lr(int64_t step, double base_lr) const override {
    if (step >= steps_) return after_->lr(step - steps_, base_lr);
    // LinearLR's closed form with end_factor 1.
    return base_lr * (start_factor_ + (1.0 - start_factor_) * static_cast<double>(step) / static_cast<double>(steps_));
  }
  std::optional<double> momentum(int64_t step) const override {
    return step >= steps_ ? after_->momentum(step - steps_) : std::nullopt;
  }

 private:
  int64_t steps_;
  double start_factor_;
  ScheduleRef after_;
};

class OneCycleLR : public Schedule {
 public:
  explicit OneCycleLR(const OneCycleOptions& o) : o_(o) {}
  double lr(int64_t step, double base_lr) const override {
    const double initial = base_lr / o_.div_factor;
    return phase_value(step, initial, base_lr, initial / o_.final_div_factor);
  }
  std::optional<double> momentum(int64_t step) const override {
    if (!o_.cycle_momentum) return std::nullopt;
    return phase_value(step, o_.max_momentum, o_.base_momentum, o_.max_momentum);
  }

 private:
  double anneal(double start, double end, double pct) const {
    if (o_.cos_annealing) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
    return (end - start) * pct + start;
  }
  // From `start` to `peak` over phase 1, then from `peak` to `end` (PyTorch's _schedule_phases).
  double phase_value(int64_t step, double start, double peak, double end) const {
    if (step > o_.total_steps)
      fail("one-cycle schedule stepped " + std::to_string(step + 1) + " times, past its total_steps " +
           std::to_string(o_.total_steps) + "; make total_steps cover every step");
    const double s = static_cast<double>(step);
    const double end1 = o_.pct_start * static_cast<double>(o_.total_steps) - 1;
    const double end2 = static_cast<double>(o_.total_steps) - 1;
    if (s <= end1) return anneal(start, peak, s / end1);
    return anneal(peak, end, (s - end1) / (end2 - end1));
  }

  OneCycleOptions o_;
};

}  // namespace

ScheduleRef constant_lr() { return std::make_shared<ConstantLR>(); }

ScheduleRef step_lr(int64_t step_size, double gamma) {
  if (step_size <= 0) fail("step_lr needs step_size > 0, got " + std::to_string(step_size));
  return std::make_shared<StepLR>(step_size, gamma);
}

ScheduleRef multistep_lr(std::vector<int64_t> milestones, double gamma) {
  if (!std::is_sorted(milestones.begin(), milestones.end())) fail("multistep_lr needs increasing milestones");
  return std::make_shared<MultiStepLR>(std::move(milestones), gamma);
}

ScheduleRef cosine_lr(int64_t t_max, double eta_min) {
  if (t_max <= 0) fail("cosine_lr needs t_max > 0, got " + std::to_string(t_max));
  return std::make_shared<CosineLR>(t_max, eta_min);
}

ScheduleRef linear_warmup(int64_t warmup_steps, double start_factor, ScheduleRef after) {
  if (warmup_steps <= 0) fail("linear_warmup needs warmup_steps > 0, got " + std::to_string(warmup_steps));
  if (!(start_factor >= 0 && start_factor <= 1))
    fail("linear_warmup needs start_factor in [0, 1], got " + std::to_string(start_factor));
  if (!after) fail("linear_warmup: the schedule after the warmup is null (use constant_lr())");
  return std::make_shared<LinearWarmup>(warmup_steps, start_factor, std::move(after));
}

ScheduleRef one_cycle_lr(const OneCycleOptions& o) {
  if (o.total_steps <= 0) fail("one_cycle_lr needs total_steps > 0, got " + std::to_string(o.total_steps));
  if (!(o.pct_start >= 0 && o.pct_start <= 1))
    fail("one_cycle_lr needs pct_start in [0, 1], got " + std::to_string(o.pct_start));
  return std::make_shared<OneCycleLR>(o);
}

LRScheduler::LRScheduler(Optimizer& optimizer, ScheduleRef schedule)
    : optimizer_(optimizer), schedule_(std::move(schedule)) {
  if (!schedule_) fail("LRScheduler got a null schedule");
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) base_lrs_.push_back(optimizer_.lr(g));
  if (schedule_->momentum(0) && !optimizer_.momentum(0))
    fail("the schedule cycles momentum but " + optimizer_.name() + " has none; turn cycle_momentum off");
  apply();
}

void LRScheduler::step() {
  ++step_;
  apply();
}

void LRScheduler::set_last_step(int64_t step) {
  if (step < 0) fail("LRScheduler::set_last_step needs step >= 0, got " + std::to_string(step));
  step_ = step;
  apply();
}

void LRScheduler::apply() {
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    optimizer_.set_lr(g, schedule_->lr(step_, base_lrs_[g]));
    if (auto m = schedule_->momentum(step_)) optimizer_.set_momentum(g, *m);
  }
}

}  // namespace plateau::optim

#include "optim/sharpness/variants.h"

#include <stdexcept>
#include <string>

namespace plateau::optim {

PerturbationRule scale_with_lr(PerturbationRule rule, const Optimizer& optimizer) {
  const double lr0 = optimizer.lr(0);
  if (!(lr0 > 0))
    throw std::invalid_argument("plateau: scale_with_lr needs a positive initial lr, got " + std::to_string(lr0));
  return [rule = std::move(rule), &optimizer, lr0](const std::vector<nn::NamedParameter>& params,
                                                   const TensorList& grads) {
    TensorList eps = rule(params, grads);
    const double factor = optimizer.lr(0) / lr0;
    NoGradGuard no_grad;
    for (Tensor& e : eps)
      if (e.defined()) e = mul(e, factor);
    return eps;
  };
}

SwitchedStep::SwitchedStep(std::unique_ptr<TrainStep> plain, std::unique_ptr<TrainStep> perturbed, int64_t start,
                           int64_t until)
    : plain_(std::move(plain)), perturbed_(std::move(perturbed)), start_(start), until_(until) {
  if (!plain_ || !perturbed_) throw std::invalid_argument("plateau: SwitchedStep needs both steps");
  if (start_ < 0 || (until_ > 0 && until_ <= start_))
    throw std::invalid_argument("plateau: SwitchedStep needs 0 <= start < until (or until = 0), got start " +
                                std::to_string(start_) + ", until " + std::to_string(until_));
}

StepResult SwitchedStep::step(const Tensor& input, const Tensor& target) {
  const bool perturbed = steps_ >= start_ && (until_ == 0 || steps_ < until_);
  StepResult r = (perturbed ? perturbed_ : plain_)->step(input, target);
  ++steps_;
  total_ += r.passes;
  return r;
}

LossFn with_weight_decay(LossFn loss, double weight_decay, ParamFilter filter) {
  if (!(weight_decay >= 0))
    throw std::invalid_argument("plateau: with_weight_decay needs weight_decay >= 0, got " +
                                std::to_string(weight_decay));
  return [loss = std::move(loss), weight_decay, filter](nn::Module& model, const Tensor& input, const Tensor& target) {
    LossOutput out = loss(model, input, target);
    Tensor penalty;
    for (const auto& p : filter.select(model)) {
      Tensor sq = sum(p.tensor * p.tensor);
      penalty = penalty.defined() ? penalty + sq : sq;
    }
    if (penalty.defined()) out.loss = out.loss + penalty * (0.5 * weight_decay);
    return out;
  };
}

}  // namespace plateau::optim

#include "optim/adam.h"

#include <cmath>
#include <stdexcept>

namespace plateau::optim {

namespace {

template <typename Options>
std::vector<ParamGroup<Options>> checked(const char* who, std::vector<ParamGroup<Options>> groups) {
  auto fail = [who](const std::string& msg) {
    throw std::invalid_argument(std::string("plateau: ") + who + ": " + msg);
  };
  for (const auto& g : groups) {
    const Options& o = g.options;
    if (!(o.lr >= 0)) fail("lr must be >= 0, got " + std::to_string(o.lr));
    if (!(o.eps >= 0)) fail("eps must be >= 0, got " + std::to_string(o.eps));
    if (!(o.beta1 >= 0 && o.beta1 < 1)) fail("beta1 must be in [0, 1), got " + std::to_string(o.beta1));
    if (!(o.beta2 >= 0 && o.beta2 < 1)) fail("beta2 must be in [0, 1), got " + std::to_string(o.beta2));
    if (!(o.weight_decay >= 0)) fail("weight_decay must be >= 0, got " + std::to_string(o.weight_decay));
  }
  return groups;
}

template <typename Options>
std::vector<OptionField> adam_fields(Options& o) {
  return {{"lr", &o.lr},
          {"beta1", &o.beta1},
          {"beta2", &o.beta2},
          {"eps", &o.eps},
          {"weight_decay", &o.weight_decay},
          {"amsgrad", nullptr, &o.amsgrad}};
}

Tensor& buffer(ParamState& state, const char* name, const Tensor& like) {
  auto it = state.buffers.find(name);
  if (it == state.buffers.end()) it = state.buffers.emplace(name, zeros_like(like)).first;
  return it->second;
}

// torch/optim/adam.py and adamw.py (_single_tensor_adam[w]), in the same order of operations;
// Python's scalars are doubles, rounded to the tensor's dtype where they meet a tensor.
template <typename Options>
void adam_update(const Options& o, bool decoupled, Tensor& param, const Tensor& grad_in, ParamState& state) {
  Tensor& exp_avg = buffer(state, "exp_avg", param);
  Tensor& exp_avg_sq = buffer(state, "exp_avg_sq", param);
  const int64_t step = ++state.step;
  Tensor grad = grad_in;
  if (decoupled)
    mul_(param, 1 - o.lr * o.weight_decay);
  else if (o.weight_decay != 0)
    grad = add(grad, mul(param, o.weight_decay));
  mul_(exp_avg, o.beta1);
  add_(exp_avg, grad, 1 - o.beta1);
  mul_(exp_avg_sq, o.beta2);
  add_(exp_avg_sq, mul(grad, grad), 1 - o.beta2);  // addcmul_(grad, grad, value=1 - beta2)
  const double bias_correction1 = 1 - std::pow(o.beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(o.beta2, static_cast<double>(step));
  const double step_size = o.lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  Tensor second = exp_avg_sq;
  if (o.amsgrad) {
    Tensor& max_exp_avg_sq = buffer(state, "max_exp_avg_sq", param);
    copy_(max_exp_avg_sq, maximum(max_exp_avg_sq, exp_avg_sq));
    second = max_exp_avg_sq;
  }
  Tensor denom = add(div(sqrt(second), bias_correction2_sqrt), o.eps);
  add_(param, div(exp_avg, denom), -step_size);  // addcdiv_(exp_avg, denom, value=-step_size)
}

}  // namespace

std::vector<OptionField> fields_of(AdamOptions& o) { return adam_fields(o); }
std::vector<OptionField> fields_of(AdamWOptions& o) { return adam_fields(o); }

Adam::Adam(const TensorList& params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup<AdamOptions>>{{params, options}}) {}
Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups)
    : OptimizerWithOptions("Adam", checked("Adam", std::move(groups))) {}

void Adam::update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) {
  adam_update(options(group), false, param, grad, state);
}

AdamW::AdamW(const TensorList& params, const AdamWOptions& options)
    : AdamW(std::vector<ParamGroup<AdamWOptions>>{{params, options}}) {}
AdamW::AdamW(std::vector<ParamGroup<AdamWOptions>> groups)
    : OptimizerWithOptions("AdamW", checked("AdamW", std::move(groups))) {}

void AdamW::update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) {
  adam_update(options(group), true, param, grad, state);
}

}  // namespace plateau::optim

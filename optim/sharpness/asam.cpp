#include "optim/sharpness/asam.h"

#include <stdexcept>
#include <string>

namespace plateau::optim {

namespace {

void check_rho(double rho, const char* method) {
  if (!(rho >= 0))
    throw std::invalid_argument(std::string("plateau: ") + method + " needs rho >= 0, got " + std::to_string(rho));
}

// A parameter's last path component ("layer1.0.bn1.weight" → "weight").
std::string leaf_name(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

}  // namespace

Tensor asam_scale(const nn::NamedParameter& p, const ASAMOptions& options) {
  NoGradGuard no_grad;
  const Tensor w = p.tensor.detach();
  if (options.scaling == ASAMScaling::every_parameter) return abs(w);
  // The official code tests whether the parameter's name contains "weight".
  if (leaf_name(p.name).find("weight") != std::string::npos) return add(abs(w), options.eta);
  return ones_like(w);
}

PerturbationRule asam_rule(const ASAMOptions& options) {
  check_rho(options.rho, "ASAM");
  if (!(options.eta >= 0))
    throw std::invalid_argument("plateau: ASAM needs eta >= 0, got " + std::to_string(options.eta));
  return [options](const std::vector<nn::NamedParameter>& params, const TensorList& grads) {
    NoGradGuard no_grad;
    TensorList scale(grads.size()), scaled(grads.size()), norms;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined()) continue;
      scale[i] = asam_scale(params[i], options);
      scaled[i] = mul(scale[i], grads[i]);  // T g
      norms.push_back(norm(scaled[i], 2.0));
    }
    TensorList eps(grads.size());
    if (norms.empty()) return eps;
    Tensor total = norm(stack(norms), 2.0);
    Tensor factor = div(full_like(total, options.rho), add(total, options.norm_eps));
    for (size_t i = 0; i < grads.size(); ++i)
      if (scaled[i].defined()) eps[i] = mul(mul(scale[i], scaled[i]), factor);  // ρ T²g / ‖Tg‖
    return eps;
  };
}

PerturbationRule unnormalized_sam_rule(double rho) {
  check_rho(rho, "unnormalized SAM");
  return [rho](const std::vector<nn::NamedParameter>&, const TensorList& grads) {
    NoGradGuard no_grad;
    TensorList eps(grads.size());
    for (size_t i = 0; i < grads.size(); ++i)
      if (grads[i].defined()) eps[i] = mul(grads[i], rho);
    return eps;
  };
}

ASAM::ASAM(nn::Module& model, Optimizer& base, LossFn loss, const ASAMOptions& options)
    : PerturbedStep(model, base, std::move(loss), asam_rule(options), options.perturbation) {}

}  // namespace plateau::optim

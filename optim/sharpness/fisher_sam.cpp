#include "optim/sharpness/fisher_sam.h"

#include <stdexcept>
#include <string>

namespace plateau::optim {

PerturbationRule fisher_sam_rule(double gamma, double eta) {
  if (!(gamma >= 0)) throw std::invalid_argument("plateau: Fisher SAM needs gamma >= 0, got " + std::to_string(gamma));
  if (!(eta >= 0)) throw std::invalid_argument("plateau: Fisher SAM needs eta >= 0, got " + std::to_string(eta));
  return [gamma, eta](const std::vector<nn::NamedParameter>&, const TensorList& grads) {
    NoGradGuard no_grad;
    TensorList ratio(grads.size()), dots;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined()) continue;
      ratio[i] = div(grads[i], add(mul(mul(grads[i], grads[i]), eta), 1.0));  // g / f
      dots.push_back(sum(mul(grads[i], ratio[i])));
    }
    TensorList eps(grads.size());
    if (dots.empty()) return eps;
    // gᵀ(g/f) ≥ 0; a zero gradient gives ε = 0 rather than 0/0.
    Tensor scale = div(full_like(dots[0], gamma), add(sqrt(sum(stack(dots))), 1e-12));
    for (size_t i = 0; i < grads.size(); ++i)
      if (ratio[i].defined()) eps[i] = mul(ratio[i], scale);
    return eps;
  };
}

FisherSAM::FisherSAM(nn::Module& model, Optimizer& base, LossFn loss, const FisherSAMOptions& options)
    : PerturbedStep(model, base, std::move(loss), fisher_sam_rule(options.gamma, options.eta), options.perturbation) {}

}  // namespace plateau::optim

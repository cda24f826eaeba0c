#include "optim/sam.h"

#include <stdexcept>
#include <string>

namespace plateau::optim {

PerturbationRule sam_rule(double rho) {
  if (!(rho >= 0)) throw std::invalid_argument("plateau: SAM needs rho >= 0, got " + std::to_string(rho));
  return [rho](const std::vector<nn::NamedParameter>&, const TensorList& grads) {
    NoGradGuard no_grad;
    TensorList norms;
    for (const auto& g : grads)
      if (g.defined()) norms.push_back(norm(g, 2.0));
    TensorList eps(grads.size());
    if (norms.empty()) return eps;
    // In the gradients' dtype, as the official code: scale = ρ / (‖g‖ + 1e-12), e_w = g·scale.
    Tensor grad_norm = norm(stack(norms), 2.0);
    Tensor scale = div(full_like(grad_norm, rho), add(grad_norm, 1e-12));
    for (size_t i = 0; i < grads.size(); ++i)
      if (grads[i].defined()) eps[i] = mul(grads[i], scale);
    return eps;
  };
}

namespace {

PerturbationOptions with_ascent(const SAMOptions& options) {
  PerturbationOptions p = options.perturbation;
  if (options.steps < 1)
    throw std::invalid_argument("plateau: SAM needs steps >= 1, got " + std::to_string(options.steps));
  if (options.steps > 1 || options.random_start) {
    if (!(options.step_size_mult > 0))
      throw std::invalid_argument("plateau: multi-step SAM needs step_size_mult > 0, got " +
                                  std::to_string(options.step_size_mult));
    p.ascent_steps = options.steps;
    p.ascent_radius = options.rho;
    p.random_start = options.random_start;
  }
  return p;
}

double step_length(const SAMOptions& options) {
  return options.steps > 1 || options.random_start ? options.step_size_mult * options.rho : options.rho;
}

}  // namespace

SAM::SAM(nn::Module& model, Optimizer& base, LossFn loss, const SAMOptions& options)
    : PerturbedStep(model, base, std::move(loss), sam_rule(step_length(options)), with_ascent(options)),
      rho_(options.rho) {}

}  // namespace plateau::optim

#include "optim/sharpness/hero.h"

#include <stdexcept>
#include <string>

namespace plateau::optim {

namespace {

ASAMOptions hero_asam(const HEROOptions& options) {
  ASAMOptions a;
  a.rho = options.rho;
  a.eta = 0;
  a.scaling = ASAMScaling::every_parameter;
  a.norm_eps = 1e-12;
  return a;
}

PerturbationOptions with_penalty(const HEROOptions& options) {
  if (!(options.lambda >= 0))
    throw std::invalid_argument("plateau: HERO needs lambda >= 0, got " + std::to_string(options.lambda));
  if (options.start_step < 0)
    throw std::invalid_argument("plateau: HERO needs start_step >= 0, got " + std::to_string(options.start_step));
  PerturbationOptions p = options.perturbation;
  const double lambda = options.lambda;
  // ∇P as the VJP of g′ with ∂P/∂g′ (no recorded penalty ops); equal to differentiating P itself.
  p.penalty = GradientPenalty{
      .filter = options.penalized, .penalty = {}, .cotangent = [lambda](const TensorList& a, const TensorList& b) {
        return hero_penalty_cotangent(a, b, lambda);
      }};
  return p;
}

}  // namespace

Tensor hero_penalty(const TensorList& g_perturbed, const TensorList& g_clean, double lambda) {
  if (g_perturbed.size() != g_clean.size())
    throw std::invalid_argument("plateau: hero_penalty got " + std::to_string(g_perturbed.size()) +
                                " perturbed gradients and " + std::to_string(g_clean.size()) + " clean ones");
  Tensor total;
  for (size_t i = 0; i < g_perturbed.size(); ++i) {
    const Tensor& a = g_perturbed[i];
    const Tensor& b = g_clean[i];
    if (!a.defined() && !b.defined()) continue;
    Tensor d = !a.defined() ? neg(b.detach()) : b.defined() ? sub(a, b.detach()) : a;
    Tensor term = mean(mul(d, d));
    total = total.defined() ? add(total, term) : term;
  }
  if (!total.defined()) throw std::invalid_argument("plateau: hero_penalty got no gradients to compare");
  return mul(total, lambda);
}

TensorList hero_penalty_cotangent(const TensorList& g_perturbed, const TensorList& g_clean, double lambda) {
  if (g_perturbed.size() != g_clean.size())
    throw std::invalid_argument("plateau: hero_penalty_cotangent got " + std::to_string(g_perturbed.size()) +
                                " perturbed gradients and " + std::to_string(g_clean.size()) + " clean ones");
  NoGradGuard no_grad;
  TensorList out(g_perturbed.size());
  for (size_t i = 0; i < g_perturbed.size(); ++i) {
    const Tensor& a = g_perturbed[i];
    const Tensor& b = g_clean[i];
    if (!a.defined()) continue;  // g′ does not depend on the parameters: nothing to differentiate
    Tensor d = b.defined() ? sub(a, b) : a;
    out[i] = mul(d, 2.0 * lambda / static_cast<double>(a.numel()));
  }
  return out;
}

HERO::HERO(nn::Module& model, Optimizer& base, LossFn loss, const HEROOptions& options)
    : PerturbedStep(model, base, std::move(loss), asam_rule(hero_asam(options)), with_penalty(options)),
      options_(options) {}

StepResult HERO::step(const Tensor& input, const Tensor& target) {
  const bool started = steps_ >= options_.start_step;
  ++steps_;
  if (started || options_.before_start == HEROWarmup::asam) {
    enable_penalty(started);
    return PerturbedStep::step(input, target);
  }
  // The official first epoch: the model runs (its batch-norm statistics move), nothing is updated.
  StepResult r;
  {
    NoGradGuard no_grad;
    LossOutput out = loss()(model(), input, target);
    r.loss = out.loss.item();
    if (out.output.defined()) r.output = out.output.detach();
  }
  r.passes = {1, 0, 0};
  total_ += r.passes;
  return r;
}

}  // namespace plateau::optim

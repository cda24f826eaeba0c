#include "optim/sharpness/fisher_sam.h"

#include <stdexcept>
#include <string>

namespace plateau::optim {

namespace {

void check(double gamma, double eta) {
  if (!(gamma >= 0)) throw std::invalid_argument("plateau: Fisher SAM needs gamma >= 0, got " + std::to_string(gamma));
  if (!(eta >= 0)) throw std::invalid_argument("plateau: Fisher SAM needs eta >= 0, got " + std::to_string(eta));
}

// ε = γ·(g/f) / sqrt(gᵀ(g/f)), f = 1 + η·F; F[i] undefined means g[i]².
TensorList fisher_eps(const TensorList& grads, const TensorList* fisher, double gamma, double eta) {
  NoGradGuard no_grad;
  TensorList ratio(grads.size()), dots;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor f = fisher ? (*fisher)[i] : mul(grads[i], grads[i]);
    ratio[i] = div(grads[i], add(mul(f, eta), 1.0));  // g / f
    dots.push_back(sum(mul(grads[i], ratio[i])));
  }
  TensorList eps(grads.size());
  if (dots.empty()) return eps;
  // gᵀ(g/f) ≥ 0; a zero gradient gives ε = 0 rather than 0/0.
  Tensor scale = div(full_like(dots[0], gamma), add(sqrt(sum(stack(dots))), 1e-12));
  for (size_t i = 0; i < grads.size(); ++i)
    if (ratio[i].defined()) eps[i] = mul(ratio[i], scale);
  return eps;
}

// Pass 1 on per-example losses: F = (1/B) Σ_b g_b² of the perturbed parameters, then the mean loss.
PerExamplePass empirical_fisher_pass(const FisherSAMOptions& options, std::shared_ptr<TensorList> fisher) {
  PerExamplePass pass;
  pass.per_example_loss = options.per_example_loss;
  ParamFilter filter = options.perturbation.filter;
  pass.objective = [filter, fisher](nn::Module& model, const Tensor&, const Tensor&, const Tensor& losses,
                                    StepStats& passes) {
    TensorList params;
    for (const auto& p : filter.select(model)) params.push_back(p.tensor);
    TensorList per_example = per_example_grads(losses, params);
    ++passes.backward;
    {
      NoGradGuard no_grad;
      fisher->clear();
      for (const Tensor& g : per_example) fisher->push_back(mean(mul(g, g), {0}));
    }
    return mean(losses);
  };
  return pass;
}

}  // namespace

PerturbationRule fisher_sam_rule(double gamma, double eta) {
  check(gamma, eta);
  return [gamma, eta](const std::vector<nn::NamedParameter>&, const TensorList& grads) {
    return fisher_eps(grads, nullptr, gamma, eta);
  };
}

PerturbationRule fisher_sam_rule(double gamma, double eta, std::shared_ptr<const TensorList> fisher) {
  check(gamma, eta);
  if (!fisher) throw std::invalid_argument("plateau: fisher_sam_rule got no Fisher diagonal");
  return [gamma, eta, fisher](const std::vector<nn::NamedParameter>&, const TensorList& grads) {
    if (fisher->size() != grads.size())
      throw std::invalid_argument("plateau: Fisher SAM: the Fisher diagonal has " + std::to_string(fisher->size()) +
                                  " tensors for " + std::to_string(grads.size()) +
                                  " parameters (was the per-example pass run?)");
    return fisher_eps(grads, fisher.get(), gamma, eta);
  };
}

FisherSAM::FisherSAM(nn::Module& model, Optimizer& base, LossFn loss, const FisherSAMOptions& options)
    : FisherSAM(model, base, std::move(loss), options, std::make_shared<TensorList>()) {}

namespace {

PerturbationRule rule_for(const FisherSAMOptions& options, const std::shared_ptr<TensorList>& fisher) {
  return options.empirical_fisher ? fisher_sam_rule(options.gamma, options.eta, fisher)
                                  : fisher_sam_rule(options.gamma, options.eta);
}

PerturbationOptions options_for(const FisherSAMOptions& options, const std::shared_ptr<TensorList>& fisher) {
  PerturbationOptions p = options.perturbation;
  if (options.empirical_fisher) {
    if (!options.per_example_loss)
      throw std::invalid_argument("plateau: Fisher SAM's empirical Fisher needs a per-example loss");
    p.per_example = empirical_fisher_pass(options, fisher);
  }
  return p;
}

}  // namespace

FisherSAM::FisherSAM(nn::Module& model, Optimizer& base, LossFn loss, const FisherSAMOptions& options,
                     std::shared_ptr<TensorList> fisher)
    : PerturbedStep(model, base, std::move(loss), rule_for(options, fisher), options_for(options, fisher)) {}

}  // namespace plateau::optim

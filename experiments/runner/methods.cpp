#include "experiments/runner/methods.h"

#include <stdexcept>

namespace plateau::runner {

namespace {

std::string text_or(const Config& c, const std::string& key, const std::string& fallback) {
  return c.has(key) ? c.get(key) : fallback;
}
double number_or(const Config& c, const std::string& key, double fallback) {
  return c.has(key) ? c.get_double(key) : fallback;
}
int64_t integer_or(const Config& c, const std::string& key, int64_t fallback) {
  return c.has(key) ? c.get_int(key) : fallback;
}

optim::PerturbationOptions perturbation_options(const Config& c, optim::BNPolicy default_policy) {
  optim::PerturbationOptions p;
  const std::string policy = text_or(c, "bn_policy", "default");
  p.bn_policy = policy == "default" ? default_policy : optim::bn_policy_from_name(policy);
  p.clip_grad_norm = number_or(c, "clip_grad_norm", 0);
  const std::string perturb = text_or(c, "perturb", "all");
  if (perturb == "weights")
    p.filter = optim::roles({nn::ParamRole::weight});
  else if (perturb != "all")
    throw std::invalid_argument("plateau: --perturb must be all or weights, got '" + perturb + "'");
  return p;
}

}  // namespace

double default_rho(const std::string& method) {
  if (method == "asam" || method == "hero") return 0.5;                        // the official READMEs (CIFAR-10)
  if (method == "asam_every") return 2.0;                                      // davda54's adaptive example
  if (method == "fisher_sam" || method == "fisher_sam_empirical") return 0.1;  // γ of the third-party codes
  return 0.05;                                                                 // SAM's CIFAR value
}

const char* train_step_methods() {
  return "sgd, sam, usam, multistep_sam, msam, asam, asam_every, fisher_sam, fisher_sam_empirical, hero, delta_sam";
}

std::unique_ptr<optim::TrainStep> make_train_step(const Config& c, nn::Module& model, optim::Optimizer& optimizer,
                                                  int64_t steps_per_epoch) {
  using namespace optim;
  const std::string method = text_or(c, "method", "sgd");
  // "default": each method's own (its official code's) radius.
  const bool own_rho = !c.has("rho") || c.get("rho") == "default";
  const double rho = own_rho ? default_rho(method) : c.get_double("rho");
  const LossFn loss = cross_entropy_loss();
  PerturbationOptions p = perturbation_options(c, BNPolicy::first);
  if (method == "sgd") return std::make_unique<PlainStep>(model, optimizer, loss, p.clip_grad_norm);
  if (method == "sam" || method == "msam" || method == "multistep_sam") {
    SAMOptions o;
    o.rho = rho;
    o.perturbation = p;
    if (method == "msam") o.perturbation.micro_batch = integer_or(c, "m", 32);
    if (method == "multistep_sam") {
      o.steps = integer_or(c, "steps", 2);
      o.step_size_mult = number_or(c, "step_size_mult", 1.0);
      o.random_start = c.has("random_start") && c.get_bool("random_start");
    }
    return std::make_unique<SAM>(model, optimizer, loss, o);
  }
  if (method == "usam") return std::make_unique<PerturbedStep>(model, optimizer, loss, unnormalized_sam_rule(rho), p);
  if (method == "asam" || method == "asam_every") {
    ASAMOptions o;
    o.rho = rho;
    o.eta = number_or(c, "eta", 0.01);
    if (method == "asam_every") {
      o.scaling = ASAMScaling::every_parameter;
      o.eta = 0;
    }
    o.perturbation = p;
    return std::make_unique<ASAM>(model, optimizer, loss, o);
  }
  if (method == "fisher_sam" || method == "fisher_sam_empirical") {
    FisherSAMOptions o;
    o.gamma = rho;
    o.eta = number_or(c, "eta", 1.0);
    o.empirical_fisher = method == "fisher_sam_empirical";
    o.perturbation = p;
    return std::make_unique<FisherSAM>(model, optimizer, loss, o);
  }
  if (method == "hero") {
    HEROOptions o;
    o.rho = rho;
    o.lambda = number_or(c, "lambda", 5.0);
    o.start_step = integer_or(c, "hero_start_epoch", 0) * steps_per_epoch;
    o.perturbation = perturbation_options(c, BNPolicy::both);
    return std::make_unique<HERO>(model, optimizer, loss, o);
  }
  if (method == "delta_sam") {
    DeltaSAMOptions o;
    o.rho = rho;
    o.noise_samples = integer_or(c, "noise_samples", 3);
    o.sigma = number_or(c, "sigma", 0.01);
    o.weights = softmax_weights(number_or(c, "temperature", 1.0));
    o.perturbation = p;
    return std::make_unique<DeltaSAM>(model, optimizer, loss, o);
  }
  throw std::invalid_argument("plateau: unknown --method '" + method + "'; use one of " + train_step_methods());
}

}  // namespace plateau::runner

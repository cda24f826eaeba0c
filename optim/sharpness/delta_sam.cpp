#include "optim/sharpness/delta_sam.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace plateau::optim {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: ΔSAM: " + msg); }

PerExamplePass make_pass(const DeltaSAMOptions& options, std::shared_ptr<Tensor> last_weights) {
  if (options.noise_samples < 1) fail("noise_samples must be >= 1, got " + std::to_string(options.noise_samples));
  if (!(options.sigma > 0)) fail("sigma must be > 0, got " + std::to_string(options.sigma));
  if (!options.estimator || !options.weights || !options.per_example_loss)
    fail("the estimator, the weights and the per-example loss must all be set");
  // The noisy losses of the current micro-batch, from `prepare` to `objective`.
  auto noisy = std::make_shared<TensorList>();
  PerExamplePass pass;
  pass.per_example_loss = options.per_example_loss;
  // The noise forwards run before pass 1 is recorded: they move the weights in place.
  pass.prepare = [options, noisy](nn::Module& model, const Tensor& x, const Tensor& y, StepStats& passes) {
    Generator& gen = options.perturbation.generator ? *options.perturbation.generator : default_generator();
    TensorList params;
    for (const auto& p : options.perturbation.filter.select(model)) params.push_back(p.tensor);
    NoGradGuard no_grad;
    noisy->clear();
    for (int64_t k = 0; k < options.noise_samples; ++k) {
      TensorList xi;
      for (const Tensor& p : params) xi.push_back(normal(p.shape(), 0, options.sigma, p.dtype(), gen));
      WeightPerturbation noise(params, xi);
      Tensor l = options.per_example_loss(model, x, y).loss;
      if (!l.defined() || l.dim() != 1 || l.size(0) != x.size(0))
        fail("the per-example loss under noise has shape " + (l.defined() ? l.shape().str() : "none") + ", expected [" +
             std::to_string(x.size(0)) + "]");
      noisy->push_back(l.detach());
      ++passes.forward;
    }
  };
  pass.objective = [options, noisy, last_weights](nn::Module&, const Tensor&, const Tensor&, const Tensor& losses,
                                                  StepStats&) {
    Tensor weights;
    {
      NoGradGuard no_grad;
      weights = options.weights(options.estimator(losses.detach(), *noisy)).detach();
      if (!weights.defined() || weights.shape() != losses.shape())
        fail("the weights must be one per example, " + losses.shape().str());
      *last_weights = weights;
    }
    return sum(mul(weights, losses));
  };
  return pass;
}

}  // namespace

SensitivityEstimator mean_loss_increase() {
  return [](const Tensor& clean, const TensorList& noisy) {
    Tensor total;
    for (const Tensor& l : noisy) total = total.defined() ? add(total, sub(l, clean)) : sub(l, clean);
    return div(total, static_cast<double>(noisy.size()));
  };
}

ExampleWeights softmax_weights(double temperature) {
  if (!(temperature > 0)) fail("the softmax temperature must be > 0, got " + std::to_string(temperature));
  return [temperature](const Tensor& s) {
    const double n = static_cast<double>(s.numel());
    Tensor centred = sub(s, mean(s));
    const double sd = std::sqrt(sum(mul(centred, centred)).item() / n);
    if (!(sd > 0) || !std::isfinite(sd)) return full_like(s, 1.0 / n);
    return softmax(div(centred, sd * temperature), 0);
  };
}

ExampleWeights proportional_weights() {
  return [](const Tensor& s) {
    Tensor positive = relu(s);
    const double total = sum(positive).item();
    if (!(total > 0) || !std::isfinite(total)) return full_like(s, 1.0 / static_cast<double>(s.numel()));
    return div(positive, total);
  };
}

namespace {

PerturbationOptions with_pass(const DeltaSAMOptions& options, const std::shared_ptr<Tensor>& last) {
  PerturbationOptions p = options.perturbation;
  p.per_example = make_pass(options, last);
  return p;
}

}  // namespace

DeltaSAM::DeltaSAM(nn::Module& model, Optimizer& base, LossFn loss, const DeltaSAMOptions& options)
    : DeltaSAM(model, base, std::move(loss), options, std::make_shared<Tensor>()) {}

DeltaSAM::DeltaSAM(nn::Module& model, Optimizer& base, LossFn loss, const DeltaSAMOptions& options,
                   std::shared_ptr<Tensor> last_weights)
    : PerturbedStep(model, base, std::move(loss), sam_rule(options.rho), with_pass(options, last_weights)),
      last_weights_(std::move(last_weights)) {}

}  // namespace plateau::optim

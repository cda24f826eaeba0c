#include "optim/perturbation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "nn/layers/norm.h"

namespace plateau::optim {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

// Puts the batch-norm layers in eval mode for a scope (BNPolicy::eval) and restores each one's mode.
class BatchNormEvalScope {
 public:
  BatchNormEvalScope(nn::Module& model, bool active) {
    if (!active) return;
    for (auto& [path, m] : model.named_modules())
      if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
        saved_.emplace_back(bn, bn->is_training());
        bn->eval();
      }
  }
  ~BatchNormEvalScope() {
    for (auto& [bn, training] : saved_) bn->train(training);
  }
  BatchNormEvalScope(const BatchNormEvalScope&) = delete;
  BatchNormEvalScope& operator=(const BatchNormEvalScope&) = delete;

 private:
  std::vector<std::pair<nn::BatchNorm*, bool>> saved_;
};

double dot_sum(const TensorList& a, const TensorList& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].defined() && b[i].defined()) s += sum(mul(a[i], b[i])).item();
  return s;
}

// a + w·b elementwise over lists (undefined counts as zero).
void accumulate(TensorList& acc, const TensorList& add_in, double weight) {
  for (size_t i = 0; i < acc.size(); ++i) {
    if (!add_in[i].defined()) continue;
    Tensor scaled = mul(add_in[i], weight);
    acc[i] = acc[i].defined() ? add(acc[i], scaled) : scaled;
  }
}

GradOptions allow_unused() {
  GradOptions o;
  o.allow_unused = true;
  return o;
}

Tensor checked_loss(const LossOutput& out, const char* pass) {
  if (!out.loss.defined() || out.loss.numel() != 1)
    fail(std::string("perturbed step: the loss function returned ") +
         (out.loss.defined() ? "a loss of shape " + out.loss.shape().str() : "no loss") + " in " + pass +
         "; it must return the batch's mean loss as a scalar");
  return out.loss;
}

}  // namespace

const char* bn_policy_name(BNPolicy policy) {
  switch (policy) {
    case BNPolicy::both: return "both";
    case BNPolicy::first: return "first";
    case BNPolicy::none: return "none";
    case BNPolicy::eval: return "eval";
  }
  return "?";
}

BNPolicy bn_policy_from_name(const std::string& name) {
  for (BNPolicy p : {BNPolicy::both, BNPolicy::first, BNPolicy::none, BNPolicy::eval})
    if (name == bn_policy_name(p)) return p;
  fail("unknown batch-norm policy '" + name + "'; use both, first, none or eval");
}

ParamFilter::ParamFilter() : predicate_([](const nn::NamedParameter&) { return true; }) {}
ParamFilter::ParamFilter(Predicate predicate) : predicate_(std::move(predicate)) {
  if (!predicate_) fail("ParamFilter got an empty predicate");
}

std::vector<nn::NamedParameter> ParamFilter::select(const nn::Module& model) const {
  std::vector<nn::NamedParameter> out;
  for (auto& p : model.named_parameters())
    if (predicate_(p)) out.push_back(p);
  return out;
}

ParamFilter operator&&(const ParamFilter& a, const ParamFilter& b) {
  return ParamFilter([a, b](const nn::NamedParameter& p) { return a(p) && b(p); });
}
ParamFilter operator||(const ParamFilter& a, const ParamFilter& b) {
  return ParamFilter([a, b](const nn::NamedParameter& p) { return a(p) || b(p); });
}
ParamFilter operator!(const ParamFilter& a) {
  return ParamFilter([a](const nn::NamedParameter& p) { return !a(p); });
}

ParamFilter all_parameters() { return ParamFilter(); }

ParamFilter roles(std::initializer_list<nn::ParamRole> roles) {
  std::vector<nn::ParamRole> kept(roles);
  return ParamFilter(
      [kept](const nn::NamedParameter& p) { return std::find(kept.begin(), kept.end(), p.role) != kept.end(); });
}

ParamFilter path_under(const std::string& path) {
  return ParamFilter([path](const nn::NamedParameter& p) {
    return path.empty() || p.name == path || p.name.rfind(path + ".", 0) == 0;
  });
}

LossFn cross_entropy_loss(const CrossEntropyOptions& options) {
  return [options](nn::Module& model, const Tensor& input, const Tensor& target) {
    Tensor logits = model(input);
    return LossOutput{cross_entropy(logits, target, options), logits};
  };
}

PlainStep::PlainStep(nn::Module& model, Optimizer& optimizer, LossFn loss)
    : model_(model), optimizer_(optimizer), loss_(std::move(loss)) {
  if (!loss_) fail("PlainStep got an empty loss function");
}

StepResult PlainStep::step(const Tensor& input, const Tensor& target) {
  LossOutput out = loss_(model_, input, target);
  Tensor loss = checked_loss(out, "the forward pass");
  TensorList grads = grad({loss}, optimizer_.parameters(), allow_unused());
  optimizer_.step(grads);
  StepResult r;
  r.loss = loss.item();
  if (out.output.defined()) r.output = out.output.detach();
  r.passes = {1, 1, 0};
  total_ += r.passes;
  return r;
}

WeightPerturbation::WeightPerturbation(const TensorList& params, const TensorList& eps) {
  if (params.size() != eps.size())
    fail("WeightPerturbation: " + std::to_string(eps.size()) + " perturbations for " + std::to_string(params.size()) +
         " parameters");
  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!eps[i].defined()) continue;
    if (eps[i].shape() != params[i].shape() || eps[i].dtype() != params[i].dtype())
      fail("WeightPerturbation: ε " + std::to_string(i) + " is " + eps[i].shape().str() + " " +
           dtype_name(eps[i].dtype()) + ", its parameter " + params[i].shape().str() + " " +
           dtype_name(params[i].dtype()));
    params_.push_back(params[i]);
    saved_.push_back(params[i].clone());
  }
  size_t k = 0;
  for (size_t i = 0; i < params.size(); ++i)
    if (eps[i].defined()) add_(params_[k++], eps[i]);
}

void WeightPerturbation::restore() {
  if (params_.empty()) return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) copy_(params_[i], saved_[i]);
  params_.clear();
  saved_.clear();
}

PerturbedStep::PerturbedStep(nn::Module& model, Optimizer& optimizer, LossFn loss, PerturbationRule rule,
                             PerturbationOptions options)
    : model_(model),
      optimizer_(optimizer),
      loss_(std::move(loss)),
      rule_(std::move(rule)),
      options_(std::move(options)) {
  if (!loss_) fail("PerturbedStep got an empty loss function");
  if (!rule_) fail("PerturbedStep got an empty perturbation rule");
  if (options_.micro_batch < 0)
    fail("PerturbedStep: micro_batch must be >= 0, got " + std::to_string(options_.micro_batch));
  chosen_ = options_.filter.select(model_);
  if (chosen_.empty()) fail("PerturbedStep: the parameter filter keeps none of the model's parameters");
  for (auto& p : chosen_) chosen_tensors_.push_back(p.tensor);
  pass2_inputs_ = optimizer_.parameters();
  for (auto& p : chosen_) {
    auto it =
        std::find_if(pass2_inputs_.begin(), pass2_inputs_.end(), [&](const Tensor& t) { return t.is_same(p.tensor); });
    if (it == pass2_inputs_.end()) {
      chosen_in_pass2_.push_back(pass2_inputs_.size());
      pass2_inputs_.push_back(p.tensor);
    } else {
      chosen_in_pass2_.push_back(static_cast<size_t>(it - pass2_inputs_.begin()));
    }
  }
}

StepResult PerturbedStep::step(const Tensor& input, const Tensor& target) {
  if (!input.defined() || input.dim() == 0) fail("perturbed step: the input must have a batch dimension");
  const int64_t n = input.size(0);
  if (n == 0) fail("perturbed step: empty batch");
  const int64_t m = options_.micro_batch == 0 ? n : std::min(options_.micro_batch, n);
  const int64_t chunks = (n + m - 1) / m;
  Generator& gen = options_.generator ? *options_.generator : default_generator();
  const BNPolicy policy = options_.bn_policy;
  // Whether each pass folds its batch statistics into the running ones (within what the caller allows).
  const bool outer_update = nn::running_stats_update_enabled();
  const bool update1 = outer_update && (policy == BNPolicy::first || policy == BNPolicy::both);
  const bool update2 = outer_update && policy == BNPolicy::both;
  BatchNormEvalScope bn_eval(model_, policy == BNPolicy::eval);

  const size_t k = chosen_.size();
  TensorList g1_total(k), g2_total(pass2_inputs_.size()), outputs;
  double loss1 = 0, loss2 = 0, eps_norm = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t start = c * m, end = std::min(n, start + m);
    const bool whole = chunks == 1;
    Tensor x = whole ? input : slice(input, 0, start, end);
    Tensor y = whole || !target.defined() ? target : slice(target, 0, start, end);
    const double weight = static_cast<double>(end - start) / static_cast<double>(n);
    const uint64_t offset = gen.offset();

    // Pass 1 at w.
    TensorList g1;
    {
      nn::RunningStatsGuard stats(update1);
      LossOutput out = loss_(model_, x, y);
      Tensor l = checked_loss(out, "pass 1");
      g1 = grad({l}, chosen_tensors_, allow_unused());
      loss1 += weight * l.item();
      if (out.output.defined()) outputs.push_back(out.output.detach());
    }
    TensorList eps = rule_(chosen_, g1);
    if (eps.size() != k)
      fail("perturbed step: the rule returned " + std::to_string(eps.size()) + " perturbations for " +
           std::to_string(k) + " parameters");
    TensorList g2;
    {
      WeightPerturbation perturbation(chosen_tensors_, eps);
      if (options_.replay_generator) gen.set_offset(offset);
      // Pass 2 at w + ε.
      nn::RunningStatsGuard stats(update2);
      LossOutput out = loss_(model_, x, y);
      Tensor l = checked_loss(out, "pass 2");
      g2 = grad({l}, pass2_inputs_, allow_unused());
      loss2 += weight * l.item();
    }  // w restored here

    NoGradGuard no_grad;
    eps_norm += weight * std::sqrt(dot_sum(eps, eps));
    if (whole) {
      g1_total = std::move(g1);
      g2_total = std::move(g2);
    } else {
      accumulate(g1_total, g1, weight);
      accumulate(g2_total, g2, weight);
    }
  }
  optimizer_.step(
      TensorList(g2_total.begin(), g2_total.begin() + static_cast<std::ptrdiff_t>(optimizer_.num_parameters())));

  NoGradGuard no_grad;
  StepResult r;
  r.loss = loss1;
  if (!outputs.empty()) r.output = outputs.size() == 1 ? outputs[0] : cat(outputs, 0);
  r.passes = {2, 2, 0};
  total_ += r.passes;
  TensorList g2_chosen;
  for (size_t i : chosen_in_pass2_) g2_chosen.push_back(g2_total[i]);
  PerturbationDiagnostics d;
  const double n1 = std::sqrt(dot_sum(g1_total, g1_total)), n2 = std::sqrt(dot_sum(g2_chosen, g2_chosen));
  d.grad_norm = n1;
  d.perturbation_norm = eps_norm;
  d.perturbed_loss = loss2;
  d.sharpness = loss2 - loss1;
  d.grad_cosine = n1 > 0 && n2 > 0 ? dot_sum(g1_total, g2_chosen) / (n1 * n2) : 0.0;
  r.diagnostics = d;
  return r;
}

}  // namespace plateau::optim

#include "optim/perturbation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "nn/layers/norm.h"
#include "optim/clip.h"

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

// Σ_i a_i·b_i over the lists (undefined counts as zero), one pass per tensor (dot, not sum(mul)).
double dot_sum(const TensorList& a, const TensorList& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].defined() && b[i].defined()) s += dot(reshape(a[i], {-1}), reshape(b[i], {-1})).item();
  return s;
}

// acc += weight·add_in elementwise over lists (undefined counts as zero), in place: acc's tensors are
// the step's own (made by the first mul), never ones grad() returned, which may alias each other.
void accumulate(TensorList& acc, const TensorList& add_in, double weight) {
  for (size_t i = 0; i < acc.size(); ++i) {
    if (!add_in[i].defined()) continue;
    if (acc[i].defined())
      add_(acc[i], add_in[i], weight);
    else
      acc[i] = mul(add_in[i], weight);
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

LossFn per_example_cross_entropy(CrossEntropyOptions options) {
  options.reduction = Reduction::none;
  return [options](nn::Module& model, const Tensor& input, const Tensor& target) {
    Tensor logits = model(input);
    return LossOutput{cross_entropy(logits, target, options), logits};
  };
}

PlainStep::PlainStep(nn::Module& model, Optimizer& optimizer, LossFn loss, double clip_grad_norm)
    : model_(model), optimizer_(optimizer), loss_(std::move(loss)), max_grad_norm_(clip_grad_norm) {
  if (!loss_) fail("PlainStep got an empty loss function");
  if (!(clip_grad_norm >= 0))
    fail("PlainStep: clip_grad_norm must be >= 0 (0: off), got " + std::to_string(clip_grad_norm));
}

StepResult PlainStep::step(const Tensor& input, const Tensor& target) {
  LossOutput out = loss_(model_, input, target);
  Tensor loss = checked_loss(out, "the forward pass");
  TensorList grads = grad({loss}, optimizer_.parameters(), allow_unused());
  if (max_grad_norm_ > 0) clip_grad_norm_(grads, max_grad_norm_);
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

namespace {

// The position of t in list, appended if absent.
size_t position_in(TensorList& list, const Tensor& t) {
  auto it = std::find_if(list.begin(), list.end(), [&](const Tensor& u) { return u.is_same(t); });
  if (it != list.end()) return static_cast<size_t>(it - list.begin());
  list.push_back(t);
  return list.size() - 1;
}

TensorList pick(const TensorList& list, const std::vector<size_t>& positions) {
  TensorList out;
  for (size_t i : positions) out.push_back(list[i]);
  return out;
}

// ε scaled back onto the ball ‖ε‖ ≤ radius if it left it.
void project_onto_ball(TensorList& eps, double radius) {
  const double n = std::sqrt(dot_sum(eps, eps));
  if (!(n > radius)) return;
  for (Tensor& e : eps)
    if (e.defined()) e = mul(e, radius / n);
}

}  // namespace

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
  if (options_.ascent_steps < 1)
    fail("PerturbedStep: ascent_steps must be >= 1, got " + std::to_string(options_.ascent_steps));
  if (!(options_.ascent_radius >= 0))
    fail("PerturbedStep: ascent_radius must be >= 0, got " + std::to_string(options_.ascent_radius));
  if (options_.random_start && !(options_.ascent_radius > 0))
    fail("PerturbedStep: random_start needs ascent_radius > 0 (the sphere it starts on)");
  if (!(options_.clip_grad_norm >= 0))
    fail("PerturbedStep: clip_grad_norm must be >= 0 (0: off), got " + std::to_string(options_.clip_grad_norm));
  if (options_.penalty && !options_.penalty->penalty == !options_.penalty->cotangent)
    fail("PerturbedStep: the gradient penalty needs exactly one of penalty and cotangent");
  if (options_.per_example && (!options_.per_example->per_example_loss || !options_.per_example->objective))
    fail("PerturbedStep: the per-example pass needs both per_example_loss and objective");
  chosen_ = options_.filter.select(model_);
  if (chosen_.empty()) fail("PerturbedStep: the parameter filter keeps none of the model's parameters");
  for (auto& p : chosen_) chosen_tensors_.push_back(p.tensor);
  pass1_inputs_ = chosen_tensors_;
  pass2_inputs_ = optimizer_.parameters();
  for (auto& p : chosen_) chosen_in_pass2_.push_back(position_in(pass2_inputs_, p.tensor));
  if (options_.penalty) {
    auto penalized = options_.penalty->filter.select(model_);
    if (penalized.empty()) fail("PerturbedStep: the gradient penalty's filter keeps none of the model's parameters");
    for (auto& p : penalized) {
      penalized_in_pass1_.push_back(position_in(pass1_inputs_, p.tensor));
      penalized_in_pass2_.push_back(position_in(pass2_inputs_, p.tensor));
    }
  }
}

TensorList PerturbedStep::rule_at(const TensorList& grads) const {
  TensorList eps =
      rule_(chosen_, TensorList(grads.begin(), grads.begin() + static_cast<std::ptrdiff_t>(chosen_.size())));
  if (eps.size() != chosen_.size())
    fail("perturbed step: the rule returned " + std::to_string(eps.size()) + " perturbations for " +
         std::to_string(chosen_.size()) + " parameters");
  return eps;
}

// The further ascent steps of multi-step SAM, each a forward and a backward pass at w + ε that leave
// the running statistics alone and replay the generator.
TensorList PerturbedStep::ascend(const Tensor& x, const Tensor& y, TensorList eps, Generator& gen, uint64_t offset,
                                 StepStats& passes) {
  const int64_t further = options_.ascent_steps - (options_.random_start ? 0 : 1);
  for (int64_t s = 0; s < further; ++s) {
    TensorList g;
    {
      WeightPerturbation perturbation(chosen_tensors_, eps);
      if (options_.replay_generator) gen.set_offset(offset);
      nn::RunningStatsGuard stats(false);
      g = grad({checked_loss(loss_(model_, x, y), "an ascent step")}, chosen_tensors_, allow_unused());
    }
    ++passes.forward;
    ++passes.backward;
    NoGradGuard no_grad;
    TensorList step = rule_at(g);
    for (size_t i = 0; i < eps.size(); ++i)
      if (step[i].defined()) eps[i] = eps[i].defined() ? add(eps[i], step[i]) : step[i];
    if (options_.ascent_radius > 0) project_onto_ball(eps, options_.ascent_radius);
  }
  return eps;
}

// ∇P at w + ε over pass 2's inputs, from the penalized parameters' recorded g′ and constant g.
TensorList PerturbedStep::penalty_gradient(const TensorList& g_perturbed, const TensorList& g_clean) const {
  const GradientPenalty& penalty = *options_.penalty;
  if (penalty.penalty) {
    Tensor p = penalty.penalty(g_perturbed, g_clean);
    if (!p.defined() || p.numel() != 1) fail("perturbed step: the gradient penalty must return a scalar");
    return grad({p}, pass2_inputs_, allow_unused());
  }
  TensorList values;
  TensorList cotangents;
  {
    NoGradGuard no_grad;
    for (const Tensor& t : g_perturbed) values.push_back(t.defined() ? t.detach() : t);
    cotangents = penalty.cotangent(values, g_clean);
  }
  if (cotangents.size() != g_perturbed.size())
    fail("perturbed step: the penalty's cotangent returned " + std::to_string(cotangents.size()) + " tensors for " +
         std::to_string(g_perturbed.size()) + " gradients");
  // The VJP of the recorded gradients with the cotangents: H(w + ε)·v in one backward pass. A gradient
  // that does not depend on the parameters (or a zero cotangent) adds nothing.
  GradOptions options = allow_unused();
  TensorList outputs;
  for (size_t i = 0; i < g_perturbed.size(); ++i)
    if (g_perturbed[i].defined() && g_perturbed[i].requires_grad() && cotangents[i].defined()) {
      outputs.push_back(g_perturbed[i]);
      options.grad_outputs.push_back(cotangents[i]);
    }
  if (outputs.empty()) return TensorList(pass2_inputs_.size());
  return grad(std::move(outputs), pass2_inputs_, options);
}

struct PerturbedStep::ChunkResult {
  TensorList g1, g2;  // over pass1_inputs_ and pass2_inputs_
  double loss1 = 0, loss2 = 0, eps_norm = 0;
  Tensor output;
  StepStats passes;
};

PerturbedStep::ChunkResult PerturbedStep::run_chunk(const Tensor& x, const Tensor& y, Generator& gen, bool update1,
                                                    bool update2) {
  ChunkResult r;
  if (options_.per_example && options_.per_example->prepare) {
    nn::RunningStatsGuard stats(false);
    options_.per_example->prepare(model_, x, y, r.passes);
  }
  const uint64_t offset = gen.offset();  // after `prepare`'s draws: pass 2 replays pass 1's
  const bool multi = options_.ascent_steps > 1 || options_.random_start;
  const bool penalize = options_.penalty && penalty_enabled_;
  // The gradient at w is needed for ε (the rule), unless a random start replaces it, and for the penalty.
  const bool need_g1 = !options_.random_start || penalize;
  // Pass 1 at w.
  {
    nn::RunningStatsGuard stats(update1);
    Tensor objective;
    if (options_.per_example) {
      LossOutput out = options_.per_example->per_example_loss(model_, x, y);
      if (!out.loss.defined() || out.loss.dim() != 1 || out.loss.size(0) != x.size(0))
        fail("perturbed step: the per-example loss must be a vector of " + std::to_string(x.size(0)) +
             " losses, one per example; got " + (out.loss.defined() ? out.loss.shape().str() : "none"));
      r.loss1 = mean(out.loss).item();
      if (out.output.defined()) r.output = out.output.detach();
      objective = options_.per_example->objective(model_, x, y, out.loss, r.passes);
      if (need_g1) objective = checked_loss({objective, {}}, "the per-example objective");
    } else {
      LossOutput out = loss_(model_, x, y);
      objective = checked_loss(out, "pass 1");
      r.loss1 = objective.item();
      if (out.output.defined()) r.output = out.output.detach();
    }
    if (need_g1) r.g1 = grad({objective}, pass1_inputs_, allow_unused());
  }
  ++r.passes.forward;
  if (need_g1) ++r.passes.backward;

  TensorList eps;
  if (options_.random_start) {
    NoGradGuard no_grad;
    for (const Tensor& p : chosen_tensors_) eps.push_back(normal(p.shape(), 0, 1, p.dtype(), gen));
    const double n = std::sqrt(dot_sum(eps, eps));
    for (Tensor& e : eps) e = mul(e, options_.ascent_radius / n);
  } else {
    eps = rule_at(r.g1);
    if (multi && options_.ascent_radius > 0) {
      NoGradGuard no_grad;
      project_onto_ball(eps, options_.ascent_radius);
    }
  }
  const uint64_t furthest = gen.offset();
  if (multi) eps = ascend(x, y, std::move(eps), gen, offset, r.passes);

  {
    WeightPerturbation perturbation(chosen_tensors_, eps);
    if (options_.replay_generator) gen.set_offset(offset);
    // Pass 2 at w + ε.
    nn::RunningStatsGuard stats(update2);
    Tensor l = checked_loss(loss_(model_, x, y), "pass 2");
    r.loss2 = l.item();
    if (penalize) {
      GradOptions recorded = allow_unused();
      recorded.create_graph = true;
      TensorList g = grad({l}, pass2_inputs_, recorded);
      TensorList gp = penalty_gradient(pick(g, penalized_in_pass2_), pick(r.g1, penalized_in_pass1_));
      NoGradGuard no_grad;
      for (size_t i = 0; i < g.size(); ++i) {
        if (g[i].defined()) g[i] = g[i].detach();
        if (gp[i].defined()) g[i] = g[i].defined() ? add(g[i], gp[i]) : gp[i];
      }
      r.g2 = std::move(g);
      ++r.passes.hvp;
    } else {
      r.g2 = grad({l}, pass2_inputs_, allow_unused());
    }
  }  // w restored here
  ++r.passes.forward;
  ++r.passes.backward;
  // Random numbers drawn for the random start are not handed out again.
  if (gen.offset() < furthest) gen.set_offset(furthest);
  NoGradGuard no_grad;
  if (options_.diagnostics) r.eps_norm = std::sqrt(dot_sum(eps, eps));
  return r;
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

  TensorList g1_total(pass1_inputs_.size()), g2_total(pass2_inputs_.size()), outputs;
  double loss1 = 0, loss2 = 0, eps_norm = 0;
  StepStats passes;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t start = c * m, end = std::min(n, start + m);
    const bool whole = chunks == 1;
    Tensor x = whole ? input : slice(input, 0, start, end);
    Tensor y = whole || !target.defined() ? target : slice(target, 0, start, end);
    const double weight = static_cast<double>(end - start) / static_cast<double>(n);
    ChunkResult r = run_chunk(x, y, gen, update1, update2);
    if (c == 0) passes = r.passes;  // micro-batches of one sweep count as one pass
    loss1 += weight * r.loss1;
    loss2 += weight * r.loss2;
    eps_norm += weight * r.eps_norm;
    if (r.output.defined()) outputs.push_back(r.output);
    NoGradGuard no_grad;
    if (whole) {
      g1_total = std::move(r.g1);
      g2_total = std::move(r.g2);
    } else {
      // The first pass's gradients are summed for the diagnostics only.
      if (options_.diagnostics && !r.g1.empty()) accumulate(g1_total, r.g1, weight);
      accumulate(g2_total, r.g2, weight);
    }
  }
  TensorList update(g2_total.begin(), g2_total.begin() + static_cast<std::ptrdiff_t>(optimizer_.num_parameters()));
  if (options_.clip_grad_norm > 0) clip_grad_norm_(update, options_.clip_grad_norm);
  optimizer_.step(update);

  NoGradGuard no_grad;
  StepResult r;
  r.loss = loss1;
  if (!outputs.empty()) r.output = outputs.size() == 1 ? outputs[0] : cat(outputs, 0);
  r.passes = passes;
  total_ += r.passes;
  if (!options_.diagnostics) {
    r.diagnostics = PerturbationDiagnostics{.perturbed_loss = loss2, .sharpness = loss2 - loss1};
    return r;
  }
  TensorList g1_chosen(g1_total.begin(), g1_total.begin() + std::min(g1_total.size(), chosen_.size()));
  g1_chosen.resize(chosen_.size());
  TensorList g2_chosen = pick(g2_total, chosen_in_pass2_);
  PerturbationDiagnostics d;
  const double n1 = std::sqrt(dot_sum(g1_chosen, g1_chosen)), n2 = std::sqrt(dot_sum(g2_chosen, g2_chosen));
  d.grad_norm = n1;
  d.perturbation_norm = eps_norm;
  d.perturbed_loss = loss2;
  d.sharpness = loss2 - loss1;
  d.grad_cosine = n1 > 0 && n2 > 0 ? dot_sum(g1_chosen, g2_chosen) / (n1 * n2) : 0.0;
  r.diagnostics = d;
  return r;
}

}  // namespace plateau::optim

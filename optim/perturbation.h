#pragma once
// Perturb, evaluate, restore: the one mechanism behind SAM and its relatives (design.md §4). A step
//   1. computes the loss and the gradient g of the chosen parameters at w (pass 1),
//   2. asks the perturbation rule for ε from g and moves the chosen parameters to w + ε,
//   3. computes the loss and the gradient of every optimized parameter at w + ε (pass 2),
//   4. restores w exactly (from a copy: w + ε − ε is not w in floating point),
//   5. hands pass 2's gradient to the base optimizer's step(grads).
// It is parameterised by the rule, a filter over the parameters (role and module path), the
// batch-norm policy of Note [BN in two-pass steps], and a micro-batch size (m-sharpness: each
// micro-batch gets its own ε and the second gradients are averaged). The rest of the family are
// options of the same steps: further ascent steps with projection (multi-step SAM, between 2 and 3), a
// penalty on pass 2's gradient differentiated once more (HERO, in 3), pass 1 on per-example losses
// (ΔSAM's reweighting, the empirical Fisher, in 1), gradient clipping (in 5).
//
//   SAM sam(model, sgd, cross_entropy_loss(), {.rho = 0.05});
//   StepResult r = sam.step(images, labels);  // r.passes: 2 forward, 2 backward
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "nn/module.h"
#include "optim/optimizer.h"

namespace plateau::optim {

// Note [BN in two-pass steps]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A two-pass step runs the model twice on the same batch, at w and at w + ε. Batch norm in training
// mode does two things in each forward: it normalises with the batch's statistics, and it folds
// those statistics into its running averages (which evaluation later uses). The policies say what
// each pass does:
//   both:  both passes normalise with batch statistics and update the running ones. The running
//          averages then see every batch twice, once through perturbed weights, and decay twice as
//          fast per step: evaluation uses statistics of a network that was never trained.
//   first: (the default, as the official SAM implementation) both passes normalise with batch
//          statistics, only the first updates the running ones (pass 2 runs under
//          nn::RunningStatsGuard(false)). The running averages see exactly what plain training
//          would show them, one batch per step at w, so with ρ = 0 the step is the base optimizer's,
//          bit for bit, running statistics included.
//   none:  both passes normalise with batch statistics, neither updates the running ones (for
//          methods that recompute them afterwards, as SWA's update_bn).
//   eval:  both passes normalise with the running statistics (the batch-norm layers are put in
//          eval mode for the step and their own mode restored afterwards; dropout and other layers
//          stay as they are), so the loss is the one evaluation sees and no statistics change. The
//          gradient then ignores how w moves the batch statistics, which changes the landscape SAM
//          measures sharpness on.
// With micro-batches, pass 1 runs once per micro-batch, so `first` and `both` update the running
// statistics once (twice) per micro-batch, as m-sharpness implementations do.
enum class BNPolicy { both, first, none, eval };
const char* bn_policy_name(BNPolicy policy);
// "both", "first", "none" or "eval".
BNPolicy bn_policy_from_name(const std::string& name);

// Which parameters a method perturbs: a predicate over a parameter's path and role, composable.
//   ParamFilter f = !roles({nn::ParamRole::norm, nn::ParamRole::bias}) && !path_under("fc");
class ParamFilter {
 public:
  using Predicate = std::function<bool(const nn::NamedParameter&)>;
  ParamFilter();                     // every parameter
  ParamFilter(Predicate predicate);  // NOLINT: implicit from a lambda
  bool operator()(const nn::NamedParameter& p) const { return predicate_(p); }
  // The model's parameters this filter keeps, in named_parameters() order.
  std::vector<nn::NamedParameter> select(const nn::Module& model) const;

  friend ParamFilter operator&&(const ParamFilter& a, const ParamFilter& b);
  friend ParamFilter operator||(const ParamFilter& a, const ParamFilter& b);
  friend ParamFilter operator!(const ParamFilter& a);

 private:
  Predicate predicate_;
};
ParamFilter all_parameters();
ParamFilter roles(std::initializer_list<nn::ParamRole> roles);
// Parameters of the module at `path` and its children ("layer1" keeps "layer1.0.conv1.weight",
// not "layer10.weight"); a parameter's own path also matches.
ParamFilter path_under(const std::string& path);

// Forward and backward passes over the batch (micro-batches of one sweep count as one pass), and
// Hessian-vector products: what a step really costs.
struct StepStats {
  int64_t forward = 0;
  int64_t backward = 0;
  int64_t hvp = 0;
  StepStats& operator+=(const StepStats& o) {
    forward += o.forward;
    backward += o.backward;
    hvp += o.hvp;
    return *this;
  }
};

// The loss of a batch under the model (a scalar, mean over the examples) and the model's output,
// which a step returns from its first pass (for accuracy); output may be left undefined.
struct LossOutput {
  Tensor loss;
  Tensor output;
};
using LossFn = std::function<LossOutput(nn::Module& model, const Tensor& input, const Tensor& target)>;
// output = model(input), loss = cross_entropy(output, target).
LossFn cross_entropy_loss(const CrossEntropyOptions& options = {});
// The same with loss = the vector of per-example cross-entropies (reduction none), for the per-example
// pass of ΔSAM and the empirical Fisher.
LossFn per_example_cross_entropy(CrossEntropyOptions options = {});

// Per-step diagnostics of a perturbation method, over the perturbed parameters. With
// PerturbationOptions::diagnostics off, only the losses are filled in.
struct PerturbationDiagnostics {
  double grad_norm = 0;          // ‖g‖, first pass
  double perturbation_norm = 0;  // ‖ε‖ (the mean over micro-batches)
  double perturbed_loss = 0;     // L(w + ε)
  double sharpness = 0;          // L(w + ε) − L(w), a free sharpness estimate
  double grad_cosine = 0;        // cos(g, g_SAM), g_SAM the second pass's gradient; 0 if either is 0
};

struct StepResult {
  double loss = 0;  // L(w) of the batch, from the first pass
  Tensor output;    // the first pass's output, detached (micro-batches concatenated)
  StepStats passes;
  std::optional<PerturbationDiagnostics> diagnostics;
};

// One training step on a batch: what the runner calls, whatever the method.
class TrainStep {
 public:
  virtual ~TrainStep() = default;
  virtual StepResult step(const Tensor& input, const Tensor& target) = 0;
  // Passes summed over every step so far.
  const StepStats& total_passes() const { return total_; }
  // Tells a step that counts steps (HERO's start, SwitchedStep's window) how many were taken before,
  // e.g. by the run a checkpoint resumes. Steps that do not count ignore it.
  virtual void set_steps_taken(int64_t) {}

 protected:
  StepStats total_;
};

// Plain training: one forward, one backward, the base optimizer's step.
// clip_grad_norm > 0 clips the gradient to that global norm first, as PerturbationOptions does.
class PlainStep : public TrainStep {
 public:
  PlainStep(nn::Module& model, Optimizer& optimizer, LossFn loss, double clip_grad_norm = 0);
  StepResult step(const Tensor& input, const Tensor& target) override;

 private:
  nn::Module& model_;
  Optimizer& optimizer_;
  LossFn loss_;
  double max_grad_norm_;
};

// Adds ε to parameters (under NoGradGuard) and puts the saved values back on restore() or
// destruction, exactly. An undefined ε leaves its parameter alone. AWP uses it too.
class WeightPerturbation {
 public:
  WeightPerturbation(const TensorList& params, const TensorList& eps);
  ~WeightPerturbation() { restore(); }
  WeightPerturbation(const WeightPerturbation&) = delete;
  WeightPerturbation& operator=(const WeightPerturbation&) = delete;
  void restore();

 private:
  TensorList params_, saved_;
};

// ε for each chosen parameter (undefined: not perturbed) from the parameters and their first-pass
// gradients (undefined where the loss does not depend on one).
using PerturbationRule =
    std::function<TensorList(const std::vector<nn::NamedParameter>& params, const TensorList& grads)>;

// A penalty P(g′, g) on the gradient at w + ε, added to the objective of pass 2 and differentiated
// (one Hessian-vector product at w + ε): HERO's gradient matching. For the parameters `filter` keeps,
// g′ is the gradient at w + ε and g the gradient at w (a constant); the optimizer gets g′ + ∇P. Give
// either
//   penalty:   P itself from the recorded g′; ∇P is its double backward, or
//   cotangent: ∂P/∂g′ from the values of g′ (detached); ∇P is then the VJP of g′ with it, H(w + ε)·v,
//              without recording P's own ops (cheaper; HERO's choice).
struct GradientPenalty {
  ParamFilter filter = {};
  std::function<Tensor(const TensorList& g_perturbed, const TensorList& g_clean)> penalty;
  std::function<TensorList(const TensorList& g_perturbed, const TensorList& g_clean)> cotangent;
};

// Pass 1 on per-example losses: `per_example_loss` returns ℓ_i for each example ([B], recorded; its
// mean is the loss the step reports), and `objective` turns them (still recorded) into the scalar
// whose gradient gives ε. `prepare`, if set, runs first, before anything is recorded, so it may move
// the weights in place (ΔSAM's forward passes under weight noise); the empirical Fisher reads the
// per-example gradients in `objective`. Both add the passes they make to `passes`.
struct PerExamplePass {
  LossFn per_example_loss;
  std::function<void(nn::Module& model, const Tensor& input, const Tensor& target, StepStats& passes)> prepare;
  std::function<Tensor(nn::Module& model, const Tensor& input, const Tensor& target, const Tensor& losses,
                       StepStats& passes)>
      objective;
};

struct PerturbationOptions {
  ParamFilter filter = {};               // which parameters are perturbed (default: all)
  BNPolicy bn_policy = BNPolicy::first;  // Note [BN in two-pass steps]
  int64_t micro_batch = 0;               // examples per ε; 0: the whole batch
  // Pass 2 replays pass 1's random numbers (the generator's offset is restored before it), so
  // dropout draws the same masks at w + ε as at w.
  bool replay_generator = true;
  Generator* generator = nullptr;  // the generator to replay; nullptr: default_generator()
  // Multi-step ascent: ε is refined `ascent_steps` times, each at the current point,
  //   ε ← Π(ε + rule(∇L(w + ε))),  Π the projection onto ‖ε‖ ≤ ascent_radius (0: no projection);
  // random_start first puts ε uniformly on the sphere of radius ascent_radius. One step from ε = 0
  // without projection is the plain rule. Each further step costs a forward and a backward pass.
  int64_t ascent_steps = 1;
  double ascent_radius = 0;
  bool random_start = false;
  // The gradient handed to the optimizer is clipped to this global norm (0: not clipped), as the
  // official SAM code clips g_SAM at 5.
  double clip_grad_norm = 0;
  // The norms and the cosine of PerturbationDiagnostics cost four dot products over the parameters
  // per step (about 0.1 of a plain step on mlp_784); off, only the losses are reported.
  bool diagnostics = true;
  std::optional<GradientPenalty> penalty = std::nullopt;     // HERO
  std::optional<PerExamplePass> per_example = std::nullopt;  // ΔSAM, Fisher-SAM with the empirical Fisher
};

class PerturbedStep : public TrainStep {
 public:
  // The model's parameters that the optimizer updates get pass 2's gradient; the filter picks
  // which of the model's parameters are perturbed.
  PerturbedStep(nn::Module& model, Optimizer& optimizer, LossFn loss, PerturbationRule rule,
                PerturbationOptions options = {});
  StepResult step(const Tensor& input, const Tensor& target) override;

  const std::vector<nn::NamedParameter>& perturbed_parameters() const { return chosen_; }
  const PerturbationOptions& options() const { return options_; }
  // Turns the gradient penalty off (and back on): HERO before its start.
  void enable_penalty(bool enabled) { penalty_enabled_ = enabled; }

 protected:
  nn::Module& model() { return model_; }
  const LossFn& loss() const { return loss_; }

 private:
  struct ChunkResult;
  ChunkResult run_chunk(const Tensor& x, const Tensor& y, Generator& gen, bool update1, bool update2);
  TensorList ascend(const Tensor& x, const Tensor& y, TensorList eps, Generator& gen, uint64_t offset,
                    StepStats& passes);
  TensorList rule_at(const TensorList& grads) const;
  TensorList penalty_gradient(const TensorList& g_perturbed, const TensorList& g_clean) const;

  nn::Module& model_;
  Optimizer& optimizer_;
  LossFn loss_;
  PerturbationRule rule_;
  PerturbationOptions options_;
  std::vector<nn::NamedParameter> chosen_;
  TensorList chosen_tensors_;
  // Pass 1 differentiates the chosen parameters, then any penalized one they lack; pass 2 the
  // optimizer's parameters, then any chosen or penalized one it lacks (for the cosine and the penalty).
  TensorList pass1_inputs_, pass2_inputs_;
  std::vector<size_t> chosen_in_pass2_;                          // each chosen parameter's position
  std::vector<size_t> penalized_in_pass1_, penalized_in_pass2_;  // each penalized one's positions
  bool penalty_enabled_ = true;
};

}  // namespace plateau::optim

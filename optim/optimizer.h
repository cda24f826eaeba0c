#pragma once
// Optimizer: parameter groups with per-group options, state per parameter, and a step that reads
// each parameter's .grad() or takes the gradients explicitly (the runner and the perturbation steps
// compute them with grad(), not backward()). The updates follow PyTorch's single-tensor code paths
// (torch/optim/*.py in 1.13) operation for operation, so golden fixtures match to rounding.
//
//   SGD sgd(model.parameters(), SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
//   TensorList grads = grad({loss}, sgd.parameters());
//   sgd.step(grads);
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"

namespace plateau::optim {

// One option of a group, by name (for state_dict and for schedules): a number or a flag.
struct OptionField {
  const char* name;
  double* number = nullptr;
  bool* flag = nullptr;
};

// What an optimizer keeps per parameter: a step count and named buffers (momentum_buffer,
// exp_avg, ...), created on the parameter's first update.
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> buffers;
};

// An optimizer's state as checkpoints store it: tensors "state.<index>.<buffer>" (the index counts
// parameters across groups in order) and metadata naming the optimizer and every group option.
struct OptimizerState {
  io::TensorMap tensors;
  io::Metadata metadata;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update with each parameter's .grad(); parameters without a gradient are skipped.
  void step();
  // One update with the given gradients, one per parameter in parameters() order; an undefined
  // gradient skips its parameter. Gradients are read, never written.
  void step(const TensorList& grads);
  // Drops every parameter's .grad() (PyTorch's set_to_none).
  void zero_grad();

  const std::string& name() const { return name_; }
  size_t num_groups() const { return groups_.size(); }
  const TensorList& group_parameters(size_t group) const;
  TensorList parameters() const;  // every group's, in order
  size_t num_parameters() const { return state_.size(); }

  double lr(size_t group) const;
  void set_lr(size_t group, double lr);
  // The knob one-cycle schedules cycle: SGD's momentum, Adam's beta1; nullopt where there is none.
  std::optional<double> momentum(size_t group) const;
  void set_momentum(size_t group, double value);
  // Every option of a group by name ("lr", "weight_decay", "momentum", ...), writable.
  std::vector<OptionField> group_options(size_t group) { return option_fields(group); }

  const ParamState& state(size_t index) const { return state_.at(index); }

  // The state and the group options, enough to continue bit for bit. load_state_dict checks the
  // optimizer's name, the number of groups and parameters, and each buffer's shape and dtype.
  OptimizerState state_dict() const;
  void load_state_dict(const OptimizerState& state);

 protected:
  Optimizer(std::string name, std::vector<TensorList> groups);
  // Updates one parameter of `group` with its gradient (already checked against its shape).
  virtual void update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) = 0;
  virtual std::vector<OptionField> option_fields(size_t group) = 0;
  virtual const char* momentum_option() const { return nullptr; }

 private:
  OptionField find_option(size_t group, const char* name) const;

  std::string name_;
  std::vector<TensorList> groups_;
  std::vector<ParamState> state_;  // per parameter, across groups in order
};

// A group of parameters with its options (PyTorch's param_groups entry).
template <typename Options>
struct ParamGroup {
  TensorList params;
  Options options;
};

// The part every optimizer shares: typed options per group.
template <typename Options>
class OptimizerWithOptions : public Optimizer {
 public:
  Options& options(size_t group) { return options_.at(group); }
  const Options& options(size_t group) const { return options_.at(group); }

 protected:
  OptimizerWithOptions(std::string name, std::vector<ParamGroup<Options>> groups)
      : Optimizer(std::move(name), params_of(groups)) {
    for (auto& g : groups) options_.push_back(g.options);
  }
  std::vector<OptionField> option_fields(size_t group) override { return fields_of(options_.at(group)); }

 private:
  static std::vector<TensorList> params_of(const std::vector<ParamGroup<Options>>& groups) {
    std::vector<TensorList> out;
    for (const auto& g : groups) out.push_back(g.params);
    return out;
  }
  std::vector<Options> options_;
};

}  // namespace plateau::optim

#include "optim/averaging.h"

#include <optional>
#include <stdexcept>

#include "nn/layers/norm.h"

namespace plateau::optim {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

}  // namespace

WeightAverage::WeightAverage(const nn::Module& model, bool ema, int64_t start_step, double decay)
    : ema_(ema), start_step_(start_step), decay_(decay) {
  for (auto& p : model.named_parameters()) {
    names_.push_back(p.name);
    params_.push_back(p.tensor);
  }
  averaged_.resize(params_.size());
  if (params_.empty()) fail("WeightAverage: the model has no parameters");
}

WeightAverage WeightAverage::swa(const nn::Module& model, int64_t start_step) {
  if (start_step < 0) fail("SWA needs start_step >= 0, got " + std::to_string(start_step));
  return WeightAverage(model, false, start_step, 0.0);
}

WeightAverage WeightAverage::ema(const nn::Module& model, double decay) {
  if (!(decay >= 0 && decay <= 1)) fail("EMA needs decay in [0, 1], got " + std::to_string(decay));
  return WeightAverage(model, true, 0, decay);
}

void WeightAverage::update() {
  const int64_t k = num_updates_++;
  if (!ema_ && k < start_step_) return;
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& w = params_[i];
    if (num_averaged_ == 0) {
      averaged_[i] = w.clone();
    } else if (ema_) {
      copy_(averaged_[i], add(mul(averaged_[i], decay_), mul(w, 1.0 - decay_)));
    } else {
      // torch's AveragedModel: avg + (w − avg)/(n + 1).
      copy_(averaged_[i], add(averaged_[i], div(sub(w, averaged_[i]), static_cast<double>(num_averaged_ + 1))));
    }
  }
  ++num_averaged_;
}

void WeightAverage::check_averaged(const char* what) const {
  if (num_averaged_ == 0)
    fail(std::string("WeightAverage::") + what + ": nothing averaged yet (" + std::to_string(num_updates_) +
         " updates, averaging starts at update " + std::to_string(start_step_) + ")");
}

void WeightAverage::copy_to() {
  check_averaged("copy_to");
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) copy_(params_[i], averaged_[i]);
}

void WeightAverage::swap() {
  check_averaged("swap");
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor trained = params_[i].clone();
    copy_(params_[i], averaged_[i]);
    copy_(averaged_[i], trained);
  }
}

io::TensorMap WeightAverage::state_dict() const {
  io::TensorMap out;
  out["num_averaged"] = scalar_tensor(static_cast<double>(num_averaged_), DType::i64);
  out["num_updates"] = scalar_tensor(static_cast<double>(num_updates_), DType::i64);
  NoGradGuard no_grad;
  if (num_averaged_ > 0)
    for (size_t i = 0; i < params_.size(); ++i) out["averaged." + names_[i]] = averaged_[i].clone();
  return out;
}

void WeightAverage::load_state_dict(const io::TensorMap& state) {
  auto at = [&](const std::string& key) -> const Tensor& {
    auto it = state.find(key);
    if (it == state.end()) fail("WeightAverage::load_state_dict: missing '" + key + "'");
    return it->second;
  };
  const auto n = static_cast<int64_t>(at("num_averaged").item());
  const auto updates = static_cast<int64_t>(at("num_updates").item());
  TensorList loaded(params_.size());
  NoGradGuard no_grad;
  if (n > 0)
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor& v = at("averaged." + names_[i]);
      if (v.shape() != params_[i].shape() || v.dtype() != params_[i].dtype())
        fail("WeightAverage::load_state_dict: 'averaged." + names_[i] + "' is " + v.shape().str() + " " +
             dtype_name(v.dtype()) + ", the parameter " + params_[i].shape().str() + " " +
             dtype_name(params_[i].dtype()));
      loaded[i] = v.clone();
    }
  averaged_ = std::move(loaded);
  num_averaged_ = n;
  num_updates_ = updates;
}

void update_bn(nn::Module& model, const BatchVisitor& for_each_batch) {
  std::vector<std::pair<nn::BatchNorm*, std::optional<double>>> momenta;
  std::vector<std::pair<nn::Module*, bool>> modes;
  for (auto& [path, m] : model.named_modules()) {
    modes.emplace_back(m, m->is_training());
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(m); bn && bn->options().track_running_stats)
      momenta.emplace_back(bn, bn->momentum);
  }
  if (momenta.empty()) return;
  // Restores momenta and modes also when a forward throws (parents first: train() recurses).
  struct Restore {
    std::vector<std::pair<nn::BatchNorm*, std::optional<double>>>& saved_momenta;
    std::vector<std::pair<nn::Module*, bool>>& saved_modes;
    ~Restore() {
      for (auto& [bn, momentum] : saved_momenta) bn->momentum = momentum;
      for (auto& [m, training] : saved_modes) m->train(training);
    }
  } restore{momenta, modes};
  for (auto& [bn, momentum] : momenta) {
    bn->reset_running_stats();
    bn->momentum = std::nullopt;
  }
  model.train();
  NoGradGuard no_grad;
  nn::RunningStatsGuard update(true);
  for_each_batch([&model](const Tensor& input) { model(input); });
}

void update_bn(nn::Module& model, const TensorList& inputs) {
  update_bn(model, [&inputs](const std::function<void(const Tensor&)>& forward) {
    for (const auto& x : inputs) forward(x);
  });
}

}  // namespace plateau::optim

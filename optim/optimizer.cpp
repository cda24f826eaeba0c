#include "optim/optimizer.h"

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace plateau::optim {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

// Shortest text that reads back to the same double (checkpoints resume bit for bit).
std::string format_double(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

const std::string& metadata_at(const io::Metadata& metadata, const std::string& key, const std::string& who) {
  auto it = metadata.find(key);
  if (it == metadata.end()) fail(who + ": load_state_dict: the state has no metadata '" + key + "'");
  return it->second;
}

double parse_double(const std::string& text, const std::string& key) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    fail("optimizer load_state_dict: metadata '" + key + "' = '" + text + "' is not a number");
  return v;
}

int64_t parse_index(const std::string& text, const std::string& key) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0)
    fail("optimizer load_state_dict: '" + key + "' does not hold a parameter index");
  return v;
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<TensorList> groups)
    : name_(std::move(name)), groups_(std::move(groups)) {
  if (groups_.empty()) fail(name_ + " needs at least one parameter group");
  size_t n = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].empty()) fail(name_ + ": parameter group " + std::to_string(g) + " is empty");
    for (size_t i = 0; i < groups_[g].size(); ++i) {
      const Tensor& p = groups_[g][i];
      if (!p.defined())
        fail(name_ + ": parameter " + std::to_string(i) + " of group " + std::to_string(g) + " is undefined");
      if (!p.is_floating_point() || !p.is_leaf())
        fail(name_ + ": parameter " + std::to_string(i) + " of group " + std::to_string(g) +
             " must be a floating leaf tensor (a model's parameter), got " + dtype_name(p.dtype()) +
             (p.is_leaf() ? "" : " made by an op"));
      // PyTorch refuses a parameter in two groups: it would be updated twice per step.
      for (size_t h = 0; h <= g; ++h)
        for (size_t j = 0; j < (h == g ? i : groups_[h].size()); ++j)
          if (groups_[h][j].impl() == p.impl())
            fail(name_ + ": parameter " + std::to_string(i) + " of group " + std::to_string(g) +
                 " appears twice (also parameter " + std::to_string(j) + " of group " + std::to_string(h) + ")");
      ++n;
    }
  }
  state_.resize(n);
}

const TensorList& Optimizer::group_parameters(size_t group) const {
  if (group >= groups_.size())
    fail(name_ + ": group " + std::to_string(group) + " out of range (" + std::to_string(groups_.size()) + " groups)");
  return groups_[group];
}

TensorList Optimizer::parameters() const {
  TensorList out;
  for (const auto& g : groups_) out.insert(out.end(), g.begin(), g.end());
  return out;
}

void Optimizer::step() {
  TensorList grads;
  for (const auto& g : groups_)
    for (const auto& p : g) grads.push_back(p.grad());
  step(grads);
}

void Optimizer::step(const TensorList& grads) {
  if (grads.size() != state_.size())
    fail(name_ + ".step: got " + std::to_string(grads.size()) + " gradients for " + std::to_string(state_.size()) +
         " parameters; pass one per parameter in parameters() order (undefined to skip one)");
  NoGradGuard no_grad;
  size_t k = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (auto& p : groups_[g]) {
      const Tensor& grad = grads[k];
      if (grad.defined()) {
        if (grad.shape() != p.shape() || grad.dtype() != p.dtype())
          fail(name_ + ".step: gradient " + std::to_string(k) + " is " + grad.shape().str() + " " +
               dtype_name(grad.dtype()) + ", its parameter " + p.shape().str() + " " + dtype_name(p.dtype()));
        update(g, p, grad, state_[k]);
      }
      ++k;
    }
  }
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g) p.zero_grad();
}

OptionField Optimizer::find_option(size_t group, const char* name) const {
  group_parameters(group);  // range check
  // The fields are only read here; option_fields is non-const because it hands out writable ones.
  for (const auto& f : const_cast<Optimizer*>(this)->option_fields(group))
    if (std::strcmp(f.name, name) == 0) return f;
  fail(name_ + " has no option '" + std::string(name) + "'");
}

double Optimizer::lr(size_t group) const { return *find_option(group, "lr").number; }
void Optimizer::set_lr(size_t group, double lr) { *find_option(group, "lr").number = lr; }

std::optional<double> Optimizer::momentum(size_t group) const {
  if (!momentum_option()) return std::nullopt;
  return *find_option(group, momentum_option()).number;
}

void Optimizer::set_momentum(size_t group, double value) {
  if (!momentum_option()) fail(name_ + " has no momentum to set (a one-cycle schedule cycles SGD's or Adam's)");
  *find_option(group, momentum_option()).number = value;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  out.metadata["optimizer"] = name_;
  out.metadata["param_groups"] = std::to_string(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "group." + std::to_string(g) + ".";
    out.metadata[prefix + "params"] = std::to_string(groups_[g].size());
    for (const auto& f : const_cast<Optimizer*>(this)->option_fields(g))
      out.metadata[prefix + f.name] = f.number ? format_double(*f.number) : (*f.flag ? "true" : "false");
  }
  NoGradGuard no_grad;
  for (size_t k = 0; k < state_.size(); ++k) {
    const ParamState& s = state_[k];
    if (s.step == 0 && s.buffers.empty()) continue;
    const std::string prefix = "state." + std::to_string(k) + ".";
    out.tensors[prefix + "step"] = scalar_tensor(static_cast<double>(s.step), DType::i64);
    for (const auto& [name, buffer] : s.buffers) out.tensors[prefix + name] = buffer.clone();
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  const std::string who = name_;
  const std::string& saved_name = metadata_at(state.metadata, "optimizer", who);
  if (saved_name != name_) fail(who + ": load_state_dict: the state is of a " + saved_name + " optimizer");
  const std::string& n_groups = metadata_at(state.metadata, "param_groups", who);
  if (n_groups != std::to_string(groups_.size()))
    fail(who + ": load_state_dict: the state has " + n_groups + " parameter groups, this optimizer " +
         std::to_string(groups_.size()));
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "group." + std::to_string(g) + ".";
    const std::string& count = metadata_at(state.metadata, prefix + "params", who);
    if (count != std::to_string(groups_[g].size()))
      fail(who + ": load_state_dict: group " + std::to_string(g) + " has " + count + " parameters in the state, " +
           std::to_string(groups_[g].size()) + " here");
  }
  // Check everything before changing anything.
  std::vector<ParamState> loaded(state_.size());
  TensorList params = parameters();
  for (const auto& [key, value] : state.tensors) {
    if (key.rfind("state.", 0) != 0) fail(who + ": load_state_dict: unexpected tensor '" + key + "'");
    size_t dot = key.find('.', 6);
    if (dot == std::string::npos) fail(who + ": load_state_dict: tensor '" + key + "' names no buffer");
    int64_t k = parse_index(key.substr(6, dot - 6), key);
    if (k >= static_cast<int64_t>(params.size()))
      fail(who + ": load_state_dict: '" + key + "' is past the " + std::to_string(params.size()) + " parameters");
    std::string buffer = key.substr(dot + 1);
    if (buffer == "step") {
      if (value.numel() != 1) fail(who + ": load_state_dict: '" + key + "' must hold one number");
      loaded[k].step = static_cast<int64_t>(value.item());
      continue;
    }
    const Tensor& p = params[k];
    if (value.shape() != p.shape() || value.dtype() != p.dtype())
      fail(who + ": load_state_dict: '" + key + "' is " + value.shape().str() + " " + dtype_name(value.dtype()) +
           ", its parameter " + p.shape().str() + " " + dtype_name(p.dtype()));
    NoGradGuard no_grad;
    loaded[k].buffers[buffer] = value.clone();
  }
  std::vector<std::pair<OptionField, std::string>> values;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "group." + std::to_string(g) + ".";
    for (const auto& f : option_fields(g)) {
      const std::string key = prefix + f.name;
      const std::string& text = metadata_at(state.metadata, key, who);
      if (f.flag && text != "true" && text != "false")
        fail(who + ": load_state_dict: metadata '" + key + "' = '" + text + "' must be true or false");
      if (f.number) parse_double(text, key);
      values.emplace_back(f, text);
    }
  }
  for (auto& [f, text] : values) {
    if (f.number)
      *f.number = parse_double(text, f.name);
    else
      *f.flag = text == "true";
  }
  state_ = std::move(loaded);
}

}  // namespace plateau::optim

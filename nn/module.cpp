#include "nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

namespace plateau::nn {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

thread_local bool running_stats_update = true;

}  // namespace

const char* role_name(ParamRole role) {
  switch (role) {
    case ParamRole::weight: return "weight";
    case ParamRole::bias: return "bias";
    case ParamRole::norm: return "norm";
    case ParamRole::embedding: return "embedding";
    case ParamRole::other: return "other";
  }
  return "?";
}

bool running_stats_update_enabled() { return running_stats_update; }
RunningStatsGuard::RunningStatsGuard(bool update) : prev_(running_stats_update) { running_stats_update = update; }
RunningStatsGuard::~RunningStatsGuard() { running_stats_update = prev_; }

Tensor Module::forward(const Tensor&) {
  fail("module " + type_name_ + " has no forward(input); it is a container, or takes other arguments");
}

Tensor Module::operator()(const Tensor& input) {
  Tensor out = forward(input);
  if (hooks_.empty()) return out;
  // A copy: a hook may remove itself or register others.
  auto hooks = hooks_;
  for (auto& [id, hook] : hooks) {
    Tensor replaced = hook(*this, input, out);
    if (replaced.defined()) out = replaced;
  }
  return out;
}

void Module::check_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos)
    fail(type_name_ + ": " + what + " name '" + name + "' must be non-empty and contain no '.'");
  bool taken = false;
  for (const auto& s : parameters_) taken = taken || s.name == name;
  for (const auto& b : buffers_) taken = taken || b.first == name;
  for (const auto& c : children_) taken = taken || c.first == name;
  if (taken) fail(type_name_ + ": the name '" + name + "' is already registered");
}

void Module::register_parameter(const std::string& name, Tensor& member, ParamRole role) {
  check_name(name, "parameter");
  if (!member.defined()) fail(type_name_ + ": parameter '" + name + "' is undefined");
  if (!member.is_floating_point())
    fail(type_name_ + ": parameter '" + name + "' must be floating, got " + dtype_name(member.dtype()));
  member.requires_grad_(true);
  parameters_.push_back({name, &member, role});
}

void Module::register_buffer(const std::string& name, Tensor& member) {
  check_name(name, "buffer");
  if (!member.defined()) fail(type_name_ + ": buffer '" + name + "' is undefined");
  buffers_.emplace_back(name, &member);
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, "module");
  if (!module) fail(type_name_ + ": module '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) const {
  for (const auto& s : parameters_) out.push_back({join(prefix, s.name), *s.member, s.role});
  for (const auto& [name, child] : children_) child->collect_parameters(join(prefix, name), out);
}

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> out;
  collect_parameters("", out);
  return out;
}

TensorList Module::parameters() const {
  TensorList out;
  for (auto& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& p : named_parameters()) n += p.tensor.numel();
  return n;
}

void Module::collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, member] : buffers_) out.emplace_back(join(prefix, name), *member);
  for (const auto& [name, child] : children_) child->collect_buffers(join(prefix, name), out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_buffers("", out);
  return out;
}

void Module::collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out) {
  out.emplace_back(prefix, this);
  for (const auto& [name, child] : children_) child->collect_modules(join(prefix, name), out);
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  collect_modules("", out);
  return out;
}

void Module::collect_slots(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& params,
                           std::vector<std::pair<std::string, Tensor*>>& buffers) {
  for (auto& s : parameters_) params.emplace_back(join(prefix, s.name), s.member);
  for (auto& [name, member] : buffers_) buffers.emplace_back(join(prefix, name), member);
  for (auto& [name, child] : children_) child->collect_slots(join(prefix, name), params, buffers);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  std::vector<std::pair<std::string, Tensor*>> params, buffers;
  collect_slots("", params, buffers);
  for (auto* slots : {&params, &buffers})
    for (auto& [path, member] : *slots) {
      if (!member->defined() || member->device() == device) continue;
      Tensor moved = member->detach().to(device);
      moved.requires_grad_(member->requires_grad());
      moved.set_name(member->name());
      *member = moved;
    }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

Module::HookHandle& Module::HookHandle::operator=(HookHandle&& o) noexcept {
  if (this != &o) {
    remove();
    module_ = o.module_;
    id_ = o.id_;
    o.module_ = nullptr;
  }
  return *this;
}

void Module::HookHandle::remove() {
  if (!module_) return;
  std::erase_if(module_->hooks_, [&](const auto& h) { return h.first == id_; });
  module_ = nullptr;
}

Module::HookHandle Module::register_forward_hook(ModuleForwardHook hook) {
  if (!hook) fail(type_name_ + ": register_forward_hook got an empty hook");
  uint64_t id = next_hook_id_++;
  hooks_.emplace_back(id, std::move(hook));
  return HookHandle(this, id);
}

Tensor Module::functional_call(const std::map<std::string, Tensor>& params, const Tensor& input) {
  std::vector<std::pair<std::string, Tensor*>> slots, buffers;
  collect_slots("", slots, buffers);
  std::vector<std::pair<Tensor*, Tensor>> saved;  // slot, its own tensor
  struct Restore {
    std::vector<std::pair<Tensor*, Tensor>>& saved;
    ~Restore() {
      for (auto& [slot, own] : saved) *slot = own;
    }
  } restore{saved};
  for (const auto& [name, value] : params) {
    auto it = std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s.first == name; });
    if (it == slots.end()) fail(type_name_ + ": functional_call: no parameter named '" + name + "'");
    if (value.shape() != it->second->shape())
      fail(type_name_ + ": functional_call: '" + name + "' has shape " + it->second->shape().str() + ", got " +
           value.shape().str());
    saved.emplace_back(it->second, *it->second);
    *it->second = value;
  }
  return (*this)(input);
}

io::TensorMap Module::state_dict() const {
  io::TensorMap out;
  for (auto& p : named_parameters()) out[p.name] = p.tensor.detach();
  for (auto& [name, b] : named_buffers()) out[name] = b;
  return out;
}

void Module::load_state_dict(const io::TensorMap& state, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> slots, buffers;
  collect_slots("", slots, buffers);
  slots.insert(slots.end(), buffers.begin(), buffers.end());
  std::set<std::string> seen;
  std::vector<std::string> missing, unexpected;
  for (auto& [name, slot] : slots) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
      continue;
    }
    seen.insert(name);
    const Tensor& value = it->second;
    if (value.shape() != slot->shape())
      fail(type_name_ + ": load_state_dict: '" + name + "' has shape " + slot->shape().str() + " here, " +
           value.shape().str() + " in the state dict");
    if (value.dtype() != slot->dtype())
      fail(type_name_ + ": load_state_dict: '" + name + "' is " + dtype_name(slot->dtype()) + " here, " +
           dtype_name(value.dtype()) + " in the state dict");
  }
  for (const auto& [name, value] : state)
    if (!seen.count(name)) unexpected.push_back(name);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string msg = type_name_ + ": load_state_dict (strict):";
    auto list = [](const std::vector<std::string>& names) {
      std::string s;
      for (size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", " : " ") + names[i];
      if (names.size() > 10) s += ", ... (" + std::to_string(names.size()) + " in all)";
      return s;
    };
    if (!missing.empty()) msg += " missing" + list(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected" + list(unexpected) + ";";
    fail(msg + " pass strict = false to load what matches");
  }
  // Values are copied into the existing tensors: optimizers holding them see the new values.
  NoGradGuard no_grad;
  for (auto& [name, slot] : slots) {
    auto it = state.find(name);
    if (it != state.end()) copy_(*slot, it->second);
  }
}

void Module::save(const std::string& path, const io::Metadata& metadata) const {
  io::save_safetensors(path, state_dict(), metadata);
}

void Module::load(const std::string& path, bool strict) { load_state_dict(io::load_safetensors(path), strict); }

std::string Module::str() const {
  std::ostringstream out;
  std::function<void(const Module&, const std::string&, int)> visit = [&](const Module& m, const std::string& name,
                                                                          int depth) {
    out << std::string(2 * depth, ' ') << (name.empty() ? "" : name + ": ") << m.type_name() << " ("
        << m.parameter_count() << " parameters)\n";
    for (const auto& [child_name, child] : m.children()) visit(*child, child_name, depth + 1);
  };
  visit(*this, "", 0);
  return out.str();
}

}  // namespace plateau::nn

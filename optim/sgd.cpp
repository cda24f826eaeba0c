#include "optim/sgd.h"

#include <stdexcept>

namespace plateau::optim {

namespace {

void check(const SGDOptions& o) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument("plateau: SGD: " + msg); };
  if (!(o.lr >= 0)) fail("lr must be >= 0, got " + std::to_string(o.lr));
  if (!(o.momentum >= 0)) fail("momentum must be >= 0, got " + std::to_string(o.momentum));
  if (!(o.weight_decay >= 0)) fail("weight_decay must be >= 0, got " + std::to_string(o.weight_decay));
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    fail("nesterov needs momentum > 0 and dampening = 0 (as PyTorch), got momentum " + std::to_string(o.momentum) +
         ", dampening " + std::to_string(o.dampening));
}

std::vector<ParamGroup<SGDOptions>> checked(std::vector<ParamGroup<SGDOptions>> groups) {
  for (const auto& g : groups) check(g.options);
  return groups;
}

}  // namespace

std::vector<OptionField> fields_of(SGDOptions& o) {
  return {{"lr", &o.lr},
          {"momentum", &o.momentum},
          {"dampening", &o.dampening},
          {"weight_decay", &o.weight_decay},
          {"nesterov", nullptr, &o.nesterov}};
}

SGD::SGD(const TensorList& params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup<SGDOptions>>{{params, options}}) {}

SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups) : OptimizerWithOptions("SGD", checked(std::move(groups))) {}

// torch/optim/sgd.py, _single_tensor_sgd, in the same order of operations.
void SGD::update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) {
  const SGDOptions& o = options(group);
  Tensor d_p = grad;
  if (o.weight_decay != 0) d_p = add(d_p, mul(param, o.weight_decay));  // d_p.add(param, alpha=wd)
  if (o.momentum != 0) {
    auto it = state.buffers.find("momentum_buffer");
    if (it == state.buffers.end()) {
      it = state.buffers.emplace("momentum_buffer", d_p.clone()).first;
    } else {
      mul_(it->second, o.momentum);
      add_(it->second, d_p, 1 - o.dampening);
    }
    d_p = o.nesterov ? add(d_p, mul(it->second, o.momentum)) : it->second;
  }
  ++state.step;
  add_(param, d_p, -o.lr);
}

}  // namespace plateau::optim

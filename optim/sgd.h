#pragma once
// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay
// (torch.optim.SGD).
#include "optim/optimizer.h"

namespace plateau::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};
std::vector<OptionField> fields_of(SGDOptions& options);

// With g the gradient (plus weight_decay·w) and b the momentum buffer (b = g at the first step,
// then b = momentum·b + (1 − dampening)·g): w −= lr·(g + momentum·b) with Nesterov, else w −= lr·b;
// without momentum, w −= lr·g.
class SGD : public OptimizerWithOptions<SGDOptions> {
 public:
  SGD(const TensorList& params, const SGDOptions& options);
  explicit SGD(std::vector<ParamGroup<SGDOptions>> groups);

 protected:
  void update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) override;
  const char* momentum_option() const override { return "momentum"; }
};

}  // namespace plateau::optim

#pragma once
// Adam (Kingma & Ba) with weight decay as an L2 term in the gradient, and AdamW (Loshchilov &
// Hutter) with decoupled weight decay; both with optional AMSGrad (torch.optim.Adam / AdamW).
#include "optim/optimizer.h"

namespace plateau::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};
// The same options with AdamW's default decay (PyTorch's 1e-2).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};
std::vector<OptionField> fields_of(AdamOptions& options);
std::vector<OptionField> fields_of(AdamWOptions& options);

// At step t, with g the gradient (Adam: plus weight_decay·w; AdamW first scales w by 1 − lr·wd):
//   m = β1·m + (1 − β1)·g,  v = β2·v + (1 − β2)·g²,  (AMSGrad: v̂ = max(v̂, v), used for v below)
//   w −= lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
class Adam : public OptimizerWithOptions<AdamOptions> {
 public:
  Adam(const TensorList& params, const AdamOptions& options);
  explicit Adam(std::vector<ParamGroup<AdamOptions>> groups);

 protected:
  void update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) override;
  const char* momentum_option() const override { return "beta1"; }
};

class AdamW : public OptimizerWithOptions<AdamWOptions> {
 public:
  AdamW(const TensorList& params, const AdamWOptions& options);
  explicit AdamW(std::vector<ParamGroup<AdamWOptions>> groups);

 protected:
  void update(size_t group, Tensor& param, const Tensor& grad, ParamState& state) override;
  const char* momentum_option() const override { return "beta1"; }
};

}  // namespace plateau::optim

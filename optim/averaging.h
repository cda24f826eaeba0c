#pragma once
// Weight averaging: SWA (Izmailov et al. 2018: an equal average of the weights from a start step)
// and EMA (an exponential moving average), and update_bn, the pass that recomputes batch-norm
// statistics for averaged weights (torch.optim.swa_utils).
//
//   WeightAverage swa = WeightAverage::swa(*model, /*start_step=*/750);
//   for (...) { sam.step(x, y); swa.update(); }
//   swa.copy_to();                                                   // the model now holds the average
//   update_bn(*model, [&](auto&& forward) { for (auto& b : loader) forward(b.input); });
#include <functional>
#include <string>
#include <vector>

#include "core/core.h"
#include "nn/module.h"

namespace plateau::optim {

class WeightAverage {
 public:
  // The k-th call of update() (k = 0, 1, ...) is averaged in when k >= start_step, every one with
  // equal weight: avg += (w − avg)/(n + 1), as torch's AveragedModel.
  static WeightAverage swa(const nn::Module& model, int64_t start_step = 0);
  // avg = decay·avg + (1 − decay)·w, starting from the weights of the first update.
  static WeightAverage ema(const nn::Module& model, double decay);

  // Reads the model's current parameters.
  void update();
  int64_t num_averaged() const { return num_averaged_; }
  int64_t num_updates() const { return num_updates_; }
  // The averages, by parameter path; empty names and undefined tensors before the first average.
  const std::vector<std::string>& names() const { return names_; }
  const TensorList& averaged() const { return averaged_; }

  // Writes the average into the model's parameters; swap() exchanges the two (twice gives the
  // trained weights back). Both need at least one averaged update.
  void copy_to();
  void swap();

  // For checkpoints: the averages ("averaged.<path>") and the counters ("num_averaged", "num_updates").
  io::TensorMap state_dict() const;
  void load_state_dict(const io::TensorMap& state);

 private:
  WeightAverage(const nn::Module& model, bool ema, int64_t start_step, double decay);
  void check_averaged(const char* what) const;

  bool ema_;
  int64_t start_step_;
  double decay_;
  std::vector<std::string> names_;
  TensorList params_, averaged_;
  int64_t num_averaged_ = 0, num_updates_ = 0;
};

// Calls `forward` on each batch's input; update_bn hands it the model's forward.
using BatchVisitor = std::function<void(const std::function<void(const Tensor& input)>& forward)>;

// Recomputes every batch-norm layer's running statistics: resets them, makes the average
// cumulative (momentum nullopt), runs the model in training mode over the batches without
// gradients, then restores each layer's momentum and each module's mode. No batch norm: nothing.
void update_bn(nn::Module& model, const BatchVisitor& for_each_batch);
void update_bn(nn::Module& model, const TensorList& inputs);

}  // namespace plateau::optim

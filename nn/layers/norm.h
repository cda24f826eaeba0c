#pragma once
// Batch, layer and group normalization. Affine weights start at 1, biases at 0; both have role norm.
#include <optional>

#include "nn/module.h"

namespace plateau::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  // Weight of the newest batch in the running averages; nullopt is the cumulative average
  // (weight 1/num_batches_tracked), as PyTorch's momentum=None.
  std::optional<double> momentum = 0.1;
  bool affine = true;
  // Without running statistics, eval mode normalizes with batch statistics too.
  bool track_running_stats = true;
};

// Batch norm over dim 1. In training mode it normalizes with batch statistics and, when
// running_stats_update_enabled() (see RunningStatsGuard), updates running_mean, running_var (with the
// unbiased batch variance) and num_batches_tracked; in eval mode it normalizes with the running ones.
class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  void reset_running_stats();
  void reset_parameters();
  int64_t num_features() const { return num_features_; }
  const BatchNormOptions& options() const { return options_; }
  // Public as in PyTorch, so a caller may change it between passes.
  std::optional<double> momentum;

  Tensor weight, bias;               // [C], role norm; undefined without affine
  Tensor running_mean, running_var;  // [C]; undefined without track_running_stats
  Tensor num_batches_tracked;        // i64 scalar

 protected:
  BatchNorm(std::string type_name, int64_t num_features, const BatchNormOptions& options, int64_t min_dims,
            int64_t max_dims);

 private:
  int64_t num_features_;
  BatchNormOptions options_;
  int64_t min_dims_, max_dims_;
};

// Input [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormOptions& options = {})
      : BatchNorm("BatchNorm1d", num_features, options, 2, 3) {}
};

// Input [N, C, H, W].
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormOptions& options = {})
      : BatchNorm("BatchNorm2d", num_features, options, 4, 4) {}
};

// Normalizes over the trailing dims given by normalized_shape, with an elementwise affine of that shape.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(const Shape& normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  explicit LayerNorm(int64_t normalized_size, double eps = 1e-5, bool elementwise_affine = true)
      : LayerNorm(Shape{normalized_size}, eps, elementwise_affine) {}
  Tensor forward(const Tensor& input) override;
  void reset_parameters();

  Tensor weight, bias;  // normalized_shape, role norm; undefined without elementwise_affine

 private:
  Shape normalized_shape_;
  double eps_;
};

// Splits the channels (dim 1) into num_groups groups and normalizes each group of each example;
// per-channel affine. Keeps examples separate, unlike batch norm.
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();

  Tensor weight, bias;  // [num_channels], role norm; undefined without affine

 private:
  int64_t num_groups_, num_channels_;
  double eps_;
};

}  // namespace plateau::nn

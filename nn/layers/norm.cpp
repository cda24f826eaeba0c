#include "nn/layers/norm.h"

#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace plateau::nn {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

}  // namespace

BatchNorm::BatchNorm(std::string type_name, int64_t num_features, const BatchNormOptions& options, int64_t min_dims,
                     int64_t max_dims)
    : Module(std::move(type_name)),
      momentum(options.momentum),
      num_features_(num_features),
      options_(options),
      min_dims_(min_dims),
      max_dims_(max_dims) {
  if (num_features <= 0) fail(this->type_name() + " needs num_features > 0, got " + std::to_string(num_features));
  if (momentum && !(*momentum >= 0.0 && *momentum <= 1.0))
    fail(this->type_name() + " needs momentum in [0, 1] or nullopt (cumulative average), got " +
         std::to_string(*momentum));
  if (options.affine) {
    weight = empty({num_features}, default_dtype());
    bias = empty({num_features}, default_dtype());
    register_parameter("weight", weight, ParamRole::norm);
    register_parameter("bias", bias, ParamRole::norm);
  }
  if (options.track_running_stats) {
    running_mean = empty({num_features}, default_dtype());
    running_var = empty({num_features}, default_dtype());
    num_batches_tracked = zeros({}, DType::i64);
    register_buffer("running_mean", running_mean);
    register_buffer("running_var", running_var);
    register_buffer("num_batches_tracked", num_batches_tracked);
  }
  reset_parameters();
}

void BatchNorm::reset_running_stats() {
  if (!options_.track_running_stats) return;
  NoGradGuard no_grad;
  fill_(running_mean, 0.0);
  fill_(running_var, 1.0);
  fill_(num_batches_tracked, 0.0);
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (options_.affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNorm::forward(const Tensor& input) {
  if (input.dim() < min_dims_ || input.dim() > max_dims_ || input.size(1) != num_features_) {
    std::string want = min_dims_ == 4 ? "[N, C, H, W]" : "[N, C] or [N, C, L]";
    fail(type_name() + "(" + std::to_string(num_features_) + ") needs an input " + want +
         " with C = " + std::to_string(num_features_) + ", got " + input.shape().str());
  }
  if (momentum && !(*momentum >= 0.0 && *momentum <= 1.0))
    fail(type_name() + ": momentum must be in [0, 1] or nullopt, got " + std::to_string(*momentum));
  const bool tracking = options_.track_running_stats;
  if (!is_training() && tracking)
    return batch_norm(input, running_mean, running_var, weight, bias, false, 0.0, options_.eps);
  // Training mode, or no running statistics to use: batch statistics.
  const bool update = is_training() && tracking && running_stats_update_enabled();
  if (!update) return batch_norm(input, {}, {}, weight, bias, true, 0.0, options_.eps);
  {
    NoGradGuard no_grad;
    add_(num_batches_tracked, ones({}, DType::i64));
  }
  const double factor = momentum ? *momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  return batch_norm(input, running_mean, running_var, weight, bias, true, factor, options_.eps);
}

LayerNorm::LayerNorm(const Shape& normalized_shape, double eps, bool elementwise_affine)
    : Module("LayerNorm"), normalized_shape_(normalized_shape), eps_(eps) {
  if (normalized_shape.empty() || normalized_shape.numel() <= 0)
    fail("LayerNorm needs a non-empty normalized_shape of positive sizes, got " + normalized_shape.str());
  if (elementwise_affine) {
    weight = empty(normalized_shape, default_dtype());
    bias = empty(normalized_shape, default_dtype());
    register_parameter("weight", weight, ParamRole::norm);
    register_parameter("bias", bias, ParamRole::norm);
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (!weight.defined()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) { return layer_norm(input, normalized_shape_, weight, bias, eps_); }

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine)
    : Module("GroupNorm"), num_groups_(num_groups), num_channels_(num_channels), eps_(eps) {
  if (num_groups <= 0 || num_channels <= 0 || num_channels % num_groups != 0)
    fail("GroupNorm needs num_groups dividing num_channels, got " + std::to_string(num_groups) + " groups of " +
         std::to_string(num_channels) + " channels");
  if (affine) {
    weight = empty({num_channels}, default_dtype());
    bias = empty({num_channels}, default_dtype());
    register_parameter("weight", weight, ParamRole::norm);
    register_parameter("bias", bias, ParamRole::norm);
  }
  reset_parameters();
}

void GroupNorm::reset_parameters() {
  if (!weight.defined()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor GroupNorm::forward(const Tensor& input) {
  if (input.dim() < 2 || input.size(1) != num_channels_)
    fail("GroupNorm(" + std::to_string(num_groups_) + ", " + std::to_string(num_channels_) + ") needs an input [N, " +
         std::to_string(num_channels_) + ", ...], got " + input.shape().str());
  return group_norm(input, num_groups_, weight, bias, eps_);
}

}  // namespace plateau::nn

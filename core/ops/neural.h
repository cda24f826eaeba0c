#pragma once
// Neural-network ops: activations with a dim, losses, convolution, pooling, normalization.
#include <array>
#include <optional>

#include "core/random/generator.h"
#include "core/tensor.h"

namespace plateau {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

enum class Reduction { none, mean, sum };

struct CrossEntropyOptions {
  Reduction reduction = Reduction::mean;
  int64_t ignore_index = -100;  // rows whose target equals this add nothing (class-index targets)
  double label_smoothing = 0.0;
  Tensor weight;  // optional per-class weights [C]
};
// logits [N, C] (or [N, C, d...]); target: class indices (i64, [N] or [N, d...]) or probabilities
// (same shape and dtype as logits). Matches torch.nn.functional.cross_entropy.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& options = {});
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// KL(target || input) with input given as log-probabilities (torch's kl_div);
// Reduction::mean averages over elements, batchmean over dim 0 is `batchmean`.
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean, bool log_target = false,
              bool batchmean = false);
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::mean, const Tensor& pos_weight = {});

struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};
// x [N, C, H, W], weight [O, C/groups, kH, kW], bias [O] optional.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dOptions& options = {});
// The two halves of conv2d's backward, each a differentiable op of its own (so conv has
// derivatives of any order): the gradient with respect to the input (of shape input_shape)...
Tensor conv2d_input_grad(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                         const Conv2dOptions& options);
// ...and with respect to the weight (of shape weight_shape).
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_output, const Shape& weight_shape,
                          const Conv2dOptions& options);

struct Pool2dOptions {
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{0, 0};  // 0: same as kernel
  std::array<int64_t, 2> padding{0, 0};
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options);  // count_include_pad, as torch's default
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// Batch norm over dim 1 of [N, C, ...]. In training mode it normalizes with batch statistics and,
// when running_mean/running_var are given, updates them in place (unbiased variance, momentum as
// torch). In eval mode it uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
// Normalizes over the trailing dims given by normalized_shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);
// Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& generator = default_generator());
// Rows of weight [V, D] picked by indices (i64, any shape) -> [..., D].
Tensor embedding(const Tensor& weight, const Tensor& indices);

}  // namespace plateau

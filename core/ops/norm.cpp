// Normalization layers as composites of mean, var, rsqrt, mul and add: every derivative (including
// the batch statistics' own) follows from those ops' rules.
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/grad_mode.h"
#include "core/autograd/node.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using namespace ops_detail;

namespace {

// A per-channel tensor [C] seen along dim 1 of a tensor of rank `rank`: [1, C, 1, ...].
Tensor channel_view(const Tensor& t, int64_t rank) {
  Shape s;
  for (int64_t d = 0; d < rank; ++d) s.push_back(d == 1 ? t.numel() : 1);
  return reshape(t, s);
}

void check_channel_param(const Tensor& t, const char* what, int64_t channels, const Tensor& x, const char* op) {
  if (!t.defined()) return;
  if (t.dim() != 1 || t.numel() != channels)
    fail(op, std::string(what) + " must be [" + std::to_string(channels) + "] (the channels, dim 1, of input " +
                 x.shape().str() + "), got " + t.shape().str());
  if (t.dtype() != x.dtype())
    fail(op, std::string(what) + " is " + dtype_name(t.dtype()) + " but the input is " + dtype_name(x.dtype()));
}

void check_input(const Tensor& x, int64_t min_rank, const char* op) {
  if (!x.defined()) fail(op, "input is undefined");
  if (!x.is_floating_point()) fail(op, std::string("input must be floating, got ") + dtype_name(x.dtype()));
  if (x.dim() < min_rank)
    fail(op, "input must have at least " + std::to_string(min_rank) + " dims, got shape " + x.shape().str());
}

// (x − mean) / sqrt(var + eps) over `dims`, with the biased variance.
Tensor standardize(const Tensor& x, const Dims& dims, double eps) {
  Tensor mu = mean(x, dims, true);
  Tensor v = var(x, dims, 0, true);
  return (x - mu) * rsqrt(v + eps);
}

Tensor affine(Tensor y, const Tensor& weight, const Tensor& bias) {
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

}  // namespace

namespace {

// Training-mode batch norm as one fused kernel (cuDNN), recorded as one node. Its backward is the
// fused kernel too, except under create_graph, where it is the composite's derivative written in
// recorded ops (statistics recomputed from x), so second derivatives flow as through the composite:
//   dx = γ·r·(g − mean(g) − x̂·mean(g·x̂)),  dγ = Σ g·x̂,  dβ = Σ g,  x̂ = (x − μ)·r, r = 1/sqrt(σ² + eps)
Tensor batch_norm_fused(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                        const Tensor& bias, double momentum, double eps) {
  const int64_t channels = x.size(1);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor batch_mean = empty({channels}, x.dtype(), x.device()), invstd = empty({channels}, x.dtype(), x.device());
  kernels::batch_norm_train_forward(x, weight.defined() ? weight.detach() : weight,
                                    bias.defined() ? bias.detach() : bias, running_mean, running_var, momentum, eps, y,
                                    batch_mean, invstd);
  if (running_mean.defined()) running_mean.bump_version(), running_var.bump_version();
  if (!autograd::should_record({&x, &weight, &bias})) return y;
  const bool has_weight = weight.defined(), has_bias = bias.defined();
  autograd::record("batch_norm", {x, weight, bias}, {&y}, {x, weight, batch_mean, invstd},
                   [eps, channels, has_weight, has_bias](autograd::BackwardContext& c) -> TensorList {
                     Tensor x = c.saved(0), w = c.saved(1);
                     const Tensor& g = c.grad();
                     if (!GradMode::is_enabled()) {
                       Tensor gx = empty(x.shape(), x.dtype(), x.device());
                       Tensor gw = empty({channels}, x.dtype(), x.device()),
                              gb = empty({channels}, x.dtype(), x.device());
                       kernels::batch_norm_train_backward(x, g, w, c.saved(2), c.saved(3), eps, gx, gw, gb);
                       return {gx, has_weight ? gw : Tensor(), has_bias ? gb : Tensor()};
                     }
                     Dims dims{0};
                     for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
                     const double count = static_cast<double>(x.numel() / channels);
                     Tensor r = rsqrt(var(x, dims, 0, true) + eps);
                     Tensor xhat = (x - mean(x, dims, true)) * r;
                     Tensor g_sum = sum(g, dims, true), gx_sum = sum(g * xhat, dims, true);
                     Tensor gx = (g - g_sum / count - xhat * (gx_sum / count)) * r;
                     if (has_weight) gx = gx * channel_view(w, x.dim());
                     return {gx, has_weight ? reshape(gx_sum, {channels}) : Tensor(),
                             has_bias ? reshape(g_sum, {channels}) : Tensor()};
                   })
      .examples(autograd::ExampleMap::mixes);
  return y;
}

}  // namespace

// train: y = (x − μ_B) / sqrt(σ²_B + eps)·γ + β over dims {0, 2, 3, ...}; eval: the running
// statistics replace μ_B, σ²_B. Gradients flow through μ_B and σ²_B. Every training-mode call that
// passes running statistics updates them in place (not recorded): running ← (1 − m)·running + m·stat,
// with the unbiased variance; a caller that must not update them (a second pass) passes none.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  autograd::OpScope scope("batch_norm");
  const char* op = "batch_norm";
  check_input(x, 2, op);
  const int64_t channels = x.size(1);
  check_channel_param(running_mean, "running_mean", channels, x, op);
  check_channel_param(running_var, "running_var", channels, x, op);
  check_channel_param(weight, "weight", channels, x, op);
  check_channel_param(bias, "bias", channels, x, op);
  if (running_mean.defined() != running_var.defined()) fail(op, "pass both running_mean and running_var, or neither");
  Dims dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  const Tensor w = weight.defined() ? channel_view(weight, x.dim()) : Tensor();
  const Tensor b = bias.defined() ? channel_view(bias, x.dim()) : Tensor();

  if (!training) {
    if (!running_mean.defined()) fail(op, "eval mode (training = false) needs running_mean and running_var");
    Tensor y = (x - channel_view(running_mean, x.dim())) * rsqrt(channel_view(running_var, x.dim()) + eps);
    return affine(y, w, b);
  }
  const int64_t count = channels == 0 ? 0 : x.numel() / channels;
  if (count <= 1)
    fail(op, "training mode needs more than 1 value per channel, got input " + x.shape().str() +
                 "; use a larger batch or eval mode");
  if (kernels::has_fused_batch_norm(x))
    return batch_norm_fused(x, running_mean, running_var, weight, bias, momentum, eps);
  Tensor mu = mean(x, dims, true);
  Tensor v = var(x, dims, 0, true);
  Tensor y = (x - mu) * rsqrt(v + eps);
  if (running_mean.defined()) {
    NoGradGuard no_grad;
    Tensor rm = running_mean, rv = running_var;
    const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
    mul_(rm, 1.0 - momentum);
    add_(rm, reshape(mu.detach(), {channels}), momentum);
    mul_(rv, 1.0 - momentum);
    add_(rv, reshape(v.detach(), {channels}) * unbias, momentum);
  }
  return affine(y, w, b);
}

PLATEAU_REGISTER_OP(
    {"batch_norm",
     "through y = (x − μ)·rsqrt(σ² + eps)·γ + β with μ, σ² of the batch",
     {{"training, affine, running stats",
       {registry::real({3, 2, 2, 2}), registry::real({2}), registry::real({2})},
       [](const TensorList& in) -> TensorList {
         Tensor rm = zeros({2}, in[0].dtype()), rv = ones({2}, in[0].dtype());
         return {batch_norm(in[0], rm, rv, in[1], in[2], true)};
       }},
      {"training, [N, C], no affine",
       {registry::real({5, 3})},
       [](const TensorList& in) -> TensorList { return {batch_norm(in[0], {}, {}, {}, {}, true, 0.1, 1e-3)}; }},
      {"eval",
       {registry::real({4, 3}), registry::constant({3}), registry::constant({3}, 0.5, 2.0), registry::real({3}),
        registry::real({3})},
       [](const TensorList& in) -> TensorList { return {batch_norm(in[0], in[1], in[2], in[3], in[4], false)}; }}}});

// y = (x − μ) / sqrt(σ² + eps)·γ + β with μ, σ² (biased) over the trailing normalized_shape dims
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  autograd::OpScope scope("layer_norm");
  const char* op = "layer_norm";
  check_input(x, 1, op);
  const int64_t k = normalized_shape.size(), lead = x.dim() - k;
  bool ok = k >= 1 && lead >= 0;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.shape()[lead + i] == normalized_shape[i];
  if (!ok)
    fail(op, "normalized_shape " + normalized_shape.str() + " must be a non-empty suffix of the input shape " +
                 x.shape().str());
  for (const auto& [t, what] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (t->defined() && t->shape() != normalized_shape)
      fail(op, std::string(what) + " must have the normalized shape " + normalized_shape.str() + ", got " +
                   t->shape().str());
  }
  Dims dims;
  for (int64_t d = lead; d < x.dim(); ++d) dims.push_back(d);
  return affine(standardize(x, dims, eps), weight, bias);
}

PLATEAU_REGISTER_OP({"layer_norm",
                     "through y = (x − μ)·rsqrt(σ² + eps)·γ + β over the trailing dims",
                     {{"last dim, affine",
                       {registry::real({3, 4}), registry::real({4}), registry::real({4})},
                       [](const TensorList& in) -> TensorList { return {layer_norm(in[0], {4}, in[1], in[2])}; }},
                      {"last two dims, no affine", {registry::real({2, 3, 4})}, [](const TensorList& in) -> TensorList {
                         return {layer_norm(in[0], {3, 4})};
                       }}}});

// y = (x − μ_g) / sqrt(σ²_g + eps)·γ + β, statistics per (example, group of C/G channels)
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  autograd::OpScope scope("group_norm");
  const char* op = "group_norm";
  check_input(x, 2, op);
  const int64_t n = x.size(0), channels = x.size(1);
  if (num_groups < 1 || channels % num_groups != 0)
    fail(op, "the " + std::to_string(channels) + " channels of input " + x.shape().str() +
                 " must split into num_groups = " + std::to_string(num_groups) + " equal groups");
  check_channel_param(weight, "weight", channels, x, op);
  check_channel_param(bias, "bias", channels, x, op);
  const int64_t per_group = n * num_groups == 0 ? 0 : x.numel() / (n * num_groups);
  Tensor y = reshape(standardize(reshape(x, {n, num_groups, per_group}), {2}, eps), x.shape());
  return affine(y, weight.defined() ? channel_view(weight, x.dim()) : Tensor(),
                bias.defined() ? channel_view(bias, x.dim()) : Tensor());
}

PLATEAU_REGISTER_OP({"group_norm",
                     "through y = (x − μ_g)·rsqrt(σ²_g + eps)·γ + β per group",
                     {{"2 groups, affine",
                       {registry::real({2, 4, 3}), registry::real({4}), registry::real({4})},
                       [](const TensorList& in) -> TensorList { return {group_norm(in[0], 2, in[1], in[2])}; }},
                      {"3 groups of 2 channels, 2x2 planes",
                       {registry::real({2, 6, 2, 2})},
                       [](const TensorList& in) -> TensorList { return {group_norm(in[0], 3)}; }}}});

}  // namespace plateau

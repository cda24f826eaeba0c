#pragma once
// Conv2d and the 2-d pooling layers. Options are core's (plateau::Conv2dOptions, Pool2dOptions):
//
//   nn::Conv2d conv(64, 128, 3, {.stride = {2, 2}, .padding = {1, 1}}, /*bias=*/false);
#include <array>

#include "nn/module.h"

namespace plateau::nn {

// x [N, C_in, H, W] -> [N, C_out, H', W']. Weight [C_out, C_in/groups, kH, kW] and bias [C_out]
// uniform on ±1/√fan_in, fan_in = C_in/groups·kH·kW (PyTorch's defaults).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
         const Conv2dOptions& options = {}, bool bias = true);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dOptions& options = {},
         bool bias = true)
      : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options, bias) {}
  Tensor forward(const Tensor& input) override;
  void reset_parameters(Generator& generator = default_generator());
  const Conv2dOptions& options() const { return options_; }

  Tensor weight;  // [out_channels, in_channels / groups, kH, kW]
  Tensor bias;    // [out_channels]; undefined without bias

 private:
  Conv2dOptions options_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dOptions& options);
  // Square window; stride 0 means the kernel size, as PyTorch's stride=None.
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& input) override;

 private:
  Pool2dOptions options_;
};

// Padding counts towards the average (count_include_pad, PyTorch's default).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dOptions& options);
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& input) override;

 private:
  Pool2dOptions options_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::array<int64_t, 2> output_size);
  explicit AdaptiveAvgPool2d(int64_t output_size) : AdaptiveAvgPool2d({output_size, output_size}) {}
  Tensor forward(const Tensor& input) override;

 private:
  std::array<int64_t, 2> output_size_;
};

}  // namespace plateau::nn

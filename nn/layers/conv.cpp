#include "nn/layers/conv.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace plateau::nn {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

Pool2dOptions square(int64_t kernel, int64_t stride, int64_t padding) {
  return {{kernel, kernel}, {stride, stride}, {padding, padding}};
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
               const Conv2dOptions& options, bool bias)
    : Module("Conv2d"), options_(options) {
  const std::string name = "Conv2d(" + std::to_string(in_channels) + ", " + std::to_string(out_channels) + ")";
  if (in_channels <= 0 || out_channels <= 0 || kernel_size[0] <= 0 || kernel_size[1] <= 0)
    fail(name + " needs positive channels and kernel size, got kernel " + std::to_string(kernel_size[0]) + "x" +
         std::to_string(kernel_size[1]));
  if (options.groups <= 0 || in_channels % options.groups != 0 || out_channels % options.groups != 0)
    fail(name + ": groups = " + std::to_string(options.groups) + " must divide both channel counts");
  weight = empty({out_channels, in_channels / options.groups, kernel_size[0], kernel_size[1]}, default_dtype());
  register_parameter("weight", weight, ParamRole::weight);
  if (bias) {
    this->bias = empty({out_channels}, default_dtype());
    register_parameter("bias", this->bias, ParamRole::bias);
  }
  reset_parameters();
}

void Conv2d::reset_parameters(Generator& generator) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::fan_in, init::Nonlinearity::leaky_relu, generator);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::calculate_fan_in_and_fan_out(weight).first));
    init::uniform_(bias, -bound, bound, generator);
  }
}

Tensor Conv2d::forward(const Tensor& input) {
  const int64_t in_channels = weight.size(1) * options_.groups;
  if (input.dim() != 4 || input.size(1) != in_channels)
    fail("Conv2d(" + std::to_string(in_channels) + ", " + std::to_string(weight.size(0)) + ") needs an input [N, " +
         std::to_string(in_channels) + ", H, W], got " + input.shape().str());
  return conv2d(input, weight, bias, options_);
}

MaxPool2d::MaxPool2d(const Pool2dOptions& options) : Module("MaxPool2d"), options_(options) {}
MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : MaxPool2d(square(kernel_size, stride, padding)) {}
Tensor MaxPool2d::forward(const Tensor& input) { return max_pool2d(input, options_); }

AvgPool2d::AvgPool2d(const Pool2dOptions& options) : Module("AvgPool2d"), options_(options) {}
AvgPool2d::AvgPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : AvgPool2d(square(kernel_size, stride, padding)) {}
Tensor AvgPool2d::forward(const Tensor& input) { return avg_pool2d(input, options_); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::array<int64_t, 2> output_size)
    : Module("AdaptiveAvgPool2d"), output_size_(output_size) {}
Tensor AdaptiveAvgPool2d::forward(const Tensor& input) { return adaptive_avg_pool2d(input, output_size_); }

}  // namespace plateau::nn

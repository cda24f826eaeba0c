#pragma once
// Parameter initialisation, as torch.nn.init: each function fills a tensor in place (under a
// NoGradGuard, so parameters that require grad can be filled) from a generator and returns it.
//
//   nn::init::kaiming_normal_(conv->weight, 0.0, nn::init::FanMode::fan_out, nn::init::Nonlinearity::relu, gen);
//   nn::init::zeros_(conv->bias);
//
// Layers initialise themselves as PyTorch's layers do (see each layer's reset_parameters()), in the
// dtype given by nn::default_dtype().
#include <utility>

#include "core/core.h"

namespace plateau::nn {

// The dtype layers create their parameters and buffers in (f32 unless changed), as
// torch.set_default_dtype: build a model in f64 under a DefaultDTypeGuard.
DType default_dtype();
void set_default_dtype(DType dtype);
class DefaultDTypeGuard {
 public:
  explicit DefaultDTypeGuard(DType dtype);
  ~DefaultDTypeGuard();
  DefaultDTypeGuard(const DefaultDTypeGuard&) = delete;
  DefaultDTypeGuard& operator=(const DefaultDTypeGuard&) = delete;

 private:
  DType prev_;
};

namespace init {

enum class Nonlinearity { linear, conv, sigmoid, tanh, relu, leaky_relu, selu };
enum class FanMode { fan_in, fan_out };

// The recommended gain for a nonlinearity: 1 (linear, conv, sigmoid), 5/3 (tanh), √2 (relu),
// √(2 / (1 + slope²)) (leaky_relu with negative slope `param`), 3/4 (selu).
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);
// fan_in = size(1)·receptive field, fan_out = size(0)·receptive field (receptive field: the product of
// the dims after the first two). Needs at least 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor);

Tensor uniform_(Tensor tensor, double low = 0.0, double high = 1.0, Generator& generator = default_generator());
Tensor normal_(Tensor tensor, double mean = 0.0, double std = 1.0, Generator& generator = default_generator());
Tensor constant_(Tensor tensor, double value);
Tensor zeros_(Tensor tensor);
Tensor ones_(Tensor tensor);

// He et al. 2015: std = gain / √fan, with gain from the nonlinearity and `a` (the leaky_relu slope).
// Uniform on ±√3·std; with a = √5 this is PyTorch's default for Linear and Conv weights, ±1/√fan_in.
Tensor kaiming_uniform_(Tensor tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu,
                        Generator& generator = default_generator());
Tensor kaiming_normal_(Tensor tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                       Nonlinearity nonlinearity = Nonlinearity::leaky_relu,
                       Generator& generator = default_generator());
// Glorot & Bengio 2010: std = gain·√(2 / (fan_in + fan_out)); uniform on ±√3·std.
Tensor xavier_uniform_(Tensor tensor, double gain = 1.0, Generator& generator = default_generator());
Tensor xavier_normal_(Tensor tensor, double gain = 1.0, Generator& generator = default_generator());

}  // namespace init
}  // namespace plateau::nn

#include "nn/init.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace plateau::nn {

namespace {

thread_local DType default_dtype_ = DType::f32;

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

void check_target(const Tensor& t, const char* what) {
  if (!t.defined()) fail(std::string("init::") + what + " got an undefined tensor");
  if (!t.is_floating_point())
    fail(std::string("init::") + what + " needs a floating tensor, got " + dtype_name(t.dtype()) + " of shape " +
         t.shape().str());
}

// Writes src into t's storage; not recorded, so a parameter that requires grad can be filled.
Tensor fill_from(Tensor t, const Tensor& src) {
  NoGradGuard no_grad;
  copy_(t, src);
  return t;
}

int64_t fan(const Tensor& t, init::FanMode mode) {
  auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(t);
  return mode == init::FanMode::fan_in ? fan_in : fan_out;
}

}  // namespace

DType default_dtype() { return default_dtype_; }
void set_default_dtype(DType dtype) {
  if (!is_floating(dtype)) fail(std::string("set_default_dtype needs a floating dtype, got ") + dtype_name(dtype));
  default_dtype_ = dtype;
}
DefaultDTypeGuard::DefaultDTypeGuard(DType dtype) : prev_(default_dtype_) { set_default_dtype(dtype); }
DefaultDTypeGuard::~DefaultDTypeGuard() { default_dtype_ = prev_; }

namespace init {

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::conv:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::selu: return 0.75;
  }
  return 1.0;
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  if (!tensor.defined() || tensor.dim() < 2)
    fail("fan in and fan out need a tensor of at least 2 dims, got " +
         (tensor.defined() ? tensor.shape().str() : std::string("an undefined tensor")));
  int64_t receptive = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor uniform_(Tensor tensor, double low, double high, Generator& generator) {
  check_target(tensor, "uniform_");
  return fill_from(tensor, uniform(tensor.shape(), low, high, tensor.dtype(), generator, tensor.device()));
}

Tensor normal_(Tensor tensor, double mean, double std, Generator& generator) {
  check_target(tensor, "normal_");
  return fill_from(tensor, normal(tensor.shape(), mean, std, tensor.dtype(), generator, tensor.device()));
}

Tensor constant_(Tensor tensor, double value) {
  check_target(tensor, "constant_");
  NoGradGuard no_grad;
  fill_(tensor, value);
  return tensor;
}
Tensor zeros_(Tensor tensor) { return constant_(tensor, 0.0); }
Tensor ones_(Tensor tensor) { return constant_(tensor, 1.0); }

Tensor kaiming_uniform_(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator& generator) {
  check_target(tensor, "kaiming_uniform_");
  const double bound =
      std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(tensor, mode)));
  return uniform_(tensor, -bound, bound, generator);
}

Tensor kaiming_normal_(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator& generator) {
  check_target(tensor, "kaiming_normal_");
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(tensor, mode)));
  return normal_(tensor, 0.0, std, generator);
}

Tensor xavier_uniform_(Tensor tensor, double gain, Generator& generator) {
  check_target(tensor, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(tensor, -bound, bound, generator);
}

Tensor xavier_normal_(Tensor tensor, double gain, Generator& generator) {
  check_target(tensor, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  return normal_(tensor, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), generator);
}

}  // namespace init
}  // namespace plateau::nn

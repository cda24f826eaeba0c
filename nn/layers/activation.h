#pragma once
// Activations and Dropout: modules without parameters.
#include "nn/module.h"

namespace plateau::nn {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& input) override { return relu(input); }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& input) override { return leaky_relu(input, negative_slope_); }

 private:
  double negative_slope_;
};

class GELU : public Module {
 public:
  explicit GELU(GeluApproximation approximate = GeluApproximation::none) : Module("GELU"), approximate_(approximate) {}
  Tensor forward(const Tensor& input) override { return gelu(input, approximate_); }

 private:
  GeluApproximation approximate_;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& input) override { return tanh(input); }
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& input) override { return sigmoid(input); }
};

// log(1 + exp(β x)) / β, linear above x·β > threshold.
class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0)
      : Module("Softplus"), beta_(beta), threshold_(threshold) {}
  Tensor forward(const Tensor& input) override { return softplus(input, beta_, threshold_); }

 private:
  double beta_, threshold_;
};

// Inverted dropout: in training mode each element is zeroed with probability p and the rest scaled by
// 1/(1 − p); identity in eval mode. Masks come from the generator given here (the default generator
// when none), so a run that restores the generator's offset replays the same masks.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* generator = nullptr);
  Tensor forward(const Tensor& input) override;
  double p() const { return p_; }
  Generator& generator() const { return *generator_; }
  void set_generator(Generator* generator) { generator_ = generator ? generator : &default_generator(); }

 private:
  double p_;
  Generator* generator_;
};

}  // namespace plateau::nn

#include "nn/layers/linear.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace plateau::nn {

namespace {

void check_positive(int64_t value, const char* what, const char* layer) {
  if (value <= 0)
    throw std::invalid_argument(std::string("plateau: ") + layer + " needs " + what + " > 0, got " +
                                std::to_string(value));
}

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : Module("Linear"), in_features_(in_features), out_features_(out_features) {
  check_positive(in_features, "in_features", "Linear");
  check_positive(out_features, "out_features", "Linear");
  weight = empty({out_features, in_features}, default_dtype());
  register_parameter("weight", weight, ParamRole::weight);
  if (bias) {
    this->bias = empty({out_features}, default_dtype());
    register_parameter("bias", this->bias, ParamRole::bias);
  }
  reset_parameters();
}

void Linear::reset_parameters(Generator& generator) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::fan_in, init::Nonlinearity::leaky_relu, generator);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
    init::uniform_(bias, -bound, bound, generator);
  }
}

Tensor Linear::forward(const Tensor& input) {
  if (input.dim() < 1 || input.size(-1) != in_features_)
    throw std::invalid_argument("plateau: Linear(" + std::to_string(in_features_) + ", " +
                                std::to_string(out_features_) + ") needs an input whose last dim is " +
                                std::to_string(in_features_) + ", got " + input.shape().str());
  return linear(input, weight, bias);
}

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim) : Module("Embedding") {
  check_positive(num_embeddings, "num_embeddings", "Embedding");
  check_positive(embedding_dim, "embedding_dim", "Embedding");
  weight = empty({num_embeddings, embedding_dim}, default_dtype());
  register_parameter("weight", weight, ParamRole::embedding);
  reset_parameters();
}

void Embedding::reset_parameters(Generator& generator) { init::normal_(weight, 0.0, 1.0, generator); }

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices); }

Flatten::Flatten(int64_t start_dim, int64_t end_dim) : Module("Flatten"), start_dim_(start_dim), end_dim_(end_dim) {}

Tensor Flatten::forward(const Tensor& input) { return flatten(input, start_dim_, end_dim_); }

}  // namespace plateau::nn

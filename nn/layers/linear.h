#pragma once
// Linear, Embedding, Flatten and Identity.
#include "nn/module.h"

namespace plateau::nn {

// y = x Wᵀ + b over the last dim. Weight [out, in] and bias [out] uniform on ±1/√in (PyTorch's
// kaiming_uniform(a = √5) and its bias rule).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  void reset_parameters(Generator& generator = default_generator());
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  Tensor weight;  // [out_features, in_features]
  Tensor bias;    // [out_features]; undefined without bias

 private:
  int64_t in_features_, out_features_;
};

// Rows of a [num_embeddings, embedding_dim] table, picked by i64 indices of any shape; N(0, 1) init.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override;
  void reset_parameters(Generator& generator = default_generator());
  int64_t num_embeddings() const { return weight.size(0); }
  int64_t embedding_dim() const { return weight.size(1); }

  Tensor weight;  // [num_embeddings, embedding_dim], role embedding
};

// Flattens dims start_dim..end_dim into one (PyTorch's defaults keep the batch dim).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
  Tensor forward(const Tensor& input) override;

 private:
  int64_t start_dim_, end_dim_;
};

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& input) override { return input; }
};

}  // namespace plateau::nn

#pragma once
// A small transformer encoder classifier over token sequences: token embedding plus a learned
// positional parameter, post-norm TransformerEncoderLayers, mean pooling over positions, a linear
// head. Defaults (vocabulary 256, length ≤ 64, d_model 64, 4 heads, feed-forward 128, 2 layers,
// dropout 0.1) give 88,074 parameters for 10 classes:
//   embedding 256·64 = 16,384; pos_embedding 64·64 = 4,096;
//   per layer 3·64·64 + 3·64 (in_proj) + 64·64 + 64 (out_proj) + 64·128 + 128 + 128·64 + 64
//             (linear1, linear2) + 4·64 (norm1, norm2) = 33,472, two layers 66,944;
//   fc 64·10 + 10 = 650.
#include <memory>

#include "nn/layers/linear.h"
#include "nn/layers/sequential.h"
#include "nn/layers/transformer.h"

namespace plateau::nn {

struct TransformerClassifierOptions {
  int64_t vocab_size = 256;
  int64_t max_len = 64;
  int64_t d_model = 64;
  int64_t nhead = 4;
  int64_t dim_feedforward = 128;
  int64_t num_layers = 2;
  double dropout = 0.1;
  int64_t num_classes = 10;
  Generator* generator = nullptr;  // for dropout; the default generator when null
};

class TransformerClassifier : public Module {
 public:
  explicit TransformerClassifier(const TransformerClassifierOptions& options = {});
  // tokens: i64 [N, L], L ≤ max_len, values < vocab_size -> logits [N, num_classes].
  Tensor forward(const Tensor& tokens) override;
  const TransformerClassifierOptions& options() const { return options_; }

  std::shared_ptr<Embedding> embedding;
  Tensor pos_embedding;                // [1, max_len, d_model], N(0, 0.02²), role embedding
  std::shared_ptr<Sequential> layers;  // "layers.0", ... of TransformerEncoderLayer
  std::shared_ptr<Linear> fc;

 private:
  TransformerClassifierOptions options_;
};

}  // namespace plateau::nn

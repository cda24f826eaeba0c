#include "nn/models/transformer_classifier.h"

#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace plateau::nn {

TransformerClassifier::TransformerClassifier(const TransformerClassifierOptions& options)
    : Module("TransformerClassifier"), options_(options) {
  if (options.max_len <= 0 || options.num_layers <= 0)
    throw std::invalid_argument("plateau: TransformerClassifier needs max_len > 0 and num_layers > 0, got " +
                                std::to_string(options.max_len) + " and " + std::to_string(options.num_layers));
  embedding = register_module("embedding", std::make_shared<Embedding>(options.vocab_size, options.d_model));
  pos_embedding = empty({1, options.max_len, options.d_model}, default_dtype());
  register_parameter("pos_embedding", pos_embedding, ParamRole::embedding);
  init::normal_(pos_embedding, 0.0, 0.02);
  layers = register_module("layers", std::make_shared<Sequential>());
  TransformerEncoderLayerOptions layer_options;
  layer_options.dim_feedforward = options.dim_feedforward;
  layer_options.dropout = options.dropout;
  layer_options.generator = options.generator;
  for (int64_t i = 0; i < options.num_layers; ++i)
    layers->push_back(std::make_shared<TransformerEncoderLayer>(options.d_model, options.nhead, layer_options));
  fc = register_module("fc", std::make_shared<Linear>(options.d_model, options.num_classes));
}

Tensor TransformerClassifier::forward(const Tensor& tokens) {
  if (tokens.dim() != 2 || tokens.size(1) > options_.max_len)
    throw std::invalid_argument("plateau: TransformerClassifier needs i64 tokens [N, L] with L <= max_len = " +
                                std::to_string(options_.max_len) + ", got " + tokens.shape().str());
  Tensor x = (*embedding)(tokens) + slice(pos_embedding, 1, 0, tokens.size(1));
  x = (*layers)(x);
  return (*fc)(mean(x, {1}));
}

}  // namespace plateau::nn

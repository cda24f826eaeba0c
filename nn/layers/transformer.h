#pragma once
// MultiheadAttention and TransformerEncoderLayer with PyTorch's parameter names, so PyTorch state
// dicts load: self_attn.in_proj_weight, self_attn.in_proj_bias, self_attn.out_proj.{weight,bias},
// linear1, linear2, norm1, norm2. Sequences are batch-first, [N, L, E] (PyTorch's batch_first=True),
// so dim 0 stays the example dim.
#include <memory>

#include "nn/layers/activation.h"
#include "nn/layers/linear.h"
#include "nn/layers/norm.h"

namespace plateau::nn {

struct MultiheadAttentionOptions {
  double dropout = 0.0;  // on the attention weights, in training mode
  bool bias = true;
  Generator* generator = nullptr;  // for that dropout; the default generator when null
};

// out = out_proj(concat_h softmax(q_h k_hᵀ / √d + mask) v_h), with q_h, k_h, v_h the heads' slices of
// the input projections. in_proj_weight is Xavier-uniform, in_proj_bias and out_proj.bias are zero,
// out_proj.weight is a Linear's default (PyTorch's init).
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, const MultiheadAttentionOptions& options = {});
  // Self-attention: forward(x, x, x). The one-argument call (operator()) runs forward hooks.
  Tensor forward(const Tensor& x) override;
  // query [N, L, E], key and value [N, S, E] -> [N, L, E]. attn_mask, optional: [L, S] or
  // [N·num_heads, L, S], bool (true: not attended) or floating (added to the scores).
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask = {});
  void reset_parameters(Generator& generator = default_generator());
  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_heads() const { return num_heads_; }

  Tensor in_proj_weight;  // [3E, E]: the query, key and value projections stacked
  Tensor in_proj_bias;    // [3E]; undefined without bias
  std::shared_ptr<Linear> out_proj;

 private:
  int64_t embed_dim_, num_heads_;
  MultiheadAttentionOptions options_;
};

enum class TransformerActivation { relu, gelu };

struct TransformerEncoderLayerOptions {
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  TransformerActivation activation = TransformerActivation::relu;
  double layer_norm_eps = 1e-5;
  // Pre-norm (x + f(norm(x))) instead of post-norm (norm(x + f(x))), PyTorch's norm_first.
  bool norm_first = false;
  Generator* generator = nullptr;  // for every dropout in the layer; the default generator when null
};

// Self-attention then a feed-forward block (linear1, activation, dropout, linear2), each with a residual
// connection, dropout and layer norm, as torch.nn.TransformerEncoderLayer.
class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, const TransformerEncoderLayerOptions& options = {});
  Tensor forward(const Tensor& src) override;  // [N, L, d_model] -> [N, L, d_model]

  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;

 private:
  Tensor self_attention_block(const Tensor& x);
  Tensor feed_forward_block(const Tensor& x);
  TransformerEncoderLayerOptions options_;
};

}  // namespace plateau::nn

#include "nn/layers/transformer.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace plateau::nn {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, const MultiheadAttentionOptions& options)
    : Module("MultiheadAttention"), embed_dim_(embed_dim), num_heads_(num_heads), options_(options) {
  if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0)
    fail("MultiheadAttention needs num_heads dividing embed_dim, got embed_dim " + std::to_string(embed_dim) +
         " and num_heads " + std::to_string(num_heads));
  if (!(options.dropout >= 0.0 && options.dropout <= 1.0))
    fail("MultiheadAttention needs dropout in [0, 1], got " + std::to_string(options.dropout));
  in_proj_weight = empty({3 * embed_dim, embed_dim}, default_dtype());
  register_parameter("in_proj_weight", in_proj_weight, ParamRole::weight);
  if (options.bias) {
    in_proj_bias = empty({3 * embed_dim}, default_dtype());
    register_parameter("in_proj_bias", in_proj_bias, ParamRole::bias);
  }
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, options.bias));
  if (!options_.generator) options_.generator = &default_generator();
  reset_parameters();
}

void MultiheadAttention::reset_parameters(Generator& generator) {
  // As PyTorch's _reset_parameters: out_proj.weight keeps the Linear default drawn at construction.
  init::xavier_uniform_(in_proj_weight, 1.0, generator);
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
}

Tensor MultiheadAttention::forward(const Tensor& x) { return forward(x, x, x); }

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& attn_mask) {
  const int64_t e = embed_dim_, h = num_heads_, d = e / h;
  auto check = [&](const Tensor& t, const char* what) {
    if (t.dim() != 3 || t.size(2) != e || t.size(0) != query.size(0))
      fail(std::string("MultiheadAttention(") + std::to_string(e) + ", " + std::to_string(h) + ") needs " + what +
           " [N, L, " + std::to_string(e) + "] (batch first) with N = " +
           std::to_string(query.dim() > 0 ? query.size(0) : 0) + ", got " + t.shape().str());
  };
  check(query, "a query");
  check(key, "a key");
  check(value, "a value");
  if (key.size(1) != value.size(1))
    fail("MultiheadAttention: key " + key.shape().str() + " and value " + value.shape().str() +
         " need the same length");
  const int64_t n = query.size(0), l = query.size(1), s = key.size(1);

  Tensor q, k, v;
  if (query.is_same(key) && key.is_same(value)) {
    // Self-attention: one matrix product with the packed weight instead of three.
    Tensor qkv = linear(query, in_proj_weight, in_proj_bias);
    q = slice(qkv, 2, 0, e);
    k = slice(qkv, 2, e, 2 * e);
    v = slice(qkv, 2, 2 * e, 3 * e);
  } else {
    auto part = [&](const Tensor& t, int64_t i) {
      Tensor b = in_proj_bias.defined() ? slice(in_proj_bias, 0, i * e, (i + 1) * e) : Tensor();
      return linear(t, slice(in_proj_weight, 0, i * e, (i + 1) * e), b);
    };
    q = part(query, 0);
    k = part(key, 1);
    v = part(value, 2);
  }
  // [N, len, E] -> [N, H, len, d]
  auto heads = [&](const Tensor& t, int64_t len) { return transpose(reshape(t, {n, len, h, d}), 1, 2); };
  q = heads(q, l);
  k = heads(k, s);
  v = heads(v, s);

  Tensor scores = matmul(q * (1.0 / std::sqrt(static_cast<double>(d))), transpose(k, 2, 3));  // [N, H, L, S]
  if (attn_mask.defined()) {
    Tensor mask = attn_mask;
    if (mask.dim() == 3 && mask.size(0) == n * h && mask.size(1) == l && mask.size(2) == s)
      mask = reshape(mask, {n, h, l, s});
    else if (!(mask.dim() == 2 && mask.size(0) == l && mask.size(1) == s))
      fail("MultiheadAttention: attn_mask must be [L, S] = [" + std::to_string(l) + ", " + std::to_string(s) +
           "] or [N·num_heads, L, S], got " + attn_mask.shape().str());
    if (mask.dtype() == DType::b8)
      scores = masked_fill(scores, mask, -std::numeric_limits<double>::infinity());
    else
      scores = scores + mask.to(scores.dtype());
  }
  Tensor attn = dropout(softmax(scores, -1), options_.dropout, is_training(), *options_.generator);
  Tensor out = reshape(transpose(matmul(attn, v), 1, 2), {n, l, e});
  return (*out_proj)(out);
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead,
                                                 const TransformerEncoderLayerOptions& options)
    : Module("TransformerEncoderLayer"), options_(options) {
  if (options.dim_feedforward <= 0)
    fail("TransformerEncoderLayer needs dim_feedforward > 0, got " + std::to_string(options.dim_feedforward));
  // Registration order as PyTorch's, so named_parameters lists the same order.
  self_attn = register_module("self_attn",
                              std::make_shared<MultiheadAttention>(
                                  d_model, nhead, MultiheadAttentionOptions{options.dropout, true, options.generator}));
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, options.dim_feedforward));
  dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout, options.generator));
  linear2 = register_module("linear2", std::make_shared<Linear>(options.dim_feedforward, d_model));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model, options.layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model, options.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(options.dropout, options.generator));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(options.dropout, options.generator));
}

Tensor TransformerEncoderLayer::self_attention_block(const Tensor& x) { return (*dropout1)((*self_attn)(x)); }

Tensor TransformerEncoderLayer::feed_forward_block(const Tensor& x) {
  Tensor y = (*linear1)(x);
  y = options_.activation == TransformerActivation::gelu ? gelu(y) : relu(y);
  return (*dropout2)((*linear2)((*dropout)(y)));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src) {
  Tensor x = src;
  if (options_.norm_first) {
    x = x + self_attention_block((*norm1)(x));
    return x + feed_forward_block((*norm2)(x));
  }
  x = (*norm1)(x + self_attention_block(x));
  return (*norm2)(x + feed_forward_block(x));
}

}  // namespace plateau::nn

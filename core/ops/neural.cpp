// Activations along a dim (softmax, log_softmax), dropout and embedding.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/autograd/function.h"
#include "core/autograd/per_example.h"
#include "core/autograd/registry.h"
#include "core/backend/kernels.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

namespace {

Tensor softmax_forward(const Tensor& x, int64_t dim, bool log, const char* name) {
  if (!x.is_floating_point())
    throw std::invalid_argument(std::string("plateau: ") + name + " needs a floating tensor, got " +
                                dtype_name(x.dtype()) + "; convert it with to_dtype first");
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), name);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  kernels::softmax(x, y, x.dim() == 0 ? 0 : d, log);
  return y;
}

int64_t softmax_dim(const Tensor& x, int64_t dim) { return x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "softmax"); }

// Sums over `dim`, keeping it (a no-op reduction for 0-d tensors).
Tensor sum_keep(const Tensor& t, int64_t dim) { return t.dim() == 0 ? t : sum(t, {dim}, true); }

}  // namespace

// y = exp(x - max) / Σ exp(x - max) along dim;  dx = y · (g − Σ_dim g·y)
Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor y = softmax_forward(x, dim, false, "softmax");
  if (autograd::should_record({&x})) {
    const int64_t d = softmax_dim(x, dim);
    autograd::record("softmax", {x}, {&y}, {y}, [d](autograd::BackwardContext& c) -> TensorList {
      Tensor y = c.saved(0);
      const Tensor& g = c.grad();
      return {y * (g - sum_keep(g * y, d))};
    }).examples(ops_detail::along_dim(d));
  }
  return y;
}

PLATEAU_REGISTER_OP(
    {"softmax",
     "dx = y·(g − Σ_dim g·y), y = softmax(x)",
     {{"last dim", {registry::real({3, 4})}, [](const TensorList& in) -> TensorList { return {softmax(in[0], -1)}; }},
      {"middle dim",
       {registry::real({2, 3, 4})},
       [](const TensorList& in) -> TensorList { return {softmax(in[0], 1)}; }},
      {"first dim of a vector", {registry::real({5})}, [](const TensorList& in) -> TensorList {
         return {softmax(in[0], 0)};
       }}}});

// y = x − max − log Σ exp(x − max) along dim;  dx = g − exp(y) · Σ_dim g
Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor y = softmax_forward(x, dim, true, "log_softmax");
  if (autograd::should_record({&x})) {
    const int64_t d = softmax_dim(x, dim);
    autograd::record("log_softmax", {x}, {&y}, {y}, [d](autograd::BackwardContext& c) -> TensorList {
      const Tensor& g = c.grad();
      return {g - exp(c.saved(0)) * sum_keep(g, d)};
    }).examples(ops_detail::along_dim(d));
  }
  return y;
}

PLATEAU_REGISTER_OP({"log_softmax",
                     "dx = g − exp(y)·Σ_dim g, y = log_softmax(x)",
                     {{"last dim",
                       {registry::real({3, 4})},
                       [](const TensorList& in) -> TensorList { return {log_softmax(in[0], -1)}; }},
                      {"dim 0 of 3-d", {registry::real({3, 2, 4})}, [](const TensorList& in) -> TensorList {
                         return {log_softmax(in[0], -3)};
                       }}}});

// y = x · m / (1 − p), m ~ Bernoulli(1 − p) elementwise;  dx = g · m / (1 − p)
Tensor dropout(const Tensor& x, double p, bool training, Generator& generator) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("plateau: dropout probability p must be in [0, 1], got " + std::to_string(p));
  if (!x.is_floating_point())
    throw std::invalid_argument(std::string("plateau: dropout needs a floating tensor, got ") + dtype_name(x.dtype()));
  if (!training || p == 0.0) return x;
  // Everything dropped: zeros that still depend on x, so the gradient is defined (and zero).
  if (p == 1.0) return x * scalar_tensor(0.0, x.dtype(), x.device());
  Tensor scaled_mask;
  {
    NoGradGuard no_grad;
    scaled_mask = bernoulli(x.shape(), 1.0 - p, x.dtype(), generator, x.device()) * (1.0 / (1.0 - p));
  }
  return x * scaled_mask;
}

PLATEAU_REGISTER_OP({"dropout",
                     "dx = g·m/(1−p) with the same mask m",
                     {{"p 0.3, seeded mask", {registry::real({4, 5})}, [](const TensorList& in) -> TensorList {
                         Generator gen(7);  // a fresh generator per call: the same mask every time
                         return {dropout(in[0], 0.3, true, gen)};
                       }}}});

namespace {

using autograd::PerExampleGrad;
using autograd::PerExampleWant;

// Per example b: dW_b = Σ_t onehot(i_bt) g_btᵀ, formed by adding g's rows at row b·V + i_bt of a
// [B·V, D] matrix. Its squared norm needs no such matrix: Σ_st [i_bs = i_bt] (g_bs·g_bt).
std::vector<PerExampleGrad> embedding_per_example(autograd::BackwardContext& c,
                                                  const std::vector<PerExampleWant>& want) {
  std::vector<PerExampleGrad> r(2);
  if (want[0] == PerExampleWant::none) return r;
  const Tensor& g = c.grad();
  const Tensor rows = c.saved(0);
  const int64_t batch = g.size(0), vocab = c.node().input_meta()[0].shape[0], width = g.size(-1);
  if (rows.numel() % batch != 0)
    throw std::logic_error("plateau: embedding's per-example rule got " + std::to_string(rows.numel()) +
                           " indices for " + std::to_string(batch) + " examples");
  const int64_t per = rows.numel() / batch;
  Tensor idx = reshape(rows, {batch, per});
  Tensor gs = reshape(g, {batch, per, width});
  if (want[0] == PerExampleWant::sq_norm) {
    Tensor same = to_dtype(eq(unsqueeze(idx, 2), unsqueeze(idx, 1)), g.dtype());
    r[0] = {sum(same * matmul(gs, transpose(gs, 1, 2)), {1, 2}), true};
    return r;
  }
  std::vector<int64_t> at = idx.contiguous().to_vector<int64_t>();
  for (int64_t i = 0; i < batch * per; ++i) at[i] += (i / per) * vocab;
  Tensor dw = index_add(zeros({batch * vocab, width}, g.dtype(), g.device()), 0,
                        to_device(tensor(at, {batch * per}), g.device()), reshape(gs, {batch * per, width}));
  r[0] = {reshape(dw, {batch, vocab, width}), true};
  return r;
}

}  // namespace

// y[..., :] = weight[indices[...], :];  dweight = index_add of g's rows at indices
Tensor embedding(const Tensor& weight, const Tensor& indices) {
  if (weight.dim() != 2)
    throw std::invalid_argument("plateau: embedding needs a weight of shape [V, D], got " + weight.shape().str());
  if (indices.dtype() != DType::i64)
    throw std::invalid_argument(std::string("plateau: embedding needs i64 indices, got ") +
                                dtype_name(indices.dtype()) + " of shape " + indices.shape().str());
  const int64_t vocab = weight.size(0);
  for (int64_t i : indices.to_vector<int64_t>())
    if (i < 0 || i >= vocab)
      throw std::out_of_range("plateau: embedding index " + std::to_string(i) + " is out of range for a weight of " +
                              std::to_string(vocab) + " rows (shape " + weight.shape().str() + ")");
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.size(1));
  const Tensor rows = reshape(indices, {indices.numel()});
  Tensor y;
  {
    NoGradGuard no_grad;
    y = reshape(index_select(weight, 0, rows), out_shape);
  }
  if (autograd::should_record({&weight}))
    autograd::record("embedding", {weight, indices}, {&y}, {rows},
                     [shape = weight.shape()](autograd::BackwardContext& c) {
                       return TensorList{index_add(zeros(shape, c.grad().dtype(), c.grad().device()), 0, c.saved(0),
                                                   reshape(c.grad(), {-1, shape[1]}))};
                     })
        .per_example(embedding_per_example);
  return y;
}

PLATEAU_REGISTER_OP({"embedding",
                     "dweight = index_add(0, indices, g) (rows summed per index)",
                     {{"2-d indices",
                       {registry::real({5, 3}), registry::index({2, 3}, 5)},
                       [](const TensorList& in) -> TensorList { return {embedding(in[0], in[1])}; }},
                      {"1-d indices",
                       {registry::real({4, 2}), registry::index({6}, 4)},
                       [](const TensorList& in) -> TensorList { return {embedding(in[0], in[1])}; }}}});

}  // namespace plateau
